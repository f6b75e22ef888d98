"""One self-contained HTML page for a finished run: per (image, target) pair the overlay of
every area, the mask-evolution strip, and reward / area curves — images embedded as base64.

Built from what the job leaves on disk (``chunks/*.pt``, ``config.json``, ``summary.json``,
``mask_evolution/*.gif``); matplotlib is imported only here.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import torch

from ..naming import class_name, pair_names, safe_name
from ..viz import overlay, to_uint8
from .store import atomic_write_text
from .verdict import convergence_line

#: Most frames shown in a mask-evolution strip (evenly spaced, first and last included).
STRIP_FRAMES = 6

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-top: 1px solid #ccc;
padding-top: 1em; } table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th { background: #f4f4f4; } figure { display: inline-block; margin: 0.3em; vertical-align: top; }
figcaption { font-size: 0.85em; text-align: center; } img { image-rendering: pixelated; }
.meta { color: #555; font-size: 0.9em; }
.warning { color: #900; background: #fee; border: 1px solid #c99; padding: 0.5em; }
"""


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _png(image: torch.Tensor, scale: int = 1) -> bytes:
    """C×H×W uint8 → PNG bytes (nearest-neighbour upscaled by ``scale``)."""
    from PIL import Image

    pil = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def curves_png(
    history: dict[str, torch.Tensor], pair: int, areas: list[float], steps: int
) -> bytes:
    """Reward and achieved area per step, one line per area (dashed: the target area)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 2.8))
    t = range(steps)
    for k, area in enumerate(areas):
        left.plot(t, history["reward"][pair, k, :steps].tolist(), label=f"area {area:g}")
        line = right.plot(
            t, history["achieved_area"][pair, k, :steps].tolist(), label=f"area {area:g}"
        )
        right.axhline(area, color=line[0].get_color(), linestyle="--", linewidth=0.8)
    left.set(title="reward", xlabel="step")
    right.set(title="achieved area (dashed: target)", xlabel="step", ylim=(0, 1.02))
    left.legend(fontsize=8)
    fig.tight_layout()
    return _figure_png(fig)


def gif_frames(path: Path) -> list[torch.Tensor]:
    """The frames of a GIF as 3×H×W uint8 tensors."""
    from PIL import Image, ImageSequence

    with Image.open(path) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
    return [torch.from_numpy(_array(f)).permute(2, 0, 1) for f in frames]


def _array(image):
    import numpy as np

    return np.asarray(image).copy()


def frame_steps(count: int, every: int | None, steps: int) -> list[str]:
    """Labels of MaskEvolution's frames: steps 0, n, 2n, … and the final step."""
    if every:
        labels = list(range(0, steps, every))
        if not labels or labels[-1] != steps:
            labels.append(steps)
        if len(labels) == count:
            return [f"step {s}" for s in labels]
    return [f"frame {i}" for i in range(count)]


