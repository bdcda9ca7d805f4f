"""Exercise variants: a spec with new inputs, targets and (optionally) weights for each student.

Student k's numbers come from their own stream ``default_rng([seed, k])``, so
a variant does not depend on how many students there are, and the same seed
gives the same class set. Numbers lie on a grid of 0.05 (targets 0.01) so they
can be worked by hand. A draw is kept only when every neuron's net input lies
in NET_MIN ≤ |net| ≤ NET_MAX (no saturated sigmoid or tanh, no relu at its
kink) and every output is at least TARGET_GAP from its target (no gradient that
vanishes by accident); otherwise the student's stream draws again.

A variant is written as TOML: the base spec's own table with the new numbers
put in, so names, activations, loss and training stay exactly the base's.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DeriveError
from ..lecture.maps import hand_sized
from ..lecture.sheet import HAND_IN_DIGITS
from ..spec.reading import MAX_NAME_LENGTH, MAX_TITLE_LENGTH, Spec, parse_spec, read_spec

NET_MAX = 3.0  # σ'(3) ≈ 0.045: beyond this the sigmoid is flat and the exercise teaches nothing
NET_MIN = 0.05  # away from relu's kink (and from a net that is zero by accident)
TARGET_GAP = 0.05
MAX_TRIES = 2000
MAX_WIDTH = 8  # neurons a layer: a variant is for exercises worked by hand
INPUT_STEPS = 20  # inputs k·0.05, k = 1 … 20
WEIGHT_STEPS = 16  # weights and biases k·0.05, k = 1 … 16


@dataclass(frozen=True)
class Variant:
    """One student's spec: its number (from 1), its label ("07"), the validated spec and its TOML."""

    student: int
    label: str
    spec: Spec
    toml: str
    tries: int  # draws until one was reasonable

    @property
    def inputs(self) -> tuple[float, ...]:
        values = self.spec.layers[0].values
        assert values is not None
        return values

    @property
    def targets(self) -> tuple[float, ...]:
        targets = self.spec.layers[-1].targets
        assert targets is not None
        return targets


def labels(students: int) -> list[str]:
    """Zero-padded student labels: 01 … 30."""
    width = max(2, len(str(students)))
    return [f"{k:0{width}d}" for k in range(1, students + 1)]


def draw_variants(ref: str | Path, students: int, seed: int, weights: bool = False) -> list[Variant]:
    """A variant of the spec for each of ``students`` students, reproducible from ``seed``."""
    if students < 1:
        raise DeriveError(f"need at least one student, got {students}")
    text, source, folder = read_spec(ref)
    base = parse_spec(text, source, folder)
    if base.is_batch:
        raise DeriveError(
            f"exercises are drawn for one sample, and this spec holds {base.samples}",
            where=base.source,
            hint="give the input layer one sample (values = [...]) for the exercises; "
            "`derive lecture` and `derive check` work on the batch",
        )
    hand_sized(base.layers, base.source)  # maps: a LeNet is too big to work by hand
    widest = max((layer.size for layer in base.layers if not layer.shape), default=0)
    if widest > MAX_WIDTH:
        raise DeriveError(
            f"exercises are worked by hand: at most {MAX_WIDTH} neurons a layer, this spec has {widest}",
            where=base.source,
            hint="use a smaller network, or `derive lecture` for a big one",
        )
    data = tomllib.loads(text)
    drawer = _Drawer(base, data, weights)
    return [drawer.variant(k, label, seed) for k, label in enumerate(labels(students), start=1)]


