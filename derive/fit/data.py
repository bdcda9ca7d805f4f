"""Data sets to train on: read, checked against a network's shape, split and scaled.

Sources: ``digits`` (scikit-learn's bundled copy of the UCI 8×8 digits, the
optional extra ``data``), a ``.npz`` archive with ``X`` and ``T``
(targets, one row per sample) or ``y`` (class labels), or a ``.csv`` file whose
last column is the label (a header line is skipped). Every problem is a
DeriveError naming the source and what is wrong; nothing here writes files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DeriveError
from ..files import MAX_DATA_BYTES, file_format, load_npz, read_input, shown_path

DIGITS = "digits"
SCALINGS = ("none", "standard", "minmax")


@dataclass(frozen=True)
class Dataset:
    """Rows of inputs X (n, inputs) and targets T (n, outputs), float64.

    ``labels`` holds the class of each row when the targets came from labels
    (they are then one-hot rows, or the label itself for a single output).
    """

    X: np.ndarray
    T: np.ndarray
    labels: np.ndarray | None
    source: str

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])

    def take(self, rows: np.ndarray) -> Dataset:
        labels = None if self.labels is None else self.labels[rows]
        return replace(self, X=self.X[rows], T=self.T[rows], labels=labels)


@dataclass(frozen=True)
class Scaling:
    """Inputs mapped to (X − shift) / scale, column by column; from the training rows only."""

    kind: str
    shift: np.ndarray
    scale: np.ndarray

    def apply(self, X: np.ndarray) -> np.ndarray:
        return (X - self.shift) / self.scale


def scaling(X: np.ndarray, kind: str) -> Scaling:
    """Standard (mean 0, std 1) or min-max ([0, 1]) scaling of X's columns; a constant column is only shifted."""
    n = X.shape[1]
    if kind == "none":
        return Scaling(kind, np.zeros(n), np.ones(n))
    if kind == "standard":
        shift, scale = X.mean(axis=0), X.std(axis=0)
    elif kind == "minmax":
        shift, scale = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    else:
        raise DeriveError(f"unknown scaling {kind!r}", hint="choose one of " + ", ".join(SCALINGS))
    return Scaling(kind, shift, np.where(scale > 0, scale, 1.0))


def load_data(
    ref: str,
    inputs: int,
    outputs: int,
    one_hot: bool | None = None,
    target_range: tuple[float, float] | None = None,
) -> Dataset:
    """The data set ``ref`` checked against a network with ``inputs`` inputs and ``outputs`` outputs.

    Labels become one-hot rows when ``one_hot`` is True, or when it is None and
    the network has several outputs; otherwise a label is the single target.
    ``target_range`` bounds the targets (cross-entropy wants [0, 1]).
    """
    T: np.ndarray | None
    labels: np.ndarray | None
    if ref == DIGITS:
        X, T, labels = _digits()
        source = "digits"
    else:
        path = Path(ref)
        source = shown_path(path)
        X, T, labels = _read(path, source)
    return _checked(X, T, labels, source, inputs, outputs, one_hot, target_range)


def _read(path: Path, source: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A data file, read as every untrusted file is (:mod:`derive.files`) and told apart by its first bytes."""
    data = read_input(path, "data set", MAX_DATA_BYTES)  # refuses a FIFO or a device before the name is judged
    if path.suffix.lower() not in (".npz", ".csv"):
        raise DeriveError(
            "unknown kind of data", where=source, hint="give digits, a .npz (X with T or y) or a .csv file"
        )
    kind = file_format(data)
    if kind == "npz":
        return _npz(data, source)
    if kind == "npy":
        raise DeriveError("is a single .npy array; give a .npz archive with X and T or y", where=source)
    if kind == "empty":
        raise DeriveError("no rows of data (the file is empty)", where=source)
    if path.suffix.lower() == ".npz":
        raise DeriveError("not a readable .npz archive (it holds text)", where=source)
    return _csv(data, source)


def _digits() -> tuple[np.ndarray, None, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        from ..install import install_hint

        raise DeriveError(
            "the digits data set comes with scikit-learn, which is not installed",
            hint=install_hint("data"),
        ) from None
    X, y = load_digits(return_X_y=True)
    return np.asarray(X, dtype=float), None, np.asarray(y)


def _npz(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    arrays = load_npz(data, source, MAX_DATA_BYTES)
    if "X" not in arrays or not ({"T", "y"} & set(arrays)):
        found = ", ".join(sorted(repr(k) if not k.isidentifier() else k for k in arrays)) or "nothing"
        raise DeriveError(f"needs the arrays X and T (targets) or y (labels); found {found}", where=source)
    floats = sum(arrays[key].size for key in ("X", "T", "y") if key in arrays) * 8
    if floats > MAX_DATA_BYTES:
        raise DeriveError(
            f"its arrays take {floats:,} bytes as float64; the limit is {MAX_DATA_BYTES:,} (array size limit)",
            where=source,
        )
    X = arrays["X"].astype(float)
    if "T" in arrays:
        T = arrays["T"].astype(float)
        return (X, None, T) if T.ndim == 1 else (X, T, None)  # a vector of targets is a vector of labels
    return X, None, arrays["y"]


def _csv(data: bytes, source: str) -> tuple[np.ndarray, None, np.ndarray]:
    """A CSV table (label last); messages give a line and column, never a cell's text."""
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first cell
        rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1) if row]
    except UnicodeDecodeError as exc:
        raise DeriveError(f"cannot read: not UTF-8 text (byte {exc.start + 1})", where=source) from None
    except csv.Error as exc:
        raise DeriveError(f"cannot read: {exc}", where=source) from None
    if rows and not _numeric(rows[0][1]):
        rows = rows[1:]  # a header line
    if not rows:
        raise DeriveError("no rows of data", where=source)
    width = len(rows[0][1])
    values = []
    for number, row in rows:
        if len(row) != width:
            raise DeriveError(f"{len(row)} columns, but the first row has {width}", where=f"{source}: line {number}")
        try:
            values.append([float(cell) for cell in row])
        except ValueError:
            column = next(i for i, cell in enumerate(row, start=1) if not _numeric([cell]))
            raise DeriveError(f"column {column} is not a number", where=f"{source}: line {number}") from None
    table = np.array(values)
    return table[:, :-1], None, table[:, -1]


