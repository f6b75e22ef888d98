"""Synthetic shapes: a deterministic image dataset with exact ground-truth object masks.

Each image shows one big *main* object (or, with ``multi_object=True``, 2–3 big objects of
distinct classes) on a textured, cluttered background, plus 0–2 small *distractor* objects of
other classes. The label is the **shape** of the main object; colours and textures are random
and independent of the class, so a classifier has to recognise shapes. Because every pixel is
drawn here, the exact visible pixels of every object are known — the ground truth against which
attribution methods such as extremal perturbations can be scored.

Everything is a pure function of ``(seed, index)``: ``render_sample(i, seed=s)`` draws from
``np.random.default_rng([s, i])`` and returns identical tensors on every call and machine.
Pixel values are quantised to multiples of 1/255, so a PNG round trip is exact.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "star", "ring")

MIN_SIZE = 32  # smallest supported image side (pixels)
DEFAULT_SIZE = 128

# Object scale = diameter of the shape's circumscribed circle, as a fraction of the image side.
MAIN_SCALE_RANGE = (0.30, 0.45)
DISTRACTOR_SCALE_RANGE = (0.10, 0.17)
MULTI_SCALE_RANGES = {2: (0.30, 0.45), 3: (0.30, 0.38)}  # keyed by object count (must fit)
MAX_DISTRACTORS = 2
MULTI_OBJECT_COUNTS = (2, 3)
MIN_GAP = 0.02  # free space between circumscribed circles of two objects (fraction of side)
PLACEMENT_TRIES = 60  # random centre proposals per object before giving up
LAYOUT_SHRINK = 0.93  # multi-object layouts that do not fit are retried this much smaller
LAYOUT_RETRIES = 20

# Shape geometry (unit circumradius).
RING_INNER_RADIUS = 0.55
STAR_INNER_RADIUS = 0.45
STAR_POINTS = 5
CROSS_HALF_WIDTH = 0.34  # half the arm width, before normalising the circumradius to 1

# Background.
NOISE_GRID_RANGE = (3, 7)  # side of the low-resolution noise grid that is upsampled
NOISE_TINT = 0.15  # amplitude of the per-channel smooth colour variation
MAX_BANDS = 2  # stripe/checker bands spanning the image (never closed shapes)
BAND_WIDTH_RANGE = (0.08, 0.30)
BAND_ALPHA_RANGE = (0.30, 0.65)
PATTERN_PERIOD_RANGE = (3.0, 10.0)  # pixels
STROKE_COUNT_RANGE = (2, 7)
STROKE_POINTS_RANGE = (2, 5)
STROKE_WIDTH_RANGE = (1, 4)
BLOB_COUNT_RANGE = (0, 4)
BLOB_LENGTH_RANGE = (0.08, 0.25)  # long axis, fraction of side
BLOB_MIN_ASPECT = 2.5  # blobs are elongated ellipses, never circles

# Object fill.
FILL_STYLES = ("solid", "gradient", "stripes", "noise")
MIN_CONTRAST = 0.30  # min RGB distance between an object's mean colour and the background
COLOUR_TRIES = 12
STRIPE_CONTRAST_RANGE = (0.25, 0.6)
NOISE_FILL_AMPLITUDE = 0.25


@dataclass(frozen=True, eq=False)
class SyntheticSample:
    """One rendered image with its ground truth.

    ``image`` 3×S×S float32 in [0, 1]; ``labels`` class ids of the main object(s), primary
    first; ``masks`` K×S×S bool (exact visible pixels, same order as ``labels``); ``boxes``
    K×4 int64 ``(x0, y0, x1, y1)``, ``x1``/``y1`` exclusive; ``distractor_labels`` and
    ``distractor_masks`` (D×S×S bool, D may be 0) for the small objects of other classes.
    """

    image: torch.Tensor
    labels: tuple[int, ...]
    masks: torch.Tensor
    boxes: torch.Tensor
    distractor_labels: tuple[int, ...]
    distractor_masks: torch.Tensor

    @property
    def label(self) -> int:
        """The primary label, ``labels[0]``."""
        return self.labels[0]


@dataclass(frozen=True)
class _Placed:
    """An object's class, centre ``(cx, cy)`` and circumradius ``r`` in pixels."""

    label: int
    cx: float
    cy: float
    r: float


