"""The HTML report of a run: a summary across masks (histograms, non-converged masks, curves
with percentile bands), a sortable index, then per (image, target) pair its overlays, mask
evolution and curves — within a size budget, split into pages for big runs.

Built from what the job leaves on disk (the chunks ``manifest.json`` lists, ``config.json``,
``summary.json``, ``mask_evolution/*.gif``). ``report.html`` holds the summary, the index and
the first pairs; ``report-2.html``, … the next ones; ``report_files/`` the full-size pictures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...naming import class_name, pair_names, safe_name
from ...viz import overlay, to_uint8
from ..run.verdict import convergence_line, mask_label
from .analysis_sections import write_analysis_report
from .assets import AssetFolder, data_uri, display_scale, png_bytes, thumbnail_uri
from .figures import (
    JITTER_NOTE,
    PairCurves,
    aggregate_curves_png,
    evolution_strip_png,
    frame_steps,
    gif_frames,
    histograms_png,
)
from .layer_sections import write_layer_report
from .page import esc, figure, index_table, number, page_html, page_links

#: Pairs per page: report.html has the first ones (after the summary), report-2.html the next.
PAIRS_PER_PAGE = 100
#: Most bytes of page per (image, target) pair; a page holds at most PAIRS_PER_PAGE of them,
#: plus the summary on the first page.
PAIR_BUDGET = 50_000
#: The part of PAIR_BUDGET the embedded thumbnails (image and one overlay per area) may use.
THUMBNAIL_BUDGET = 36_000
#: Most non-converged masks listed by name in the summary (the index marks all of them).
LISTED_MASKS = 200


@dataclass
class Pair:
    """One (image, target) pair of a chunk record, and the page it is shown on."""

    record: dict[str, Any]
    p: int
    name: str
    label: str
    page: int = 0

    @property
    def target(self) -> int:
        return int(self.record["targets"][self.p])

    @property
    def image_id(self) -> str:
        return self.record["ids"][self.p]


@dataclass
class Report:
    """What every part of the report reads: the run's files and where the pages go."""

    run_dir: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    manifest: dict[str, Any]
    files: list[str]
    assets: AssetFolder
    pairs_per_page: int
    curves: PairCurves

    @property
    def jitter(self) -> bool:
        return _jitter(self.config)

    @property
    def every(self) -> int | None:
        return (self.config.get("logger") or {}).get("mask_every_n_steps")

    def link(self, pair: Pair) -> str:
        return f"{self.files[pair.page]}#pair-{pair.name}"


def _jitter(config: dict[str, Any]) -> bool:
    """Whether the run flipped the image every other step (``method.jitter``, input masks)."""
    method = config.get("method") or {}
    return bool(method.get("jitter", True)) and method.get("kind", "input") == "input"


