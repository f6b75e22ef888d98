"""Make docs/images/demo.png, the README's picture: the bundled demo classifier's extremal
perturbations (default settings) at 5, 10 and 20 % of four bundled demo images.

Usage: python docs/make_readme_picture.py   (about a minute on a 2-core CPU)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lightning_extremal import extremal_perturbation  # noqa: E402
from lightning_extremal.data.demo import demo_images, load_demo_classifier  # noqa: E402
from lightning_extremal.data.synthetic import CLASSES  # noqa: E402
from lightning_extremal.viz import overlay  # noqa: E402

AREAS = [0.05, 0.1, 0.2]
PICKED = [0, 2, 4, 6]  # circle, triangle, star, a multi-object image
OUT = Path(__file__).with_name("images") / "demo.png"


def main() -> None:
    images, ids, _ = demo_images()
    images = images[PICKED]
    result = extremal_perturbation(load_demo_classifier(), images, None, AREAS, progress=False)
    fig, axes = plt.subplots(len(PICKED), 1 + len(AREAS), figsize=(6.4, 6.6))
    for row, (image, masks) in enumerate(zip(images, result.masks, strict=True)):
        axes[row, 0].imshow(image.permute(1, 2, 0).numpy())
        axes[row, 0].set_title(CLASSES[int(result.targets[row])], fontsize=9)
        for k, area in enumerate(AREAS):
            shown = overlay(image, masks[k]).permute(1, 2, 0).clamp(0, 1).numpy()
            axes[row, k + 1].imshow(shown)
            achieved = float(result.achieved_areas[row, k])
            axes[row, k + 1].set_title(f"area {area:g} (got {achieved:.2f})", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
