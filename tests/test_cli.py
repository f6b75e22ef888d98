"""The CLI main job end to end, config composition and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from lightning_extremal.cli import main
from lightning_extremal.config import RunConfig, compose, configs_dir

TINY_MODEL = "tests.tiny_models:TinyConvNet"


def _write_images(folder: Path, count: int, size=(40, 52)) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = (rng.random((*size, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"img{i}.png")


def test_default_yaml_matches_dataclasses():
    text = (configs_dir() / "default.yaml").read_text()
    assert OmegaConf.to_container(OmegaConf.create(text)) == OmegaConf.to_container(
        OmegaConf.structured(RunConfig)
    )


def test_compose_aliases_groups_and_overrides():
    cfg = compose(
        ["areas=[0.05,0.2]", "method.sigma=9", "logger=csv", "preset=quick", "max_iter=7"]
    )
    assert cfg.method.areas == [0.05, 0.2]  # preset=quick sets [0.1, 0.2]; later args win
    assert cfg.method.sigma == 9.0
    assert cfg.logger.name == "csv"
    assert cfg.method.max_iter == 7
    assert compose(["model=resnet50"]).model.weights == "IMAGENET1K_V1"  # from configs/model/
    assert compose(["model=alexnet"]).model.name == "alexnet"  # no yaml: the model name


@pytest.mark.parametrize(
    "arg, message",
    [
        ("aeras=[0.1]", "unknown config key 'aeras'.*method.areas"),
        ("method.nope=1", "unknown config key 'method.nope'"),
        ("max_iter=abc", "max_iter"),
        ("method=nonexistent", "no such method config.*reference"),
        ("noequals", "key=value"),
    ],
)
def test_compose_rejects_bad_keys(arg, message):
    with pytest.raises(ValueError, match=message):
        compose([arg])


def test_cli_bad_key_exits_2_naming_valid_keys(capsys):
    assert main(["run", "sigmaa=3"]) == 2
    err = capsys.readouterr().err
    assert "sigmaa" in err and "method.sigma" in err


def test_cli_unknown_command(capsys):
    assert main(["explain"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_main_job_writes_every_file(tmp_path, monkeypatch):
    """A folder with 3 good images and 1 unreadable one, 2 areas, a tiny classifier."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    data = tmp_path / "images"
    _write_images(data, 3)
    (data / "broken.jpg").write_bytes(b"this is not a jpeg")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="broken.jpg"):
        code = main(
            [
                "run",
                f"model={TINY_MODEL}",
                f"data={data}",
                "data.size=32",
                "areas=[0.1,0.3]",
                "max_iter=4",
                "logger=csv",
                "data.batch_size=2",
                f"output_dir={out}",
                "trainer.progress=false",
                "data.targets=[1,2]",
            ]
        )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["results"]
    # 3 images × 2 targets × 2 areas
    assert len(rows) == 12
    assert {r["image"] for r in rows} == {"img0", "img1", "img2"}
    assert {r["target"] for r in rows} == {1, 2}
    assert {r["area"] for r in rows} == {0.1, 0.3}
    assert all(0 <= r["achieved_area"] <= 1 and np.isfinite(r["reward"]) for r in rows)
    assert [s["path"].endswith("broken.jpg") for s in summary["skipped"]] == [True]
    masks = torch.load(out / "masks.pt", weights_only=False)
    assert masks["masks"].shape == (6, 2, 32, 32)
    assert masks["ids"] == ["img0", "img0", "img1", "img1", "img2", "img2"]
    assert 0 <= masks["masks"].min() and masks["masks"].max() <= 1
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert overlays == [f"img{i}_{t}.png" for i in range(3) for t in (1, 2)]
    with Image.open(out / "overlays" / "img0_1.png") as png:
        assert png.size[0] > png.size[1] > 100  # image + 2 heat maps side by side
        assert np.asarray(png.convert("L")).std() > 0
    assert sorted(p.name for p in (out / "chunks").iterdir()) == [
        "chunk-00000.pt",
        "chunk-00001.pt",
    ]
    assert json.loads((out / "config.json").read_text())["method"]["max_iter"] == 4
    assert (out / "csv").is_dir()  # the CSV logger wrote its metrics


@pytest.mark.slow
def test_cli_rerun_skips_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
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
def test_console_script_default_demo_run(tmp_path):
    """`lightning-extremal run` with the demo model and images, as installed."""
    exe = Path(sys.executable).with_name("lightning-extremal")
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            str(exe),
            "run",
            "max_iter=3",
            "logger=none",
            f"output_dir={out}",
            "trainer.progress=false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out.resolve()) in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    from lightning_extremal.data.demo import demo_images

    _, ids, _ = demo_images()
    assert {r["image"] for r in summary["results"]} == set(ids)
    assert len(list((out / "overlays").glob("*.png"))) == len(ids)


def test_run_config_roundtrip_is_plain_data():
    cfg = compose([])
    assert asdict(cfg)["model"]["name"] == "demo"
