"""A run folder of N synthetic (image, target) pairs written straight in the store's format
(chunk records, manifest.json, config.json, summary.json, overlays/*.png,
mask_evolution/*.gif) without optimising anything: what the report reads, at any scale, in
seconds. Used by tests/jobs/test_report.py and benchmarks/report_scale.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from lightning_extremal.jobs.run.store import ResultsStore
from lightning_extremal.jobs.run.verdict import convergence_summary
from lightning_extremal.naming import pair_names
from lightning_extremal.ops.pointing import summarize_quality

#: Requested areas of the synthetic masks.
SYNTHETIC_AREAS = (0.05, 0.2)
#: Every this many masks one did not converge (its achieved area far from the requested).
UNCONVERGED_EVERY = 7
#: Classes of the synthetic targets (the report names them from masks.pt).
CLASSES = ("cat", "dog", "car", "tree", "boat")


def textured_images(count: int, size: int, seed: int) -> torch.Tensor:
    """count×3×size×size in [0, 1]: smooth random colour fields with fine noise, so pictures
    compress like photos, not like flat shapes."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 6, 6, generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    noise = 0.08 * torch.randn(count, 3, size, size, generator=generator)
    return (smooth + noise).clamp(0, 1)


def blob_masks(count: int, areas: tuple[float, ...], size: int, seed: int) -> torch.Tensor:
    """count×K×size×size: a soft disc per pair and area, covering about that area."""
    generator = torch.Generator().manual_seed(seed + 1)
    centres = 0.25 + 0.5 * torch.rand(count, 1, 2, generator=generator)
    grid = (torch.arange(size) + 0.5) / size
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    radius = torch.tensor([math.sqrt(a / math.pi) for a in areas]).view(1, -1, 1, 1)
    distance = (yy - centres[..., 0, None, None]) ** 2 + (xx - centres[..., 1, None, None]) ** 2
    return torch.sigmoid((radius - distance.sqrt()) * 40)


def histories(
    count: int, areas: tuple[float, ...], steps: int, failed: torch.Tensor, seed: int
) -> dict[str, torch.Tensor]:
    """count×K×steps reward and achieved-area curves: rising rewards with the jitter zig-zag,
    achieved areas settling on the requested area (or off it where ``failed``)."""
    generator = torch.Generator().manual_seed(seed + 2)
    t = torch.arange(steps, dtype=torch.float32) / max(steps - 1, 1)
    zigzag = 0.03 * (torch.arange(steps) % 2 * 2 - 1).float()
    level = torch.rand(count, len(areas), 1, generator=generator)
    reward = level * (1 - torch.exp(-5 * t)) + zigzag
    target = torch.tensor(areas).view(1, -1, 1) + 0.15 * failed.float().unsqueeze(-1)
    achieved = target + (0.5 - target) * torch.exp(-6 * t) + 0.3 * zigzag
    return {"reward": reward, "achieved_area": achieved}


def build_run(
    out: Path,
    pairs: int,
    size: int = 32,
    steps: int = 40,
    chunk: int = 64,
    areas: tuple[float, ...] = SYNTHETIC_AREAS,
    figures: bool = True,
    seed: int = 0,
) -> Path:
    """Write a finished run of ``pairs`` one-target images of ``size`` px in ``out``, in
    chunks of ``chunk``; with ``figures``, each pair's overlay PNG and evolution GIF too
    (small PIL pictures: the report links to them, it never reads them)."""
    out = Path(out)
    store = ResultsStore(out, chunks_total=math.ceil(pairs / chunk), complete=True)
    rows: list[dict] = []
    for number, start in enumerate(range(0, pairs, chunk)):
        record = _record(start, min(chunk, pairs - start), size, steps, areas, seed + number)
        files = _write_figures(out, record) if figures else []
        record.update(key=f"synthetic-{number}", files=files)
        store.save(
            f"chunk-{number:05d}", record, ids=record["ids"], rows=record["rows"], files=files
        )
        rows += record["rows"]
    (out / "config.json").write_text(json.dumps(_config(areas, steps)))
    pair_rows = {(r["image"], r["target"]): r for r in rows}
    quality = summarize_quality(
        [r["iou"] for r in pair_rows.values()], [r["pointing_hit"] for r in pair_rows.values()]
    )
    summary = {"results": rows, "skipped": [], "quality": quality}
    summary["convergence"] = convergence_summary(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    store.merge_masks(classes=list(CLASSES))
    store.write_manifest()
    return out


def _config(areas: tuple[float, ...], steps: int) -> dict:
    return {
        "model": {"name": "synthetic"},
        "method": {"kind": "input", "areas": list(areas), "max_iter": steps, "jitter": True},
        "logger": {"mask_every_n_steps": max(1, steps // 4)},
    }


def _record(
    start: int, count: int, size: int, steps: int, areas: tuple[float, ...], seed: int
) -> dict:
    """The chunk record of pairs ``start`` … ``start + count − 1`` (image_job's fields)."""
    ids = [f"img{start + i:05d}" for i in range(count)]
    targets = torch.tensor([(start + i) % len(CLASSES) for i in range(count)])
    index = torch.arange(start, start + count).view(-1, 1) * len(areas) + torch.arange(len(areas))
    failed = index % UNCONVERGED_EVERY == UNCONVERGED_EVERY - 1
    history = histories(count, areas, steps, failed, seed)
    rewards, achieved = history["reward"][..., -1], history["achieved_area"][..., -1]
    iou = [round(0.2 + 0.6 * ((start + i) * 37 % 100) / 100, 4) for i in range(count)]
    hits = [(start + i) % 3 != 0 for i in range(count)]
    rows = [
        {
            "image": ids[p],
            "target": int(targets[p]),
            "target_name": CLASSES[int(targets[p])],
            "area": float(area),
            "reward": float(rewards[p, k]),
            "achieved_area": float(achieved[p, k]),
            "converged": not bool(failed[p, k]),
            "steps": steps,
            "start": "gradcam",
            "iou": iou[p],
            "pointing_hit": hits[p],
        }
        for p in range(count)
        for k, area in enumerate(areas)
    ]
    return {
        "ids": ids,
        "images": textured_images(count, size, seed),
        "targets": targets,
        "areas": torch.tensor(areas, dtype=torch.float64),
        "masks": blob_masks(count, areas, size, seed),
        "rewards": rewards,
        "achieved_areas": achieved,
        "converged": ~failed,
        "history": history,
        "steps": steps,
        "iou": iou,
        "pointing_hit": hits,
        "rows": rows,
    }


def _write_figures(out: Path, record: dict) -> list[str]:
    """A small overlay PNG and a three-frame greyscale GIF of the masks per pair, where a run
    writes them (greyscale: GIF needs no palette search, so a thousand pairs take a second)."""
    from PIL import Image

    (out / "overlays").mkdir(parents=True, exist_ok=True)
    (out / "mask_evolution").mkdir(parents=True, exist_ok=True)
    files = []
    for p, stem in enumerate(pair_names(record["ids"], record["targets"].tolist())):
        image = (record["images"][p] * 255).byte().permute(1, 2, 0).numpy()
        Image.fromarray(image).save(out / "overlays" / f"{stem}.png", compress_level=1)
        mask = (record["masks"][p, -1] * 255).byte().numpy()
        frames = [Image.fromarray(mask // (3 - k)) for k in range(3)]
        gif = out / "mask_evolution" / f"{stem}.gif"
        frames[0].save(gif, save_all=True, append_images=frames[1:])
        files += [f"overlays/{stem}.png", f"mask_evolution/{stem}.gif"]
    return files