def evolution_strip_png(frames: list[torch.Tensor], labels: list[str]) -> bytes:
    """Up to :data:`STRIP_FRAMES` evenly spaced frames side by side, each titled by its step."""
    plt = _pyplot()
    count = min(STRIP_FRAMES, len(frames))
    picks = sorted({round(i * (len(frames) - 1) / max(count - 1, 1)) for i in range(count)})
    height, width = frames[0].shape[-2:]
    panel = 2.2 * width / max(height, width)
    fig, axes = plt.subplots(
        1,
        len(picks),
        figsize=(panel * len(picks), 2.2 * height / max(height, width) + 0.4),
        squeeze=False,
    )
    for ax, i in zip(axes[0], picks, strict=True):
        ax.imshow(frames[i].permute(1, 2, 0).numpy())
        ax.set_title(labels[i], fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return _figure_png(fig)


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


def _unfinished_text(manifest: dict[str, Any]) -> str:
    """A warning at the top of the report of a run that has not finished; empty otherwise."""
    if manifest.get("complete", True):
        return ""
    done, total = len(manifest.get("chunks") or []), manifest.get("chunks_total", "?")
    return (
        f'<p class="warning">Unfinished run: {done} of {total} chunks done. This report shows '
        "those only; rerun the same command to finish the run.</p>"
    )


def write_report(run_dir: str | Path, out_file: str | Path | None = None) -> Path:
    """Write ``<run_dir>/report.html`` (or ``out_file``) and return its path."""

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"no run directory at {str(run_dir)!r}")
    manifest = _read_json(run_dir / "manifest.json") or {}
    records = _load_chunks(run_dir, manifest)
    config = _read_json(run_dir / "config.json") or {}
    summary = _read_json(run_dir / "summary.json") or {}
    every = (config.get("logger") or {}).get("mask_every_n_steps")
    classes = _classes(run_dir)
    sections, index_rows = [], []
    for record in records:
        record_sections, record_rows = _record_sections(run_dir, record, classes, every)
        sections += record_sections
        index_rows += record_rows
    page = _page(run_dir, config, summary, records, sections, index_rows)
    page = page.replace("<!--notice-->", _unfinished_text(manifest), 1)
    out = Path(out_file) if out_file else run_dir / "report.html"
    atomic_write_text(page, out)
    return out


def _record_sections(
    run_dir: Path, record: dict[str, Any], classes: list[str] | None, every: int | None
) -> tuple[list[str], list[str]]:
    """The HTML sections and index-table rows of one chunk's pairs, in pair order."""
    areas = [float(a) for a in record["areas"].tolist()]
    steps = int(record.get("steps", record["history"]["reward"].shape[-1]))
    steps = min(steps, record["history"]["reward"].shape[-1])
    names = [safe_name(n) for n in pair_names(record["ids"], record["targets"].tolist())]
    sections, index_rows = [], []
    for p, name in enumerate(names):
        target = int(record["targets"][p])
        label = class_name(classes, target)
        parts = [
            f'<h2 id="pair-{html.escape(name)}">{html.escape(record["ids"][p])} — '
            f"target {html.escape(label)} ({target})</h2>",
            _pair_meta(record, p, steps),
            _overlay_figures(record, p, name, areas),
            *_evolution_parts(run_dir / "mask_evolution" / f"{name}.gif", name, every, steps),
            "<h3>Optimisation</h3>",
            _figure(curves_png(record["history"], p, areas, steps), f"{name}: curves", ""),
        ]
        sections.append(
            f'<section class="pair" data-pair="{html.escape(name)}">'
            + "\n".join(parts)
            + "</section>"
        )
        index_rows.append(_index_row(record, p, name, label, len(areas)))
    return sections, index_rows


def _pair_meta(record: dict[str, Any], p: int, steps: int) -> str:
    """The meta line of pair ``p``: its steps and, with ground truth, IoU and pointing."""
    iou = record.get("iou", [math.nan] * len(record["ids"]))[p]
    hit = record.get("pointing_hit", [None] * len(record["ids"]))[p]
    meta = f"{steps} steps"
    if hit is not None:
        meta += f" · IoU (largest area) {iou:.3f} · pointing {'hit' if hit else 'miss'}"
    return f'<p class="meta">{meta}</p>'


