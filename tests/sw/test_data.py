"""Dataset loaders on small files the tests write, and the input encodings."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.sw.data import encode_inputs, encode_spikes, load_dataset, read_csv, read_idx

COMMON = {"encoding": "uint", "input_bits": 4, "threshold": -1.0, "test_fraction": 0.25, "seed": 0}


def _images(n: int = 40, features: int = 6, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, size=(n, features)).astype(np.uint8), np.arange(n) % classes


def _write_idx(path, array: np.ndarray, *, compress: bool = False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


def test_npz_with_split(tmp_path):
    x, y = _images()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    dataset = load_dataset("npz", path=str(tmp_path / "data.npz"), **COMMON)
    assert (len(dataset.x_train), len(dataset.x_test)) == (30, 10)
    assert dataset.n_classes == 4
    assert dataset.x_train.max() <= 15


def test_npz_with_given_test_set(tmp_path):
    x, y = _images()
    np.savez(tmp_path / "data.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    dataset = load_dataset("npz", path=str(tmp_path / "data.npz"), **COMMON)
    np.testing.assert_array_equal(dataset.y_test, y[30:])


def test_csv_with_header(tmp_path):
    x, y = _images()
    lines = ["label," + ",".join(f"p{i}" for i in range(6))]
    lines += [",".join(str(v) for v in [label, *row]) for label, row in zip(y, x)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    pixels, labels = read_csv(tmp_path / "data.csv")
    np.testing.assert_array_equal(pixels, x)
    np.testing.assert_array_equal(labels, y)
    dataset = load_dataset("csv", path=str(tmp_path / "data.csv"), **COMMON)
    assert dataset.n_features == 6


# whether the IDX files are gzip-compressed
@pytest.mark.parametrize("compress", [False, True])
def test_idx_images_and_labels(tmp_path, compress):
    x, y = _images(features=9)
    images = _write_idx(tmp_path / "images.idx3", x.reshape(-1, 3, 3), compress=compress)
    labels = _write_idx(tmp_path / "labels.idx1", y, compress=compress)
    np.testing.assert_array_equal(read_idx(images), x.reshape(-1, 3, 3))
    dataset = load_dataset("idx", path=str(images), labels_path=str(labels), test_path=str(images),
                           test_labels_path=str(labels), **COMMON)
    assert dataset.x_test.shape == (40, 9)


def _bad_npz(tmp_path, **arrays):
    np.savez(tmp_path / "bad.npz", **arrays)
    return str(tmp_path / "bad.npz")


# the broken file and the fragment its error must contain
BAD_FILES = {
    "nan": (lambda p: _bad_npz(p, x=np.full((8, 3), np.nan), y=np.arange(8) % 2), "NaN or infinite"),
    "label shape": (lambda p: _bad_npz(p, x=np.ones((8, 3)), y=np.zeros(7)), "labels must have shape (8,)"),
    "negative label": (lambda p: _bad_npz(p, x=np.ones((8, 3)), y=-np.ones(8)), "non-negative integers"),
    "fractional label": (lambda p: _bad_npz(p, x=np.ones((8, 3)), y=np.full(8, 0.5)), "non-negative integers"),
    "one-dimensional": (lambda p: _bad_npz(p, x=np.ones(8), y=np.zeros(8)), "images must have shape"),
    "empty npz": (lambda p: _bad_npz(p, x=np.zeros((0, 3)), y=np.zeros(0)), "no samples; the file is empty"),
    "wrong keys": (lambda p: _bad_npz(p, images=np.ones((8, 3))), "must hold arrays x and y"),
    "negative pixel": (lambda p: _bad_npz(p, x=-np.ones((8, 3)), y=np.arange(8) % 2), "pixels must be non-negative"),
    "test label range": (lambda p: _bad_npz(p, x_train=np.ones((8, 3)), y_train=np.arange(8) % 2,
                                             x_test=np.ones((2, 3)), y_test=np.array([0, 5])),
                         "test label 5 is out of range"),
    "test features": (lambda p: _bad_npz(p, x_train=np.ones((8, 3)), y_train=np.arange(8) % 2,
                                          x_test=np.ones((2, 4)), y_test=np.array([0, 1])),
                      "test images have 4 features, but training images have 3"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_npz_names_file_and_problem(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(TangentcoreError) as error:
        load_dataset("npz", path=path, **COMMON)
    assert message in str(error.value)
    assert "bad.npz" in str(error.value) or "dataset 'npz'" in str(error.value)


def test_empty_csv(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TangentcoreError, match="empty.csv: no data rows; the file is empty"):
        load_dataset("csv", path=str(tmp_path / "empty.csv"), **COMMON)


def test_csv_ragged_row(tmp_path):
    (tmp_path / "ragged.csv").write_text("0,1,2\n1,3\n")
    with pytest.raises(TangentcoreError, match="ragged.csv: data row 2 has 2 columns, but the first has 3"):
        read_csv(tmp_path / "ragged.csv")


def test_csv_not_a_number(tmp_path):
    (tmp_path / "text.csv").write_text("0,1,2\n1,x,3\n")
    with pytest.raises(TangentcoreError, match="text.csv: data row 2 has a value that is not a number"):
        read_csv(tmp_path / "text.csv")


def test_idx_truncated(tmp_path):
    path = _write_idx(tmp_path / "short.idx", np.zeros((4, 2, 2)))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(TangentcoreError, match="short.idx: IDX data has 13 bytes, but shape"):
        read_idx(path)


def test_idx_bad_magic(tmp_path):
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(TangentcoreError, match="bad.idx: not an IDX file"):
        read_idx(tmp_path / "bad.idx")


def test_missing_file(tmp_path):
    with pytest.raises(TangentcoreError, match="dataset file not found"):
        load_dataset("npz", path=str(tmp_path / "nowhere.npz"), **COMMON)


def test_uint_encoding_rounds_half_up():
    pixels = np.array([[0, 1, 8, 16]])
    # 4 bits: levels 15; 1/16·15 = 0.94 -> 1, 8/16·15 = 7.5 -> 8.
    assert encode_inputs(pixels, "uint", 4, 0, 16).tolist() == [[0, 1, 8, 15]]


def test_rate_encoding_seeded_and_proportional():
    pixels = np.array([[0.0, 64.0, 255.0]] * 200)
    first = encode_spikes(pixels, "rate", 50, 255, 0, np.random.default_rng(3))
    second = encode_spikes(pixels, "rate", 50, 255, 0, np.random.default_rng(3))
    np.testing.assert_array_equal(first, second)
    rates = first.mean(axis=(0, 1))
    assert rates[0] == 0.0
    assert rates[2] == 1.0
    # 10,000 Bernoulli(0.251) draws: the standard error is 0.004.
    assert abs(rates[1] - 64 / 255) < 0.02


def test_latency_encoding_one_early_spike():
    pixels = np.array([[0.0, 255.0, 128.0, 1.0]])
    trains = encode_spikes(pixels, "latency", 9, 255, 0, np.random.default_rng(0))
    assert trains.shape == (1, 9, 4)
    assert trains[0, :, 0].sum() == 0
    assert np.flatnonzero(trains[0, :, 1]).tolist() == [0]
    assert np.flatnonzero(trains[0, :, 2]).tolist() == [4]
    assert np.flatnonzero(trains[0, :, 3]).tolist() == [8]


def test_direct_encoding_repeats_bits():
    pixels = np.array([[3.0, 9.0], [10.0, 0.0]])
    trains = encode_spikes(pixels, "direct", 3, 16, 8.0, np.random.default_rng(0))
    assert trains.tolist() == [[[0, 1]] * 3, [[1, 0]] * 3]


def test_rate_training_inputs_change_per_epoch():
    dataset = load_dataset("digits", encoding="rate", input_bits=1, threshold=-1, test_fraction=0.2, seed=0,
                           time_steps=4)
    assert dataset.x_train.shape[1:] == (4, 64)
    assert not np.array_equal(dataset.train_inputs(1), dataset.train_inputs(2))
    np.testing.assert_array_equal(dataset.train_inputs(2), dataset.train_inputs(2))


def test_mnist_subset_fixed_split():
    first = load_dataset("mnist", encoding="binary", input_bits=1, threshold=-1, test_fraction=0.2, seed=0)
    other_seed = load_dataset("mnist", encoding="binary", input_bits=1, threshold=-1, test_fraction=0.5, seed=7)
    assert (len(first.x_train), len(first.x_test)) == (4000, 1000)
    assert first.n_features == 784
    np.testing.assert_array_equal(first.y_test, other_seed.y_test)
    assert np.bincount(first.y_test).min() >= 80


def test_shift_images_moves_pixels_and_fills_zeros():
    from tangentcore.sw.data import shift_images

    x = np.arange(1, 1 + 4 * 16).reshape(4, 16)
    shifted = shift_images(x, 1, np.random.default_rng(5)).reshape(4, 4, 4)
    images = x.reshape(4, 4, 4)
    for image, moved in zip(images, shifted):
        matches = [
            (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
            if np.array_equal(moved, np.roll(image, (dy, dx), axis=(0, 1))
                              * _inside_mask(4, dy, dx))
        ]
        assert len(matches) == 1


def _inside_mask(side: int, dy: int, dx: int) -> np.ndarray:
    """Return the mask of pixels that a shift by (dy, dx) fills from inside the image."""
    mask = np.zeros((side, side), dtype=np.int64)
    mask[max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)] = 1
    return mask


def test_augment_shift_needs_square_images(tmp_path):
    x, y = _images(features=6)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    dataset = load_dataset("npz", path=str(tmp_path / "data.npz"), augment_shift=1, **COMMON)
    np.testing.assert_array_equal(dataset.train_inputs(0), dataset.x_train)
    with pytest.raises(TangentcoreError, match="data.augment_shift needs square images, but they have 6 pixels"):
        dataset.train_inputs(1)
