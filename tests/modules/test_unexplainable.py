"""Models that cannot be explained are refused (#13 item 5): non-finite scores at the start,
at a logging step or at the end, and scores that do not move with the mask."""

from __future__ import annotations

import lightning.pytorch as L
import pytest
import torch
from torch import nn

from lightning_extremal import extremal_perturbation
from lightning_extremal.errors import UnexplainableModelError, UsageError
from tests.helpers import make_tiny_classifier, random_images

OPTIONS = dict(max_iter=12, step=4, sigma=3.0, progress=False, warm_start="none")


class Breakable(nn.Module):
    """A working classifier whose scores are NaN once ``broken`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.net, self.broken, self.calls_broken = make_tiny_classifier(), False, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.net(x)
        if self.broken:
            self.calls_broken += 1
            return scores * float("nan")
        return scores


class BreakAt(L.Callback):
    """Breaks the model just before optimisation step ``step``."""

    def __init__(self, model: Breakable, step: int) -> None:
        self.model, self.step = model, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            self.model.broken = True


class Constant(nn.Module):
    """Scores that do not depend on the input (a head that never sees it)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.ones(len(x), 1, device=x.device))


def test_nan_scores_are_refused_before_the_first_step():
    model = Breakable()
    model.broken = True
    with pytest.raises(UnexplainableModelError, match=r"at step 0 for image\(s\) \[0, 1\]") as info:
        extremal_perturbation(model, random_images(2, 16), 0, [0.2], **OPTIONS)
    assert info.value.images == [0, 1] and info.value.step == 0
    assert isinstance(info.value, UsageError)  # the CLI prints it as one line, exit 2


def test_scores_that_turn_nan_stop_the_run_at_the_next_check():
    model = Breakable()
    with pytest.raises(UnexplainableModelError, match="not finite .* at step 5 ") as info:
        extremal_perturbation(
            model,
            random_images(1, 16),
            0,
            [0.2],
            log_every_n_steps=5,
            callbacks=[BreakAt(model, 3)],
            **OPTIONS,
        )
    assert info.value.step == 5  # checked at the logging interval (no host sync every step)
    assert model.calls_broken == 3  # steps 3, 4, 5: it stopped there, not after max_iter


def test_a_model_that_ignores_its_input_is_refused():
    with pytest.raises(UnexplainableModelError, match="do not change with the mask"):
        extremal_perturbation(Constant(), random_images(2, 16), 1, [0.1, 0.3], **OPTIONS)


class IgnoresClassOne(nn.Module):
    """Class 0 reads the image; class 1's score is a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.net = make_tiny_classifier(num_classes=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(x), torch.zeros(len(x), 1)], 1)


def test_a_pair_whose_score_ignores_the_mask_gets_a_warning_naming_it():
    images = random_images(3, 16)
    with pytest.warns(RuntimeWarning, match=r"pair\(s\) \[1\] \(image\(s\) \[1\] of the batch\)"):
        result = extremal_perturbation(IgnoresClassOne(), images, [0, 1, 0], [0.2], **OPTIONS)
    assert torch.isfinite(result.masks).all()


def test_a_working_model_passes_the_checks_silently(recwarn):
    result = extremal_perturbation(
        make_tiny_classifier(), random_images(2, 16), 0, [0.2], **OPTIONS
    )
    assert torch.isfinite(result.rewards).all()
    assert not [w for w in recwarn if "do not change" in str(w.message)]