def write_report(
    run_dir: str | Path, out_file: str | Path | None = None, pairs_per_page: int = PAIRS_PER_PAGE
) -> Path:
    """Write ``<run_dir>/report.html`` (or ``out_file``), its further pages and its picture
    folder; return the first page's path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"no run directory at {str(run_dir)!r}")
    if pairs_per_page < 1:
        raise ValueError(f"pairs_per_page must be at least 1, got {pairs_per_page}")
    if (run_dir / "analysis.json").is_file():  # a folder of `lightning-extremal analyze`
        return write_analysis_report(run_dir, out_file)
    manifest = _read_json(run_dir / "manifest.json") or {}
    config = _read_json(run_dir / "config.json") or {}
    if (config.get("method") or {}).get("kind", "input") != "input":  # a layer's run
        summary = _read_json(run_dir / "summary.json") or {}
        return write_layer_report(run_dir, config, summary, _unfinished_text(manifest), out_file)
    records = _load_chunks(run_dir, manifest)
    out = Path(out_file) if out_file else run_dir / "report.html"
    pairs = _pairs(records, _classes(run_dir))
    paths = page_paths(out, math.ceil(len(pairs) / pairs_per_page))
    for i, pair in enumerate(pairs):
        pair.page = i // pairs_per_page
    curves = PairCurves(_areas(records), _jitter(config))
    report = Report(
        run_dir,
        config,
        _read_json(run_dir / "summary.json") or {},
        manifest,
        [path.name for path in paths],
        AssetFolder(out.parent / f"{out.stem}_files"),
        pairs_per_page,
        curves,
    )
    report.assets.claim(*paths)
    with curves:
        for number_, path in enumerate(paths):
            shown = [pair for pair in pairs if pair.page == number_]
            report.assets.write_page(_page(report, number_, shown, pairs, records), path)
    report.assets.remove_stale()
    return out


def page_paths(out: Path, count: int) -> list[Path]:
    """``out`` then ``<stem>-2<suffix>``, ``<stem>-3<suffix>``, … (``count`` pages, at least 1)."""
    return [out] + [out.with_name(f"{out.stem}-{k}{out.suffix}") for k in range(2, count + 1)]


def _pairs(records: list[dict[str, Any]], classes: list[str] | None) -> list[Pair]:
    """Every (image, target) pair of the records, in order."""
    pairs = []
    for record in records:
        names = pair_names(record["ids"], record["targets"].tolist())
        for p, name in enumerate(names):
            label = class_name(classes, int(record["targets"][p]))
            pairs.append(Pair(record, p, safe_name(name), label))
    return pairs


def _page(
    report: Report,
    page: int,
    shown: list[Pair],
    pairs: list[Pair],
    records: list[dict[str, Any]],
) -> str:
    """Page ``page``: header, links to the other pages, the summary and index on the first
    page, then the sections of the pairs ``shown``."""
    first_pair = [1 + k * report.pairs_per_page for k in range(len(report.files))]
    nav = page_links(report.files, page, first_pair)
    body = [*_header(report), nav]
    if page == 0:
        body += [_summary(report, pairs, records), _index(report, pairs)]
    body += [_pair_section(report, pair) for pair in shown]
    body.append(nav)
    title = f"lightning-extremal report: {report.run_dir.resolve().name}"
    if page:
        title += f" (page {page + 1} of {len(report.files)})"
    return page_html(title, body, script=page == 0)


def _header(report: Report) -> list[str]:
    """Title, the unfinished-run notice, and the run's settings in one line."""
    method = report.config.get("method") or {}
    model = (report.config.get("model") or {}).get("name", "?")
    where = report.run_dir.resolve()
    return [
        f"<h1>Extremal perturbations — {esc(where.name)}</h1>",
        _unfinished_text(report.manifest),
        f'<p class="meta">model {esc(model)} · areas {esc(method.get("areas", "?"))} · '
        f"max_iter {esc(method.get('max_iter', '?'))} · "
        f"variant {esc(method.get('variant', '?'))} · jitter "
        f"{'on' if report.jitter else 'off'} · {esc(where)}</p>",
    ]


def _unfinished_text(manifest: dict[str, Any]) -> str:
    """A warning at the top of the report of a run that has not finished; empty otherwise."""
    if manifest.get("complete", True):
        return ""
    done, total = len(manifest.get("chunks") or []), manifest.get("chunks_total", "?")
    return (
        f'<p class="warning">Unfinished run: {done} of {total} chunks done. This report shows '
        "those only; rerun the same command to finish the run.</p>"
    )


# --------------------------------------------------------------------------- summary


def _areas(records: list[dict[str, Any]]) -> list[float]:
    return [float(a) for a in records[0]["areas"].tolist()]


def _steps(record: dict[str, Any]) -> int:
    """The steps a record's history holds."""
    length = record["history"]["reward"].shape[-1]
    return min(int(record.get("steps") or length), length)


def _ious(record: dict[str, Any]) -> list[float]:
    """IoU of each pair with its ground truth (largest area); NaN where there is none."""
    values = record.get("iou") or [math.nan] * len(record["ids"])
    return [math.nan if v is None else float(v) for v in values]


