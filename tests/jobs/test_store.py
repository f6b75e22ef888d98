"""Resume through the results store (jobs/store): a rerun skips finished chunks, a run killed
with ``kill -9`` and rerun equals an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_extremal.cli import main
from tests.helpers import TINY_MODEL
from tests.helpers import load_masks as _masks
from tests.helpers import synthetic_run_command as _run_command
from tests.helpers import write_images as _write_images

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cli_rerun_skips_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    data = tmp_path / "images"
    _write_images(data, 2)
    out = tmp_path / "out"
    args = [
        "run",
        f"model={TINY_MODEL}",
        f"data={data}",
        "data.size=32",
        "max_iter=3",
        "logger=none",
        "data.batch_size=1",
        f"output_dir={out}",
        "trainer.progress=false",
    ]
    assert main(args) == 0
    first = (out / "chunks" / "chunk-00000.pt").stat().st_mtime_ns
    before = torch.load(out / "masks.pt", weights_only=False)["masks"]
    assert main(args) == 0
    assert (out / "chunks" / "chunk-00000.pt").stat().st_mtime_ns == first
    assert torch.equal(torch.load(out / "masks.pt", weights_only=False)["masks"], before)


@pytest.mark.slow
def test_kill_9_then_rerun_equals_uninterrupted_run(tmp_path):
    import os
    import signal
    import subprocess
    import time

    def _cli(out):  # 5 steps a chunk: what is checked is which chunks were kept, and equality
        return _run_command(out, "max_iter=5")

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    whole = tmp_path / "whole"
    subprocess.run(_cli(whole), cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli(killed), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    chunks = killed / "chunks"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(chunks.glob("chunk-*.pt"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-run: no cleanup code runs
    proc.wait()
    finished = sorted(p.name for p in chunks.glob("chunk-*.pt"))
    assert 2 <= len(finished) < 4, finished
    stamps = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk-*.pt")}
    rerun = subprocess.run(
        _cli(killed), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # finished chunks were not redone
    assert all(chunks.joinpath(n).stat().st_mtime_ns == t for n, t in stamps.items())
    a, b = _masks(whole), _masks(killed)
    assert a["ids"] == b["ids"] and len(set(a["ids"])) == 8  # none lost, none twice
    assert torch.equal(a["masks"], b["masks"])
    manifest = __import__("json").loads((killed / "manifest.json").read_text())
    assert [e["file"] for e in manifest["chunks"]] == [f"chunks/chunk-{i:05d}.pt" for i in range(4)]


# --- the store itself --------------------------------------------------------------------------


def _record(key: str, ids: list[str], value: float) -> dict:
    count = len(ids)
    return {
        "key": key,
        "ids": ids,
        "targets": torch.arange(count),
        "masks": torch.full((count, 1, 2, 2), value),
        "rewards": torch.full((count, 1), value),
        "achieved_areas": torch.full((count, 1), value),
    }


def test_store_loads_only_the_same_key_and_recomputes_damaged_files(tmp_path):
    from lightning_extremal.jobs.run.store import ResultsStore

    store = ResultsStore(tmp_path, config={"a": 1})
    store.save("chunk-00000", _record("k0", ["x"], 0.5), ids=["x"])
    assert store.load("chunk-00000", "k0")["ids"] == ["x"]
    assert store.load("chunk-00000", "other settings") is None
    assert store.load("chunk-00001", "k0") is None  # not on disk
    store.path("chunk-00001").write_bytes(b"half a file")
    with pytest.warns(RuntimeWarning, match="ignoring unreadable chunk"):
        assert store.load("chunk-00001", "k1") is None
    manifest = __import__("json").loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"] == {"a": 1}
    assert manifest["chunks"] == [{"file": "chunks/chunk-00000.pt", "key": "k0", "ids": ["x"]}]
    assert not list(tmp_path.rglob(".*.pt.*"))  # no temporary file left behind


def test_store_lists_skipped_chunks_without_rewriting_the_manifest_each_time(tmp_path):
    from lightning_extremal.jobs.run.store import ResultsStore

    store = ResultsStore(tmp_path)
    store.save("chunk-00000", _record("k0", ["x"], 0.5), ids=["x"])
    written = (tmp_path / "manifest.json").stat().st_mtime_ns
    store.add("chunk-00001", "k1", ids=["y"])  # found finished on disk by a resume
    assert (tmp_path / "manifest.json").stat().st_mtime_ns == written
    store.write_manifest()
    files = [
        e["file"]
        for e in __import__("json").loads((tmp_path / "manifest.json").read_text())["chunks"]
    ]
    assert files == ["chunks/chunk-00000.pt", "chunks/chunk-00001.pt"]


def test_store_merges_masks_in_chunk_or_input_order_up_to_the_limit(tmp_path, monkeypatch, capsys):
    """Chunks saved out of order (a resume recomputing chunk 0 last) merge in chunk order, or
    in the input order of their ids when given."""
    from lightning_extremal.jobs.run import store as store_module

    store = store_module.ResultsStore(tmp_path)
    store.save("chunk-00001", _record("k1", ["b", "c"], 1.0), ids=["b", "c"])
    store.save("chunk-00000", _record("k0", ["a"], 0.0), ids=["a"])
    store.add("chunk-00002", "k2", ids=["d"])  # listed, but holds no masks (e.g. inversions)
    store_module.atomic_save({"key": "k2", "ids": ["d"], "rows": []}, store.path("chunk-00002"))
    merged = torch.load(store.merge_masks(layer="x"), weights_only=False)
    assert merged["ids"] == ["a", "b", "c"] and merged["layer"] == "x"
    assert merged["masks"][:, 0, 0, 0].tolist() == [0.0, 1.0, 1.0]
    assert merged["targets"].tolist() == [0, 0, 1]
    merged = torch.load(store.merge_masks({"c": 0, "a": 1, "b": 2}), weights_only=False)
    assert merged["ids"] == ["c", "a", "b"] and merged["targets"].tolist() == [1, 0, 0]
    monkeypatch.setattr(store_module, "MERGE_LIMIT", 2)
    (tmp_path / "masks.pt").unlink()
    assert store.merge_masks() is None and not (tmp_path / "masks.pt").exists()
    assert "no masks.pt" in capsys.readouterr().out


def test_a_layer_chunk_of_an_older_format_is_recomputed_not_crashed_on(tmp_path, monkeypatch):
    """Same key but no ``ids`` (the record layout of earlier versions): computed again."""
    from lightning_extremal.config import compose
    from lightning_extremal.jobs.run import chunks
    from lightning_extremal.jobs.run.store import atomic_save

    monkeypatch.chdir(ROOT)
    data = tmp_path / "images"
    _write_images(data, 2)
    cfg = compose(
        [f"model={TINY_MODEL}", f"data={data}", "data.size=32", f"output_dir={tmp_path / 'o'}"]
    )
    job = chunks.open_job(cfg)
    (number, key, index), *_ = list(chunks.plan_chunks(job))
    atomic_save({"key": key, "rows": [], "part": None}, job.store.path("chunk-00000"))
    assert [n for n, _, _ in chunks.plan_chunks(job)] == [number]