def _overlay_figures(record: dict[str, Any], p: int, name: str, areas: list[float]) -> str:
    """A div of pair ``p``'s image and its mask overlay at each area, upscaled to ~160 px."""
    image = record["images"][p].float()
    scale = max(1, 160 // max(image.shape[-2:]))
    figures = [_figure(_png(to_uint8(image[:3]), scale), f"{name}: image", "image")]
    for k, area in enumerate(areas):
        rgb = to_uint8(overlay(image, record["masks"][p, k]))
        caption = (
            f"area {area:g} · reward {float(record['rewards'][p, k]):.3g} · "
            f"achieved {float(record['achieved_areas'][p, k]):.3f}"
        )
        figures.append(_figure(_png(rgb, scale), f"{name}: overlay, area {area:g}", caption))
    return "<div>" + "".join(figures) + "</div>"


def _evolution_parts(gif: Path, name: str, every: int | None, steps: int) -> list[str]:
    """The mask-evolution block (strip of frames and the animated GIF); none without ``gif``."""
    if not gif.is_file():
        return []
    frames = gif_frames(gif)
    labels = frame_steps(len(frames), every, steps)
    return [
        "<h3>Mask evolution</h3><div>",
        _figure(
            evolution_strip_png(frames, labels),
            f"{name}: mask evolution",
            "masks over the image (top), what the classifier sees (below)",
        ),
        _figure(
            gif.read_bytes(),
            f"{name}: mask evolution (animated)",
            "animated",
            mime="image/gif",
        ),
        "</div>",
    ]


def _index_row(record: dict[str, Any], p: int, name: str, label: str, num_areas: int) -> str:
    """The index-table row of pair ``p``: a link to its section, its target, and per area the
    reward and the achieved area (red where the mask did not converge)."""
    return (
        f'<tr><td style="text-align:left"><a href="#pair-{html.escape(name)}">'
        f"{html.escape(name)}</a></td><td>{html.escape(label)}</td>"
        + "".join(_area_cell(record, p, k) for k in range(num_areas))
        + "</tr>"
    )


def _area_cell(record: dict[str, Any], p: int, k: int) -> str:
    """``reward (achieved area)`` of one mask; red with "not converged" where it did not."""
    text = f"{float(record['rewards'][p, k]):.3g} ({float(record['achieved_areas'][p, k]):.3f})"
    converged = record.get("converged")
    if converged is not None and not bool(converged[p, k]):
        return f'<td style="color:#c00">{text} not converged</td>'
    return f"<td>{text}</td>"


def _convergence_text(summary: dict[str, Any]) -> str:
    """A paragraph: how many masks converged, naming those that did not; empty without."""
    convergence = summary.get("convergence")
    return f"<p>{html.escape(convergence_line(convergence))}.</p>" if convergence else ""


def _quality_text(summary: dict[str, Any]) -> str:
    """A paragraph of the run's quality against ground truth; empty without one."""
    quality = summary.get("quality")
    return (
        f"<p>Quality against ground truth: mean IoU {quality['iou']:.3f}, pointing "
        f"{quality['pointing']:.1%} over {int(quality['pairs'])} pairs.</p>"
        if quality
        else ""
    )


def _page(
    run_dir: Path,
    config: dict[str, Any],
    summary: dict[str, Any],
    records: list[dict[str, Any]],
    sections: list[str],
    index_rows: list[str],
) -> str:
    """The whole HTML page: title, run metadata, quality, index table, then the sections."""
    head_areas = "".join(
        f"<th>reward (achieved area) @ {a:g}</th>" for a in [float(a) for a in records[0]["areas"]]
    )
    method = config.get("method") or {}
    model = (config.get("model") or {}).get("name", "?")
    where = run_dir.resolve()
    body = [
        f"<h1>Extremal perturbations — {html.escape(run_dir.resolve().name)}</h1>",
        "<!--notice-->",
        f'<p class="meta">model {html.escape(str(model))} · '
        f"areas {html.escape(str(method.get('areas', '?')))} · "
        f"max_iter {method.get('max_iter', '?')} · "
        f"variant {html.escape(str(method.get('variant', '?')))} · {html.escape(str(where))}</p>",
        _quality_text(summary),
        _convergence_text(summary),
        f"<table><tr><th>pair</th><th>target</th>{head_areas}</tr>{''.join(index_rows)}</table>",
        *sections,
    ]
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>lightning-extremal report: {html.escape(run_dir.resolve().name)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _figure(data: bytes, alt: str, caption: str, mime: str = "image/png") -> str:
    return (
        f'<figure><img alt="{html.escape(alt)}" src="{_data_uri(data, mime)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _classes(run_dir: Path) -> list[str] | None:
    masks = run_dir / "masks.pt"
    if not masks.is_file():
        return None
    return torch.load(masks, map_location="cpu", weights_only=False).get("classes")
