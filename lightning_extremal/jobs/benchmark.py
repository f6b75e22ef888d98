"""The paper's benchmark (``lightning-extremal benchmark pointing|faithfulness key=value ...``;
its configuration: :class:`~lightning_extremal.config.BenchmarkConfig`, ``configs/benchmark/default.yaml``).

Runs every method over a dataset in chunks of images. Each (method, chunk) result is written
atomically to ``OUT/chunks/<method>/chunk-NNNNN.pt`` with a key of everything that affects it,
and ``OUT/manifest.json`` lists the finished chunks, so an interrupted run resumes where it
stopped (a rerun skips chunks whose key matches). At the end it prints the table (rows:
methods; cells: All/Diff pointing accuracy in %, or deletion/insertion AUC and the sanity
check), writes it as CSV and logs it to W&B (offline by default).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..config import BenchmarkConfig, ModelConfig, validate_benchmark
from ..data.datasets import INPUT_SIZE, COCOPointing, SyntheticPointing, VOCPointing
from ..data.models import load_model
from ..data.photos import PhotosPointing
from ..evaluation import baselines
from ..evaluation.baselines import COCO_AREAS, METHODS, VOC_AREAS, method_name
from ..evaluation.cost import MethodEstimate, benchmark_line, duration, method_estimate, timed_call
from ..evaluation.faithfulness import deletion_auc, insertion_auc, model_randomisation_check
from ..ops.convergence import unconverged_text
from ..ops.pointing import (
    object_area_iou,
    object_iou,
    pointing_accuracy,
    pointing_hit,
    pointing_map,
    resize_saliency,
)
from .run.fail_soft import log_table_run
from .run.store import ResultsStore, atomic_write_text, content_key

#: Version of the per-pair records; chunk files of an older format are computed again.
RECORD_FORMAT = 3
DATASET_LABELS = {
    "synthetic": "Synthetic",
    "photos": "Photos",
    "voc07": "VOC07",
    "coco14": "COCO14",
}
#: The benchmark's extremal perturbations: the method's defaults (its Grad-CAM warm start) and
#: the same from the uniform start.
EP_METHODS = ("extremal_perturbation", "extremal_perturbation_uniform")
#: Datasets of single-label images (one class per image): RISE scores them by softmax.
SINGLE_LABEL = ("synthetic", "photos")


def prepare(cfg: BenchmarkConfig) -> BenchmarkConfig:
    """The configuration checked (:func:`validate_benchmark`) with its method names made
    canonical (aliases such as ``ep``, ``gradcam`` resolved; an unknown one raises
    ``ValueError`` naming the valid ones), before any work starts."""
    validate_benchmark(cfg)
    return replace(cfg, methods=[method_name(m) for m in cfg.methods])


# --- dataset, model, methods -----------------------------------------------------------------


def make_dataset(cfg: BenchmarkConfig):
    if cfg.dataset == "synthetic":
        return SyntheticPointing(
            cfg.synthetic_single, cfg.synthetic_multi, cfg.synthetic_seed, cfg.synthetic_size
        )
    if cfg.dataset == "photos":
        return PhotosPointing(size=INPUT_SIZE)
    root = Path(cfg.root)  # type: ignore[arg-type]
    if cfg.dataset == "voc07":
        return VOCPointing(root, diff_list=cfg.diff_list)
    ann_file = cfg.ann_file or root / "annotations" / "instances_val2014.json"
    return COCOPointing(cfg.image_dir or root / "val2014", ann_file, diff_list=cfg.diff_list)


def load_benchmark_model(cfg: BenchmarkConfig) -> torch.nn.Module:
    return load_model(ModelConfig(name=cfg.model)).model.eval()


def method_options(cfg: BenchmarkConfig, method: str) -> dict[str, Any]:
    """The keyword options a method gets (everything that changes its maps)."""
    if method in EP_METHODS:
        areas = cfg.areas or list(COCO_AREAS if cfg.dataset == "coco14" else VOC_AREAS)
        steps = {} if cfg.max_iter is None else {"max_iter": cfg.max_iter}
        return {
            "areas": list(areas),
            **steps,
            "reward": cfg.reward,
            "seed": cfg.seed,
            "batch_size": cfg.ep_batch_size,
            **cfg.ep_options,
            **({"warm_start": "none"} if method == "extremal_perturbation_uniform" else {}),
        }
    if method == "meaningful_perturbation":
        return {"seed": cfg.seed, **cfg.mp_options}
    if method == "rise":
        score = cfg.rise_score or ("softmax" if cfg.dataset in SINGLE_LABEL else "sigmoid")
        return {"num_masks": cfg.rise_masks, "score": score, "seed": cfg.seed}
    if method == "grad_cam":
        return {"layer": cfg.grad_cam_layer}
    if method == "mwp":
        return {"layer": cfg.mwp_layer}
    if method == "cmwp":
        return {"layer": cfg.mwp_layer, "contrast_layer": cfg.contrast_layer}
    return {}


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-1 of the model's parameters and buffers (a retrained checkpoint → new results)."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _key(cfg: BenchmarkConfig, method: str, ids: list[str], fingerprint: str = "") -> str:
    """Key of everything that determines a chunk's results."""
    return content_key(
        {
            "fingerprint": fingerprint,
            "task": cfg.task,
            "dataset": cfg.dataset,
            "root": cfg.root,
            "diff_list": cfg.diff_list,
            "model": cfg.model,
            "method": method,
            "options": method_options(cfg, method),
            "ids": ids,
            "curve_steps": cfg.curve_steps if cfg.task == "faithfulness" else None,
            "ep_object_iou": cfg.ep_object_iou if method in EP_METHODS else None,
            "format": RECORD_FORMAT,
        }
    )