class _Drawer:
    """Draws one student's numbers and checks them with the base spec's compiled forward pass."""

    def __init__(self, base: Spec, data: dict[str, Any], weights: bool) -> None:
        from ..codegen.engine import Compiled
        from ..core.network import Network

        self.base = base
        self.data = data
        self.weights = weights
        self.net = Network(base)
        self.engine = Compiled(self.net)  # its arrays are swapped for each draw: one compile for the class
        self.low, self.high = _output_range(self.net)
        self.one_hot = base.loss.kind == "cross_entropy"
        self.positive_inputs = base.layers[0].values is None or all(v >= 0 for v in base.layers[0].values)

    def variant(self, student: int, label: str, seed: int) -> Variant:
        rng = np.random.default_rng([seed, student])
        for tries in range(1, MAX_TRIES + 1):
            x, t, ws, bs = self.draw(rng)
            if self.reasonable(x, t, ws, bs):
                text = self.toml(label, x, t, ws, bs)
                spec = parse_spec(text, f"student-{label}.toml")
                return Variant(student, label, spec, text, tries)
        raise DeriveError(
            f"student {student}: no draw in {MAX_TRIES} keeps every net input within "
            f"{NET_MIN} ≤ |net| ≤ {NET_MAX} and every output {TARGET_GAP} from its target",
            where=self.base.source,
            hint="the spec's weights are too large (or too small) for inputs in (0, 1]; draw them too with --weights",
        )

    # -- drawing ------------------------------------------------------------

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[Any]]:
        e = self.engine
        x = _grid(rng, e.x.shape[1:], INPUT_STEPS, positive=self.positive_inputs)
        size = e.t.shape[-1]
        if self.one_hot:
            t = np.zeros(size)
            t[rng.integers(size)] = 1.0
        else:
            lo, hi = math.ceil(self.low * 100) + 1, math.floor(self.high * 100) - 1
            t = np.asarray(rng.integers(lo, hi + 1, size=size) / 100, dtype=float)
        ws = list(e.weights)
        bs = list(e.biases)
        if self.weights:
            for index in range(1, len(ws)):
                ws[index] = _grid(rng, ws[index].shape, WEIGHT_STEPS, positive=bool((ws[index] >= 0).all()))
                b = bs[index]
                if b is not None:
                    bs[index] = _grid(rng, b.shape, WEIGHT_STEPS, positive=bool((b >= 0).all()))
        return x, t, ws, bs

    def reasonable(self, x: np.ndarray, t: np.ndarray, ws: list[np.ndarray], bs: list[Any]) -> bool:
        e = self.engine
        e.weights, e.biases = ws, bs
        nets, outs = e.forward(x[None, :])
        for z in nets[1:]:
            if not np.all(np.isfinite(z)) or np.any(np.abs(z) > NET_MAX) or np.any(np.abs(z) < NET_MIN):
                return False
        for index, layer in enumerate(self.base.layers):  # a max pool's window won by one entry, not by a tie
            if layer.kind.startswith("maxpool") and not _clear_winners(layer, np.ravel(outs[index - 1][0])):
                return False
        return bool(np.all(np.abs(outs[-1][0] - t) >= TARGET_GAP))

    # -- writing -------------------------------------------------------------

    def toml(self, label: str, x: np.ndarray, t: np.ndarray, ws: list[np.ndarray], bs: list[Any]) -> str:
        data = dict(self.data)
        # the published numbers are the original example's: a variant's lecture would call its own numbers wrong
        data.pop("published", None)
        name = str(data.get("name", self.base.name))
        suffix = f"_{label}"
        data["name"] = name[: MAX_NAME_LENGTH - len(suffix)] + suffix
        title = str(data.get("title", self.base.title))
        tail = f" (variant {label})"
        data["title"] = title[: MAX_TITLE_LENGTH - len(tail)] + tail
        if data.get("title_zh"):  # a Chinese sheet names its variant too
            tail_zh = f"（变式 {label}）"
            data["title_zh"] = str(data["title_zh"])[: MAX_TITLE_LENGTH - len(tail_zh)] + tail_zh
        layers = [dict(layer) for layer in data["layers"]]
        shape = self.base.layers[0].shape
        layers[0]["values"] = _shaped(_numbers(x), shape)
        layers[-1]["targets"] = _numbers(t)
        if self.weights:
            for index in range(1, len(layers)):
                geometry = self.base.layers[index].geometry
                if geometry is not None and not geometry.kind.startswith("conv"):
                    continue  # a pool has no weights
                if _recurrent_weights(layers[index], ws[index]):
                    pass  # written as weights and recurrent_weights
                elif geometry is not None:  # [out][in][kh][kw], torch's layout, as a conv's weights are given
                    shape = (geometry.out_shape[0], geometry.in_shape[0], *geometry.kernel)
                    layers[index]["weights"] = np.reshape(_numbers(ws[index]), shape).tolist()
                    layers[index].pop("weights_layout", None)
                else:
                    layers[index]["weights"] = [_numbers(row) for row in ws[index]]
                    layers[index].pop("weights_layout", None)  # written as weights[j][k], the default layout
                b = bs[index]
                if b is not None:
                    layers[index]["bias"] = round(float(b), 2) if b.ndim == 0 else _numbers(b)
        data["layers"] = layers
        # what the sheet asks, recorded for derive check: at least this many digits, correctly rounded
        data["grading"] = {"digits": self.base.required_digits or HAND_IN_DIGITS}
        header = f"# Student {label}'s variant of {self.base.source}, drawn by derive exercises.\n"
        return header + dump_toml(data)


