"""``extremal_perturbation`` in a script started by ``torchrun --nproc-per-node 2`` with
``strategy="ddp"``: each rank keeps only its own block of the images it was given (its
pyramids, its forward passes), and every rank's result covers all pairs, as one process's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_extremal import extremal_perturbation
from tests.helpers import FAST, TinyConvNet

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
#: Multi-label images: 5 images, 7 pairs, so the ranks' blocks hold different pair counts.
TARGETS = [[1, 2], [0], [3, 4], [1], [2]]
OPTIONS = dict(FAST, max_iter=6, areas=[0.1, 0.3], seed=0)

SCRIPT = """
import sys, torch
from lightning.pytorch.callbacks import Callback
from lightning_extremal import extremal_perturbation
from tests.api.test_torchrun import OPTIONS, TARGETS, problem

class Held(Callback):  # how many images' pyramids this rank built
    def on_train_start(self, trainer, pl_module):
        self.images = pl_module.pyramid.shape[0]

held = Held()
model, images = problem()
result = extremal_perturbation(model, images, TARGETS, devices=2, strategy="ddp",
                               accelerator="cpu", callbacks=[held], **OPTIONS)
saved = {**result.__dict__, "held_images": held.images}
torch.save(saved, sys.argv[1] + f".rank{torch.distributed.get_rank()}")
torch.distributed.destroy_process_group()  # a script that opened one closes it
"""


def problem():
    torch.manual_seed(0)
    return TinyConvNet(), torch.rand(5, 3, 40, 40)


@pytest.mark.slow
@pytest.mark.xdist_group("process_groups")  # never beside another test that opens one
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed next to python")
def test_ddp_ranks_with_their_own_blocks_equal_one_process(tmp_path):
    out = tmp_path / "result.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node=2", str(script), str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    model, images = problem()
    single = extremal_perturbation(model, images, TARGETS, **OPTIONS)
    for rank, held in ((0, 3), (1, 2)):
        result = torch.load(f"{out}.rank{rank}", weights_only=False)
        assert result["held_images"] == held  # its own block of the 5 images, not all
        assert torch.equal(result["image_index"], single.image_index)
        assert torch.equal(result["targets"], single.targets)
        assert (result["masks"] - single.masks).abs().max() <= 1e-4
        assert (result["rewards"] - single.rewards).abs().max() <= 1e-4
        history = result["history"]["achieved_area"] - single.history["achieved_area"]
        assert history.abs().max() <= 1e-4
