"""Fixtures of the job tests: W&B offline under ``tmp_path``, one finished CSV-logged run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_args as _args
from tests.helpers import run_job_on_one_thread

ROOT = Path(__file__).resolve().parents[2]


#: W&B variables of a user's shell that change where and how runs are logged: unset in tests
#: (a test that checks one sets it).
WANDB_RUN_VARIABLES = (
    "WANDB_DIR",
    "WANDB_PROJECT",
    "WANDB_ENTITY",
    "WANDB_RUN_GROUP",
    "WANDB_JOB_TYPE",
    "WANDB_TAGS",
    "WANDB_NAME",
    "WANDB_RUN_ID",
    "WANDB_API_KEY",
)


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch) -> Path:
    """W&B offline, every W&B folder under tmp_path: artifact staging, cache and settings in
    the returned folder, runs in each job's output folder (``$WANDB_DIR`` unset)."""
    home = tmp_path / "wandb_home"
    for name, sub in [
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
    ]:
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in WANDB_RUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)  # tests.helpers importable by the job
    return home


@pytest.fixture(scope="module")
def csv_job(shapes, tmp_path_factory) -> Path:
    """One job with the CSV logger (no image logger): everything goes to files."""
    out = tmp_path_factory.mktemp("csvjob") / "job"
    run_job_on_one_thread(
        _args(
            shapes,
            out,
            "max_iter=10",
            "logger=csv",
            "logger.mask_every_n_steps=5",
            "trainer.log_every_n_steps=2",
        )
    )
    return out
