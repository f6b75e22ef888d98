"""Never touch what is not ours (#24): a job deletes or overwrites only files a job's ledger
lists with their content; results come in input order with unique ids; a model's identity is
what it computes; the caller's model comes back in its own dtype."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from lightning_extremal.config import compose
from lightning_extremal.errors import UsageError
from lightning_extremal.jobs.report.job import write_report
from lightning_extremal.jobs.run.job import run_job
from tests.helpers import folder_run_args, write_images

ROOT = Path(__file__).resolve().parents[2]


def _run(data: Path, out: Path, *extra: str, overwrite: bool = False, **kw) -> Path:
    return run_job(compose(folder_run_args(data, out, *extra, **kw)), overwrite=overwrite)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` but the job's lock."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A user's project folder: images and notes of theirs."""
    monkeypatch.chdir(ROOT)  # tests.helpers importable by the job
    proj = tmp_path / "proj"
    write_images(proj / "images", 3)
    (proj / "notes").mkdir()
    (proj / "notes" / "todo.txt").write_text("hi")
    return proj


@pytest.mark.slow
def test_a_folder_of_the_users_files_is_refused_and_overwrite_keeps_them(project, capsys):
    """Inputs inside the output folder: refused without --overwrite; with it the run writes
    beside them, and neither the run, its rerun with fewer images, nor a report deletes them."""
    mine = _snapshot(project)
    with pytest.raises(UsageError, match=r"is not empty \(images, notes\).*--overwrite"):
        _run(project / "images", project)
    assert _snapshot(project) == mine
    _run(project / "images", project, overwrite=True)
    assert "kept 4 other file(s)" in capsys.readouterr().out
    assert all(_snapshot(project)[name] == data for name, data in mine.items())
    assert len(list((project / "overlays").glob("*.png"))) == 3
    (project / "images" / "img2.png").unlink()  # fewer images: stale overlays go, nothing else
    del mine["images/img2.png"]
    _run(project / "images", project)
    assert sorted(p.name for p in (project / "overlays").glob("*")) == ["img0.png", "img1.png"]
    write_report(project)
    after = _snapshot(project)
    assert all(after[name] == data for name, data in mine.items())


@pytest.mark.slow
def test_overwrite_removes_only_listed_files_and_refuses_to_write_over_others(project, capsys):
    """A folder holding the user's own config.json, csv/, wandb/ and notes is never a results
    folder: --overwrite refuses to write over their config.json and deletes none of it."""
    for name in ("csv/metrics.csv", "wandb/settings", "config.json"):
        (project / name).parent.mkdir(exist_ok=True)
        (project / name).write_text("mine")
    mine = _snapshot(project)
    with pytest.raises(UsageError, match=r"did not write.*: config.json\. They are never overwrit"):
        _run(project / "images", project, overwrite=True)
    assert _snapshot(project) == mine
    (project / "config.json").rename(project / "notes" / "config.json")
    mine = _snapshot(project)
    _run(project / "images", project, "logger=csv", overwrite=True)
    after = _snapshot(project)
    assert all(after[name] == data for name, data in mine.items())
    first = {p for p in (project / "csv").rglob("metrics.csv")}
    assert len(first) == 2  # theirs and the job's (one logger a job)
    _run(project / "images", project, "logger=csv", "max_iter=4", overwrite=True)
    assert "kept 7 other file(s)" in capsys.readouterr().out.split("cleared")[-1]
    after = _snapshot(project)
    assert all(after[name] == data for name, data in mine.items())
    second = {p for p in (project / "csv").rglob("metrics.csv")}
    assert len(second) == 2 and first & second == {project / "csv" / "metrics.csv"}


@pytest.mark.slow
def test_a_result_file_the_user_changed_is_kept_and_not_written_over(project):
    out = project / "out"
    _run(project / "images", out)
    overlay = out / "overlays" / "img0.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(overlay)  # annotated by hand
    edited = overlay.read_bytes()
    with pytest.raises(UsageError, match=r"did not write \(or that were changed since\).*img0"):
        _run(project / "images", out, "max_iter=4", overwrite=True)
    assert overlay.read_bytes() == edited
    (project / "images" / "img0.png").unlink()  # its overlay is stale now, but not ours
    overlay.rename(out / "img0-annotated.png")
    _run(project / "images", out)
    assert (out / "img0-annotated.png").read_bytes() == edited