def _maps(method: str, model, items, pairs, options, fn=None) -> list[torch.Tensor]:
    """Saliency maps (h×w, at the model input's size; ``fn``'s per-pair output if given) of
    ``pairs`` [(item, class)], batched over the pairs whose images have the same size. RISE
    says its progress (a line per quarter of its masks): its 8000 masks take minutes."""
    if method == "rise":
        options = {**options, "progress": _quarters(f"[{method}]", "masks")}
    maps: list[torch.Tensor | None] = [None] * len(pairs)
    groups: dict[tuple[int, ...], list[int]] = {}
    for p, (i, _) in enumerate(pairs):
        groups.setdefault(tuple(items[i].image.shape), []).append(p)
    for members in groups.values():
        images = torch.stack([items[pairs[p][0]].image for p in members])
        targets = [pairs[p][1] for p in members]
        if fn is None:
            out = baselines.saliency(method, model, images, targets, **options)
        else:
            out = fn(model, images, targets, **options)
        for p, m in zip(members, out, strict=True):
            maps[p] = m
    return maps  # type: ignore[return-value]


def _quarters(label: str, what: str):
    """A progress function printing ``LABEL done/total WHAT`` at each quarter of the total
    (restarting per group of images)."""
    said = set()

    def progress(done: int, total: int) -> None:
        quarter = 4 * done // total
        if quarter > 0 and (quarter, total) not in said:
            said.add((quarter, total))
            print(f"{label} {done}/{total} {what}", flush=True)
        if done >= total:
            said.clear()

    return progress


