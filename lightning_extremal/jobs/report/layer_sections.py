"""The report of a layer run (``method.kind`` channel | layer-spatial | invert | diff): what
the job wrote — ``summary.json``'s rows as a sortable table and, per image, the figures it drew
(top channels, masks over the layer grid, inversions, comparisons), linked where they lie."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .assets import AssetFolder
from .page import LISTED_MASKS, SCRIPT, esc, figure, filter_line, number, page_html, table

#: The folders of figures a layer run writes, in the report's order, with their headings.
FIGURE_FOLDERS = {
    "channels": "Top channels",
    "overlays": "Masks over the layer grid",
    "inversions": "Feature inversions",
    "diff": "Full and attributed-channel inversions",
    "comparisons": "Comparisons between consecutive pairs",
}
#: The table's columns, in this order where a row has them.
COLUMNS = (
    "image",
    "target_name",
    "area",
    "achieved_area",
    "reward",
    "converged",
    "channels_kept",
    "top_channels",
    "relative_distance",
)
#: Width of a figure on the page, px.
FIGURE_WIDTH = 420


def write_layer_report(
    run_dir: Path,
    config: dict[str, Any],
    summary: dict[str, Any],
    notice: str,
    out_file: str | Path | None = None,
) -> Path:
    """``<run_dir>/report.html`` (or ``out_file``) of a layer run; ``notice``: the unfinished-
    run warning (empty when it finished). Returns the page's path."""
    out = Path(out_file) if out_file else run_dir / "report.html"
    assets = AssetFolder(out.parent / f"{out.stem}_files")
    assets.claim(out)
    method = config.get("method") or {}
    kind = summary.get("kind") or method.get("kind", "?")
    where = run_dir.resolve()
    rows = summary.get("results") or []
    body = [
        f"<h1>Layer run ({esc(kind)}) — {esc(where.name)}</h1>",
        notice,
        _meta(config, summary, kind, where),
        _convergence(summary, os.path.relpath(run_dir / "summary.json", out.parent)),
        "<h2>Results</h2>",
        _table(rows) if rows else "<p>No results yet.</p>",
        *(
            _figures(run_dir, out.parent, folder, heading)
            for folder, heading in FIGURE_FOLDERS.items()
        ),
    ]
    title = f"lightning-extremal report: {where.name}"
    text = page_html(title, [b for b in body if b], f"<script>{SCRIPT}</script>")
    assets.write_page(text, out)
    assets.remove_stale()
    return out


def _meta(config: dict[str, Any], summary: dict[str, Any], kind: str, where: Path) -> str:
    method = config.get("method") or {}
    model = (config.get("model") or {}).get("name", "?")
    if kind == "invert":
        steps = f"invert_iter {esc((config.get('inversion') or {}).get('invert_iter', '?'))}"
    else:
        steps = (
            f"areas {esc(method.get('areas', '?'))} · max_iter {esc(method.get('max_iter', '?'))}"
        )
    return (
        f'<p class="meta">model {esc(model)} · layer {esc(summary.get("layer", "?"))} '
        f"({esc(summary.get('layout') or '?')}) · {steps} · {esc(where)}</p>"
    )


def _convergence(summary: dict[str, Any], summary_link: str) -> str:
    """How many masks reached their requested area (layer kinds with masks), the first
    LISTED_MASKS that did not and a link to summary.json, which lists them all; empty
    without masks."""
    convergence = summary.get("convergence") or {}
    if not convergence.get("masks"):
        return ""
    failed = convergence.get("not_converged") or []
    listed = "".join(f"<li>{esc(name)}</li>" for name in failed[:LISTED_MASKS])
    more = ""
    if len(failed) > LISTED_MASKS:
        more = (
            f'<li class="more">… and {len(failed) - LISTED_MASKS} more: all in <a href='
            f'"{esc(Path(summary_link).as_posix())}">summary.json</a></li>'
        )
    return (
        f"<p>Masks converged: {convergence.get('converged')}/{convergence.get('masks')} "
        f"({esc(convergence.get('criteria', 'achieved area near the requested one'))}).</p>"
        + (f'<ul class="not-converged">{listed}{more}</ul>' if failed else "")
    )


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value[:12]) + (" …" if len(value) > 12 else "")
    return "" if value is None else str(value)


def _table(rows: list[dict[str, Any]]) -> str:
    columns = [c for c in COLUMNS if any(c in row for row in rows)]
    cells = [[esc(_cell(row.get(c))) for c in columns] for row in rows]
    return filter_line(len(rows), "rows") + table(columns, cells)


def _figures(run_dir: Path, page_dir: Path, folder: str, heading: str) -> str:
    """A section of the figures in ``run_dir/folder``, linked where they lie (not copied)."""
    paths = sorted((run_dir / folder).glob("*.png")) if (run_dir / folder).is_dir() else []
    if not paths:
        return ""
    items = []
    for path in paths:
        src = Path(os.path.relpath(path, page_dir)).as_posix()
        items.append(figure(src, path.stem, path.stem, width=FIGURE_WIDTH, href=src, lazy=True))
    return f"<h2>{esc(heading)} ({len(paths)})</h2>" + "\n".join(items)
