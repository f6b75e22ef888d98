"""At the end of a fit, one row per (image, target) pair × area with the final mask."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from lightning_extremal.naming import class_name
from lightning_extremal.ops.area import achieved_area
from lightning_extremal.ops.pointing import mask_quality
from lightning_extremal.viz import overlay, to_uint8

from .sinks import (
    FailSoft,
    display_names,
    has_image_masks,
    held_masks,
    held_pairs,
    log_at_step,
    original_images,
    resolve_out_dir,
    save_png,
    staged_in_run,
    to_hwc,
    wandb_run,
)

#: Columns of the table (W&B) and of ``final.csv`` (the image columns are file names there).
COLUMNS = (
    "name",
    "target",
    "target_name",
    "area",
    "reward",
    "achieved_area",
    "converged",
    "steps",
    "iou",
    "pointing_hit",
    "image",
    "overlay",
    "mask",
)


class FinalOverlays(Callback):
    """Final masks as a table: one row per (image, target) pair × area with the image, the
    target, the area, the (unjittered) reward, the achieved area, whether it converged
    (achieved within 0.05 of requested), the steps the fit ran, the pair's IoU with the
    object and pointing hit (:func:`~lightning_extremal.ops.pointing.mask_quality`, as in
    the run's summary; empty without ground truth), the mask as a heat map over the image,
    and the mask itself.

    With a W&B logger: a ``wandb.Table`` under ``key`` (default ``final/masks``) at the fit's
    last step: within a job's one run, one table per chunk under the same key (the table
    panel's step slider walks the chunks; each chunk's images are released once logged,
    where one table growing over the job would hold every image in memory). An offline run
    stages the table's files in its own folder (:func:`~.sinks.staged_in_run`). Without one:
    ``<out_dir>/<name>_area<a>_overlay.png`` and ``_mask.png`` and ``<out_dir>/final.csv``.
    ``rows`` keeps the table's scalar columns after the fit. Only rank zero logs and writes.
    Fits whose masks are not over the image (channel or layer-grid masks) are skipped.

    Args:
        out_dir: folder of the PNGs and CSV; None: ``<trainer.log_dir>/final_overlays``.
        names: one name per (image, target) pair; None: ``pair<p>``.
        class_names: names of the classes, for the ``target_name`` column.
        key: the W&B key of the table.
        truths: per pair, its object's H×W mask or None (no IoU, no pointing hit).
    """

    def __init__(
        self,
        out_dir: str | Path | None = None,
        names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        key: str = "final/masks",
        truths: Sequence[torch.Tensor | None] | None = None,
    ) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.truths = None if truths is None else list(truths)
        self.names = None if names is None else list(names)
        self.class_names = None if class_names is None else list(class_names)
        self.key = key
        self.rows: list[dict[str, Any]] = []
        self._log = FailSoft(type(self).__name__)
        self._dir: Path | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._dir = resolve_out_dir(self.out_dir, trainer, "final_overlays")

    @torch.no_grad()
    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not has_image_masks(pl_module):
            return  # channel and layer-grid masks: the run writes its own figures
        masks = pl_module.masks(held_masks(pl_module)).float()
        rows = self._rows(pl_module, masks, trainer.global_step)
        images = original_images(pl_module).float().cpu()
        masks = masks.cpu()
        pictures = [
            (to_uint8(image[:3]), to_uint8(overlay(image, mask[0])), to_uint8(mask[0]))
            for image, mask in zip(images, masks, strict=True)
        ]
        self.rows = rows
        run = self._log("finding the W&B run", lambda: wandb_run(trainer))
        if run is not None:
            self._log(
                "logging the final table",
                lambda: _log_table(trainer, run, self.key, rows, pictures),
            )
        if run is None or self._log.disabled:  # no W&B, or it just failed: files instead
            self._write_files(rows, pictures)

    def _rows(self, pl_module, masks: torch.Tensor, steps: int) -> list[dict[str, Any]]:
        """The table's scalar columns, one row per mask ``b = p·K + k``."""
        part, pairs = held_masks(pl_module), held_pairs(pl_module)
        rewards = pl_module.game_reward(masks, part).float().cpu()
        achieved = achieved_area(masks).cpu()
        done = pl_module.judge(achieved, part)  # area reached and reward stalled
        targets = pl_module.mask_target[part].cpu()
        names = display_names(self.names, pairs)
        areas = list(pl_module.config.areas)
        quality = self._quality(masks.cpu(), areas, pairs)
        rows = []
        for b in range(len(masks)):
            p, target = b // len(areas), int(targets[b])
            rows.append(
                {
                    "name": names[p],
                    "target": target,
                    "target_name": class_name(self.class_names, target),
                    "area": float(areas[b % len(areas)]),
                    "reward": float(rewards[b]),
                    "achieved_area": float(achieved[b]),
                    "converged": bool(done[b]),
                    "steps": int(steps),
                    "iou": quality["iou"][p],
                    "pointing_hit": quality["pointing_hit"][p],
                }
            )
        return rows

    def _quality(self, masks: torch.Tensor, areas: list[float], num_pairs: int) -> dict:
        """Per pair, IoU with its object and pointing hit (None without ground truth)."""
        truths = self.truths if self.truths and len(self.truths) == num_pairs else None
        if truths is None:
            return {"iou": [None] * num_pairs, "pointing_hit": [None] * num_pairs}
        per_pair = masks.view(num_pairs, len(areas), *masks.shape[-2:])
        quality = mask_quality(per_pair, areas, truths)
        pairs = zip(quality["iou"], quality["pointing_hit"], strict=True)
        quality["iou"] = [None if hit is None else iou for iou, hit in pairs]
        return quality

    def _write_files(self, rows, pictures) -> None:
        assert self._dir is not None
        self._dir.mkdir(parents=True, exist_ok=True)
        with open(self._dir / "final.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
            writer.writeheader()
            for row, (image, over, mask) in zip(rows, pictures, strict=True):
                stem = f"{row['name']}_{row['target']}_area{row['area']:g}"
                files = {"image": f"{row['name']}.png", "overlay": f"{stem}_overlay.png"}
                files["mask"] = f"{stem}_mask.png"
                save_png(image, self._dir / files["image"])
                save_png(over, self._dir / files["overlay"])
                save_png(mask, self._dir / files["mask"])
                writer.writerow({**row, **files})


def _log_table(trainer, run, key: str, rows, pictures) -> None:
    import wandb

    table = wandb.Table(columns=list(COLUMNS))
    for row, (image, over, mask) in zip(rows, pictures, strict=True):
        images = (wandb.Image(to_hwc(image)), wandb.Image(to_hwc(over)), wandb.Image(mask.numpy()))
        table.add_data(*(row[c] for c in COLUMNS[: -len(images)]), *images)
    with staged_in_run(run):
        log_at_step(trainer, run, {key: table}, trainer.global_step)
