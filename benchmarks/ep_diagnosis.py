"""Why extremal perturbations miss on multi-object images: a local optimum, or the model?

For given (multi-object synthetic image, target class) pairs and the bundled demo classifier,
runs EP (Adam lr 0.05, ``--steps`` steps, λ geometric from each ``--lambda0`` to
``--lambda-final``; the defaults: the method's default optimiser; session 3 ran 300 steps
ending at 300·1.0095^300) and prints, per area ``a``:

- ``on object``: the fraction of the EP mask's top ``a·HW`` pixels on the target object;
- ``EP logit``: the target logit when exactly those pixels are kept (the rest from the blur
  pyramid's most blurred level, as the game does with a 0/1 mask);
- ``object logit``: the same for the ``a·HW`` most interior pixels of the target object
  (largest distance to its border; the object plus its nearest surroundings when it is
  smaller than ``a·HW``).

If the object's pixels keep a higher logit than the pixels EP settled on, EP's answer is a
local optimum of its own objective, not what the classifier prefers.

  python benchmarks/ep_diagnosis.py [--pairs 1:triangle 1:cross 13:square 14:triangle]
                                    [--lambda0 30] [--steps 200] [--lambda-final 5000]
"""

from __future__ import annotations

import argparse
import warnings

import torch
from scipy.ndimage import distance_transform_edt

from lightning_extremal import extremal_perturbation
from lightning_extremal.data.demo import load_demo_classifier
from lightning_extremal.data.synthetic import CLASSES, render_sample
from lightning_extremal.ops.perturbation import apply_pyramid, perturbation_pyramid

AREAS = [0.025, 0.05, 0.1, 0.2]


def keep_top(score: torch.Tensor, count: int) -> torch.Tensor:
    """0/1 mask (1×1×H×W) of the ``count`` highest-scoring pixels of ``score`` (H×W)."""
    mask = torch.zeros(score.numel())
    mask[score.flatten().topk(count).indices] = 1
    return mask.view(1, 1, *score.shape)


def signed_depth(obj: torch.Tensor) -> torch.Tensor:
    """Distance to the object's border, positive inside and negative outside (H×W)."""
    inside = distance_transform_edt(obj.numpy())
    outside = distance_transform_edt(1 - obj.numpy())
    return torch.from_numpy(inside - outside).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", nargs="+", default=["1:triangle", "1:cross", "13:square", "14:triangle"]
    )
    parser.add_argument("--lambda0", type=float, nargs="+", default=[30.0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lambda-final", type=float, default=5000.0)
    parser.add_argument("--seed", type=int, default=3, help="the benchmark's synthetic stream")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    model = load_demo_classifier().eval()
    print("| image | target | λ₀ | area | on object | EP logit | object logit |")
    print("|---|---|---|---|---|---|---|")
    for pair in args.pairs:
        index, name = pair.split(":")
        sample = render_sample(int(index), seed=args.seed, size=128, multi_object=True)
        target = CLASSES.index(name)
        obj = sample.masks[sample.labels.index(target)]
        image = sample.image[None]
        pyramid = perturbation_pyramid(image, "blur", 8, 20.0, "reflect")
        which = torch.zeros(1, dtype=torch.long)

        def logit(mask: torch.Tensor, target=target, pyramid=pyramid, which=which) -> float:
            with torch.no_grad():
                return model(apply_pyramid(pyramid, mask, which))[0, target].item()

        for lambda0 in args.lambda0:
            result = extremal_perturbation(
                model, image, [target], AREAS, optimizer="adam", lr=0.05, max_iter=args.steps,
                lambda0=lambda0, lambda_final=args.lambda_final, progress=False,
            )  # fmt: skip
            for k, area in enumerate(AREAS):
                count = round(area * obj.numel())
                ep = keep_top(result.masks[0, k], count)
                on_object = (ep.view_as(obj) * obj).sum().item() / count
                interior = keep_top(signed_depth(obj), count)
                print(
                    f"| multi-{index} | {name} | {lambda0:g} | {area} | {on_object:.0%} | "
                    f"{logit(ep):.2f} | {logit(interior):.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
