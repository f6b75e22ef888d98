"""The progress display (callbacks/progress): chunk labels and the job ETA, phases, and each
kind of fit named for what it optimises — through real fits of the Python API."""

from __future__ import annotations

import re

import pytest
from lightning_extremal.callbacks.progress import (
    ChunkClock,
    phase_prefix,
    progress_phase,
)

from lightning_extremal import extremal_perturbation
from lightning_extremal.api.inversion import feature_inversion
from lightning_extremal.naming import duration_words
from tests.helpers import TinyConvNet
from tests.helpers import random_images as _images


def _states(err: str) -> list[str]:
    return [s.strip() for s in err.replace("\r", "\n").splitlines() if s.strip()]


def test_duration_words():
    assert [duration_words(s) for s in (4.2, 89, 240, 5399, 5400, 9000)] == [
        "4 s", "89 s", "4 min", "90 min", "1.5 h", "2.5 h",
    ]  # fmt: skip


def test_chunk_clock_labels_and_eta_from_the_mean_finished_chunk(capsys):
    clock = ChunkClock(4)
    assert clock.label(1) == "chunk 1/4"  # no chunk finished: no ETA yet
    clock.durations = [100.0, 140.0]  # two finished, 120 s on average
    assert clock.label(3) == "chunk 3/4 · job ETA 4 min"  # this one and the next: 240 s
    assert clock.label(4) == "chunk 4/4 · job ETA 2 min"
    with clock.chunk(3):
        assert phase_prefix() == "chunk 3/4 · job ETA 4 min: "
    assert phase_prefix() == ""
    line = capsys.readouterr().err.strip()
    assert re.fullmatch(r"lightning-extremal: chunk 3/4 done in [\d.]+s · job ETA \d+ s", line)
    assert len(clock.durations) == 3
    quiet = ChunkClock(1, show=False)
    with quiet.chunk(1):
        pass
    assert capsys.readouterr().err == ""


def test_phases_nest():
    with progress_phase("chunk 1/2"):
        with progress_phase("activation diff"):
            assert phase_prefix() == "chunk 1/2 · activation diff: "
        assert phase_prefix() == "chunk 1/2: "


@pytest.mark.parametrize(
    "kind, layer, label",
    [
        ("channel", "features.0", "4 channel masks"),
        ("layer-spatial", "features.0", "4 layer-grid masks"),
    ],
)
def test_layer_masks_are_named_on_the_bar(capsys, kind, layer, label):
    options = dict(max_iter=4, progress=True, step=2, sigma=2.0)
    with progress_phase("chunk 2/3"):
        extremal_perturbation(
            TinyConvNet(), _images(2, 16), 0, [0.25, 0.5], layer=layer, kind=kind, **options
        )
    states = _states(capsys.readouterr().err)
    assert any(re.fullmatch(rf"chunk 2/3: {label}: 4 steps in [\d.]+s, .*", s) for s in states)
    assert not any("warm start" in s for s in states)  # layer masks start uniform


def test_inversion_is_named_on_the_bar(capsys):
    model = TinyConvNet()
    goal = model.features[0](_images(3, 16))
    feature_inversion(model, "features.0", goal, size=(16, 16), max_iter=3, progress=True)
    states = _states(capsys.readouterr().err)
    assert any(re.fullmatch(r"inversion of 3 images: 3 steps in [\d.]+s", s) for s in states)


def test_fits_of_one_call_are_numbered(capsys):
    """batch_size splits one call into fits: "batch 1/2: 2 masks" then "batch 2/2: 1 mask"."""
    extremal_perturbation(
        TinyConvNet(), _images(3, 16), 0, [0.3], max_iter=2, progress=True, step=2, sigma=2.0,
        batch_size=2, warm_start="none",
    )  # fmt: skip
    finals = [s for s in _states(capsys.readouterr().err) if "steps in" in s]
    assert [s.split(": 2 steps")[0] for s in finals] == ["batch 1/2: 2 masks", "batch 2/2: 1 mask"]