@pytest.mark.slow
def test_rerunning_an_unfinished_run_keeps_its_report(project):
    """The report's pictures (listed by the report, not the run) survive a rerun."""
    out = project / "out"
    Image.new("RGB", (52, 40), (90, 90, 90)).save(project / "images" / "img1.png")  # flat
    with pytest.raises(UsageError, match="scores do not change"):
        _run(project / "images", out)
    page = write_report(out)
    pictures = _snapshot(out / "report_files")
    assert pictures
    write_images(project / "images", 3)
    _run(project / "images", out)
    assert all((out / "report_files" / name).read_bytes() == b for name, b in pictures.items())
    assert page.is_file()


@pytest.mark.slow
def test_a_report_never_writes_over_a_page_it_did_not_write(project):
    out = project / "out"
    _run(project / "images", out)
    (out / "report.html").write_text("my own page")
    with pytest.raises(UsageError, match=r"report.html"):
        write_report(out)
    assert (out / "report.html").read_text() == "my own page"
    (out / "report.html").unlink()
    write_report(out)
    write_report(out)  # its own page: replaced


@pytest.mark.slow
def test_changed_model_code_with_the_same_weights_is_computed_again(project, tmp_path, capsys):
    """``model=mymodels:demo_scaled`` returning ``demo(x * SCALE)``: another SCALE, same
    weights, must not resume the old masks."""
    package = tmp_path / "pkg"
    package.mkdir()
    module = package / "mymodels_never_lose.py"

    def write(scale: float) -> None:
        module.write_text(
            textwrap.dedent(f"""
            import torch
            from tests.helpers import TinyConvNet
            SCALE = {scale}
            class Scaled(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = TinyConvNet()
                def forward(self, x):
                    return self.net(x * SCALE)
            def demo_scaled():
                return Scaled()
            """)
        )

    import sys

    sys.path.insert(0, str(package))
    try:
        out, model = project / "out", "mymodels_never_lose:demo_scaled"
        write(1.0)
        _run(project / "images", out, model=model)
        before = torch.load(out / "masks.pt", weights_only=False)["rewards"]
        write(0.25)
        sys.modules.pop("mymodels_never_lose", None)
        capsys.readouterr()
        _run(project / "images", out, model=model)
        said = capsys.readouterr().out
        assert "resuming" not in said and "3 chunk(s) on disk were computed from other" in said
        assert not torch.equal(torch.load(out / "masks.pt", weights_only=False)["rewards"], before)
    finally:
        sys.path.remove(str(package))
        sys.modules.pop("mymodels_never_lose", None)


def test_model_fingerprint_sees_code_and_preprocessing_not_just_weights():
    from lightning_extremal.jobs.run.chunks import model_fingerprint
    from tests.helpers import TinyConvNet

    net = TinyConvNet()
    same = model_fingerprint(net, "x", (3, 32, 32))
    assert model_fingerprint(net, "x", (3, 32, 32)) == same  # deterministic
    scaled = torch.nn.Sequential()  # the same weights, another function of the input
    scaled.add_module("net", net)
    scaled.forward = lambda x: net(x * 0.5)
    assert model_fingerprint(scaled, "x", (3, 32, 32)) != model_fingerprint(
        torch.nn.Sequential(net), "x", (3, 32, 32)
    )


@pytest.mark.slow
def test_results_stay_in_input_order_after_a_partial_recompute(project, capsys):
    """Replace the middle image: only its chunk runs again, and masks.pt and summary.json
    still list the images in input order (shapes mixed across chunks too)."""
    images = project / "images"
    Image.open(images / "img0.png").resize((30, 40)).save(images / "img0.png")  # other shape
    out = project / "out"
    _run(images, out)
    write_images(images, 2)  # img0, img1 back to the first shape; img2 unchanged
    _run(images, out)
    assert "computing them again" in capsys.readouterr().out
    expected = ["img0", "img1", "img2"]
    assert torch.load(out / "masks.pt", weights_only=False)["ids"] == expected
    rows = json.loads((out / "summary.json").read_text())["results"]
    assert [row["image"] for row in rows] == expected


