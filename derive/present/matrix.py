"""A whole layer's gradient at once: ∂E/∂W^l = δ^l (a^{l-1})ᵀ (BP4) and ∂E/∂b^l = δ^l (BP3).

``derive grad SPEC W3`` asks with the exported module's keys (``W3``, ``b3``),
and gets a matrix (or vector) result, the way matrixcalculus.org answers for a
matrix: the formula in layer notation, the vectors it is made of, and the numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import DeriveError
from .printing import format_number

MATRIX_KEY = re.compile(r"(?P<kind>[WUb])(?P<layer>[0-9]{1,9})\Z")  # U: an rnn's; never thousands of digits


@dataclass(frozen=True)
class MatrixGradient:
    """∂E/∂W^l or ∂E/∂b^l with the vectors it is built from (δ of the layer, outs of the layer before)."""

    key: str  # W3 or b3, as in an exported module's params
    layer: int  # Nielsen's layer number
    value: tuple[tuple[float, ...], ...]  # rows: neurons of the layer; a bias is one column
    names: tuple[tuple[str, ...], ...]  # the spec's parameter names at each entry
    delta: tuple[float, ...]
    delta_names: tuple[str, ...]
    inputs: tuple[float, ...]  # outs of layer l-1 (empty for a bias)
    input_names: tuple[str, ...]
    shared_bias: bool = False

    @property
    def is_bias(self) -> bool:
        return self.key.startswith("b")

    def formula(self) -> str:
        l, p = self.layer, self.layer - 1
        if not self.is_bias:
            return f"∂E/∂W{l} = δ{l} (a{p})ᵀ   (BP4: ∂E/∂w_jk = δ_j · a_k)"
        if self.shared_bias:
            return f"∂E/∂b{l} = Σ_j δ{l}_j   (BP3; one bias shared by the layer)"
        return f"∂E/∂b{l} = δ{l}   (BP3: ∂E/∂b_j = δ_j)"

    def text(self, digits: int = 8) -> str:
        def vec(values: tuple[float, ...]) -> str:
            return "[" + ", ".join(format_number(v, digits) for v in values) + "]"

        lines = [self.formula()]
        lines.append(f"  δ{self.layer} = [{', '.join(self.delta_names)}] = {vec(self.delta)}")
        if not self.is_bias:
            lines.append(f"  a{self.layer - 1} = [{', '.join(self.input_names)}] = {vec(self.inputs)}")
        rows = [[format_number(v, digits) for v in row] for row in self.value]
        width = max(len(c) for row in rows for c in row)
        lines.append(f"∂E/∂{self.key} =")
        lines.extend("  [" + ", ".join(c.rjust(width) for c in row) + "]" for row in rows)
        lines.append("entries, by spec name:")
        lines.extend("  " + "  ".join(row) for row in self.names)
        return "\n".join(lines) + "\n"

    def latex(self, digits: int = 8) -> str:
        body = r" \\ ".join(" & ".join(format_number(v, digits) for v in row) for row in self.value)
        l, p = self.layer, self.layer - 1
        if self.is_bias:
            lhs = rf"\frac{{\partial E}}{{\partial b^{{{l}}}}} = " + (
                rf"\sum_j \delta^{{{l}}}_j" if self.shared_bias else rf"\delta^{{{l}}}"
            )
        else:
            lhs = rf"\frac{{\partial E}}{{\partial W^{{{l}}}}} = \delta^{{{l}}} \left(a^{{{p}}}\right)^{{\mathsf{{T}}}}"
        return lhs + r" = \begin{bmatrix} " + body + r" \end{bmatrix}"

    def __repr__(self) -> str:
        rows, columns = len(self.value), len(self.value[0])
        return (
            f"<MatrixGradient ∂E/∂{self.key}: {rows}×{columns}, layer {self.layer}; {self.formula().split('   ')[0]}>"
        )

    def to_json(self) -> str:
        """What ``derive grad SPEC W3 --format json`` prints."""
        from .report import json_text

        return json_text(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The data of ``derive grad SPEC W3 --format json``."""
        return {
            "parameter": self.key,
            "kind": "bias_vector" if self.is_bias else "weight_matrix",
            "layer": self.layer,
            "formula": self.formula(),
            "shape": [len(self.value), len(self.value[0])],
            "value": [list(row) for row in self.value],
            "names": [list(row) for row in self.names],
            "delta": dict(zip(self.delta_names, self.delta)),
            "inputs": dict(zip(self.input_names, self.inputs)),
            "latex": self.latex(17),
        }


