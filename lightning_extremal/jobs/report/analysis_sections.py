"""The report of an ``analyze`` folder (one holding ``analysis.json``): a section per
analysis — the area curve (its figures, the sufficient and necessary areas per pair) or the
objects (their figure, the contributions against the sum of the parts, the coverage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...naming import bounded_text
from .assets import AssetFolder
from .page import esc, figure, number, page_html, table


def write_analysis_report(run_dir: Path, out_file: str | Path | None = None) -> Path:
    """``<run_dir>/report.html`` (or ``out_file``) for an analysis folder; its path."""
    marker = json.loads((run_dir / "analysis.json").read_text())
    name = marker.get("analysis")
    result = json.loads((run_dir / marker.get("result", "")).read_text())
    out = Path(out_file) if out_file else run_dir / "report.html"
    assets = AssetFolder(out.parent / f"{out.stem}_files")
    config = marker.get("config") or {}
    model = (config.get("model") or {}).get("name", "?")
    data = (config.get("data") or {}).get("source", "?")
    where = run_dir.resolve()
    body = [
        f"<h1>Analysis {esc(name)} — {esc(where.name)}</h1>",
        f'<p class="meta">model {esc(model)} · data {esc(data)} · areas '
        f"{esc(_areas_of(name, marker.get('analysis_config') or {}))} · {esc(where)}</p>",
    ]
    assets.claim(out)
    section = SECTIONS.get(name)
    body.append(
        section(run_dir, result, assets) if section else f"<p>Unknown analysis {esc(name)}.</p>"
    )
    assets.write_page(page_html(f"lightning-extremal analysis: {where.name}", body), out)
    assets.remove_stale()
    return out


def _areas_of(name: str | None, analysis: dict[str, Any]) -> Any:
    """The areas an analysis used: ``compare`` asks for ``compare_areas``, the others grid."""
    return analysis.get("compare_areas" if name == "compare" else "areas", "?")


def _area(value: float | None, bound: str | None = None, areas=None) -> str:
    """An area of the area curve: ``≤ 0.01`` / ``> 0.5`` where it is only a bound of the
    grid (``bound``, as ``analyze area-curve`` records it), else its value."""
    if bound and areas:
        return esc(bounded_text(value, bound, areas))
    return "not reached" if value is None else number(value)


def _bound(result: dict[str, Any], key: str) -> str | None:
    """Whether the median of ``key`` across pairs is a bound (``result["bounds"]``)."""
    return ((result.get("bounds") or {}).get(key) or {}).get("median")


def _picture(run_dir: Path, assets: AssetFolder, name: str, caption: str, width: int) -> str:
    path = run_dir / name
    if not path.is_file():
        return ""
    src = assets.copy(path, name.replace("/", "_"))
    return figure(src, caption, caption, width=width, href=src)


def area_curve_section(run_dir: Path, result: dict[str, Any], assets: AssetFolder) -> str:
    """The area curve: the figure across pairs, the summary, a row and a figure per pair."""
    summary = result.get("summary") or {}
    areas = result.get("areas")
    score = result.get("score", "?")
    text = (
        f"<p>Score: {esc(score)} of the target, over the full image's. Sufficient area a*: the "
        f"smallest area whose preserved score reaches {result.get('preserve_fraction')} × the "
        f"full score; necessary area: the smallest deleted area leaving at most "
        f"{result.get('delete_fraction')} × it ({'log-linear between grid areas' if result.get('interpolate') else 'grid areas'}; "
        "“not reached”: not within the grid).</p>"
    )
    medians = [
        f"{key.replace('_', ' ')}: median "
        f"{_area(summary.get(f'area_curve/{key}/median'), _bound(result, key), areas)}, "
        f"reached by {int(summary.get(f'area_curve/{key}/reached', 0))} of "
        f"{int(summary.get('area_curve/pairs', 0))} pairs"
        for key in ("sufficient_area", "necessary_area")
        if f"area_curve/{key}/reached" in summary
    ]
    rows = [
        [
            esc(p["image"]),
            esc(p["target_name"]),
            number(p["full_score"]),
            _area(p["sufficient_area"], p.get("sufficient_bound"), areas),
            _area(p["necessary_area"], p.get("necessary_bound"), areas),
        ]
        for p in result.get("pairs", [])
    ]
    pictures = [
        _picture(run_dir, assets, p["figure"], f"{p['image']}: {p['target_name']}", 480)
        for p in result.get("pairs", [])
    ]
    return "\n".join(
        [
            "<h2>Area curve</h2>",
            text,
            f"<p>{esc('; '.join(medians))}</p>",
            _picture(run_dir, assets, "area_curve.png", "area curves across pairs", 760),
            table(["image", "target", "full score", "sufficient area", "necessary area"], rows),
            *pictures,
        ]
    )


def objects_section(run_dir: Path, result: dict[str, Any], assets: AssetFolder) -> str:
    """The objects: the figure, the rows of object pairs and all objects, the coverage."""
    together = [r for r in result.get("contributions", []) if r["kind"] != "single"]
    rows = [
        [
            esc(r["image"]),
            esc(r["target_name"]),
            esc(r["kind"]),
            esc(r["object_names"] or r["objects"]),
            number(r["gain"]),
            number(r["sum_of_parts"]),
            number(r["ratio"]),
        ]
        for r in together
    ]
    coverage = [
        [
            esc(c["image"]),
            esc(c["target_name"]),
            esc(c["object_name"]),
            "yes" if c["is_target"] else "no",
            number(c["object_area"]),
            number(c["coverage"]),
        ]
        for c in result.get("coverage", [])
    ]
    summary = result.get("summary") or {}
    lines = [f"{esc(k)}: {number(v)}" for k, v in summary.items()]
    return "\n".join(
        [
            "<h2>Objects</h2>",
            f"<p>Score: {esc(result.get('score'))}. Gain: the score with only these objects kept, "
            "minus the score with none; ratio: gain / sum of the objects' gains alone (1: they "
            "contribute cumulatively).</p>",
            f"<p>{'<br>'.join(lines)}</p>",
            _picture(run_dir, assets, "objects.png", "objects: cumulative gains and coverage", 760),
            table(["image", "target", "kind", "objects", "gain", "sum of parts", "ratio"], rows),
            "<h3>Coverage by the sufficient-area mask</h3>",
            table(["image", "target", "object", "target's", "object area", "covered"], coverage),
        ]
    )


def compare_section(run_dir: Path, result: dict[str, Any], assets: AssetFolder) -> str:
    """Meaningful vs extremal perturbations: per setting the areas' spread, the figure."""
    summary = result.get("summary") or {}
    settings = dict.fromkeys(k.rsplit("/", 1)[0] for k in summary)
    rows = []
    for setting in settings:
        method, knob = setting.split("/", 1)
        extra = summary.get(f"{setting}/deletes_nothing", summary.get(f"{setting}/area_error_mean"))
        rows.append(
            [
                esc(method),
                esc(knob),
                number(summary[f"{setting}/area_mean"]),
                f"{number(summary[f'{setting}/area_min'])} – {number(summary[f'{setting}/area_max'])}",
                number(extra),
            ]
        )
    return "\n".join(
        [
            "<h2>Meaningful vs extremal perturbations</h2>",
            "<p>Meaningful perturbations delete an area that follows from the penalty λ₁ (and "
            "from the image and the model); extremal perturbations keep the area asked for. "
            "Last column: meaningful, the share of masks deleting nothing; extremal, the mean "
            "distance to the requested area.</p>",
            table(["method", "setting", "mean area", "least – largest", "nothing / error"], rows),
            _picture(run_dir, assets, "compare.png", "meaningful vs extremal perturbations", 900),
        ]
    )


#: The report section of each analysis (by the name in ``analysis.json``).
SECTIONS = {
    "area-curve": area_curve_section,
    "objects": objects_section,
    "compare": compare_section,
}
