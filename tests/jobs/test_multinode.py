"""Two "nodes" on this machine: two ``torchrun --nnodes 2 --nproc-per-node 1`` launches on
127.0.0.1 (gloo), each running ``lightning-extremal run`` as one rank of a Lightning DDP job.

The job has 5 images in chunks of 2, so each rank decodes and perturbs one image of a chunk,
and the last chunk's single image leaves rank 1 with an empty block."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import run_job_on_one_thread, write_images

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = [
    pytest.mark.xdist_group("process_groups"),  # never beside another test that opens one
    pytest.mark.slow,
    pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed next to python"),
]


def job_args(images: Path, out: Path) -> list[str]:
    return [
        "model=tests.helpers:SlowTinyConvNet",
        f"data={images}",
        "data.size=32",
        "areas=[0.1,0.3]",
        "max_iter=12",
        "logger=csv",
        "data.batch_size=2",
        "data.targets=[1,2]",
        "trainer.progress=false",
        f"output_dir={out}",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(args: list[str], logs: Path, timeout: int = 600) -> list[subprocess.Popen]:
    """Both "nodes" of a two-node job, each its own torchrun (and process group, to kill)."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    nodes = []
    for rank in (0, 1):
        command = [
            str(TORCHRUN),
            "--nnodes=2",
            "--nproc-per-node=1",
            f"--node-rank={rank}",
            "--master-addr=127.0.0.1",
            f"--master-port={port}",
            "-m",
            "lightning_extremal",
            "run",
            *args,
            "trainer.num_nodes=2",
            f"trainer.collective_timeout={timeout}",
        ]
        log = (logs / f"node{rank}.log").open("w")
        nodes.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return nodes


def wait_all(nodes: list[subprocess.Popen], logs: Path, seconds: float = 240) -> None:
    """Wait for every node to exit 0; on a failure or after ``seconds``, kill them all (an
    agent may wait minutes for a dead peer at torchrun's exit barrier) and show both logs."""
    deadline = time.monotonic() + seconds
    while any(n.poll() is None for n in nodes) and time.monotonic() < deadline:
        if any(n.poll() not in (None, 0) for n in nodes):
            break
        time.sleep(0.1)
    codes = [n.poll() for n in nodes]
    for node in nodes:
        if node.poll() is None:
            kill(node)
    shown = "\n".join(f"--- node {r} ---\n{node_log(logs, r)}" for r in range(len(nodes)))
    assert codes == [0] * len(nodes), f"exit codes {codes} (None: still running)\n{shown}"


def node_log(logs: Path, rank: int) -> str:
    return (logs / f"node{rank}.log").read_text()[-3000:]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children += [int(c) for c in (task / "children").read_text().split()]
    return [p for c in children for p in (c, *descendants(c))]


def kill(node: subprocess.Popen) -> None:
    """SIGKILL a "node": its torchrun agent and every worker under it."""
    for pid in [node.pid, *descendants(node.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.wait()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("multinode") / "images"
    write_images(folder, 5)
    return folder


@pytest.fixture(scope="module")
def single(images, tmp_path_factory) -> dict:
    """The same job in one process."""
    out = tmp_path_factory.mktemp("single") / "out"
    run_job_on_one_thread(job_args(images, out))
    return torch.load(out / "masks.pt", weights_only=False)


@pytest.fixture(scope="module")
def two_nodes(images, tmp_path_factory) -> tuple[Path, Path]:
    """The job on two simulated nodes, uninterrupted: its folder and the logs' folder."""
    logs = tmp_path_factory.mktemp("logs")
    out = logs / "out"
    wait_all(start_nodes(job_args(images, out), logs), logs)
    return out, logs


def assert_same_masks(merged: dict, reference: dict) -> None:
    assert merged["ids"] == reference["ids"]
    assert torch.equal(merged["targets"], reference["targets"])
    # Same maths per mask; the classifier's kernels on 1 image vs 2 may round differently.
    assert (merged["masks"] - reference["masks"]).abs().max() <= 1e-4
    assert (merged["rewards"] - reference["rewards"]).abs().max() <= 1e-4


def test_two_nodes_equal_one_process(two_nodes, single):
    out, logs = two_nodes
    assert_same_masks(torch.load(out / "masks.pt", weights_only=False), single)
    rank0, rank1 = ((logs / f"node{r}.log").read_text() for r in (0, 1))
    # Only global rank 0 writes and reports; rank 1 only computes its blocks.
    assert "results in" in rank0 and "results in" not in rank1
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in rank1
    chunk = torch.load(out / "chunks" / "chunk-00000.pt", weights_only=False)
    assert chunk["ids"] == ["img0", "img0", "img1", "img1"]  # both ranks' pairs
    assert chunk["images"].shape == (4, 3, 32, 32)


def test_a_dead_node_stops_the_other_and_a_rerun_finishes_the_job(images, two_nodes, tmp_path):
    out = tmp_path / "out"
    nodes = start_nodes(job_args(images, out), tmp_path, timeout=30)
    first = out / "chunks" / "chunk-00000.pt"
    deadline = time.monotonic() + 240
    while not first.exists() and nodes[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.exists(), node_log(tmp_path, 0)
    kill(nodes[1])  # node 1 dies mid-job …
    started = time.monotonic()
    code = nodes[0].wait(timeout=120)  # … and node 0 does not wait in a collective for ever
    assert code != 0 or not (out / "chunks" / "chunk-00002.pt").exists()
    assert time.monotonic() - started < 90
    manifest = (out / "manifest.json").read_text()
    assert '"complete": false' in manifest
    # The same two commands again: finished chunks are kept, the rest computed.
    rerun_logs = tmp_path / "rerun"
    rerun_logs.mkdir()
    wait_all(start_nodes(job_args(images, out), rerun_logs), rerun_logs)
    assert "resuming:" in (rerun_logs / "node0.log").read_text()
    merged = torch.load(out / "masks.pt", weights_only=False)
    assert_same_masks(merged, torch.load(two_nodes[0] / "masks.pt", weights_only=False))


def test_a_job_closes_the_process_group_it_ran_in(images, tmp_path):
    """A rank that exits holding a gloo group can abort at interpreter exit (SIGABRT:
    pytorch#190489), leaving the other node's torchrun waiting at its exit barrier: a
    finished job closes the group."""
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        run_job_on_one_thread(job_args(images, tmp_path / "out"))
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
