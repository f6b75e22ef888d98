"""The base LightningModule of every optimisation about a frozen classifier."""

from __future__ import annotations

import lightning as L
import torch


class _OneStep(torch.utils.data.Dataset):
    """One dummy batch per epoch: an epoch is one optimisation step, so checkpoints taken at
    epoch ends resume exactly."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> int:
        return index


class FrozenClassifierModule(L.LightningModule):
    """Base of the modules that optimise something about a frozen ``self.classifier`` (masks,
    images): the classifier stays in eval mode whatever Lightning does, checkpoints hold the
    optimised tensors but not the (caller's) classifier, and one epoch is one step."""

    classifier: torch.nn.Module

    def train(self, mode: bool = True):
        super().train(mode)
        self.classifier.train(False)
        return self

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        for key in [k for k in state if k.startswith("classifier.")]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        state = dict(state_dict)
        for key, value in self.classifier.state_dict(prefix="classifier.").items():
            state.setdefault(key, value)
        return super().load_state_dict(state, strict=strict, assign=assign)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(_OneStep(), batch_size=None)
