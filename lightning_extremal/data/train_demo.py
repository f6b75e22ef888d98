"""Train the bundled demo classifier and export the demo images.

``python -m lightning_extremal.data.train_demo`` renders a single-object
:class:`~lightning_extremal.synthetic.SyntheticShapes` training set (seed ``--seed``), trains
:class:`~lightning_extremal.demo.DemoNet` on it with a Lightning ``Trainer`` on the CPU,
measures accuracy on a held-out set from another seed (``--test-seed``) and writes the
checkpoint (``state_dict``, ``classes``, ``test_accuracy``, ``seed``, ``command``,
``image_size``, …; loadable with ``torch.load(..., weights_only=True)``).

``python -m lightning_extremal.data.train_demo --export-demo`` instead writes the demo images,
their ground-truth masks and ``index.json`` (drawn from ``DEMO_SEED``, which differs from the
training and test seeds).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_extremal.data.demo import CHECKPOINT_NAME, DEMO_IMAGES_DIR, DEMO_INDEX_NAME, DemoNet
from lightning_extremal.data.synthetic import (
    CLASSES,
    DEFAULT_SIZE,
    SyntheticSample,
    render_sample,
    render_uint8,
)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PACKAGE_DIR / "assets" / CHECKPOINT_NAME
DEFAULT_DEMO_DIR = PACKAGE_DIR / "assets" / DEMO_IMAGES_DIR

TRAIN_SEED = 0
TEST_SEED = 1
DEMO_SEED = 2  # demo images come from a stream used neither for training nor for testing
NUM_THREADS = 2  # the reference machine has 2 CPU cores
TRAIN_SIZE = 10_000
TEST_SIZE = 2_000
EPOCHS = 14
BATCH_SIZE = 32
LEARNING_RATE = 1e-3  # peak of the one-cycle schedule; 3e-3 stalls training on this data
WARMUP_FRACTION = 0.1  # share of the steps spent warming up to the peak learning rate
WEIGHT_DECAY = 5e-4
LABEL_SMOOTHING = 0.05
RENDER_CHUNK = 250  # images per worker task when rendering in parallel
MULTI_DEMO_COUNTS = (2, 3)  # one multi-object demo image with each object count


def render_dataset(
    num_images: int, seed: int, size: int = DEFAULT_SIZE, processes: int = NUM_THREADS
) -> TensorDataset:
    """Pre-render single-object images ``0…num_images−1`` of ``seed``: (uint8 images, labels).

    Workers are spawned (not forked) so they never inherit the parent's OpenMP state.
    """
    tasks = [
        (start, min(start + RENDER_CHUNK, num_images), seed, size)
        for start in range(0, num_images, RENDER_CHUNK)
    ]
    if processes > 1:
        with get_context("spawn").Pool(processes) as pool:
            chunks = pool.starmap(render_uint8, tasks)
    else:
        chunks = [render_uint8(*task) for task in tasks]
    images = torch.from_numpy(np.concatenate([c[0] for c in chunks]))
    labels = torch.from_numpy(np.concatenate([c[1] for c in chunks]))
    return TensorDataset(images, labels)


def augment(images: torch.Tensor) -> torch.Tensor:
    """Label-preserving random flips and a random multiple of 90° rotation (per batch)."""
    flip = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < 0.5
    images = torch.where(flip, images.flip(-1), images)
    return torch.rot90(images, int(torch.randint(4, ())), dims=(-2, -1))


class DemoClassifierModule(L.LightningModule):
    """Cross-entropy training of :class:`DemoNet` with AdamW and a one-cycle LR schedule."""

    def __init__(self, lr: float, weight_decay: float, label_smoothing: float) -> None:
        super().__init__()
        self.model = DemoNet().to(memory_format=torch.channels_last)
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.test_correct = 0
        self.test_seen = 0

    @staticmethod
    def _prepare(images: torch.Tensor) -> torch.Tensor:
        """uint8 N×3×S×S → float in [0, 1], channels-last (faster convolutions on CPU)."""
        return (images.float() / 255.0).contiguous(memory_format=torch.channels_last)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        images, labels = batch
        logits = self.model(self._prepare(augment(images)))
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = (logits.argmax(1) == labels).float().mean()
        self.log_dict({"train_loss": loss, "train_acc": accuracy}, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        metrics = self.trainer.callback_metrics
        print(
            f"epoch {self.current_epoch + 1}/{self.trainer.max_epochs}: "
            f"loss {float(metrics['train_loss']):.4f}, acc {float(metrics['train_acc']):.4f}",
            flush=True,
        )

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        images, labels = batch
        predictions = self.model(self._prepare(images)).argmax(1)
        self.test_correct += int((predictions == labels).sum())
        self.test_seen += len(labels)

    @property
    def test_accuracy(self) -> float:
        """Exact accuracy over everything ``test_step`` saw."""
        return self.test_correct / max(self.test_seen, 1)

    def configure_optimizers(self) -> dict:
        """AdamW plus a one-cycle schedule stepped every batch."""
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.lr,
            total_steps=self.trainer.estimated_stepping_batches,
            pct_start=WARMUP_FRACTION,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def train(args: argparse.Namespace, command: str) -> dict:
    """Render data, fit, test; returns the checkpoint dict (also written to ``args.out``)."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, workers=True)
    train_set = render_dataset(args.train_size, args.seed, processes=args.processes)
    test_set = render_dataset(args.test_size, args.test_seed, processes=args.processes)
    print(f"rendered data in {time.perf_counter() - started:.1f}s", flush=True)
    module = DemoClassifierModule(args.lr, args.weight_decay, LABEL_SMOOTHING)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    trainer.fit(module, loader)
    trainer.test(module, DataLoader(test_set, batch_size=256), verbose=False)
    elapsed = time.perf_counter() - started
    checkpoint = {
        "state_dict": {k: v.contiguous() for k, v in module.model.state_dict().items()},
        "classes": list(CLASSES),
        "test_accuracy": module.test_accuracy,
        "test_size": args.test_size,
        "seed": args.seed,
        "test_seed": args.test_seed,
        "train_size": args.train_size,
        "epochs": args.epochs,
        "threads": args.threads,
        "image_size": DEFAULT_SIZE,
        "command": command,
        "train_seconds": round(elapsed, 1),
        "torch_version": str(torch.__version__),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    print(
        f"test accuracy {module.test_accuracy:.4f} on {args.test_size} images "
        f"(seed {args.test_seed}); total {elapsed:.1f}s; wrote {args.out}",
        flush=True,
    )
    return checkpoint


def _select_demo_indices(seed: int) -> list[tuple[int, bool]]:
    """Demo picks from stream ``seed``: per class, the first single-object image with ≥ 1
    distractor; then the first multi-object image with each count in MULTI_DEMO_COUNTS.

    Returns ``(index, multi_object)`` pairs. The rule never looks at any classifier.
    """
    picks: dict[int, int] = {}
    index = 0
    while len(picks) < len(CLASSES):
        sample = render_sample(index, seed=seed)
        if sample.label not in picks and sample.distractor_labels:
            picks[sample.label] = index
        index += 1
    chosen = [(picks[label], False) for label in range(len(CLASSES))]
    for count in MULTI_DEMO_COUNTS:
        index = 0
        while len(render_sample(index, seed=seed, multi_object=True).labels) != count:
            index += 1
        chosen.append((index, True))
    return chosen


def _save_mask(mask: torch.Tensor, path: Path) -> None:
    """Write an H×W bool mask as a 1-bit PNG."""
    Image.fromarray(mask.numpy()).convert("1").save(path, optimize=True)


def _demo_id(sample: SyntheticSample, multi_object: bool) -> str:
    """File stem: ``single_<class>`` or ``multi_<class>_<class>[_<class>]``."""
    names = "_".join(CLASSES[label] for label in sample.labels)
    return f"multi_{names}" if multi_object else f"single_{names}"


def export_demo_images(
    directory: str | Path = DEFAULT_DEMO_DIR, seed: int = DEMO_SEED
) -> list[dict]:
    """Write the demo PNGs, their masks (``<id>_mask<k>.png``) and ``index.json``; return entries."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, multi_object in _select_demo_indices(seed):
        sample = render_sample(index, seed=seed, multi_object=multi_object)
        demo_id = _demo_id(sample, multi_object)
        pixels = np.round(sample.image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(pixels).save(directory / f"{demo_id}.png", optimize=True)
        mask_names = [f"{demo_id}_mask{k}.png" for k in range(len(sample.labels))]
        for mask, name in zip(sample.masks, mask_names, strict=True):
            _save_mask(mask, directory / name)
        entries.append(
            {
                "id": demo_id,
                "image": f"{demo_id}.png",
                "masks": mask_names,
                "labels": list(sample.labels),
                "class_names": [CLASSES[label] for label in sample.labels],
                "boxes": sample.boxes.tolist(),
                "distractor_labels": list(sample.distractor_labels),
                "distractor_class_names": [CLASSES[label] for label in sample.distractor_labels],
                "multi_object": multi_object,
                "source": {"seed": seed, "index": index, "multi_object": multi_object},
            }
        )
    index_data = {
        "description": "Demo images rendered by lightning_extremal.synthetic.render_sample; "
        "boxes are (x0, y0, x1, y1) with x1/y1 exclusive; masks are the exact visible pixels "
        "of each main object, in label order.",
        "classes": list(CLASSES),
        "size": DEFAULT_SIZE,
        "images": entries,
    }
    with open(directory / DEMO_INDEX_NAME, "w", encoding="utf-8") as handle:
        json.dump(index_data, handle, indent=1)
        handle.write("\n")
    return entries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; seeds must differ so the test set is held out."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="checkpoint path")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--train-size", type=int, default=TRAIN_SIZE)
    parser.add_argument("--test-size", type=int, default=TEST_SIZE)
    parser.add_argument("--seed", type=int, default=TRAIN_SEED, help="training-data/init seed")
    parser.add_argument("--test-seed", type=int, default=TEST_SEED)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=LEARNING_RATE)
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY)
    parser.add_argument("--threads", type=int, default=NUM_THREADS, help="torch CPU threads")
    parser.add_argument("--processes", type=int, default=NUM_THREADS, help="rendering workers")
    parser.add_argument(
        "--export-demo",
        nargs="?",
        const=DEFAULT_DEMO_DIR,
        type=Path,
        metavar="DIR",
        help=f"write the demo images (seed {DEMO_SEED}) to DIR instead of training",
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "train_size", "test_size", "batch_size", "threads", "processes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seed == args.test_seed:
        parser.error(f"--test-seed must differ from --seed (both are {args.seed})")
    return args


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m lightning_extremal.data.train_demo``."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.export_demo is not None:
        for entry in export_demo_images(args.export_demo):
            print(f"{entry['id']}: labels {entry['class_names']}, source {entry['source']}")
        return
    train(args, shlex.join(["python", "-m", "lightning_extremal.data.train_demo", *argv]))


if __name__ == "__main__":
    main()
