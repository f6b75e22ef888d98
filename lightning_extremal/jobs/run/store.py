"""The one results store of every job (image runs, layer runs, the benchmark): atomic writes,
chunk files keyed by what they depend on, a manifest of the finished ones, and resume."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from ...errors import UsageError
from ...ops.digest import file_digest

#: masks.pt (all masks in one file) is written when a run has at most this many pairs;
#: larger runs keep their masks in the per-chunk files listed in manifest.json.
MERGE_LIMIT = 4096
#: Fields of a chunk record concatenated pair by pair into masks.pt.
MERGED_FIELDS = ("targets", "masks", "rewards", "achieved_areas")


#: What a run writes at the top of its output folder, and the folders it writes in.
RESULT_FILES = ("config.json", "manifest.json", "summary.json", "masks.pt")
RESULT_FOLDERS = (
    "chunks",
    "overlays",
    "mask_evolution",
    "final_overlays",
    "inversions",
    "channels",
    "diff",
    "comparisons",
)
#: Folders of loggers: each run gets new, uniquely named files there (a W&B run id, a CSV
#: version), so files of others in them are never in the way.
LOGGER_FOLDERS = ("wandb", "csv", "tensorboard")
#: The key of a job document (manifest.json, analysis.json) that lists the files it wrote.
LEDGER_KEY = "written"


class Ledger:
    """The files jobs wrote in a folder: relative path → content digest.

    It is the only licence to delete or overwrite: a file is :meth:`owns`-ed when it is
    listed *and* still holds the listed content; anything else in the folder (the user's
    images, notes, a file edited since) is never touched. Jobs keep it in their document
    (``manifest.json`` of runs, ``analysis.json`` of analyses) under :data:`LEDGER_KEY`.
    """

    def __init__(self, root: Path, files: dict[str, str] | None = None) -> None:
        self.root, self.files = Path(root), dict(files or {})
        #: The job documents the ledger was read from (they go with :meth:`clear`).
        self.documents: list[str] = []

    @classmethod
    def read(cls, root: Path, *documents: str) -> Ledger:
        """The union of the ledgers of ``documents`` (file names in ``root``) that exist."""
        ledger = cls(root)
        for name in documents:
            listed = (read_json(Path(root) / name) or {}).get(LEDGER_KEY)
            if isinstance(listed, dict):
                ledger.files.update({str(k): str(v) for k, v in listed.items()})
                ledger.documents.append(name)
        return ledger

    def record(self, *names: str) -> None:
        """List files (relative paths) as written by this job, with their content now."""
        for name in names:
            path = self.root / name
            if path.is_file():
                self.files[name] = file_digest(path)

    def owns(self, name: str) -> bool:
        path = self.root / name
        return name in self.files and path.is_file() and file_digest(path) == self.files[name]

    def remove(self, names) -> list[str]:
        """Delete those of ``names`` this ledger owns (and folders they leave empty); the
        names deleted. Listed files that are gone or were changed are dropped from the list."""
        removed = []
        for name in sorted(set(names)):
            if self.owns(name):
                (self.root / name).unlink()
                removed.append(name)
                _remove_empty_parents(self.root / name, self.root)
            self.files.pop(name, None)
        return removed

    def clear(self) -> list[str]:
        """Delete every file this ledger owns, then the documents that listed them; the
        names deleted."""
        removed = self.remove(list(self.files))
        for name in self.documents:
            (self.root / name).unlink(missing_ok=True)
        removed += self.documents
        self.documents = []
        return removed

    def foreign(self, names) -> list[str]:
        """Files at or under ``names`` (relative paths) that exist and are not owned."""
        found = []
        for name in names:
            path = self.root / name
            files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
            for file in files:
                rel = file.relative_to(self.root).as_posix()
                if file.is_file() and not self.owns(rel) and not is_partial(rel):
                    found.append(rel)
        return found


def _remove_empty_parents(path: Path, root: Path) -> None:
    """Remove the folders above ``path`` up to ``root`` (excluded) that are now empty."""
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:  # not empty
            return


def visible_entries(root: Path) -> list[str]:
    """Names of what a folder holds besides hidden entries (our ``.lock``); none if absent."""
    return (
        sorted(p.name for p in Path(root).iterdir() if not p.name.startswith("."))
        if Path(root).is_dir()
        else []
    )


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is absent, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def refuse_foreign(
    root: Path, found: list[str], what: str, instead: str = "choose another output_dir="
) -> None:
    """Refuse a folder where a job would write over files it did not write."""
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise UsageError(
            f"{root} holds files that lightning-extremal did not write (or that were changed "
            f"since) where {what} writes: {shown}. They are never overwritten: move them, or "
            f"{instead}"
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


#: The end of a half-written file's name (``.<name>.<random>`` + this): the atomic writers
#: write there, then rename; a process killed in between leaves one behind, and the next job
#: into the folder removes it (:func:`remove_partial_files`) instead of refusing it.
PARTIAL = ".lightning-extremal-partial"


def is_partial(name: str) -> bool:
    """Whether a relative path names a half-written file of ours (see :data:`PARTIAL`)."""
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") and base.endswith(PARTIAL)


def remove_partial_files(root: Path, names: list[str]) -> None:
    """Delete the half-written files of killed jobs at or under ``names`` of ``root``."""
    for name in names:
        path = root / name
        if path.is_dir():
            for file in path.rglob(f"*{PARTIAL}"):
                if file.is_file() and is_partial(file.name):
                    file.unlink()


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL)
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
    tmp = path.with_name(f".{path.name}{PARTIAL}")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to a temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{PARTIAL}")
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
    mixed in. ``header`` entries are written at the top of the manifest, and the
    :class:`Ledger` of every file the folder's jobs wrote at its end.
    """

    def __init__(self, root: Path, **header: Any) -> None:
        self.root = Path(root)
        self.header = header
        self.entries: dict[str, dict[str, Any]] = {}
        self.ledger = Ledger(self.root)

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
        self.ledger.record(self.path(name).relative_to(self.root).as_posix())
        self.add(name, record["key"], **entry)
        self.write_manifest()

    def add(self, name: str, key: str, **entry: Any) -> None:
        """List chunk ``name`` (already on disk) in the manifest; written with the next
        :meth:`save` or :meth:`write_manifest` (a resume that skips many chunks rewrites the
        manifest once, not once per chunk)."""
        file = self.path(name).relative_to(self.root).as_posix()
        self.entries[name] = {"file": file, "key": key, **entry}
        self.entries = dict(sorted(self.entries.items()))  # chunk order, whatever ran when

    def write_manifest(self, **extra: Any) -> None:
        manifest = {
            **self.header,
            **extra,
            "chunks": list(self.entries.values()),
            LEDGER_KEY: dict(sorted(self.ledger.files.items())),
        }
        text = json.dumps(manifest, indent=1, default=str)
        atomic_write_text(text, self.root / "manifest.json")

    def records(self) -> list[dict[str, Any]]:
        """The listed chunks' records, in manifest order."""
        return [
            torch.load(self.root / e["file"], weights_only=False, map_location="cpu")
            for e in self.entries.values()
        ]

    def merge_masks(self, order: dict[str, int] | None = None, **extra: Any) -> Path | None:
        """``masks.pt``: the listed chunks' masks and statistics concatenated pair by pair
        (``ids``, :data:`MERGED_FIELDS`) plus ``extra``, pairs in the input order of their
        image ids (``order``: id → position; else chunk order); not written past
        :data:`MERGE_LIMIT` pairs or when no chunk holds masks."""
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
        ids = [i for r in parts for i in r["ids"]]
        rank = sorted(range(len(ids)), key=lambda p: (order or {}).get(ids[p], 0))
        merged = {"ids": [ids[p] for p in rank]}
        merged.update({f: torch.cat([r[f] for r in parts])[rank] for f in MERGED_FIELDS})
        path = self.root / "masks.pt"
        atomic_save({**merged, **extra}, path)
        self.ledger.record("masks.pt")
        return path
