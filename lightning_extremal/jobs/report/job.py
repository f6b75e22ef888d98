"""The HTML report of a run: a summary across masks (histograms, non-converged masks, curves
with percentile bands), an index of every pair paged in the browser, then per (image, target)
pair its thumbnails, curves and mask evolution — a few KB a pair, so it scales to thousands.

Built from what the job leaves on disk (the chunks ``manifest.json`` lists, ``config.json``,
``summary.json``, ``overlays/*.png``, ``mask_evolution/*.gif``). ``report.html`` holds the
summary, the index and the first pairs; ``report-2.html``, … the next ones. ``report_files/``
holds one thumbnail sheet per page and the index's rows (``index.js``); the full-size pictures
are the run's own (overlays, GIFs), linked where they lie, never copied.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import torch

from ...naming import class_name, pair_names, safe_name
from ..run.verdict import convergence_line, mask_label, unconverged_note
from .analysis_sections import write_analysis_report
from .assets import AssetFolder, ThumbnailSheet, Tile, data_uri, thumbnails
from .figures import (
    CURVES_NOTE,
    JITTER_NOTE,
    aggregate_curves_png,
    curves_svg,
    histograms_png,
)
from .layer_sections import write_layer_report
from .page import (
    INDEX_SCRIPT,
    LISTED_MASKS,
    esc,
    figure,
    number,
    page_html,
    page_links,
    pairs_table,
)

#: Pairs per page: report.html has the first ones (after the summary), report-2.html the next.
PAIRS_PER_PAGE = 100
#: Rows of the index shown at a time (its pager shows the next ones).
INDEX_ROWS = 100
#: The index's rows, in the picture folder (a script: a page opened from disk may load
#: scripts beside it, but not read JSON).
INDEX_FILE = "index.js"


@dataclass
class Pair:
    """One (image, target) pair of a chunk record, and the page it is shown on."""

    record: dict[str, Any]
    p: int
    #: The pair's name as the run writes its files (overlays/<stem>.png) and its safe form
    #: (mask_evolution/<name>.gif, the page's anchors).
    stem: str
    name: str
    label: str
    page: int = 0

    @property
    def target(self) -> int:
        return int(self.record["targets"][self.p])

    @property
    def image_id(self) -> str:
        return self.record["ids"][self.p]

    def converged(self) -> list[bool | None]:
        """Per area, whether the mask reached its area (None: the run did not judge it)."""
        flags = self.record.get("converged")
        areas = len(self.record["areas"])
        return [None] * areas if flags is None else [bool(f) for f in flags[self.p].tolist()]


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

    @property
    def jitter(self) -> bool:
        return _jitter(self.config)

    @property
    def every(self) -> int | None:
        return (self.config.get("logger") or {}).get("mask_every_n_steps")

    def link(self, pair: Pair) -> str:
        return f"{self.files[pair.page]}#pair-{pair.name}"

    def run_file(self, name: str) -> str:
        """The URL of ``<run_dir>/<name>`` relative to the pages (the run's own files are
        linked where they lie, not copied)."""
        root = os.path.relpath(self.run_dir, self.assets.folder.parent)
        return quote(Path(root, name).as_posix())

    def unconverged(self) -> str:
        """`` (3 of 16 masks not converged)`` from summary.json (empty when all converged):
        said beside every quality number, which those masks make worse."""
        return unconverged_note(self.summary.get("convergence"))


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
    report = Report(
        run_dir,
        config,
        _read_json(run_dir / "summary.json") or {},
        manifest,
        [path.name for path in paths],
        AssetFolder(out.parent / f"{out.stem}_files"),
        pairs_per_page,
    )
    report.assets.claim(*paths)
    with one_thread():
        index = _index(report, pairs)
        for number_, path in enumerate(paths):
            shown = pairs[number_ * pairs_per_page : (number_ + 1) * pairs_per_page]
            report.assets.write_page(_page(report, number_, shown, pairs, records, index), path)
    report.assets.remove_stale()
    return out


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread while the report draws: its work is thousands of operations on
    thumbnails of a few thousand pixels, where waking torch's thread pool costs more than it
    saves (measured, 200 pairs of 224 px on 2 busy cores: 30 ms of CPU a pair with the pool,
    5 ms without)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
            pairs.append(Pair(record, p, name, safe_name(name), label))
    return pairs


def _page(
    report: Report,
    page: int,
    shown: list[Pair],
    pairs: list[Pair],
    records: list[dict[str, Any]],
    index: str,
) -> str:
    """Page ``page``: header, links to the other pages, the summary and index on the first
    page, then the sections of the pairs ``shown`` (their thumbnails in the page's sheet)."""
    first_pair = [1 + k * report.pairs_per_page for k in range(len(report.files))]
    nav = page_links(report.files, page, first_pair)
    sheet = ThumbnailSheet()
    sections = [_pair_section(report, pair, sheet) for pair in shown]
    src = report.assets.write(f"thumbs-{page + 1}.jpg", sheet.jpeg())
    body = [*_header(report), nav]
    script = ""
    if page == 0:
        body += [_summary(report, pairs, records), index]
        script = f'<script src="{esc(report.assets.prefix)}/{INDEX_FILE}"></script>'
        script += f"<script>{INDEX_SCRIPT}</script>"
    body += [*sections, nav]
    title = f"lightning-extremal report: {report.run_dir.resolve().name}"
    if page:
        title += f" (page {page + 1} of {len(report.files)})"
    return page_html(title, body, script, style=f".t {{ background-image: url({src}); }}")


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


def _iou(record: dict[str, Any], p: int) -> float:
    """IoU of pair ``p`` with its ground truth (largest area); NaN where there is none."""
    values = record.get("iou")
    return math.nan if not values or values[p] is None else float(values[p])


def _hit(record: dict[str, Any], p: int) -> bool | None:
    """Whether pair ``p``'s masks point at its ground truth; None where there is none."""
    hits = record.get("pointing_hit")
    return None if not hits else hits[p]


def _summary(report: Report, pairs: list[Pair], records: list[dict[str, Any]]) -> str:
    """The summary section: counts, histograms, non-converged masks, aggregate curves."""
    areas = _areas(records)
    rewards = torch.cat([r["rewards"] for r in records]).double().numpy()
    achieved = torch.cat([r["achieved_areas"] for r in records]).double().numpy()
    iou = np.array([_iou(r, p) for r in records for p in range(len(r["ids"]))], dtype=float)
    steps = min(_steps(r) for r in records)
    history = {
        key: torch.cat([r["history"][key][..., :steps] for r in records]).double().numpy()
        for key in ("reward", "achieved_area")
    }
    caveat = report.unconverged()
    histograms = histograms_png(achieved - np.array(areas), rewards, iou, areas, caveat.strip())
    curves = aggregate_curves_png(history["reward"], history["achieved_area"], areas, report.jitter)
    parts = [
        '<h2 id="summary">Summary</h2>',
        f"<p>{len(pairs)} (image, target) pairs, {rewards.size} masks at areas "
        f"{', '.join(f'{a:g}' for a in areas)}, {steps} steps.</p>",
        _quality_text(report.summary, caveat),
        _convergence_text(report, pairs),
        figure(data_uri(histograms), "histograms across masks", "across all masks"),
        "<h3>Optimisation across pairs</h3>",
        f'<p class="note">{esc(JITTER_NOTE)}</p>' if report.jitter else "",
        figure(data_uri(curves), "reward and achieved area across pairs", ""),
        f'<p class="note">{esc(CURVES_NOTE)}</p>',
    ]
    return "\n".join(part for part in parts if part)


def _quality_text(summary: dict[str, Any], caveat: str) -> str:
    """A paragraph of the run's quality against ground truth, with ``caveat`` (how many
    masks did not converge) beside it; empty without ground truth."""
    quality = summary.get("quality")
    if not quality:
        return ""
    pairs = int(quality["pairs"])
    hits = round(quality["pointing"] * pairs)
    beside = f'<span class="bad">{esc(caveat)}</span>' if caveat else ""
    return (
        f"<p>Quality against ground truth: pointing {hits}/{pairs} hits "
        f"({quality['pointing']:.1%}), mean IoU {quality['iou']:.3f} at the largest area"
        f"{beside}.</p>"
    )


def _mask_rows(pair: Pair, areas: list[float]) -> list[dict[str, Any]]:
    """One row per area of a pair: what summary.json's rows hold, from the chunk record."""
    record, p = pair.record, pair.p
    return [
        {
            "image": pair.image_id,
            "target_name": pair.label,
            "area": area,
            "achieved_area": float(record["achieved_areas"][p, k]),
            "reward": float(record["rewards"][p, k]),
            "converged": converged,
        }
        for k, (area, converged) in enumerate(zip(areas, pair.converged(), strict=True))
    ]


def _convergence_text(report: Report, pairs: list[Pair]) -> str:
    """summary.json's convergence line, then the first LISTED_MASKS non-converged masks,
    each linked to its pair, and where the others are."""
    convergence = report.summary.get("convergence")
    line = f"<p>{esc(convergence_line(convergence))}.</p>" if convergence else ""
    failed = [
        (pair, row)
        for pair in pairs
        if False in pair.converged()
        for row in _mask_rows(pair, _areas([pair.record]))
        if row["converged"] is False
    ]
    if not failed:
        return line
    items = "".join(
        f'<li><a href="{esc(report.link(pair))}">{esc(mask_label(row))}</a></li>'
        for pair, row in failed[:LISTED_MASKS]
    )
    more = ""
    if len(failed) > LISTED_MASKS:
        more = (
            f'<p class="more">… and {len(failed) - LISTED_MASKS} more: all {len(failed)} in '
            f'<a href="{esc(report.run_file("summary.json"))}">summary.json</a> '
            "(convergence.not_converged); tick “only the pairs with a mask not converged” in "
            '<a href="#index">the index</a> to page through their pairs.</p>'
        )
    return (
        f'{line}<h3 id="not-converged">Not converged: {len(failed)} masks</h3>'
        f'<ul class="not-converged">{items}</ul>{more}'
    )


def _index(report: Report, pairs: list[Pair]) -> str:
    """The index: one row per pair (per area its achieved area and reward; the pair's IoU at
    the largest area and pointing hit where there is ground truth; which areas did not
    converge), linked to its section. All rows go to ``index.js``, the first INDEX_ROWS in
    the page."""
    areas = _areas([pairs[0].record])
    truth = any(_hit(pair.record, pair.p) is not None for pair in pairs)
    head = ["image", "target"]
    for area in areas:
        head += [f"achieved @{area:g}", f"reward @{area:g}"]
    if truth:
        head += [f"IoU @{max(areas):g}", "pointing"]
    head.append("converged")
    rows = [_index_row(pair, areas, truth) for pair in pairs]
    links = [report.link(pair) for pair in pairs]
    bad = [False in pair.converged() for pair in pairs]
    data = {"head": head, "rows": rows, "links": links, "bad": bad, "page_rows": INDEX_ROWS}
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    report.assets.write(INDEX_FILE, f"window.REPORT_INDEX = {text};\n".encode())
    table = pairs_table(
        head, rows[:INDEX_ROWS], links[:INDEX_ROWS], bad[:INDEX_ROWS], len(pairs), sum(bad)
    )
    return '<h2 id="index">Index</h2>' + table


def _index_row(pair: Pair, areas: list[float], truth: bool) -> list[str]:
    """The index's cells of one pair (texts)."""
    record, p = pair.record, pair.p
    cells = [pair.image_id, pair.label]
    for k in range(len(areas)):
        cells += [
            number(float(record["achieved_areas"][p, k])),
            number(float(record["rewards"][p, k])),
        ]
    if truth:
        hit = _hit(record, p)
        cells += [number(_iou(record, p)), {True: "hit", False: "miss", None: "—"}[hit]]
    converged = pair.converged()
    if None in converged:
        cells.append("—")
    elif all(converged):
        cells.append("yes")
    else:
        cells.append(
            "no: " + ", ".join(f"{a:g}" for a, c in zip(areas, converged, strict=True) if not c)
        )
    return cells


# --------------------------------------------------------------------------- pairs


def _pair_section(report: Report, pair: Pair, sheet: ThumbnailSheet) -> str:
    """A pair's section: heading, meta line, thumbnails, curves, mask evolution."""
    record, p, name = pair.record, pair.p, pair.name
    areas, steps = _areas([record]), _steps(record)
    history = {
        key: record["history"][key][p, :, :steps].double().numpy()
        for key in ("reward", "achieved_area")
    }
    parts = [
        f'<h2 id="pair-{esc(name)}">{esc(pair.image_id)} — target {esc(pair.label)} '
        f"({pair.target})</h2>",
        _pair_meta(pair, areas, steps),
        _thumbnail_figures(report, pair, areas, sheet),
        curves_svg(history["reward"], history["achieved_area"], areas, report.jitter),
        _evolution(report, pair),
    ]
    return (
        f'<section class="pair" data-pair="{esc(name)}">'
        + "\n".join(part for part in parts if part)
        + "</section>"
    )


def _pair_meta(pair: Pair, areas: list[float], steps: int) -> str:
    """The meta line of a pair: its steps and, with ground truth, IoU and pointing, with the
    pair's masks that did not converge beside them."""
    record, p = pair.record, pair.p
    hit = _hit(record, p)
    meta = f"{steps} steps"
    if hit is not None:
        meta += f" · IoU (largest area) {number(_iou(record, p))} · pointing "
        meta += "hit" if hit else "miss"
    failed = [a for a, c in zip(areas, pair.converged(), strict=True) if c is False]
    if failed:
        listed = ", ".join(f"{a:g}" for a in failed)
        meta += (
            f' — <span class="bad">{len(failed)} of {len(areas)} masks not converged '
            f"(area {esc(listed)})</span>"
        )
    return f'<p class="meta">{meta}</p>'


def _thumbnail_figures(
    report: Report, pair: Pair, areas: list[float], sheet: ThumbnailSheet
) -> str:
    """The image and its overlay at each area: thumbnails in the page's sheet, each linked
    to the run's full-size overlay figure of the pair (where it lies) when there is one."""
    record, p = pair.record, pair.p
    overlay = report.run_dir / "overlays" / f"{pair.stem}.png"
    href = report.run_file(f"overlays/{pair.stem}.png") if overlay.is_file() else None
    captions = [(["image"], False)]
    for k, (area, converged) in enumerate(zip(areas, pair.converged(), strict=True)):
        lines = [
            f"area {area:g}",
            f"reward {float(record['rewards'][p, k]):.3g}",
            f"achieved {float(record['achieved_areas'][p, k]):.3f}",
        ]
        captions.append((lines + ["not converged"] * (converged is False), converged is False))
    pictures = thumbnails(record["images"][p], record["masks"][p])
    figures = []
    for picture, (lines, failed) in zip(pictures, captions, strict=True):
        sprite = _sprite(sheet.add(picture))
        if href:
            sprite = f'<a href="{esc(href)}">{sprite}</a>'
        css = ' class="bad"' if failed else ""
        caption = "<br>".join(esc(line) for line in lines)
        figures.append(f"<figure>{sprite}<figcaption{css}>{caption}</figcaption></figure>")
    return "<div>" + "".join(figures) + "</div>"


def _sprite(tile: Tile) -> str:
    """A thumbnail: its cell of the page's sheet (``.t``'s background), enlarged by the
    tile's whole factor with sharp pixels."""
    s = tile.scale
    style = f"width:{tile.width * s}px;height:{tile.height * s}px;"
    style += f"background-position:-{tile.x * s}px -{tile.y * s}px"
    css = "t"
    if s > 1:
        style += f";background-size:{ThumbnailSheet.WIDTH * s}px auto"
        css += " px"
    return f'<span class="{css}" style="{style}"></span>'


def _evolution(report: Report, pair: Pair) -> str:
    """The run's animated mask evolution of the pair, loaded when opened (linked where it
    lies, not copied); empty without it."""
    gif = report.run_dir / "mask_evolution" / f"{pair.name}.gif"
    if not gif.is_file():
        return ""
    every = f": a frame every {report.every} steps" if report.every else ""
    src = esc(report.run_file(f"mask_evolution/{pair.name}.gif"))
    return (
        f"<details><summary>Mask evolution (animated){every}</summary>"
        f'<img alt="{esc(pair.name)}: mask evolution" src="{src}" loading="lazy"></details>'
    )


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
    return [_load(run_dir / e["file"]) for e in entries]


def _load(path: Path) -> Any:
    """A torch file, its tensors memory-mapped: read from disk when used (a page's images
    and masks while it is written), so a run of thousands of pairs is never all in memory."""
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _classes(run_dir: Path) -> list[str] | None:
    masks = run_dir / "masks.pt"
    if not masks.is_file():
        return None
    return _load(masks).get("classes")