def _check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an int (not bool) ``≥ minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool, else raise ValueError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


@functools.lru_cache(maxsize=32)
def _upsample_matrix(size: int, grid: int) -> np.ndarray:
    """Linear-interpolation matrix W (size×grid): ``W @ low @ W.T`` upsamples a grid×grid map."""
    pos = np.linspace(0.0, grid - 1.0, size)
    lo = np.clip(np.floor(pos).astype(int), 0, grid - 2)
    frac = pos - lo
    weights = np.zeros((size, grid))
    weights[np.arange(size), lo] = 1.0 - frac
    weights[np.arange(size), lo + 1] = frac
    return weights


@functools.lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(xs, ys)``, each S×S float64 (x = column, y = row)."""
    coords = np.arange(size, dtype=np.float64)
    return np.meshgrid(coords, coords)


def _smooth_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """S×S smooth noise in [0, 1]: a random grid×grid map, bilinearly upsampled."""
    grid = int(rng.integers(NOISE_GRID_RANGE[0], NOISE_GRID_RANGE[1] + 1))
    weights = _upsample_matrix(size, grid)
    return weights @ rng.random((grid, grid)) @ weights.T


def _pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    """S×S binary pattern (stripes at a random angle, or a checkerboard) as float 0/1."""
    xs, ys = _pixel_grid(size)
    period = rng.uniform(*PATTERN_PERIOD_RANGE)
    angle = rng.uniform(0.0, math.pi)
    u = xs * math.cos(angle) + ys * math.sin(angle)
    if rng.random() < 0.5:
        return (np.floor(u / period) % 2).astype(np.float64)
    v = -xs * math.sin(angle) + ys * math.cos(angle)
    return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float64)


def _add_bands(rng: np.random.Generator, canvas: np.ndarray) -> None:
    """Blend 0–MAX_BANDS stripe/checker bands that span the whole image into ``canvas``."""
    size = canvas.shape[0]
    for _ in range(int(rng.integers(0, MAX_BANDS + 1))):
        width = int(size * rng.uniform(*BAND_WIDTH_RANGE))
        start = int(rng.integers(0, size - width + 1))
        window = np.zeros((size, size), dtype=bool)
        if rng.random() < 0.5:
            window[start : start + width, :] = True
        else:
            window[:, start : start + width] = True
        pattern = _pattern(rng, size)[..., None]
        texture = rng.random(3) * (1 - pattern) + rng.random(3) * pattern
        alpha = rng.uniform(*BAND_ALPHA_RANGE)
        canvas[window] = (1 - alpha) * canvas[window] + alpha * texture[window]


def _draw_clutter(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Draw random polyline strokes and elongated ellipse blobs on ``canvas`` (S×S×3 float)."""
    size = canvas.shape[0]
    image = Image.fromarray(np.round(canvas * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(*STROKE_COUNT_RANGE))):
        points = rng.uniform(0, size, size=(int(rng.integers(*STROKE_POINTS_RANGE)), 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        width = int(rng.integers(*STROKE_WIDTH_RANGE))
        draw.line([tuple(p) for p in points], fill=colour, width=width, joint="curve")
    for _ in range(int(rng.integers(*BLOB_COUNT_RANGE))):
        draw.polygon(_blob_polygon(rng, size), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return np.asarray(image, dtype=np.float64) / 255.0


def _blob_polygon(rng: np.random.Generator, size: int) -> list[tuple[float, float]]:
    """Vertices of a rotated ellipse with aspect ratio ≥ BLOB_MIN_ASPECT (never a circle)."""
    length = size * rng.uniform(*BLOB_LENGTH_RANGE) / 2
    minor = length / rng.uniform(BLOB_MIN_ASPECT, 2 * BLOB_MIN_ASPECT)
    cx, cy, angle = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, math.pi)
    t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    x, y = length * np.cos(t), minor * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + c * a - s * b, cy + s * a + c * b) for a, b in zip(x, y, strict=True)]


