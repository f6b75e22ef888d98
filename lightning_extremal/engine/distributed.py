"""Which process of a multi-process job this one is, known before Lightning's Trainer starts
(each process then decodes and perturbs only its own block of images), and the collectives
the modules use to share their blocks' results."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..config import TrainerConfig

#: Lightning strategies that run one process per device.
DDP_STRATEGIES = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")
#: Of these, the ones that start their processes from the running one (the module is pickled
#: to them, so every process holds what the first one was given).
SPAWNING_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook")


def launched_externally() -> bool:
    """Whether torchrun (torchelastic) or SLURM's ``srun`` started this process as one of
    several: then each process is a rank of its own, and Lightning launches nothing."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():
        return True
    return SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) > 1


def process_rank(trainer: TrainerConfig) -> tuple[int, int]:
    """``(global rank, world size)`` this process will have in a fit with ``trainer``'s
    ``devices``, ``num_nodes`` and ``strategy``: torchrun's ``RANK``/``WORLD_SIZE``,
    SLURM's ``SLURM_PROCID``/``SLURM_NTASKS``, else Lightning's own launcher
    (``NODE_RANK``·devices + ``LOCAL_RANK``, of devices·num_nodes); ``(0, 1)`` for one process."""
    env = os.environ
    if launched_externally():
        if "RANK" in env and "WORLD_SIZE" in env:
            return int(env["RANK"]), int(env["WORLD_SIZE"])
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
    devices, nodes = trainer.devices, int(trainer.num_nodes)
    per_node = devices if isinstance(devices, int) else len(devices or ()) or 1
    if str(trainer.strategy) not in DDP_STRATEGIES or per_node * nodes <= 1:
        return 0, 1
    rank = int(env.get("NODE_RANK", 0)) * per_node + int(env.get("LOCAL_RANK", 0))
    return rank, per_node * nodes


def shards_images(trainer: TrainerConfig) -> bool:
    """Whether each process of the fit takes only its own block of the images (several
    processes, each started as its own program: torchrun, SLURM or Lightning's ``ddp``),
    rather than every process holding all of them (one process, or a spawning strategy)."""
    _, world = process_rank(trainer)
    return world > 1 and str(trainer.strategy) not in SPAWNING_STRATEGIES


def rank_block(count: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous block of ``count`` items split over ``world`` ranks in rank
    order, the blocks' sizes differing by at most one (empty when ``count < world``)."""
    base, extra = divmod(count, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value`` in rank order (``[value]`` outside a process group)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def close_process_group() -> None:
    """Destroy the default process group, if this process opened one: called once a job's last
    collective is done. A process that exits holding a gloo group can abort at interpreter
    exit ("terminate called without an active exception", SIGABRT: pytorch#190489), and under
    torchrun the other node's agent then waits for it at its exit barrier."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
