"""The one results store of every job (image runs, layer runs, the benchmark): atomic writes,
chunk files keyed by what they depend on, a manifest of the finished ones, and resume."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError

#: masks.pt (all masks in one file) is written when a run has at most this many pairs;
#: larger runs keep their masks in the per-chunk files listed in manifest.json.
MERGE_LIMIT = 4096
#: Fields of a chunk record concatenated pair by pair into masks.pt.
MERGED_FIELDS = ("targets", "masks", "rewards", "achieved_areas")


#: What jobs write in their output folder: what ``--overwrite`` clears (nothing else).
RESULT_FILES = ("config.json", "manifest.json", "summary.json", "masks.pt", "report.html")
RESULT_FOLDERS = (
    "chunks",
    "overlays",
    "mask_evolution",
    "final_overlays",
    "inversions",
    "channels",
    "diff",
    "comparisons",
    "wandb",
    "csv",
    "tensorboard",
)


class FolderLock:
    """An exclusive OS lock on an output folder (``flock`` on ``<folder>/.lock``), held while
    a job writes there and released by the kernel when its process ends, however it ends: a
    second job into the folder is refused at once, naming the holder's PID."""

    def __init__(self, root: Path) -> None:
        self.root, self.fd = Path(root), None

    def __enter__(self) -> FolderLock:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(
                f"{self.root} is in use by another lightning-extremal job (PID {holder}): wait "
                "for it to finish, or choose another output_dir="
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def clear_results(root: Path, also: tuple[str, ...] = ()) -> list[str]:
    """Remove what jobs write in ``root`` (:data:`RESULT_FILES`, :data:`RESULT_FOLDERS`, and
    the files or folders named in ``also``), leaving anything else; the names removed."""
    removed = []
    for name in (*RESULT_FILES, *RESULT_FOLDERS, *also):
        path = Path(root) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


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
    """Write ``text`` to a temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to a temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def content_key(payload: dict[str, Any]) -> str:
    """A short hash of everything a chunk's results depend on (JSON, sorted keys)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultsStore:
    """A job's results on disk: ``chunks/<name>.pt`` files, each holding the ``key`` of what
    it depends on, and ``manifest.json`` listing the finished chunks in order.

    Every write is atomic, so a job killed at any point leaves only whole files. A rerun finds
    each finished chunk by name and key (:meth:`load`) and does not compute it again; a chunk
    file with another key (other settings or images) or a damaged one is computed again, never
    mixed in. ``header`` entries are written at the top of the manifest.
    """

    def __init__(self, root: Path, **header: Any) -> None:
        self.root = Path(root)
        self.header = header
        self.entries: dict[str, dict[str, Any]] = {}

    def path(self, name: str) -> Path:
        return self.root / "chunks" / f"{name}.pt"

    def load(self, name: str, key: str) -> dict[str, Any] | None:
        """The record of chunk ``name`` if its file is on disk and holds ``key``, else None."""
        path = self.path(name)
        if not path.is_file():
            return None
        try:
            record = torch.load(path, weights_only=False, map_location="cpu")
        except Exception as error:  # a damaged or foreign file is computed again, not fatal
            warnings.warn(
                f"ignoring unreadable chunk {path}: {error}", RuntimeWarning, stacklevel=2
            )
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def save(self, name: str, record: dict[str, Any], **entry: Any) -> None:
        """Write a finished chunk (``record`` holds its ``key``) and list it in the manifest
        with ``entry`` (e.g. its summary rows); the manifest is rewritten at once."""
        atomic_save(record, self.path(name))
        self.add(name, record["key"], **entry)
        self.write_manifest()

    def add(self, name: str, key: str, **entry: Any) -> None:
        """List chunk ``name`` (already on disk) in the manifest; written with the next
        :meth:`save` or :meth:`write_manifest` (a resume that skips many chunks rewrites the
        manifest once, not once per chunk)."""
        file = self.path(name).relative_to(self.root).as_posix()
        self.entries[name] = {"file": file, "key": key, **entry}

    def write_manifest(self, **extra: Any) -> None:
        manifest = {**self.header, **extra, "chunks": list(self.entries.values())}
        text = json.dumps(manifest, indent=1, default=str)
        atomic_write_text(text, self.root / "manifest.json")

    def records(self) -> list[dict[str, Any]]:
        """The listed chunks' records, in manifest order."""
        return [
            torch.load(self.root / e["file"], weights_only=False, map_location="cpu")
            for e in self.entries.values()
        ]

    def merge_masks(self, **extra: Any) -> Path | None:
        """``masks.pt``: the listed chunks' masks and statistics concatenated pair by pair
        (``ids``, :data:`MERGED_FIELDS`) plus ``extra``; not written past :data:`MERGE_LIMIT`
        pairs or when no chunk holds masks."""
        pairs = sum(len(e.get("ids", ())) for e in self.entries.values())
        if pairs > MERGE_LIMIT:
            print(
                f"lightning-extremal: {pairs} pairs > {MERGE_LIMIT}: no masks.pt, the masks stay "
                "in the chunk files listed in manifest.json",
                flush=True,
            )
            return None
        parts = [r for r in self.records() if "masks" in r]
        if not parts:
            return None
        merged = {"ids": [i for r in parts for i in r["ids"]]}
        merged.update({f: torch.cat([r[f] for r in parts]) for f in MERGED_FIELDS})
        path = self.root / "masks.pt"
        atomic_save({**merged, **extra}, path)
        return path
