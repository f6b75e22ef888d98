"""Watch masks converge: every n steps, each pair's masks next to what the classifier sees."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from lightning_extremal.naming import class_name
from lightning_extremal.ops.area import achieved_area
from lightning_extremal.viz import label_columns, overlay, to_uint8

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
    to_hwc,
    wandb_run,
)

#: Pixels of white between the tiles of a frame.
TILE_PADDING = 2
#: Display time of one GIF frame, ms.
GIF_FRAME_MS = 400
#: W&B keys of the frames (a list of images per step) and of the GIFs (a list per fit).
FRAMES_KEY = "masks"
GIFS_KEY = "mask_evolution"


def frame_grid(
    overlays: torch.Tensor, views: torch.Tensor, labels: Sequence[Sequence[str]] | None = None
) -> torch.Tensor:
    """One frame: row 1 the K masks over the image, then one row per perturbed view; with
    ``labels``, each column's lines of text written above it (:func:`~..viz.label_columns`).

    ``overlays`` K×3×H×W and ``views`` V×K×3×H×W floats in [0, 1] → 3×H'×W' uint8.
    """
    from torchvision.utils import make_grid

    tiles = torch.cat([overlays.unsqueeze(0), views]).flatten(0, 1)
    grid = make_grid(tiles, nrow=overlays.shape[0], padding=TILE_PADDING, pad_value=1.0)
    if labels is None:
        return to_uint8(grid)
    return label_columns(to_uint8(grid), labels, overlays.shape[-1], TILE_PADDING)


def frame_labels(step: int, areas: Sequence[float], achieved: Sequence[float]) -> list[list[str]]:
    """Per area, the lines written above its column: the step, the requested area, the
    achieved one."""
    return [
        [f"step {step}", f"area {a:g}", f"achieved {got:.3f}"]
        for a, got in zip(areas, achieved, strict=True)
    ]


def save_gif(frames: Sequence[torch.Tensor], path: Path, frame_ms: int = GIF_FRAME_MS) -> Path:
    """Write 3×H×W uint8 frames as a looping GIF; the last frame is held three times as long."""
    from PIL import Image

    images = [Image.fromarray(to_hwc(f)) for f in frames]
    durations = [frame_ms] * (len(images) - 1) + [3 * frame_ms]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


class MaskEvolution(Callback):
    """Every ``every_n_steps`` steps, per (image, target) pair, one frame: the mask of every
    area as a heat map over the image, above the perturbed input the classifier sees; above
    each area's column its label is drawn into the picture (step, requested area, achieved
    area).

    With a W&B logger the frames of one step are logged as one list of ``wandb.Image`` under
    the shared key :data:`FRAMES_KEY` (``masks``), one image per pair captioned
    ``<name>: <class>, step <t>: …``, at W&B step = optimisation step (the job step, within
    a job's one run): one media panel pages through the pairs and its step slider plays the
    convergence (0, 50, 100, …) and then the next chunk's. Without W&B the frames are written
    as ``<out_dir>/<name>/step_<t>.png``. At the end of the fit an animated
    ``<out_dir>/<name>.gif`` is always written and, with W&B, the fit's GIFs are logged as one
    list of ``wandb.Video`` under :data:`GIFS_KEY` (``mask_evolution``). One key per kind of
    picture, never one per image: a job of thousands of images keeps two media panels. Only
    rank zero logs and writes. The frames are kept in memory for the GIF:
    ``max_iter / every_n_steps + 1`` per pair. Fits whose masks are not over the image
    (channel or layer-grid masks) are skipped.

    Args:
        every_n_steps: frame interval in optimisation steps (the last step is always a frame).
        out_dir: folder of the GIFs and PNGs; None: ``<trainer.log_dir>/mask_evolution``.
        names: one name per (image, target) pair (e.g. image ids); None: ``pair<p>``.
        classes: class names by id; each logged frame and GIF is captioned
            ``<name>: <class>`` (the id itself without them).
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        out_dir: str | Path | None = None,
        names: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps < 1
        ):
            raise ValueError(f"every_n_steps must be a positive integer; got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self.out_dir = out_dir
        self.names = None if names is None else list(names)
        self.classes = None if classes is None else list(classes)
        self.frames: dict[str, list[torch.Tensor]] = {}
        self.steps: list[int] = []
        self.gifs: dict[str, Path] = {}
        self._log = FailSoft(type(self).__name__)
        self._dir: Path | None = None
        self._names: list[str] = []
        self._titles: dict[str, str] = {}  # pair name → "name: class", the media captions
        self.active = True  # False for a fit whose masks are not over the image (channels…)

    def on_train_start(self, trainer, pl_module) -> None:
        # A fresh record per fit (one callback may see several fits, e.g. ``batch_size=``).
        self.active = has_image_masks(pl_module)
        self._dir = resolve_out_dir(self.out_dir, trainer, "mask_evolution")
        self._names = display_names(self.names, held_pairs(pl_module))
        self.frames = {name: [] for name in self._names}
        self.steps, self.gifs = [], {}
        if self.active:
            pairs = pl_module.mask_target[held_masks(pl_module)][:: pl_module.num_areas]
            self._titles = {
                name: f"{name}: {class_name(self.classes, int(t))}"
                for name, t in zip(self._names, pairs.tolist(), strict=True)
            }

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.active and trainer.global_step % self.every_n_steps == 0:
            self._capture(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if not self.active:
            return
        if not self.steps or self.steps[-1] != trainer.global_step:
            self._capture(trainer, pl_module)  # the final masks
        if not trainer.is_global_zero:
            return
        for name, frames in self.frames.items():
            if frames:
                self.gifs[name] = save_gif(frames, self._dir / f"{name}.gif")
        run = self._log("finding the W&B run", lambda: wandb_run(trainer))
        if run is not None and self.gifs:
            gifs = {name: (path, self._titles.get(name, name)) for name, path in self.gifs.items()}
            self._log("logging the GIFs", lambda: _log_gifs(trainer, run, gifs))

    @torch.no_grad()
    def _capture(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        step = trainer.global_step
        part = held_masks(pl_module)
        masks = pl_module.masks(part).float()
        # B×C×H×W, 2B for dual (preserve, delete)
        views = pl_module.perturbed(masks, part).float()
        labels = _labels(step, pl_module.config.areas, achieved_area(masks).tolist())
        frames = _frames(original_images(pl_module), masks, views, labels)
        self.steps.append(step)
        for name, frame in zip(self._names, frames, strict=True):
            self.frames[name].append(frame)
        run = self._log("finding the W&B run", lambda: wandb_run(trainer))
        if run is not None:
            named = dict(zip(self._names, frames, strict=True))
            self._log(
                "logging mask images",
                lambda: _log_frames(trainer, run, named, step, self._titles),
            )
        if run is None or self._log.disabled:  # no W&B, or it just failed: files instead
            for name, frame in zip(self._names, frames, strict=True):
                save_png(frame, self._dir / name / f"step_{step:06d}.png")


def _labels(step: int, areas: Sequence[float], achieved: list[float]) -> list[list[list[str]]]:
    """Per pair, :func:`frame_labels` of its K masks (mask ``b = p·K + k``)."""
    k = len(areas)
    return [frame_labels(step, areas, achieved[p : p + k]) for p in range(0, len(achieved), k)]


def _frames(images, masks, views, labels: list[list[list[str]]]) -> list[torch.Tensor]:
    """Per pair, its frame (see :func:`frame_grid`), labelled with ``labels[p]``."""

    images, masks, views = images.cpu(), masks.cpu(), views.cpu().clamp(0, 1)
    if views.shape[1] == 1:
        views = views.expand(-1, 3, -1, -1)
    num_masks, num_areas = len(masks), len(labels[0])
    views = views.view(-1, num_masks, *views.shape[1:])[:, :, :3]  # V×B×3×H×W
    frames = []
    for p, start in enumerate(range(0, num_masks, num_areas)):
        part = slice(start, start + num_areas)
        overlays = torch.stack(
            [overlay(img, m[0]) for img, m in zip(images[part], masks[part], strict=True)]
        )
        frames.append(frame_grid(overlays, views[:, part], labels[p]))
    return frames


def _log_frames(trainer, run, frames: dict[str, torch.Tensor], step: int, titles) -> None:
    """One ``run.log`` for all pairs at the optimisation step: the pairs' frames as one list
    under :data:`FRAMES_KEY` (one W&B history row and one media panel per step, whatever the
    number of images), each captioned with its pair, class and step (``titles``)."""
    import wandb

    what = f"step {step}: masks over the image (top), what the classifier sees (below)"
    images = [
        wandb.Image(to_hwc(frame), caption=f"{titles.get(name, name)}, {what}")
        for name, frame in frames.items()
    ]
    log_at_step(trainer, run, {FRAMES_KEY: images}, step)


def _log_gifs(trainer, run, gifs: dict[str, tuple[Path, str]]) -> None:
    """The fit's GIFs (path, caption per pair) as one list under :data:`GIFS_KEY`."""
    import wandb

    videos = [
        wandb.Video(str(path), format="gif", caption=caption) for path, caption in gifs.values()
    ]
    log_at_step(trainer, run, {GIFS_KEY: videos}, trainer.global_step)
