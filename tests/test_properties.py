"""Random architectures: every gradient and every step agrees with the oracles."""

import re

import numpy as np
from conftest import require_torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import (
    _dact,
    _dloss,
    agrees_with_finite_differences,
    backprop,
    finite_differences,
    relative_error,
    sympy_gradients,
    torch_gradients,
    train,
)
from strategies import networks

from derive.codegen.engine import Compiled
from derive.core.chain import derive_all, evaluate
from derive.core.network import Network
from derive.spec.reading import parse_spec

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def engine(net):
    network = Network(parse_spec(net.toml()))
    return network, Compiled(network)


def ours(network, compiled):
    loss, grads = compiled.named_gradients()
    return loss, grads


@SETTINGS
@given(networks())
def test_gradients_agree_with_numpy_backprop_and_finite_differences(net):
    network, compiled = engine(net)
    loss, grads = ours(network, compiled)
    assert list(grads) == net.parameter_names()
    e, expected, _ = backprop(net)
    values = np.array(list(grads.values()))
    assert abs(loss - e) <= 1e-9 * max(1.0, abs(e))
    assert relative_error(values, expected) < 1e-9
    assert agrees_with_finite_differences(values, finite_differences(net))


@SETTINGS
@given(networks())
def test_gradients_agree_with_pytorch_autograd(net):
    require_torch()
    _, compiled = engine(net)
    loss, grads = compiled.named_gradients()
    e, expected = torch_gradients(net)
    assert abs(loss - e) <= 1e-9 * max(1.0, abs(e))
    assert relative_error(np.array(list(grads.values())), expected) < 1e-9


@settings(max_examples=25, deadline=None)
@given(networks(max_hidden=1, max_width=3))
def test_gradients_agree_with_sympy_diff_of_the_whole_loss(net):
    _, compiled = engine(net)
    loss, grads = compiled.named_gradients()
    e, expected = sympy_gradients(net)
    assert abs(loss - e) <= 1e-9 * max(1.0, abs(e))
    assert relative_error(np.array(list(grads.values())), expected) < 1e-9


def _oracle_value(name, inner, net):
    """The oracle's value of a named symbol (Nielsen names)."""
    if m := re.fullmatch(r"x(\d+)", name):
        return net.x[int(m[1]) - 1]
    if m := re.fullmatch(r"([az])(\d+)_(\d+)", name):
        return inner["a" if m[1] == "a" else "z"][int(m[2]) - 1][int(m[3]) - 1]
    if m := re.fullmatch(r"w(\d+)_(\d+)_(\d+)", name):
        return net.weights[int(m[1]) - 2][int(m[2]) - 1, int(m[3]) - 1]
    if m := re.fullmatch(r"b(\d+)(?:_(\d+))?", name):
        b = net.biases[int(m[1]) - 2]
        return float(b) if m[2] is None else b[int(m[2]) - 1]
    if m := re.fullmatch(r"y(\d+)", name):
        return net.t[int(m[1]) - 1]
    if m := re.fullmatch(r"δ(\d+)_(\d+)", name):
        return inner["delta"][int(m[1]) - 1][int(m[2]) - 1]
    raise KeyError(name)


def _oracle_factor(of, wrt, inner, net):
    """The oracle's ∂of/∂wrt for one edge of the network graph."""
    L = len(net.activations)
    if of == "E":
        j = int(re.fullmatch(r"a\d+_(\d+)", wrt)[1]) - 1
        return _dloss(inner["a"][-1], net.t, net.loss)[j]
    if m := re.fullmatch(r"a(\d+)_(\d+)", of):
        layer, j = int(m[1]) - 1, int(m[2]) - 1
        i = int(re.fullmatch(r"z\d+_(\d+)", wrt)[1]) - 1
        if net.activations[layer - 1] == "softmax":
            a = inner["a"][layer]
            return a[j] * ((i == j) - a[i])
        assert i == j and layer <= L
        return _dact(net.activations[layer - 1], inner["z"][layer])[j]
    m = re.fullmatch(r"z(\d+)_(\d+)", of)
    layer, j = int(m[1]) - 1, int(m[2]) - 1
    if wm := re.fullmatch(r"w(\d+)_(\d+)_(\d+)", wrt):
        return inner["a"][layer - 1][int(wm[3]) - 1]
    if re.fullmatch(r"b\d+(_\d+)?", wrt):
        return 1.0
    k = int(re.search(r"_(\d+)$", wrt)[1]) - 1 if "_" in wrt else int(wrt[1:]) - 1
    return net.weights[layer - 1][j, k]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(min_hidden=2, max_hidden=4, max_width=3))
def test_every_step_re_evaluated_from_its_expression_matches_the_oracle(net):
    network, compiled = engine(net)
    point = compiled.point()
    _, grad, inner = backprop(net)
    derivations = derive_all(network, point)
    for (name, d), expected in zip(derivations.items(), grad):
        assert abs(d.value - expected) <= 1e-9 * max(abs(expected), 1e-6), name
        for path in d.paths:
            for f in path.factors:
                value = evaluate(f.expr, d.point)  # the exact point the shown factors come from
                oracle = _oracle_factor(f.of.name, f.wrt.name, inner, net)
                assert abs(value - oracle) <= 1e-9 * max(abs(oracle), 1e-6), (name, f)
                assert value == f.value
        if d.paths:
            total = sum(p.value for p in d.paths)
            assert abs(total - expected) <= 1e-9 * max(abs(expected), 1e-6), name
        for term in d.terms:
            oracle_delta = _oracle_value(term.delta.name, inner, net)
            assert abs(evaluate(term.definition, point) - oracle_delta) <= 1e-9 * max(abs(oracle_delta), 1e-6)
        assert abs(sum(t.value for t in d.terms) - expected) <= 1e-9 * max(abs(expected), 1e-6)


@settings(max_examples=30, deadline=None)
@given(networks(max_hidden=2, max_width=3), st.integers(1, 5))
def test_training_matches_the_oracle(net, steps):
    _, compiled = engine(net)
    history = compiled.train(steps)
    trained, expected = train(net, steps)
    assert relative_error(np.array(history), np.array(expected)) < 1e-8
    params = compiled.parameter_values()
    assert relative_error(np.array([params[k] for k in net.parameter_names()]), trained.flat()) < 1e-8