def _summary(report: Report, pairs: list[Pair], records: list[dict[str, Any]]) -> str:
    """The summary section: counts, histograms, non-converged masks, aggregate curves."""
    areas = _areas(records)
    rewards = torch.cat([r["rewards"] for r in records]).double().numpy()
    achieved = torch.cat([r["achieved_areas"] for r in records]).double().numpy()
    iou = np.array([v for r in records for v in _ious(r)], dtype=float)
    steps = min(_steps(r) for r in records)
    history = {
        key: torch.cat([r["history"][key][..., :steps] for r in records]).double().numpy()
        for key in ("reward", "achieved_area")
    }
    histograms = histograms_png(achieved - np.array(areas), rewards, iou, areas)
    curves = aggregate_curves_png(history["reward"], history["achieved_area"], areas, report.jitter)
    parts = [
        '<h2 id="summary">Summary</h2>',
        f"<p>{len(pairs)} (image, target) pairs, {rewards.size} masks at areas "
        f"{', '.join(f'{a:g}' for a in areas)}, {steps} steps.</p>",
        _quality_text(report.summary),
        _convergence_text(report, pairs),
        figure(data_uri(histograms), "histograms across masks", "across all masks"),
        "<h3>Optimisation across pairs</h3>",
        f'<p class="note">{esc(JITTER_NOTE)}</p>' if report.jitter else "",
        figure(data_uri(curves), "reward and achieved area across pairs", ""),
    ]
    return "\n".join(part for part in parts if part)


def _quality_text(summary: dict[str, Any]) -> str:
    """A paragraph of the run's quality against ground truth; empty without one."""
    quality = summary.get("quality")
    return (
        f"<p>Quality against ground truth: mean IoU {quality['iou']:.3f}, pointing "
        f"{quality['pointing']:.1%} over {int(quality['pairs'])} pairs.</p>"
        if quality
        else ""
    )


def _mask_rows(pair: Pair, areas: list[float]) -> list[dict[str, Any]]:
    """One row per area of a pair: what summary.json's rows hold, from the chunk record."""
    record, p = pair.record, pair.p
    converged = record.get("converged")
    iou = _ious(record)[p]
    return [
        {
            "image": pair.image_id,
            "target_name": pair.label,
            "area": area,
            "achieved_area": float(record["achieved_areas"][p, k]),
            "reward": float(record["rewards"][p, k]),
            "iou": iou,
            "converged": None if converged is None else bool(converged[p, k]),
        }
        for k, area in enumerate(areas)
    ]


def _convergence_text(report: Report, pairs: list[Pair]) -> str:
    """summary.json's convergence line, then the non-converged masks, each linked to its pair
    (at most LISTED_MASKS named)."""
    convergence = report.summary.get("convergence")
    line = f"<p>{esc(convergence_line(convergence))}.</p>" if convergence else ""
    failed = [
        (pair, row)
        for pair in pairs
        for row in _mask_rows(pair, _areas([pair.record]))
        if row["converged"] is False
    ]
    if not failed:
        return line
    items = "".join(
        f'<li><a href="{esc(report.link(pair))}">{esc(mask_label(row))}</a></li>'
        for pair, row in failed[:LISTED_MASKS]
    )
    more = f"<p>… and {len(failed) - LISTED_MASKS} more.</p>" if len(failed) > LISTED_MASKS else ""
    return (
        f'{line}<h3 id="not-converged">Not converged: {len(failed)} masks</h3>'
        f'<ul class="not-converged">{items}</ul>{more}'
    )


def _index(report: Report, pairs: list[Pair]) -> str:
    """The index: one sortable row per mask, linked to its pair's section."""
    rows, links = [], []
    for pair in pairs:
        for row in _mask_rows(pair, _areas([pair.record])):
            converged = {True: "yes", False: "no", None: "—"}[row["converged"]]
            rows.append(
                (
                    row["image"],
                    row["target_name"],
                    f"{row['area']:g}",
                    number(row["achieved_area"]),
                    number(row["reward"]),
                    number(row["iou"]),
                    converged,
                )
            )
            links.append(report.link(pair))
    return '<h2 id="index">Index</h2>' + index_table(rows, links)


# --------------------------------------------------------------------------- pairs