def _pointing_records(method, model, items, options, ep_object_iou="interpolated") -> list[dict]:
    """Per pair: the pointing hit, the IoU with the object at its own area (for extremal
    perturbations as ``ep_object_iou`` says, :func:`_ep_object_iou`) and the map."""
    pairs = [(i, c) for i, item in enumerate(items) for c in item.classes]
    if not pairs:
        return []
    kind = METHODS[method].pointing
    ep = method in EP_METHODS
    outputs = _maps(method, model, items, pairs, options, _ep_masks if ep else None)
    records = []
    for (i, c), out in zip(pairs, outputs, strict=True):
        item = items[i]
        converged = None
        if ep:
            out, converged = out
        sal = out.sum(0) if ep else out
        scored = pointing_map(sal, item.size, kind)
        hit = pointing_hit(scored, item.masks[c], item.tolerance)
        if ep:
            iou = _ep_object_iou(ep_object_iou, model, item, c, out, options)
        else:
            iou = object_iou(resize_saliency(sal.float(), item.size), item.masks[c])
        index = int(scored.flatten().argmax())
        records.append(
            {
                "image_id": item.image_id,
                "class": c,
                "hit": bool(hit),
                "diff": bool(item.diff[c]),
                "point": (index // item.size[1], index % item.size[1]),
                "iou": iou,
                "finite": bool(torch.isfinite(sal).all()),
                # the map itself (model-input size, float16), for metrics added later
                "map": sal.detach().to(torch.float16).cpu(),
            }
        )
        if converged is not None:  # how many of the pair's masks did not converge
            records[-1]["unconverged"] = int((~converged).sum())
            records[-1]["masks"] = int(converged.numel())
    return records


def _ep_masks(model, images, targets, **options) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per pair, extremal perturbations' masks K×H×W and whether each converged (K,)."""
    result = baselines.extremal_perturbation_run(model, images, targets, **options)
    return list(zip(result.masks.cpu(), result.converged.cpu(), strict=True))


def _ep_object_iou(mode: str, model, item, target: int, masks, options) -> float:
    """IoU with the object at its own area of extremal perturbations: ``interpolated`` (the
    masks of the two areas bracketing the object's, blended), ``optimised`` (one more run per
    pair at exactly the object's area) or ``summed`` (the pointing map's top pixels, as
    before: its plateaus are not shaped to the object's size)."""
    truth = item.masks[target]
    if mode == "summed":
        return object_iou(resize_saliency(masks.sum(0).float(), item.size), truth)
    areas = list(options["areas"])
    if mode == "interpolated":
        return object_area_iou(masks, areas, truth)
    area = truth.float().mean().item()
    extra = {k: v for k, v in options.items() if k not in ("areas", "batch_size")}
    own = baselines.extremal_perturbation_masks(model, item.image[None], [target], [area], **extra)
    return object_area_iou(own[0], [area], truth)


def _faithfulness_records(method, model, items, options, steps: int) -> list[dict]:
    pairs = [(i, c) for i, item in enumerate(items) for c in item.classes]
    if not pairs:
        return []
    records = []
    for (i, c), sal in zip(pairs, _maps(method, model, items, pairs, options), strict=True):
        image = items[i].image
        records.append(
            {
                "image_id": items[i].image_id,
                "class": c,
                "deletion": deletion_auc(model, image, c, sal, steps),
                "insertion": insertion_auc(model, image, c, sal, steps),
            }
        )
    return records


# --- the run ---------------------------------------------------------------------------------


def output_path(cfg: BenchmarkConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    model = Path(cfg.model).stem.replace(":", "-").replace("/", "-")
    return Path("outputs") / "benchmark" / f"{cfg.task}-{cfg.dataset}-{model}"


def _check_classes(model, dataset) -> None:
    item = dataset[0]
    with torch.no_grad():
        out = model(item.image[None])
    if out.dim() < 2 or out.shape[1] != dataset.num_classes:
        raise ValueError(
            f"the model outputs {tuple(out.shape)} scores but the dataset has "
            f"{dataset.num_classes} classes (the model must score the dataset's classes, in its "
            "class order)"
        )


def run_benchmark(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Run (or resume) the benchmark; returns ``{"rows": [...], "out": Path, ...}``."""
    cfg = prepare(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = output_path(cfg)
    out.mkdir(parents=True, exist_ok=True)
    dataset = make_dataset(cfg)
    model = load_benchmark_model(cfg)
    _check_classes(model, dataset)
    store = ResultsStore(out, config=asdict(cfg))
    estimates = benchmark_estimates(cfg, model, dataset)
    scored = score_chunks(cfg, model, dataset, store, estimates)
    sanity = {}
    if cfg.task == "faithfulness":
        sanity = _sanity(cfg, model, dataset, scored.count, store, scored.fingerprint)
    rows = _summarise(cfg, dataset, scored.records, scored.seconds, sanity)
    store.write_manifest(complete=True)
    table = format_table(cfg, rows)
    print(table, flush=True)
    csv_path = _write_csv(out, cfg, rows)
    _write_per_class(out, cfg, dataset, scored.records)
    atomic_write_text(table + "\n", out / f"{cfg.task}.md")
    print(f"lightning-extremal: table in {csv_path.resolve()}", flush=True)
    if cfg.logger == "wandb":
        _log_wandb(cfg, out, rows)
    return {
        "rows": rows,
        "out": out,
        "table": table,
        "skipped": scored.skipped,
        "computed": scored.computed,
    }


def benchmark_estimates(cfg: BenchmarkConfig, model, dataset) -> dict[str, MethodEstimate]:
    """Each method's estimated seconds over the run's images (from a calibration on the first
    pair, :func:`~..evaluation.cost.method_estimate`; pairs counted as the first chunk's per
    image), printed as one line before any work; finished chunks are skipped later."""
    count = min(len(dataset), cfg.limit) if cfg.limit else len(dataset)
    items = [dataset[i] for i in range(min(cfg.chunk_size, count))]
    first = next((item for item in items if item.classes), None)
    if first is None:
        return {}
    per_image = sum(len(item.classes) for item in items) / len(items)
    pairs = max(round(per_image * count), 1)
    curve_s = 0.0
    if cfg.task == "faithfulness":
        flat = torch.ones(first.image.shape[-2:])
        target = first.classes[0]
        curve_s = timed_call(
            lambda: (
                deletion_auc(model, first.image, target, flat, cfg.curve_steps),
                insertion_auc(model, first.image, target, flat, cfg.curve_steps),
            )
        )
    estimates = {}
    for method in cfg.methods:
        options = method_options(cfg, method)
        found = method_estimate(method, model, first.image, first.classes[0], options, pairs, count)
        estimates[method] = MethodEstimate(method, found.seconds + curve_s * pairs, found.work)
    extra = f"; + the curves ({cfg.curve_steps} steps)" if cfg.task == "faithfulness" else ""
    print(benchmark_line(list(estimates.values()), extra), flush=True)
    return estimates


@dataclass
class Scored:
    """Every method's per-pair records over the first ``count`` images, with their timing."""

    records: dict[str, list[dict]]
    seconds: dict[str, float]
    count: int
    fingerprint: str
    skipped: int = 0
    computed: int = 0


def score_chunks(
    cfg: BenchmarkConfig,
    model,
    dataset,
    store: ResultsStore,
    estimates: dict[str, MethodEstimate] | None = None,
) -> Scored:
    """Each method on each chunk of ``chunk_size`` images: a finished chunk (same key in the
    store) is read back, any other is computed and stored the moment it is done, with a
    line as it starts (its share of the method's estimate) and one as it ends."""
    estimates = estimates or {}
    count = min(len(dataset), cfg.limit) if cfg.limit else len(dataset)
    scored = Scored({m: [] for m in cfg.methods}, dict.fromkeys(cfg.methods, 0.0), count, "")
    scored.fingerprint = model_fingerprint(model)
    starts = range(0, count, cfg.chunk_size)
    for number, start in enumerate(starts):
        indices = range(start, min(start + cfg.chunk_size, count))
        ids = [dataset.image_id(i) for i in indices]
        items = None
        for method in cfg.methods:
            name = f"{method}/chunk-{number:05d}"
            key = _key(cfg, method, ids, scored.fingerprint)
            chunk = store.load(name, key)
            if chunk is None:
                items = items or [dataset[i] for i in indices]
                share = _chunk_share(estimates.get(method), len(indices), count)
                print(
                    f"[{method}] chunk {number + 1}/{len(starts)}: {len(items)} images{share}…",
                    flush=True,
                )
                chunk = _score_chunk(cfg, model, method, items, key)
                store.save(name, chunk, method=method, pairs=len(chunk["records"]))
                scored.computed += 1
                print(
                    f"[{method}] chunk {number + 1}/{len(starts)}: {len(chunk['records'])} pairs, "
                    f"{chunk['seconds']:.1f} s",
                    flush=True,
                )
            else:
                store.add(name, key, method=method, pairs=len(chunk["records"]))
                scored.skipped += 1
            scored.records[method] += chunk["records"]
            scored.seconds[method] += chunk.get("seconds", 0.0)
    if scored.skipped:
        print(
            f"resumed: {scored.skipped} finished chunk(s) skipped, {scored.computed} computed",
            flush=True,
        )
    return scored


def _chunk_share(estimate: MethodEstimate | None, images: int, count: int) -> str:
    """`` (estimate ~N s)``: a chunk's share of its method's estimate, or nothing."""
    if estimate is None or not count:
        return ""
    return f" (estimate {duration(estimate.seconds * images / count)})"


def _score_chunk(cfg: BenchmarkConfig, model, method: str, items, key: str) -> dict[str, Any]:
    """One method's records on one chunk of items; the maps go to the chunk file only (for
    metrics added later), not into the records kept in memory."""
    start = time.perf_counter()
    options = method_options(cfg, method)
    if cfg.task == "pointing":
        records = _pointing_records(method, model, items, options, cfg.ep_object_iou)
    else:
        records = _faithfulness_records(method, model, items, options, cfg.curve_steps)
    elapsed = time.perf_counter() - start
    maps = [r.pop("map") for r in records if "map" in r]
    ids = [item.image_id for item in items]
    return {"key": key, "ids": ids, "records": records, "seconds": elapsed, "maps": maps}


def _sanity(cfg, model, dataset, count, store: ResultsStore, fingerprint: str) -> dict[str, Any]:
    """Model-randomisation check on the first ``sanity_images`` pairs (one file per method)."""
    pairs = []
    for i in range(count):
        item = dataset[i]
        pairs += [(item, c) for c in item.classes]
        if len(pairs) >= cfg.sanity_images:
            break
    pairs = pairs[: cfg.sanity_images]
    groups: dict[tuple[int, ...], list] = {}
    for item, c in pairs:
        groups.setdefault(tuple(item.image.shape), []).append((item, c))
    results = {}
    for method in cfg.methods:
        names = [f"{p[0].image_id}:{p[1]}" for p in pairs]
        key = content_key({"chunk": _key(cfg, method, names, fingerprint), "mode": cfg.sanity_mode})
        saved = store.load(f"sanity/{method}", key)
        if saved is not None:
            store.add(f"sanity/{method}", key, method=method)
            results[method] = saved["result"]
            continue
        options = method_options(cfg, method)

        def fn(m, images, targets, method=method, options=options):
            return baselines.saliency(method, m, images, targets, **options)

        group = max(groups.values(), key=len)
        images = torch.stack([item.image for item, _ in group])
        check = model_randomisation_check(
            model, images, [c for _, c in group], fn, cfg.sanity_mode, cfg.seed
        )
        result = asdict(check)
        store.save(f"sanity/{method}", {"key": key, "result": result}, method=method)
        results[method] = result
    return results


def _summarise(cfg, dataset, results, seconds, sanity) -> list[dict[str, Any]]:
    rows = []
    for method in cfg.methods:
        records = results[method]
        row: dict[str, Any] = {
            "method": method,
            "label": METHODS[method].label,
            "dataset": cfg.dataset,
            "model": cfg.model,
            "pairs": len(records),
            "seconds": round(seconds[method], 1),
        }
        if cfg.task == "pointing":
            classes = [r["class"] for r in records]
            hits = [r["hit"] for r in records]
            diff = [r for r in records if r["diff"]]
            row["all"] = 100 * pointing_accuracy(hits, classes, dataset.num_classes).accuracy
            row["diff"] = (
                100
                * pointing_accuracy(
                    [r["hit"] for r in diff], [r["class"] for r in diff], dataset.num_classes
                ).accuracy
            )
            row["diff_pairs"] = len(diff)
            row["iou"] = 100 * _mean([r["iou"] for r in records if "iou" in r])
            known = [r for r in records if "masks" in r]  # EP's records (this format on)
            row["unconverged"] = sum(r["unconverged"] for r in known) if known else None
            row["masks"] = sum(r["masks"] for r in known) if known else None
        else:
            row["deletion_auc"] = _mean([r["deletion"] for r in records])
            row["insertion_auc"] = _mean([r["insertion"] for r in records])
            check = sanity.get(method)
            row["sanity_spearman"] = check["spearman"][-1] if check else math.nan
            row["sanity_spearman_abs"] = check["spearman_abs"][-1] if check else math.nan
        rows.append(row)
    return rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def format_table(cfg: BenchmarkConfig, rows: list[dict[str, Any]]) -> str:
    """The markdown table in the seed's format (one column: this dataset × model)."""
    column = f"{DATASET_LABELS[cfg.dataset]} {cfg.model}"
    if cfg.task == "pointing":
        lines = [
            f"| method | {column} (All/Diff) | IoU @ object area | pairs (All/Diff) |",
            "|---|---|---|---|",
        ]
        for r in rows:
            cell = f"{_fmt(r['all'])}/{_fmt(r['diff'])}"
            if r.get("unconverged"):  # scores of masks that are not yet extremal: say so
                cell += f" ({unconverged_text(r['unconverged'], r['masks'])})"
            lines.append(
                f"| {r['label']} | {cell} | {_fmt(r['iou'])} | {r['pairs']}/{r['diff_pairs']} |"
            )
        return "\n".join(lines)
    lines = [
        f"| method | {column} deletion AUC ↓ | insertion AUC ↑ | "
        f"sanity ρ ({cfg.sanity_mode}) | sanity ρ abs |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {_fmt(r['deletion_auc'], 3)} | {_fmt(r['insertion_auc'], 3)} | "
            f"{_fmt(r['sanity_spearman'], 2)} | {_fmt(r['sanity_spearman_abs'], 2)} |"
        )
    return "\n".join(lines)


def _write_csv(out: Path, cfg: BenchmarkConfig, rows: list[dict[str, Any]]) -> Path:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = out / f"{cfg.task}.csv"
    atomic_write_text(buffer.getvalue(), path)
    return path


def _write_per_class(out: Path, cfg: BenchmarkConfig, dataset, results) -> None:
    if cfg.task != "pointing":
        return
    lines = ["method,class,name,pairs,hits,accuracy"]
    for method, records in results.items():
        score = pointing_accuracy(
            [r["hit"] for r in records], [r["class"] for r in records], dataset.num_classes
        )
        for c in range(dataset.num_classes):
            if score.totals[c] > 0:
                lines.append(
                    f"{method},{c},{dataset.class_names[c]},{int(score.totals[c])},"
                    f"{int(score.hits[c])},{100 * float(score.class_accuracy[c]):.1f}"
                )
    atomic_write_text("\n".join(lines) + "\n", out / "pointing_per_class.csv")


def _log_wandb(cfg: BenchmarkConfig, out: Path, rows: list[dict[str, Any]]) -> None:
    """The table and one summary metric per method to W&B (offline unless WANDB_MODE says)."""
    metrics = ("all", "diff", "deletion_auc", "insertion_auc", "sanity_spearman")
    summary = {
        f"{cfg.task}/{r['method']}/{metric}": r[metric]
        for r in rows
        for metric in metrics
        if metric in r
    }
    name = f"{cfg.task}-{cfg.dataset}-{Path(cfg.model).stem}"
    tags = (cfg.task, cfg.dataset, Path(cfg.model).stem)
    log_table_run(name, "benchmark", out, asdict(cfg), f"{cfg.task}/table", rows, summary, tags)
