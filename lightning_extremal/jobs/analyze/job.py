"""What every ``lightning-extremal analyze NAME`` job shares: its folder (locked, refused when
it holds another analysis or a run), its chunks of images, and its outputs (``analysis.json``,
a CSV and JSON table, figures, one W&B run holding the table)."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ...config import AnalysisConfig, RunConfig
from ...engine.classifier import predicted_classes
from ...engine.distributed import process_rank
from ...errors import UsageError
from ..run.chunks import (
    Job,
    chunk_indices,
    file_clock,
    files_since,
    load_batch,
    open_job,
    take_folder,
    targets_for,
)
from ..run.fail_soft import log_table_run
from ..run.job import check_config
from ..run.store import (
    LEDGER_KEY,
    LOGGER_FOLDERS,
    FolderLock,
    Ledger,
    atomic_write_text,
    read_json,
    visible_entries,
)

#: The file naming a folder's analysis (and its configuration); the report looks for it.
MARKER = "analysis.json"
#: What analysis jobs write besides :data:`MARKER` (``--overwrite`` clears these and a run's).
ANALYSIS_FILES = (
    "area_curve.csv",
    "area_curve.json",
    "area_curve.png",
    "objects.csv",
    "objects.json",
    "objects.png",
    "objects_coverage.csv",
    "compare.csv",
    "compare.json",
    "compare.png",
)
ANALYSIS_FOLDERS = ("curves", "comparisons")


@dataclass
class AnalysisOutput:
    """What an analysis hands back to be written: ``tables`` file name → rows (CSV), the
    JSON document (``<stem>.json``), summary numbers (also the W&B run's summary) and the W&B
    tables (key → rows); ``verdict``: the lines printed at the end."""

    stem: str
    document: dict[str, Any]
    summary: dict[str, float]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    wandb_tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    verdict: list[str] = field(default_factory=list)


def analysis_dir(cfg: RunConfig, name: str) -> Path:
    """``output_dir``, or ``outputs/analyze-<name>-<timestamp>``."""
    if cfg.output_dir:
        return Path(cfg.output_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / f"analyze-{name}-{stamp}"


def claim_analysis_folder(job: Job, name: str, overwrite: bool) -> Ledger:
    """Refuse a folder holding another analysis or a run's results, or other files and no
    job's (unless ``overwrite``, which deletes only what jobs wrote there: the ledgers of its
    ``analysis.json`` and ``manifest.json``); the same analysis' files are replaced. Files of
    others where the analysis writes are refused, never overwritten. The folder's ledger."""
    out = job.out
    held = _folder_holds(out)
    ledger = Ledger.read(out, MARKER, "manifest.json")
    if held is None and visible_entries(out) and not overwrite:
        raise UsageError(
            f"{out} is not empty and holds no lightning-extremal results: choose a new or "
            "empty output_dir=, or rerun with --overwrite to write beside those files (they "
            "are kept)"
        )
    if held and held != name and not overwrite:
        raise UsageError(
            f"{out} holds {held if held == 'a run' else f'the {held!r} analysis'}'s results, "
            f"not {name!r}: rerun with --overwrite to clear it, or choose another output_dir="
        )
    writes = [n for n in (MARKER, *ANALYSIS_FILES, *ANALYSIS_FOLDERS) if n not in ledger.documents]
    take_folder(
        job, ledger, writes, f"analyze {name}", clear=overwrite or bool(held and held != name)
    )
    return ledger


def _folder_holds(out: Path) -> str | None:
    """The analysis a folder holds (its marker's name), ``"a run"``, or None."""
    marker = out / MARKER
    if marker.is_file():
        document = read_json(marker)
        return str(document.get("analysis")) if document else "an unreadable analysis.json"
    if (out / "manifest.json").is_file() or any((out / "chunks").glob("*.pt")):
        return "a run"
    return None


