"""The baseline saliency methods (evaluation/baselines)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_extremal.evaluation import baselines
from lightning_extremal.ops import pointing
from tests.helpers import BoxModel, TinyNet, box_scene
from tests.helpers import assert_model_unchanged as _assert_same
from tests.helpers import model_state as _state


@pytest.mark.parametrize(
    "method",
    [  # extremal perturbation is an optimisation: seconds, not milliseconds
        pytest.param(m, marks=pytest.mark.slow) if m == "extremal_perturbation" else m
        for m in baselines.METHODS
    ],
)
def test_every_baseline_finite_and_restores_the_model(method):
    model = TinyNet(6)
    model.train()  # left in train mode on purpose: it must come back so
    model.features[0].weight.requires_grad_(False)
    before = _state(model)
    images = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    options = {
        "extremal_perturbation": {"max_iter": 2},
        "extremal_perturbation_uniform": {"max_iter": 2},
        "meaningful_perturbation": {"max_iter": 2},
        "rise": {"num_masks": 20},
    }
    out = baselines.saliency(method, model, images, [1, 4], **options.get(method, {}))
    assert out.shape == (2, 32, 40)
    assert torch.isfinite(out).all()
    _assert_same(model, before)


def test_gradient_of_linear_model_is_its_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 5, 4))
    images = torch.rand(2, 3, 6, 5)
    out = baselines.gradient_saliency(model, images, [1, 3])
    weight = model[1].weight.detach().view(4, 3, 6, 5)
    assert torch.allclose(out[0], weight[1].abs().amax(0))
    assert torch.allclose(out[1], weight[3].abs().amax(0))


class TwoLayer(nn.Module):
    """x (1×2×2) → Identity (the read-out layer) → Conv 2×2 (2 units) → ReLU → Linear(2, 2)."""

    def __init__(self, w1: list[list[float]], w2: list[list[float]]) -> None:
        super().__init__()
        self.input = nn.Identity()
        self.hidden = nn.Conv2d(1, 2, 2, bias=False)
        self.relu = nn.ReLU()
        self.classifier = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor(w1).view(2, 1, 2, 2))
            self.classifier.weight.copy_(torch.tensor(w2))

    def forward(self, x):
        return self.classifier(self.relu(self.hidden(self.input(x))).flatten(1))


def _mwp_by_hand(x, w1, w2_row):
    """p_h = h⊙w⁺/Σ h⊙w⁺; p_x,i = Σ_j x_i w1⁺_ji / (Σ_k x_k w1⁺_jk) · p_h,j."""
    x, w1, w2_row = torch.tensor(x), torch.tensor(w1), torch.tensor(w2_row)
    h = (w1 @ x).clamp(min=0)
    top = h * w2_row.clamp(min=0)
    p_h = top / top.sum()
    w1p = w1.clamp(min=0)
    return ((x[None] * w1p) / (w1p @ x)[:, None] * p_h[:, None]).sum(0)


def test_mwp_matches_a_hand_computation():
    w1 = [[1.0, 2.0, 0.5, 1.0], [0.2, 0.1, 3.0, 1.0]]
    w2 = [[1.0, 3.0], [2.0, 0.5]]
    model = TwoLayer(w1, w2).eval()
    x = [0.5, 1.0, 2.0, 0.25]
    image = torch.tensor(x).view(1, 1, 2, 2)
    out = baselines.excitation_backprop_saliency(model, image, [0], layer="input")
    expected = _mwp_by_hand(x, w1, w2[0]).view(2, 2)
    assert torch.allclose(out[0], expected, atol=1e-6)
    assert out.sum() == pytest.approx(1.0, abs=1e-6)  # MWP conserves the probability mass


def test_cmwp_matches_a_hand_computation():
    w1 = [[1.0, 2.0, 0.5, 1.0], [0.2, 0.1, 3.0, 1.0]]
    w2 = [[1.0, -3.0], [2.0, 0.5]]
    model = TwoLayer(w1, w2).eval()
    x = [0.5, 1.0, 2.0, 0.25]
    image = torch.tensor(x).view(1, 1, 2, 2)
    out = baselines.contrastive_excitation_backprop_saliency(
        model, image, [0], layer="input", contrast_layer="relu", classifier_layer="classifier"
    )
    # Target: w2⁺ = [1, 0] → p_h = [1, 0]; dual: (−w2)⁺ = [0, 3] → p_h = [0, 1].
    xt, w1t = torch.tensor(x), torch.tensor(w1)
    share = (xt[None] * w1t) / (w1t @ xt)[:, None]  # row j: x_i w_ji / Σ_k x_k w_jk
    expected = (share[0] - share[1]).clamp(min=0).view(2, 2)
    assert torch.allclose(out[0], expected, atol=1e-6)


def test_mwp_matches_torchray_oracle():
    pytest.importorskip("torchray")
    from torchray.attribution.excitation_backprop import (
        contrastive_excitation_backprop,
        excitation_backprop,
    )

    model = TinyNet(6).eval()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ours = baselines.excitation_backprop_saliency(model, image, [2], layer="features.2")
    theirs = excitation_backprop(model, image, 2, saliency_layer="features.2", resize=(32, 32))
    assert torch.allclose(ours, theirs[:, 0], atol=1e-6)
    ours = baselines.contrastive_excitation_backprop_saliency(
        model, image, [2], layer="features.2", contrast_layer="pool"
    )
    theirs = contrastive_excitation_backprop(
        model, image, 2, saliency_layer="features.2", contrast_layer="pool", resize=(32, 32)
    )
    assert torch.allclose(ours, theirs[:, 0], atol=1e-6)


def test_automatic_layers():
    model = TinyNet(6).eval()
    layers = baselines.resolve_layers(model, torch.rand(1, 3, 32, 32))
    assert layers.grad_cam == "features.4"  # the last conv's ReLU
    assert layers.saliency == "features.4"  # the first ReLU at the Grad-CAM map's size
    assert layers.contrast == "pool" and layers.classifier == "classifier"
    with pytest.raises(ValueError, match="not a module"):
        baselines.resolve_layers(model, torch.rand(1, 3, 32, 32), saliency="nope")


class SoftBoxModel(BoxModel):
    """BoxModel with class 0's logit scaled into the softmax's unsaturated range."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        return torch.stack([0.3 * logits[:, 0] - 1.5, logits[:, 1]], 1)