@pytest.mark.slow
def test_clashing_stems_get_unique_ids_and_overlays(project):
    images = project / "images"
    Image.open(images / "img1.png").save(images / "img0.jpg")
    out = project / "out"
    _run(images, out)
    ids = torch.load(out / "masks.pt", weights_only=False)["ids"]
    assert sorted(ids) == ["img0.jpg", "img0.png", "img1", "img2"]
    assert len(list((out / "overlays").glob("*.png"))) == 4


def test_unique_ids_fall_back_to_names_then_paths(tmp_path):
    from lightning_extremal.data.sources import unique_ids

    files = [tmp_path / "a" / "x.png", tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.png"]
    assert unique_ids(files[:2]) == ["x.png", "x.jpg"]
    assert unique_ids(files) == ["a/x.png", "x.jpg", "b/x.png"]
    assert unique_ids([tmp_path / "y.png"]) == ["y"]


@pytest.mark.parametrize("how", ["success", "error", "interrupt"])
def test_the_callers_model_gets_its_dtype_back(how):
    """``precision="64-true"`` casts the module; the classifier is handed back in float32
    (parameters and buffers) whether the run succeeds, fails or is interrupted."""
    from lightning_extremal import extremal_perturbation
    from tests.helpers import make_tiny_classifier, random_images

    model = torch.nn.Sequential(make_tiny_classifier(), torch.nn.BatchNorm1d(4))
    images = random_images(1, 16)
    callbacks = []
    if how != "success":
        import lightning.pytorch as pl

        error = KeyboardInterrupt if how == "interrupt" else RuntimeError

        class Stop(pl.Callback):
            def on_train_batch_end(self, *args):
                raise error("stop")

        callbacks = [Stop()]
    handler = signal.getsignal(signal.SIGINT)
    try:
        extremal_perturbation(
            model, images, [0], [0.2], max_iter=2, precision="64-true", callbacks=callbacks
        )
    except (RuntimeError, SystemExit):  # Lightning exits on a KeyboardInterrupt
        assert how != "success"
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning leaves SIGINT ignored
    dtypes = {t.dtype for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()}
    assert dtypes == {torch.float32}


@pytest.mark.slow
def test_figures_of_a_chunk_killed_midway_are_adopted_not_refused(project):
    """kill -9 during a chunk: its figures are in no ledger, but the manifest says since when
    a chunk was being written; the rerun adopts what appeared in its folders since (and
    removes it as stale), never a file of others it had found in a logger's folder."""
    from lightning_extremal.jobs.run.chunks import OTHERS, PENDING, file_clock

    out = project / "out"
    (out / "csv").mkdir(parents=True)
    (out / "csv" / "theirs.csv").write_text("mine")
    _run(project / "images", out, overwrite=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest[OTHERS] == ["csv/theirs.csv"] and PENDING not in manifest
    manifest[PENDING] = file_clock(out)
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "mask_evolution" / "img7").mkdir(parents=True)
    (out / "mask_evolution" / "img7" / "step_000000.png").write_bytes(b"half a chunk")
    (out / "csv" / "theirs.csv").write_text("mine, edited after the crash")
    _run(project / "images", out)
    assert not (out / "mask_evolution" / "img7").exists()
    assert (out / "csv" / "theirs.csv").read_text() == "mine, edited after the crash"


@pytest.mark.slow
def test_a_half_written_file_of_a_killed_run_is_removed_and_the_rerun_goes_on(project):
    """kill -9 between an atomic write and its rename leaves ``.<name>.<random>`` + PARTIAL
    beside the file (here: a chunk's); the rerun removes it instead of refusing the folder.
    A hidden file of the user's there is still refused."""
    from lightning_extremal.jobs.run.store import PARTIAL

    out = project / "out"
    _run(project / "images", out)
    partial = out / "chunks" / f".chunk-00000.pt.k3x9q{PARTIAL}"
    partial.write_bytes(b"half a chunk")
    _run(project / "images", out, "max_iter=4")
    assert not partial.exists()
    mine = out / "chunks" / ".notes"
    mine.write_text("mine")
    with pytest.raises(UsageError, match=r"did not write.*chunks/\.notes"):
        _run(project / "images", out, "max_iter=5", overwrite=True)
    assert mine.read_text() == "mine"
