"""One naming rule for (image, target) pairs, class names and file-safe names, used by the
jobs, the report and the observing callbacks alike."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence


def safe_name(name: str) -> str:
    """A name usable as a file name and a W&B key component."""
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", str(name)).strip("_") or "unnamed"


def class_name(classes: Sequence[str] | None, target: int) -> str:
    """The name of class ``target`` in ``classes``, or the id itself when there is none."""
    return str(classes[target]) if classes and 0 <= target < len(classes) else str(target)


def pair_names(image_ids: Sequence[str], targets: Sequence[int]) -> list[str]:
    """The name of each (image, target) pair, given pair by pair: the image id, plus
    ``_<target>`` when the image has several pairs. Names overlays, figures, W&B keys and
    report sections."""
    pairs_per_image = Counter(image_ids)
    return [
        i if pairs_per_image[i] == 1 else f"{i}_{t}"
        for i, t in zip(image_ids, targets, strict=True)
    ]


def bounded_text(value: float | None, bound: str | None, areas: Sequence[float]) -> str:
    """An area as printed: ``≤ 0.01`` (upper bound), ``> 0.5`` (not reached), else ``0.158``."""
    if bound == "upper":
        return f"≤ {areas[0]:.3g}"
    if bound == "lower":
        return f"> {areas[-1]:.3g}"
    return "—" if value is None or math.isnan(value) else f"{value:.3g}"


def duration_words(seconds: float) -> str:
    """A duration for a person: ``45 s``, ``4 min``, ``1.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
