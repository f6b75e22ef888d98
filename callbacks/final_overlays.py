"""At the end of a fit, one row per (image, target) pair × area with the final mask."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from lightning_extremal.naming import class_name
from lightning_extremal.ops.area import achieved_area, converged
from lightning_extremal.viz import overlay, to_uint8

from .sinks import (
    WANDB_STEP_KEY,
    FailSoft,
    display_names,
    has_image_masks,
    original_images,
    resolve_out_dir,
    save_png,
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
    "image",
    "overlay",
    "mask",
)


class FinalOverlays(Callback):
    """Final masks as a table: one row per (image, target) pair × area with the image, the
    target, the area, the (unjittered) reward, the achieved area, the mask as a heat map over
    the image, and the mask itself.

    With a W&B logger: a ``wandb.Table`` under ``key`` (default ``final/masks``). Without one:
    ``<out_dir>/<name>_area<a>_overlay.png`` and ``_mask.png`` and ``<out_dir>/final.csv``.
    ``rows`` keeps the table's scalar columns after the fit. Only rank zero logs and writes.
    Fits whose masks are not over the image (channel or layer-grid masks) are skipped.

    Args:
        out_dir: folder of the PNGs and CSV; None: ``<trainer.log_dir>/final_overlays``.
        names: one name per (image, target) pair; None: ``pair<p>``.
        class_names: names of the classes, for the ``target_name`` column.
        key: the W&B key of the table.
    """

    def __init__(
        self,
        out_dir: str | Path | None = None,
        names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        key: str = "final/masks",
    ) -> None:
        super().__init__()
        self.out_dir = out_dir
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
        masks = pl_module.masks().float()
        rewards = pl_module.game_reward(masks).float().cpu()
        achieved = achieved_area(masks).cpu()
        done = converged(achieved, pl_module.requested_areas().repeat(pl_module.num_pairs))
        images = original_images(pl_module).float().cpu()
        targets = pl_module.mask_target.cpu()
        masks = masks.cpu()
        names = display_names(self.names, pl_module.num_pairs)
        areas = list(pl_module.hparams["areas"])
        rows, pictures = [], []
        for b in range(len(masks)):
            target = int(targets[b])
            rows.append(
                {
                    "name": names[b // len(areas)],
                    "target": target,
                    "target_name": class_name(self.class_names, target),
                    "area": float(areas[b % len(areas)]),
                    "reward": float(rewards[b]),
                    "achieved_area": float(achieved[b]),
                    "converged": bool(done[b]),
                }
            )
            pictures.append(
                (
                    to_uint8(images[b][:3]),
                    to_uint8(overlay(images[b], masks[b, 0])),
                    to_uint8(masks[b, 0]),
                )
            )
        self.rows = rows
        run = self._log("finding the W&B run", lambda: wandb_run(trainer))
        if run is not None:
            self._log(
                "logging the final table",
                lambda: _log_table(run, self.key, rows, pictures, trainer.global_step),
            )
        if run is None or self._log.disabled:  # no W&B, or it just failed: files instead
            self._write_files(rows, pictures)

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


def _log_table(run, key: str, rows, pictures, step: int) -> None:
    import wandb

    table = wandb.Table(columns=list(COLUMNS))
    for row, (image, over, mask) in zip(rows, pictures, strict=True):
        table.add_data(
            row["name"],
            row["target"],
            row["target_name"],
            row["area"],
            row["reward"],
            row["achieved_area"],
            row["converged"],
            wandb.Image(to_hwc(image)),
            wandb.Image(to_hwc(over)),
            wandb.Image(mask.numpy()),
        )
    run.log({key: table, WANDB_STEP_KEY: step})
