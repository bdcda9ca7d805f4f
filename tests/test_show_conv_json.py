"""`derive show --format json --full` of conv nets: the content checked against an independent NumPy forward pass,
and the fast printing of dense and conv nets (straight from their products) against sympy's printing of the sum.

The NumPy pass below reads only the spec file (tinyconv.toml) and knows the naming scheme from the README
(w2_o_i_r_c, x1_r_c, z2_c_r_k, a3_…); it shares no code with derive.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import derive
from derive.present import printing as pr

ROOT = Path(__file__).resolve().parent.parent
TINYCONV = ROOT / "derive" / "examples" / "tinyconv.toml"


def _numpy_tinyconv() -> dict[str, object]:
    """tinyconv's forward pass written out in NumPy: conv 2@2×2 (relu), max pool 2 stride 1, dense 2 sigmoid."""
    spec = tomllib.loads(TINYCONV.read_text())
    x = np.array(spec["layers"][0]["values"], dtype=float)[0]  # (4, 4), one channel
    conv = spec["layers"][1]
    w = np.array(conv["weights"], dtype=float)  # (2, 1, 2, 2)
    b = np.array(conv["bias"], dtype=float)
    z2 = np.zeros((2, 3, 3))
    for o in range(2):
        for r in range(3):
            for c in range(3):
                z2[o, r, c] = np.sum(w[o, 0] * x[r : r + 2, c : c + 2]) + b[o]
    a2 = np.maximum(z2, 0)
    z3 = np.zeros((2, 2, 2))
    winner = {}
    for o in range(2):
        for r in range(2):
            for c in range(2):
                window = a2[o, r : r + 2, c : c + 2]
                flat = int(np.argmax(window))  # the first largest, row by row, as torch
                z3[o, r, c] = window.flat[flat]
                winner[(o, r, c)] = (r + flat // 2, c + flat % 2)
    dense = spec["layers"][3]
    w4 = np.array(dense["weights"], dtype=float)  # (2, 8)
    z4 = w4 @ z3.reshape(-1)
    a4 = 1 / (1 + np.exp(-z4))
    t = np.array(dense["targets"], dtype=float)
    return {
        "x": x, "w": w, "b": b, "z2": z2, "a2": a2, "z3": z3, "winner": winner, "w4": w4,
        "z4": z4, "a4": a4, "t": t, "loss": float(np.sum((t - a4) ** 2) / 2),
    }  # fmt: skip


def _terms(expression: str) -> list[frozenset[str]]:
    """'b + w*x + …' as the set of symbol names of each term, in the order written."""
    return [frozenset(term.split("*")) for term in expression.split(" + ")]


def _evaluate(expression: str, values: dict[str, float]) -> float:
    return sum(math.prod(values[name] for name in term.split("*")) for term in expression.split(" + "))


def _natural(text: str) -> tuple[object, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def test_tinyconv_full_json_matches_a_numpy_forward_pass():
    proc = subprocess.run(
        [sys.executable, "-m", "derive", "show", "tinyconv", "--format", "json", "--full"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    ref = _numpy_tinyconv()
    x, w, b, w4 = ref["x"], ref["w"], ref["b"], ref["w4"]

    # parameters: every kernel weight, bias and dense weight as the spec gives them, under its documented name
    expected_parameters = {
        f"w2_{o + 1}_1_{r + 1}_{c + 1}": w[o, 0, r, c] for o in range(2) for r in range(2) for c in range(2)
    }
    expected_parameters |= {f"b2_{o + 1}": b[o] for o in range(2)}
    expected_parameters |= {f"w4_{j + 1}_{k + 1}": w4[j, k] for j in range(2) for k in range(8)}
    assert data["parameters"] == pytest.approx(expected_parameters, abs=0, rel=0)
    assert set(data["parameters"]) == set(expected_parameters)

    layers = data["layers"]
    assert [layer["size"] for layer in layers] == [16, 18, 8, 2]
    values = {n["out"]: n["out_value"] for layer in layers for n in layer["neurons"]} | data["parameters"]

    inputs = {n["out"]: n["out_value"] for n in layers[0]["neurons"]}
    assert inputs == {f"x1_{r + 1}_{c + 1}": x[r, c] for r in range(4) for c in range(4)}

    conv = {n["net"]: n for n in layers[1]["neurons"]}
    assert len(conv) == 18
    for o in range(2):
        for r in range(3):
            for c in range(3):
                n = conv[f"z2_{o + 1}_{r + 1}_{c + 1}"]
                assert n["out"] == f"a2_{o + 1}_{r + 1}_{c + 1}"
                assert n["net_value"] == pytest.approx(ref["z2"][o, r, c], abs=1e-12)
                assert n["out_value"] == pytest.approx(ref["a2"][o, r, c], abs=1e-12)
                # the net's terms: the channel's bias, and each kernel weight times the input under it
                uses = {
                    frozenset({f"w2_{o + 1}_1_{i + 1}_{j + 1}", f"x1_{r + i + 1}_{c + j + 1}"})
                    for i in range(2)
                    for j in range(2)
                }
                terms = _terms(n["net_expression"])
                assert set(terms) == uses | {frozenset({f"b2_{o + 1}"})}
                assert len(terms) == 5
                assert _evaluate(n["net_expression"], values) == pytest.approx(ref["z2"][o, r, c], abs=1e-12)
                assert n["out_expression"] == f"Max(0, z2_{o + 1}_{r + 1}_{c + 1})"
                # terms in natural order of their text, each product's factors by name
                written = n["net_expression"].split(" + ")
                assert written == sorted(written, key=_natural)
                assert all(t.split("*") == sorted(t.split("*")) for t in written)

    pooled = {n["net"]: n for n in layers[2]["neurons"]}
    for (o, r, c), (wr, wc) in ref["winner"].items():
        n = pooled[f"z3_{o + 1}_{r + 1}_{c + 1}"]
        assert n["net_expression"] == f"a2_{o + 1}_{wr + 1}_{wc + 1}"  # the window's first largest entry
        assert n["net_value"] == pytest.approx(ref["z3"][o, r, c], abs=1e-12)
        assert n["out_value"] == pytest.approx(ref["z3"][o, r, c], abs=1e-12)

    flat = [f"a3_{o + 1}_{r + 1}_{c + 1}" for o in range(2) for r in range(2) for c in range(2)]
    for j, n in enumerate(layers[3]["neurons"]):
        assert n["net"] == f"z4_{j + 1}"
        assert set(_terms(n["net_expression"])) == {frozenset({a, f"w4_{j + 1}_{k + 1}"}) for k, a in enumerate(flat)}
        assert n["net_value"] == pytest.approx(ref["z4"][j], abs=1e-12)
        assert n["out_value"] == pytest.approx(ref["a4"][j], abs=1e-12)
        assert n["target_value"] == ref["t"][j]
    assert data["loss"]["value"] == pytest.approx(ref["loss"], abs=1e-12)


SPECS = {
    "conv1d_padded_strided_shared_bias": """
name = "c1"
loss = "mse"
[[layers]]
shape = [2, 9]
values = "random"
[[layers]]
kind = "conv1d"
channels = 3
kernel = 3
stride = 2
padding = 2
bias = 0.2
activation = "tanh"
[[layers]]
size = 2
activation = "sigmoid"
bias = "per_neuron"
targets = "random"
""",
    "conv2d_unbiased_avgpool": """
name = "c2"
[[layers]]
shape = [2, 6, 7]
values = "random"
[[layers]]
kind = "conv2d"
channels = 2
kernel = [3, 2]
padding = [1, 0]
activation = "relu"
[[layers]]
kind = "avgpool2d"
kernel = 2
[[layers]]
size = 3
activation = "softmax"
targets = "random"
[loss]
kind = "cross_entropy"
""",
}


@pytest.mark.parametrize("ref", ["tinyconv", "mazur", *SPECS])
def test_products_text_equals_sympys_printing_of_the_sum(ref):
    model = derive.load(SPECS.get(ref, ref))
    net = model.network
    checked = 0
    for layer in net.layers[1:]:
        for n in layer.neurons:
            products = net.net_products(n.net)
            expected = pr.text(net.net_definitions[n.net])
            if products is None:
                assert "pool" in layer.spec.kind
                continue
            written = pr.products_text(*products)
            if written is not None:
                assert written == expected
                checked += 1
    assert checked > 0


def test_products_text_declines_what_it_cannot_order_as_sympy_does():
    a, b, x01, x1, w = sp.symbols("a b x01 x1 w")
    assert pr.products_text([(w, x01), (w, x1)], None) is None  # the same weight twice: w*(x01 + x1) merges
    assert pr.products_text([(a, x01), (b, x1)], None) is not None
    assert pr.products_text([(a, x01), (a, b)], x1) is None  # a twice
    assert pr.products_text([(x01, a)], None) is None  # one product: sympy prints a Mul, not a sum
    assert pr.products_text([(a, sp.Integer(2))], b) is None  # not a symbol
    # natural keys that tie (x01 and x1 read as the same number): sympy's order would decide, so decline
    a01, b2, a1, b02 = sp.symbols("a01 b2 a1 b02")
    assert pr.products_text([(a01, b2), (a1, b02)], None) is None  # a01*b2 and a1*b02 tie
    assert pr.products_text([(a01, b2), (a1, b)], None) == pr.text(a01 * b2 + a1 * b) == "a1*b + a01*b2"
    assert pr.products_text([], None) is None


def test_lenet_full_overview_builds_no_net_sums():
    """`show lenet --format json --full` prints its 5,600 conv and dense nets from their products: no sympy sum is
    built (each was a sympy Add of up to 256 products; 40 s in all before)."""
    model = derive.load("lenet")
    data = model.overview(full=True)
    made = model.network.net_definitions._made  # type: ignore[attr-defined]
    conv_and_dense = [
        n.net for layer in model.network.layers[1:] if "pool" not in layer.spec.kind for n in layer.neurons
    ]
    assert len(conv_and_dense) == 3456 + 1024 + 10
    assert not any(net in made for net in conv_and_dense)
    first = data["layers"][1]["neurons"][0]["net_expression"]
    assert first.startswith("b2_1 + w2_1_1_1_1*x1_1_1 + ") and first.count(" + ") == 25
