"""Which rank a process will be, known before the Trainer starts, and its block of images."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lightning_extremal.engine.distributed import (
    process_rank,
    rank_block,
    shards_images,
)

LAUNCH_VARS = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "NODE_RANK",
    "GROUP_RANK",
    "LOCAL_WORLD_SIZE",
    "TORCHELASTIC_RUN_ID",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_JOB_NAME",
    "SLURM_LOCALID",
    "SLURM_NODEID",
)


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch):
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


def run(**options):
    from lightning_extremal.config import TrainerConfig

    return TrainerConfig(**options)


def test_blocks_cover_every_item_once_in_rank_order():
    for count in range(0, 12):
        for world in (1, 2, 3, 5):
            blocks = [list(range(count))[rank_block(count, r, world)] for r in range(world)]
            assert [i for b in blocks for i in b] == list(range(count))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert rank_block(1, 1, 2) == slice(1, 1)  # a chunk smaller than the world: an empty block


def test_one_process_by_default_and_for_single_device_strategies():
    assert process_rank(run()) == (0, 1)
    assert process_rank(run(devices=4)) == (0, 1)  # "auto": not known to be DDP
    assert not shards_images(run(devices=4))


def test_lightning_launcher_ranks_from_node_and_local_rank(monkeypatch):
    assert process_rank(run(devices=4, num_nodes=2, strategy="ddp")) == (0, 8)
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert process_rank(run(devices=4, num_nodes=2, strategy="ddp")) == (6, 8)
    assert shards_images(run(devices=4, num_nodes=2, strategy="ddp"))
    # A spawning strategy pickles the module from one process: every rank holds every image.
    assert not shards_images(run(devices=2, strategy="ddp_spawn"))


def test_torchrun_and_slurm_ranks(monkeypatch):
    for name, value in {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "GROUP_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
        "TORCHELASTIC_RUN_ID": "x",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
    }.items():
        monkeypatch.setenv(name, value)
    assert process_rank(run()) == (3, 4)
    assert shards_images(run())
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "GROUP_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("SLURM_NTASKS", "16")
    monkeypatch.setenv("SLURM_PROCID", "9")
    monkeypatch.setenv("SLURM_JOB_NAME", "explain")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_NODEID", "1")
    assert process_rank(run(devices=8, num_nodes=2)) == (9, 16)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.num_nodes=0", "trainer.num_nodes must be a positive integer; got 0"),
        ("trainer.collective_timeout=-5", "trainer.collective_timeout must be a positive"),
    ],
)
def test_bad_process_settings_fail_before_any_work(override, message):
    from lightning_extremal.config import compose
    from lightning_extremal.jobs.run.job import check_config

    with pytest.raises(ValueError, match=message):
        check_config(compose([override]))


def test_layer_masks_on_several_processes_are_refused_before_any_work():
    from lightning_extremal.config import compose
    from lightning_extremal.errors import UsageError
    from lightning_extremal.jobs.run.job import check_config

    cfg = compose(["method.kind=channel", "trainer.devices=2", "trainer.strategy=ddp"])
    with pytest.raises(UsageError, match="method.kind=channel runs in one process"):
        check_config(cfg)


def test_the_collective_timeout_and_node_count_reach_lightnings_ddp_strategy():
    import datetime

    from lightning_extremal.config import TrainerConfig
    from lightning_extremal.engine.trainer import make_trainer

    options = TrainerConfig(accelerator="cpu", devices=2, strategy="ddp", progress=False)
    trainer = make_trainer(replace(options, collective_timeout=42), 3, [])
    assert trainer.strategy._timeout == datetime.timedelta(seconds=42)
    assert not trainer.strategy._ddp_kwargs.get("broadcast_buffers", True)
    assert trainer.num_nodes == 1 and trainer.num_devices == 2


def test_trainer_deterministic_reaches_lightning_from_the_command_line_and_the_api():
    """An option added by touching only the schema, the docs table and make_trainer."""
    import torch

    from lightning_extremal import extremal_perturbation
    from lightning_extremal.config import compose
    from lightning_extremal.engine.trainer import make_trainer
    from tests.helpers import TinyConvNet

    cfg = compose(["trainer.deterministic=true", "trainer.accelerator=cpu"])
    assert cfg.trainer.deterministic is True
    before = torch.are_deterministic_algorithms_enabled()
    try:
        make_trainer(replace(cfg.trainer, progress=False), 1, [])
        assert torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(False)
        extremal_perturbation(
            TinyConvNet(),
            torch.rand(1, 3, 16, 16),
            0,
            max_iter=1,
            progress=False,
            deterministic=True,
            warm_start="none",
        )
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)
