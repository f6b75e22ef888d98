"""Short content hashes of tensors and files: what a results key is made of."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

#: Bytes read at a time when hashing a file.
BLOCK = 1 << 20


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A short hash of tensors' dtypes, shapes and values (any dtype, any device)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{flat.dtype}{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """A short hash of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()[:16]
