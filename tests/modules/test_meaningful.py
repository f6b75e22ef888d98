"""MeaningfulPerturbationModule (modules/meaningful): what it trains and what it minimises."""

from __future__ import annotations

import torch

from lightning_extremal.config import MeaningfulConfig
from lightning_extremal.modules.meaningful import MeaningfulPerturbationModule
from lightning_extremal.ops.frozen import frozen
from lightning_extremal.ops.meaningful import l1_term, total_variation
from lightning_extremal.ops.perturbation import gaussian_blur


def test_only_the_masks_train_and_the_loss_is_the_objective(tiny_classifier, small_images):
    config = MeaningfulConfig(l1_coeffs=[1e-3, 1e-2], grid=5, max_iter=3, blur_sigma=3.0)
    targets, index = torch.tensor([2, 0]), torch.tensor([1, 0])
    with frozen(tiny_classifier):
        module = MeaningfulPerturbationModule(tiny_classifier, small_images, targets, index, config)
        trainable = [n for n, p in module.named_parameters() if p.requires_grad]
        assert trainable == ["mask_params"]
        assert module.mask_params.shape == (4, 1, 5, 5)  # P·K masks, pair-major
        assert not any(k.startswith("classifier.") for k in module.state_dict())
        with torch.no_grad():
            module.mask_params.uniform_(0, 1, generator=torch.Generator().manual_seed(0))
        terms = module.objective()
        m = torch.nn.functional.interpolate(
            module.mask_params, size=(40, 40), mode="bilinear", align_corners=False
        )
        x = small_images[[1, 1, 0, 0]]
        blur = gaussian_blur(x, 3.0)
        probs = tiny_classifier(m * x + (1 - m) * blur).softmax(1)
        score = probs[torch.arange(4), torch.tensor([2, 2, 0, 0])]
    coeff = torch.tensor([1e-3, 1e-2, 1e-3, 1e-2])
    torch.testing.assert_close(terms["score"], score)
    torch.testing.assert_close(terms["l1"], coeff * l1_term(m))
    torch.testing.assert_close(terms["tv"], 1e-2 * total_variation(m, 3.0))
    torch.testing.assert_close(terms["loss"], score + coeff * l1_term(m) + terms["tv"])
    torch.testing.assert_close(terms["deleted_area"], (1 - m).flatten(1).mean(1))
