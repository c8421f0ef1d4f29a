"""Datasets and input encodings.

Encoded inputs are small unsigned integers, exactly what the hardware sees:
the binary encoding yields bits (bit 1 means +1, bit 0 means -1 in the
network's arithmetic), the ``uint`` encoding yields ``input_bits``-bit
unsigned integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tangentcore.errors import TangentcoreError

__all__ = ["Dataset", "load_dataset", "encode_inputs"]

# scikit-learn's digits are 8x8 images with pixel values 0..16.
DIGITS_PIXEL_MAX = 16


@dataclass(frozen=True)
class Dataset:
    """An encoded dataset with a fixed train/test split."""

    name: str
    x_train: np.ndarray  # (n_train, n_features) uint8, encoded
    y_train: np.ndarray  # (n_train,) int64 class labels
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    encoding: str
    input_bits: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def encode_inputs(pixels: np.ndarray, encoding: str, input_bits: int, threshold: float, pixel_max: int) -> np.ndarray:
    """Encode raw pixels in ``[0, pixel_max]`` as unsigned integers.

    ``binary``: ``pixel >= threshold``. ``uint``: ``round(pixel / pixel_max · (2^k − 1))``
    with halves rounded up, computed in integers so that it is exact.
    """
    pixels = np.asarray(pixels)
    if encoding == "binary":
        return (pixels >= threshold).astype(np.uint8)
    if encoding == "uint":
        levels = (1 << input_bits) - 1
        scaled = (2 * pixels.astype(np.int64) * levels + pixel_max) // (2 * pixel_max)
        return np.clip(scaled, 0, levels).astype(np.uint8)
    raise TangentcoreError(f"encoding must be 'binary' or 'uint', not {encoding!r}")


def load_dataset(name: str, *, encoding: str, input_bits: int, threshold: float, test_fraction: float, seed: int) -> Dataset:
    """Load a dataset, split it (stratified, seeded) and encode its inputs."""
    if name != "digits":
        raise TangentcoreError(f"dataset must be 'digits', not {name!r}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = digits.data.astype(np.int64)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    encode = lambda x: encode_inputs(x, encoding, input_bits, threshold, DIGITS_PIXEL_MAX)  # noqa: E731
    return Dataset(
        name=name,
        x_train=encode(x_train),
        y_train=y_train,
        x_test=encode(x_test),
        y_test=y_test,
        n_classes=10,
        encoding=encoding,
        input_bits=input_bits,
    )