def _numeric(cells: list[str]) -> bool:
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return True


def _checked(
    X: np.ndarray,
    T: np.ndarray | None,
    labels: np.ndarray | None,
    source: str,
    inputs: int,
    outputs: int,
    one_hot: bool | None,
    target_range: tuple[float, float] | None,
) -> Dataset:
    if X.ndim != 2 or X.shape[0] == 0:
        raise DeriveError(f"no rows of data (X has shape {X.shape})", where=source)
    n = X.shape[0]
    if X.shape[1] != inputs:
        raise DeriveError(
            f"{X.shape[1]} input columns, but the network has {inputs} input{'s' if inputs != 1 else ''}", where=source
        )
    _finite(X, "X", source)
    if T is not None:
        if one_hot:
            raise DeriveError("the targets are rows already; --one-hot needs a column of labels", where=source)
        if T.shape != (n, outputs):
            raise DeriveError(f"T has shape {T.shape}; the network needs ({n}, {outputs})", where=source)
        _finite(T, "T", source)
        _in_range(T, target_range, source)
        return Dataset(X, T, None, source)
    assert labels is not None
    if labels.shape != (n,):
        got = f"{labels.shape[0]} labels" if labels.ndim == 1 else f"labels of shape {labels.shape}"
        raise DeriveError(f"{got} for {n} rows of inputs", where=source)
    _finite(labels.astype(float), "the labels", source)
    if one_hot is None:
        one_hot = outputs > 1
    if not one_hot:
        if outputs != 1:
            raise DeriveError(
                f"one label per row, but the network has {outputs} outputs",
                where=source,
                hint="labels are one-hot encoded with --one-hot",
            )
        T = labels.astype(float).reshape(n, 1)
        _in_range(T, target_range, source)
        classes = labels.astype(int) if np.all(labels == np.round(labels)) else None
        return Dataset(X, T, classes, source)
    if outputs < 2:
        raise DeriveError("one-hot targets need one output per class; the network has 1", where=source)
    whole = labels == np.round(labels)
    inside = whole & (labels >= 0) & (labels < outputs)
    if not np.all(inside):
        row = int(np.argmin(inside))
        raise DeriveError(
            f"label {labels[row]:g} in row {row + 1} is not a class 0…{outputs - 1} (the network has {outputs} outputs)",
            where=source,
        )
    if n * outputs * 8 > MAX_DATA_BYTES:
        raise DeriveError(
            f"one-hot targets for {n:,} rows and {outputs:,} classes take {n * outputs * 8:,} bytes; "
            f"the limit is {MAX_DATA_BYTES:,} (array size limit)",
            where=source,
        )
    classes = labels.astype(int)
    T = np.zeros((n, outputs))
    T[np.arange(n), classes] = 1.0
    return Dataset(X, T, classes, source)


def _finite(values: np.ndarray, what: str, source: str) -> None:
    finite = np.isfinite(values)
    if not np.all(finite):
        row = int(np.argmin(finite.reshape(len(values), -1).all(axis=1)))
        raise DeriveError(f"{what} is not a finite number in row {row + 1} (NaN or infinity)", where=source)


def _in_range(targets: np.ndarray, bounds: tuple[float, float] | None, source: str) -> None:
    if bounds is None:
        return
    low, high = bounds
    inside = (targets >= low) & (targets <= high)
    if not np.all(inside):
        row = int(np.argmin(inside.all(axis=1)))
        raise DeriveError(f"a target in row {row + 1} is outside [{low:g}, {high:g}], the loss's range", where=source)


def split(data: Dataset, test_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """(training, held-out) rows; each class split in the same proportion when there are labels.

    ``test_fraction`` 0 holds nothing out (None).
    """
    if not 0 <= test_fraction < 1:
        raise DeriveError(f"the test fraction must be in [0, 1), got {test_fraction}")
    if test_fraction == 0:
        return data, None
    rng = np.random.default_rng(seed)
    groups = (
        [np.arange(data.rows)]
        if data.labels is None
        else [np.flatnonzero(data.labels == c) for c in np.unique(data.labels)]
    )
    test = []
    for rows in groups:
        shuffled = rng.permutation(rows)
        test.append(shuffled[: round(test_fraction * len(rows))])
    held = np.zeros(data.rows, dtype=bool)
    held[np.concatenate(test)] = True
    if held.all() or not held.any():
        raise DeriveError(
            f"{data.rows} rows cannot be split {1 - test_fraction:g}/{test_fraction:g}", where=data.source
        )
    return data.take(np.flatnonzero(~held)), data.take(np.flatnonzero(held))
