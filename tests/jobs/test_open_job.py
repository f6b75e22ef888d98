"""Opening a job checks the images before the model: a folder without images fails with one
line naming it, before any weights are downloaded (the documented
``lightning-extremal run model=resnet50 data=~/photos/`` used to fail on the download first)."""

from __future__ import annotations

import pytest

from lightning_extremal.cli.main import main
from lightning_extremal.config import compose
from lightning_extremal.jobs.run.chunks import open_job


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """torchvision's weight cache in tmp_path: a download attempt creates its folder."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.mark.parametrize("make_folder", [False, True], ids=["missing", "empty"])
def test_a_folder_without_images_fails_before_the_weights_are_downloaded(
    tmp_path, torch_home, make_folder
):
    folder = tmp_path / "photos"
    if make_folder:
        folder.mkdir()
        (folder / "notes.txt").write_text("not an image")
    cfg = compose(["model=resnet50", f"data={folder}/", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(ValueError, match=f"no images found at '{folder}/'"):
        open_job(cfg)
    assert not torch_home.exists(), "the weights were looked for before the folder"
    assert not (tmp_path / "out").exists()


def test_the_cli_says_so_in_one_line(tmp_path, torch_home, capsys):
    folder = tmp_path / "nowhere"
    assert (
        main(
            [
                "run",
                "model=resnet50",
                f"data={folder}/",
                "logger=none",
                f"output_dir={tmp_path / 'out'}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lightning-extremal: no images found at '{folder}/'")
    assert len(err.splitlines()) == 1
    assert not torch_home.exists()
