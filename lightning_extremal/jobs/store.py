"""The results store of a job: atomic writes and chunk files keyed by what they depend on."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def chunk_key(cfg: RunConfig, ids: list[str], **extra: Any) -> str:
    """Hash of what a chunk's results depend on: method, model, data, seed, precision, the
    image ids, and ``extra`` settings of the job kind (e.g. the inversion of layer runs)."""
    payload = json.dumps(
        {
            "method": asdict(cfg.method),
            "model": asdict(cfg.model),
            "data": asdict(cfg.data),
            "trainer": {"seed": cfg.trainer.seed, "precision": cfg.trainer.precision},
            "ids": ids,
            **extra,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_chunk(path: Path, key: str) -> dict[str, Any] | None:
    """A chunk file's contents if it is on disk and holds this key, else None."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, weights_only=False, map_location="cpu")
    except (RuntimeError, OSError, EOFError):  # a foreign or damaged file: redo the chunk
        return None
    return saved if isinstance(saved, dict) and saved.get("key") == key else None


def finished_chunk(path: Path, key: str) -> dict[str, Any] | None:
    """The manifest entry of a chunk already on disk with this key, else None."""
    saved = load_chunk(path, key)
    if saved is None or "rows" not in saved:
        return None
    return manifest_entry(path, saved)


def manifest_entry(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": f"chunks/{path.name}",
        "key": record["key"],
        "ids": record["ids"],
        "rows": record["rows"],
    }