def _grid(rng: np.random.Generator, shape: tuple[int, ...], steps: int, positive: bool) -> np.ndarray:
    """Numbers k·0.05 with k = 1 … steps, and a random sign unless ``positive``."""
    k = rng.integers(1, steps + 1, size=shape)
    if not positive:
        k = k * rng.choice([-1, 1], size=shape)
    return np.asarray(np.round(k * 0.05, 2), dtype=float)


def _clear_winners(layer: Any, previous: np.ndarray) -> bool:
    """Whether each window of a max pool over ``previous`` (a sample's outs, flat) has one largest entry above 0
    (or is all 0: a relu at rest, whose δ is 0 whichever entry wins): a student need not know the tie rule."""
    from ..core.layers import windows

    table = windows(layer.geometry)
    for channel in range(layer.shape[0]):
        area = previous[channel * table.area : (channel + 1) * table.area]
        for row in table.spatial:
            values = sorted((float(area[s]) for s in row if s >= 0), reverse=True)
            if len(values) > 1 and values[0] > 0 and values[0] - values[1] < 1e-9:
                return False
    return True


def _shaped(values: list[float], shape: tuple[int, ...]) -> list[Any]:
    """An input's numbers nested like its layer's shape ([T, D] for a sequence), flat without one."""
    if len(shape) < 2:
        return values
    nested: list[Any] = np.asarray(values, dtype=float).reshape(shape).tolist()
    return nested


def _recurrent_weights(layer: dict[str, Any], drawn: np.ndarray) -> bool:
    """An rnn layer's drawn rows [W | U] written as its weights and recurrent_weights (True when it is one)."""
    if layer.get("kind") != "rnn":
        return False
    units = drawn.shape[0]
    layer["weights"] = [_numbers(row[:-units]) for row in drawn]
    layer["recurrent_weights"] = [_numbers(row[-units:]) for row in drawn]
    return True


def _numbers(values: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in np.ravel(values)]


def _output_range(network: Any) -> tuple[float, float]:
    """The outputs the output activation reaches for |net| ≤ NET_MAX (softmax: (0, 1)), within [0, 1] for bce."""
    from ..core.rules import Activation, X

    rule = network.output_layer.rule
    if isinstance(rule, Activation):
        import sympy as sp

        f = sp.lambdify(X, rule.f, modules="numpy")
        nets = np.linspace(-NET_MAX, NET_MAX, 121)
        outs = np.broadcast_to(np.asarray(f(nets), dtype=float), nets.shape)
        low, high = float(np.nanmin(outs)), float(np.nanmax(outs))
    else:
        low, high = 0.0, 1.0
    if network.spec.loss.kind == "bce":
        low, high = max(low, 0.0), min(high, 1.0)
    if high - low < 0.05:
        raise DeriveError(
            f"the output activation's values for |net| ≤ {NET_MAX} span less than 0.05: no targets to draw",
            where=network.spec.source,
        )
    return low, high


# --------------------------------------------------------------------------
# TOML


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def dump_toml(data: dict[str, Any]) -> str:
    """TOML for a spec-shaped table: scalars and arrays, sub-tables, arrays of tables."""
    scalars = {k: v for k, v in data.items() if not _is_table(v) and not _is_table_array(v)}
    lines = [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for k, v in data.items():
        if _is_table(v):
            lines += ["", f"[{_key(k)}]", *(f"{_key(kk)} = {_value(vv)}" for kk, vv in v.items())]
    for k, v in data.items():
        if _is_table_array(v):
            for table in v:
                lines += ["", f"[[{_key(k)}]]", *(f"{_key(kk)} = {_value(vv)}" for kk, vv in table.items())]
    return "\n".join(lines) + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML has no {value}")  # spec numbers are validated finite
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")