def test_grad_cam_and_rise_find_the_evidence():
    size, box = 32, (4, 18, 8, 10)  # top, left, height, width
    model = nn.Sequential(
        nn.Conv2d(3, 1, 1, bias=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(1, 2, bias=False),
    )
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[4].weight.copy_(torch.tensor([[1.0], [-1.0]]))
    image = box_scene(size, box)
    cam = baselines.grad_cam_saliency(model, image, [0])[0]
    feature = image[0].sum(0)  # Grad-CAM of a linear read-out ∝ the feature map
    assert torch.allclose(cam / cam.max(), feature / feature.max(), atol=1e-5)
    rise = baselines.rise_saliency(SoftBoxModel(size, box), image, [0], num_masks=300)[0]
    row, col = pointing.saliency_point(rise)
    assert 4 <= row < 12 and 18 <= col < 28
    # Same seeded masks for every image: batching does not change the maps.
    pair = torch.cat([image, image.flip(-1)])
    both = baselines.rise_saliency(BoxModel(size, box), pair, [0, 1], num_masks=50)
    alone = baselines.rise_saliency(BoxModel(size, box), pair[1:], [1], num_masks=50)
    assert torch.allclose(both[1], alone[0], atol=1e-6)


def test_center_and_method_names():
    out = baselines.center_saliency(None, torch.zeros(1, 3, 9, 12), [0])
    assert pointing.saliency_point(out[0]) == (4, 5)
    assert baselines.method_name("ep") == "extremal_perturbation"
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        baselines.method_name("nope")


def test_mwp_restores_resnet_blocks():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(num_classes=3).eval()
    before = _state(model)
    out = baselines.excitation_backprop_saliency(model, torch.rand(1, 3, 64, 64), [1])
    assert out.shape == (1, 64, 64) and torch.isfinite(out).all()
    _assert_same(model, before)