def render_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """S×S×3 float background: two-colour smooth noise + tint + bands + clutter strokes/blobs."""
    field = _smooth_noise(rng, size)[..., None]
    low, high = rng.random(3), rng.random(3)
    canvas = low * (1 - field) + high * field
    tint = np.stack([_smooth_noise(rng, size) for _ in range(3)], axis=-1)
    canvas = np.clip(canvas + NOISE_TINT * (2 * tint - 1), 0.0, 1.0)
    _add_bands(rng, canvas)
    return _draw_clutter(rng, canvas)


def _unit_polygon(label: int, angle: float) -> np.ndarray:
    """V×2 vertices of a polygonal class shape with circumradius 1, rotated by ``angle``."""
    name = CLASSES[label]
    if name == "square":
        t = angle + np.arange(4) * math.pi / 2
        points = np.stack([np.cos(t), np.sin(t)], axis=1)
    elif name == "triangle":
        t = angle + np.arange(3) * 2 * math.pi / 3
        points = np.stack([np.cos(t), np.sin(t)], axis=1)
    elif name == "star":
        t = angle + np.arange(2 * STAR_POINTS) * math.pi / STAR_POINTS
        radius = np.where(np.arange(2 * STAR_POINTS) % 2 == 0, 1.0, STAR_INNER_RADIUS)
        points = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    elif name == "cross":
        w = CROSS_HALF_WIDTH
        arm = np.array([[1, -w], [1, w], [w, w]])
        quarter = np.array([[0, -1], [1, 0]])  # rotation by +90°
        parts = [arm @ np.linalg.matrix_power(quarter, k).T for k in range(4)]
        points = np.concatenate(parts) / math.hypot(1, w)
        c, s = math.cos(angle), math.sin(angle)
        points = points @ np.array([[c, s], [-s, c]])
    else:
        raise ValueError(f"{name!r} is not a polygonal class")
    return points