def _pair_section(report: Report, pair: Pair) -> str:
    """A pair's section: heading, meta line, overlays, mask evolution, curves."""
    record, p, name = pair.record, pair.p, pair.name
    areas, steps = _areas([record]), _steps(record)
    curves = report.curves.png(record["history"], p, steps)
    parts = [
        f'<h2 id="pair-{esc(name)}">{esc(pair.image_id)} — target {esc(pair.label)} '
        f"({pair.target})</h2>",
        _pair_meta(record, p, steps),
        _overlay_figures(report.assets, pair, areas),
        *_evolution_parts(report, pair, steps),
        "<h3>Optimisation</h3>",
        f'<p class="note">Thick: averaged over two steps (jitter flip); thin: raw. '
        f'<a href="{esc(report.files[0])}#summary">Why</a>.</p>'
        if report.jitter
        else "",
        figure(report.assets.write(f"{name}-curves.png", curves), f"{name}: curves", "", lazy=True),
    ]
    return (
        f'<section class="pair" data-pair="{esc(name)}">'
        + "\n".join(part for part in parts if part)
        + "</section>"
    )


def _pair_meta(record: dict[str, Any], p: int, steps: int) -> str:
    """The meta line of pair ``p``: its steps and, with ground truth, IoU and pointing."""
    hit = (record.get("pointing_hit") or [None] * len(record["ids"]))[p]
    meta = f"{steps} steps"
    if hit is not None:
        meta += f" · IoU (largest area) {number(_ious(record)[p])} · pointing "
        meta += "hit" if hit else "miss"
    return f'<p class="meta">{meta}</p>'


def _overlay_figures(assets: AssetFolder, pair: Pair, areas: list[float]) -> str:
    """The image and its overlay at each area: thumbnails in the page (within
    THUMBNAIL_BUDGET), shown ~256 px wide, each linked to its full-size file."""
    record, p, name = pair.record, pair.p, pair.name
    image = record["images"][p].float()
    height, width = image.shape[-2:]
    scale = display_scale(height, width)
    share = THUMBNAIL_BUDGET // (1 + len(areas))
    pictures = [(to_uint8(image[:3]), f"{name}-image.png", "image")]
    for k, area in enumerate(areas):
        caption = (
            f"area {area:g} · reward {float(record['rewards'][p, k]):.3g} · "
            f"achieved {float(record['achieved_areas'][p, k]):.3f}"
        )
        rgb = to_uint8(overlay(image, record["masks"][p, k]))
        pictures.append((rgb, f"{name}-area{area:g}.png", caption))
    figures = [
        figure(
            thumbnail_uri(rgb, share),
            f"{name}: {caption}",
            caption,
            width=width * scale,
            href=assets.write(file, png_bytes(rgb, scale)),
            pixelated=scale > 1,
        )
        for rgb, file, caption in pictures
    ]
    return "<div>" + "".join(figures) + "</div>"


def _evolution_parts(report: Report, pair: Pair, steps: int) -> list[str]:
    """The mask-evolution block (strip of frames and the animated GIF, both files beside the
    page); none without the run's GIF of this pair."""
    gif = report.run_dir / "mask_evolution" / f"{pair.name}.gif"
    if not gif.is_file():
        return []
    frames = gif_frames(gif)
    height, width = frames[0].shape[-2:]
    scale = display_scale(height, width)
    labels = frame_steps(len(frames), report.every, steps)
    strip = evolution_strip_png(frames, labels, scale)
    return [
        "<h3>Mask evolution</h3><div>",
        figure(
            report.assets.write(f"{pair.name}-evolution.png", strip),
            f"{pair.name}: mask evolution",
            "masks over the image (top), what the classifier sees (below)",
            lazy=True,
        ),
        figure(
            report.assets.copy(gif, f"{pair.name}-evolution.gif"),
            f"{pair.name}: mask evolution (animated)",
            "animated",
            width=width * scale,
            pixelated=scale > 1,
            lazy=True,
        ),
        "</div>",
    ]


# --------------------------------------------------------------------------- files


def _load_chunks(run_dir: Path, manifest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The chunk records the manifest lists, in its order (files it does not list are not
    this run's and are never read)."""
    entries = (manifest or {}).get("chunks") or []
    if not entries:
        raise ValueError(
            f"{run_dir} has no finished chunks in manifest.json: give an output directory of "
            "`lightning-extremal run`"
        )
    return [
        torch.load(run_dir / e["file"], map_location="cpu", weights_only=False) for e in entries
    ]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _classes(run_dir: Path) -> list[str] | None:
    masks = run_dir / "masks.pt"
    if not masks.is_file():
        return None
    return torch.load(masks, map_location="cpu", weights_only=False).get("classes")