def is_matrix_key(name: str) -> bool:
    return MATRIX_KEY.match(name) is not None


def dense_keys(network: Any) -> str:
    """The whole-matrix keys ``derive grad`` answers (a dense layer's W and b): "W4, b4 (a dense layer's)"."""
    dense = [layer.number for layer in network.layers[1:] if layer.spec.kind == "dense"]
    return (
        "a dense layer's whole matrix: "
        + ", ".join(f"W{n}, b{n}" for n in dense[:3])
        + (", …" if len(dense) > 3 else "")
    )


def matrix_gradient(model: Any, key: str) -> MatrixGradient:
    """∂E/∂``key`` for an exported module's key (W{l}, b{l}), from the compiled passes."""
    m = MATRIX_KEY.match(key)
    assert m is not None
    network = model.network
    number = int(m["layer"])
    layers = {layer.number: layer for layer in network.layers[1:]}
    if number not in layers:
        first, last = min(layers), max(layers)
        raise DeriveError(
            f"∂E/∂{key}: no layer {number}: layers are numbered {first} to {last} after the input layer (1)",
            where=network.spec.source,
            hint=f"e.g. W{last} for the output layer's weights",
        )
    layer = layers[number]
    spec = layer.spec
    if spec.geometry is not None and not spec.weight_names:
        raise DeriveError(
            f"∂E/∂{key}: layer {number} is a pool ({spec.kind}): it has no weights or biases",
            where=network.spec.source,
            hint=f"{dense_keys(network)}; a pooled value by its name, e.g. derive grad SPEC {layer.outs[0].name}",
        )
    if spec.geometry is not None or spec.steps:
        what = "a pool" if spec.geometry is not None and not spec.weight_names else f"{spec.kind} layer"
        what = what if what.startswith("a ") else ("an " if what[0] in "aeiour" else "a ") + what
        example = spec.weight_names[0][0] if spec.weight_names else ""
        raise DeriveError(
            f"∂E/∂{key}: layer {number} is {what}, whose weights are each used many times, so its gradient is no "
            "δ·aᵀ outer product",
            where=network.spec.source,
            hint=(f"derive grad SPEC {example} shows one weight's sum over its uses; " if example else "")
            + "derive grad SPEC --all gives every entry",
        )
    if m["kind"] == "U":
        raise DeriveError(
            f"no {key}: layer {number} is not recurrent (U{number} is an rnn's recurrent weights)",
            where=network.spec.source,
            hint=f"W{number} or b{number}",
        )
    network.require_numbers(f"derive grad {key}")
    if getattr(model, "is_batch", False):
        form = f"δ{number} (a{number - 1})ᵀ" if m["kind"] == "W" else f"δ{number}"
        raise DeriveError(
            f"∂E/∂{key} = {form} is one sample's, and the spec holds {model.samples} samples",
            where=network.spec.source,
            hint="derive grad SPEC --all gives every entry of the batch's gradient; "
            "derive grad SPEC NAME shows one weight or bias, sample by sample",
        )
    engine = model.compiled()
    found = engine.trace()
    outs, deltas = found.outs, found.deltas
    _, grad_w, grad_b = engine.gradients()
    index = layer.index
    delta = tuple(float(v) for v in deltas[index][0])
    delta_names = tuple(str(n.delta) for n in layer.neurons)
    prev = network.layers[index - 1]
    if m["kind"] == "W":
        value = tuple(map(tuple, grad_w[index].tolist()))
        names = layer.spec.weight_names
        inputs = tuple(float(v) for v in outs[index - 1][0])
        return MatrixGradient(key, number, value, names, delta, delta_names, inputs, tuple(o.name for o in prev.outs))
    gb = grad_b[index]
    if gb is None:
        raise DeriveError(f"layer {number} has no bias", where=key, hint=f"ask for W{number}")
    shared = gb.ndim == 0
    bias_names = tuple(s.name for s in layer.biases if s is not None)
    if shared:
        return MatrixGradient(key, number, ((float(gb),),), (bias_names[:1],), delta, delta_names, (), (), True)
    return MatrixGradient(
        key, number, tuple((float(v),) for v in gb), tuple((b,) for b in bias_names), delta, delta_names, (), ()
    )