def draw_shape_mask(
    label: int, cx: float, cy: float, r: float, angle: float, size: int
) -> np.ndarray:
    """S×S bool mask of class ``label`` centred at ``(cx, cy)``, circumradius ``r`` pixels.

    Circles and rings are round (ring hole radius ``RING_INNER_RADIUS·r``); the other shapes
    are polygons rotated by ``angle`` radians.
    """
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    name = CLASSES[label]
    if name in ("circle", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if name == "ring":
            inner = RING_INNER_RADIUS * r
            draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    else:
        points = _unit_polygon(label, angle) * r + np.array([cx, cy])
        draw.polygon([tuple(p) for p in points], fill=255)
    return np.asarray(image) > 0


def _random_colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random base colour and a second colour offset from it (for 2-colour textures)."""
    base = rng.random(3)
    offset = rng.uniform(*STRIPE_CONTRAST_RANGE) * rng.choice([-1.0, 1.0], size=3)
    return base, np.clip(base + offset, 0.0, 1.0)


def _fill_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """S×S×3 object texture: solid, linear gradient, stripes/checker or smooth-noise modulated."""
    style = FILL_STYLES[int(rng.integers(len(FILL_STYLES)))]
    base, other = _random_colour_pair(rng)
    if style == "solid":
        return np.broadcast_to(base, (size, size, 3))
    if style == "gradient":
        xs, ys = _pixel_grid(size)
        angle = rng.uniform(0, 2 * math.pi)
        u = (xs * math.cos(angle) + ys * math.sin(angle)) / size
        u = ((u - u.min()) / (u.max() - u.min()))[..., None]
        return base * (1 - u) + other * u
    if style == "stripes":
        pattern = _pattern(rng, size)[..., None]
        return base * (1 - pattern) + other * pattern
    noise = _smooth_noise(rng, size)[..., None]
    return np.clip(base + NOISE_FILL_AMPLITUDE * (2 * noise - 1), 0.0, 1.0)


def _paint_object(rng: np.random.Generator, canvas: np.ndarray, mask: np.ndarray) -> None:
    """Paint a random texture into ``canvas[mask]`` whose mean colour contrasts with what it covers.

    Contrast: ``‖mean texture − mean background‖₂ ≥ MIN_CONTRAST`` over the mask; after
    ``COLOUR_TRIES`` failures the texture is shifted towards the complementary colour.
    """
    size = canvas.shape[0]
    covered = canvas[mask].mean(axis=0)
    for _ in range(COLOUR_TRIES):
        texture = _fill_texture(rng, size)[mask]
        if np.linalg.norm(texture.mean(axis=0) - covered) >= MIN_CONTRAST:
            break
    else:
        shift = (1.0 - covered) - texture.mean(axis=0)
        texture = np.clip(texture + shift, 0.0, 1.0)
    canvas[mask] = texture


def _propose(
    rng: np.random.Generator, label: int, r: float, size: int, placed: list[_Placed], gap: float
) -> _Placed | None:
    """A centre whose circumscribed circle lies inside the image and ``gap`` away from ``placed``."""
    for _ in range(PLACEMENT_TRIES):
        cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
        if all(math.hypot(cx - p.cx, cy - p.cy) >= r + p.r + gap for p in placed):
            return _Placed(label, float(cx), float(cy), r)
    return None


def _layout_multi(rng: np.random.Generator, size: int) -> list[_Placed]:
    """2–3 main-size objects of distinct classes with disjoint circumscribed circles.

    If a layout does not fit, it is retried with all radii shrunk by ``LAYOUT_SHRINK``.
    """
    count = int(rng.choice(MULTI_OBJECT_COUNTS))
    labels = rng.permutation(len(CLASSES))[:count]
    radii = rng.uniform(*MULTI_SCALE_RANGES[count], size=count) * size / 2
    gap = MIN_GAP * size
    for attempt in range(LAYOUT_RETRIES):
        placed: list[_Placed] = []
        for label, r in zip(labels, radii * LAYOUT_SHRINK**attempt, strict=True):
            obj = _propose(rng, int(label), float(r), size, placed, gap)
            if obj is None:
                break
            placed.append(obj)
        if len(placed) == count:
            return placed
    raise RuntimeError(f"could not lay out {count} objects in a {size}px image")


def _layout_single(rng: np.random.Generator, size: int) -> tuple[list[_Placed], list[_Placed]]:
    """One main object plus 0–MAX_DISTRACTORS smaller objects of other, distinct classes.

    Distractors that find no free spot in ``PLACEMENT_TRIES`` proposals are dropped.
    """
    label = int(rng.integers(len(CLASSES)))
    r = rng.uniform(*MAIN_SCALE_RANGE) * size / 2
    gap = MIN_GAP * size
    main = _propose(rng, label, float(r), size, [], gap)
    if main is None:  # unreachable: an empty image always has room
        raise RuntimeError(f"could not place the main object in a {size}px image")
    others = [c for c in rng.permutation(len(CLASSES)) if c != label]
    distractors: list[_Placed] = []
    for d_label in others[: int(rng.integers(0, MAX_DISTRACTORS + 1))]:
        d_r = rng.uniform(*DISTRACTOR_SCALE_RANGE) * size / 2
        obj = _propose(rng, int(d_label), float(d_r), size, [main, *distractors], gap)
        if obj is not None:
            distractors.append(obj)
    return [main], distractors


def _draw_objects(
    rng: np.random.Generator, canvas: np.ndarray, objects: list[_Placed]
) -> np.ndarray:
    """Paint ``objects`` into ``canvas``; returns their masks, K×S×S bool (0×S×S if none)."""
    size = canvas.shape[0]
    masks = np.zeros((len(objects), size, size), dtype=bool)
    for k, obj in enumerate(objects):
        angle = rng.uniform(0, 2 * math.pi)
        masks[k] = draw_shape_mask(obj.label, obj.cx, obj.cy, obj.r, angle, size)
        _paint_object(rng, canvas, masks[k])
    return masks


def _boxes_np(masks: np.ndarray) -> np.ndarray:
    """Tight boxes of K×H×W bool masks → K×4 int64 ``(x0, y0, x1, y1)``; empty masks → zeros."""
    boxes = np.zeros((masks.shape[0], 4), dtype=np.int64)
    for k, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(cols):
            boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes of K×H×W bool masks → K×4 int64 ``(x0, y0, x1, y1)``, x1/y1 exclusive.

    An empty mask gets the box ``(0, 0, 0, 0)``.
    """
    return torch.from_numpy(_boxes_np(masks.detach().cpu().numpy().astype(bool)))


def render_sample(
    index: int, *, seed: int = 0, size: int = DEFAULT_SIZE, multi_object: bool = False
) -> SyntheticSample:
    """Render image ``index`` of the stream ``seed``; a pure function of all four arguments.

    Randomness: ``np.random.default_rng([seed, index])``. The main object's circumradius is
    ``U(MAIN_SCALE_RANGE)·size/2``, distractors' ``U(DISTRACTOR_SCALE_RANGE)·size/2``; objects
    never overlap (their circumscribed circles are ``MIN_GAP·size`` apart), so each mask is
    the object's exact visible pixels.
    """
    index = _check_int("index", index, 0)
    seed = _check_int("seed", seed, 0)
    size = _check_int("size", size, MIN_SIZE)
    multi_object = _check_bool("multi_object", multi_object)
    rng = np.random.default_rng([seed, index])
    canvas = render_background(rng, size)
    if multi_object:
        mains, distractors = _layout_multi(rng, size), []
    else:
        mains, distractors = _layout_single(rng, size)
    masks = _draw_objects(rng, canvas, mains)
    distractor_masks = _draw_objects(rng, canvas, distractors)
    # Quantise to 1/255 steps (exact PNG round trip); numpy, not torch, keeps this single-threaded.
    pixels = np.round(canvas * 255).astype(np.uint8).transpose(2, 0, 1)
    return SyntheticSample(
        image=torch.from_numpy(pixels.astype(np.float32) / np.float32(255)),
        labels=tuple(o.label for o in mains),
        masks=torch.from_numpy(masks),
        boxes=torch.from_numpy(_boxes_np(masks)),
        distractor_labels=tuple(o.label for o in distractors),
        distractor_masks=torch.from_numpy(distractor_masks),
    )


def render_uint8(
    start: int, stop: int, seed: int = 0, size: int = DEFAULT_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Single-object images ``start…stop−1`` of ``seed`` as (uint8 N×3×S×S, int64 N labels).

    Compact form for pre-rendering training sets; ``image = uint8 / 255`` exactly.
    """
    samples = [render_sample(i, seed=seed, size=size) for i in range(start, stop)]
    images = np.zeros((len(samples), 3, size, size), dtype=np.uint8)
    for k, sample in enumerate(samples):
        images[k] = np.round(sample.image.numpy() * 255).astype(np.uint8)
    return images, np.array([s.label for s in samples], dtype=np.int64)


class SyntheticShapes(torch.utils.data.Dataset):
    """``num_images`` images of the stream ``seed``; item ``i`` is ``render_sample(i, ...)``.

    ``dataset[i]`` → ``(image 3×S×S float32, primary label int)``; ``dataset.sample(i)`` → the
    full :class:`SyntheticSample`. Images are rendered on access (a few ms each).
    """

    def __init__(
        self,
        num_images: int,
        *,
        seed: int = 0,
        size: int = DEFAULT_SIZE,
        multi_object: bool = False,
    ) -> None:
        self.num_images = _check_int("num_images", num_images, 1)
        self.seed = _check_int("seed", seed, 0)
        self.size = _check_int("size", size, MIN_SIZE)
        self.multi_object = _check_bool("multi_object", multi_object)

    def __len__(self) -> int:
        return self.num_images

    def _resolve(self, index: int) -> int:
        """Python-style index (negative counts from the end); IndexError when out of range."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {index!r}")
        resolved = int(index) + self.num_images if index < 0 else int(index)
        if not 0 <= resolved < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        return resolved

    def sample(self, index: int) -> SyntheticSample:
        """The full :class:`SyntheticSample` for item ``index``."""
        return render_sample(
            self._resolve(index), seed=self.seed, size=self.size, multi_object=self.multi_object
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.sample(index)
        return sample.image, sample.label