def run_analysis(
    name: str,
    cfg: RunConfig,
    analysis: AnalysisConfig,
    compute: Callable[[Job, AnalysisConfig], AnalysisOutput],
    overwrite: bool = False,
) -> Path:
    """Check the configuration, open the model and images, claim the folder, run ``compute``
    and write its outputs; the folder."""
    check_config(cfg)
    if cfg.method.kind != "input":
        raise UsageError(
            f"analyze {name} explains input masks; got method.kind={cfg.method.kind!r} "
            "(allowed: input)"
        )
    _, world = process_rank(cfg.trainer)
    if world > 1:
        raise UsageError(
            f"analyze {name} runs in one process; got {world} (trainer.devices × "
            "trainer.num_nodes, torchrun or srun): run it with trainer.devices=1"
        )
    out = analysis_dir(cfg, name)
    cfg = replace(cfg, output_dir=str(out))
    job = open_job(cfg)  # a bad model or data fails before the folder is touched
    with FolderLock(out):
        ledger = claim_analysis_folder(job, name, overwrite)
        print(f"lightning-extremal: analysis {name} into {out.resolve()}", flush=True)
        since = file_clock(out)
        output = compute(job, analysis)
        write_outputs(job, name, analysis, output, ledger, since)
    print(f"lightning-extremal: results in {out.resolve()}", flush=True)
    for line in output.verdict:
        print(f"  {line}", flush=True)
    return out


def write_outputs(
    job: Job,
    name: str,
    analysis: AnalysisConfig,
    output: AnalysisOutput,
    ledger: Ledger,
    since: int,
) -> None:
    """The tables (CSV), the JSON document, the W&B table run and, last, ``analysis.json``
    listing every file the analysis wrote (its ledger)."""
    out = job.out
    for file, rows in output.tables.items():
        atomic_write_text(csv_text(rows), out / file)
    document = {"analysis": name, **output.document, "summary": output.summary}
    atomic_write_text(json.dumps(json_safe(document), indent=1), out / f"{output.stem}.json")
    tables = {k: rows for k, rows in output.wandb_tables.items() if rows}
    if job.cfg.logger.name == "wandb" and tables:
        model = Path(job.cfg.model.name.rsplit(":", 1)[-1]).name
        (key, rows), *more = tables.items()
        run_dir = log_table_run(
            f"{out.name}-{name}",
            "analysis",
            out,
            {**asdict(job.cfg), "analysis": asdict(analysis)},
            key,
            rows,
            {k: v for k, v in output.summary.items() if _finite(v)},
            ("analysis", name, model),
            dict(more),
        )
        if run_dir:
            print(f"  upload later: wandb sync {run_dir}", flush=True)
    marker = {
        "analysis": name,
        "result": f"{output.stem}.json",
        "config": asdict(job.cfg),
        "analysis_config": asdict(analysis),
        "summary": output.summary,
    }
    ledger.record(*files_since(job, since, (*ANALYSIS_FILES, *ANALYSIS_FOLDERS, *LOGGER_FOLDERS)))
    ledger.record(f"{output.stem}.json")
    marker[LEDGER_KEY] = dict(sorted(ledger.files.items()))
    atomic_write_text(json.dumps(json_safe(marker), indent=1, default=str), out / MARKER)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and ±inf floats as None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows (same keys) as CSV text; NaN and inf written as empty cells."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(json_safe(rows))
    return buffer.getvalue()


def analysis_chunks(job: Job):
    """Each chunk of ``data.batch_size`` readable images: ``(index, batch, targets)``."""
    for index in chunk_indices(job.images, job.cfg.data.batch_size):
        readable = load_batch(job.images, index)
        if readable is None:
            continue
        index, batch = readable
        yield (
            index,
            batch,
            targets_for(job.cfg.data.targets, job.images, job.loaded.model, index, batch),
        )


def analysis_chunk_count(job: Job) -> int:
    """How many chunks :func:`analysis_chunks` goes through (unreadable images included)."""
    return len(chunk_indices(job.images, job.cfg.data.batch_size))


def first_pair(model, batch, targets) -> tuple[Any, int, float]:
    """The first (image, target) pair of a chunk and its pairs per image (targets: None, one
    int per image or a list per image, as :func:`analysis_chunks` yields them), for a
    calibration on the actual model and image."""
    if targets is None:
        return batch[0], int(predicted_classes(model, batch[:1])[0]), 1.0
    values = targets.tolist() if hasattr(targets, "tolist") else list(targets)
    lists = [v if isinstance(v, (list, tuple)) else [v] for v in values]
    first = next((row[0] for row in lists if row), 0)
    image = next((n for n, row in enumerate(lists) if row), 0)
    return batch[image], int(first), sum(map(len, lists)) / max(len(batch), 1)


def explain_options(cfg: RunConfig) -> dict[str, Any]:
    """Keyword arguments of the API's analyses for a run configuration: the method's fields
    (not its areas, kind or variant: the analysis sets them) and the trainer's, whole."""
    method = {k: v for k, v in asdict(cfg.method).items() if k not in ("areas", "kind", "variant")}
    return {**method, **asdict(cfg.trainer)}
