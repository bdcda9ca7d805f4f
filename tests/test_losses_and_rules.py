"""Losses on 3+ outputs, custom formulas, textbook derivative forms."""

import numpy as np
import pytest
import sympy as sp
from oracles import (
    Net,
    agrees_with_finite_differences,
    backprop,
    finite_differences,
    forward,
    relative_error,
    sympy_gradients,
)

from derive.codegen.engine import Compiled
from derive.core import rules
from derive.core.network import Network
from derive.spec.reading import parse_spec


def three_outputs(loss, out_act="sigmoid", hidden="tanh", t=(0.2, 0.7, 0.1)):
    rng = np.random.default_rng(3)
    return Net(
        sizes=[2, 3, 3],
        activations=[hidden, out_act],
        weights=[rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (3, 3))],
        bias_kinds=["per_neuron", "shared"],
        biases=[rng.uniform(-0.5, 0.5, 3), np.array(0.1)],
        x=np.array([0.3, -0.8]),
        t=np.array(t),
        loss=loss,
    )


def grads(net, spec_text=None):
    network = Network(parse_spec(spec_text or net.toml()))
    loss, named = Compiled(network).named_gradients()
    return loss, np.array(list(named.values()))


@pytest.mark.parametrize("loss", ["half_sse", "sse", "mse", "bce"])
def test_each_loss_on_three_outputs_matches_sympy_diff(loss):
    net = three_outputs(loss)
    e, ours = grads(net)
    e_sym, expected = sympy_gradients(net)
    assert e == pytest.approx(e_sym, rel=1e-12)
    assert relative_error(ours, expected) < 1e-10


def test_mse_is_not_half_sse_on_three_outputs():
    _, mse = grads(three_outputs("mse"))
    _, half = grads(three_outputs("half_sse"))
    assert relative_error(mse, half * 2 / 3) < 1e-12  # mean of squares vs half the sum


def test_cross_entropy_with_softmax_matches_sympy_diff():
    net = three_outputs("cross_entropy", out_act="softmax", t=(0.0, 1.0, 0.0))
    e, ours = grads(net)
    e_sym, expected = sympy_gradients(net)
    assert e == pytest.approx(e_sym, rel=1e-12)
    assert relative_error(ours, expected) < 1e-10


def test_softmax_cross_entropy_output_delta_folds_to_out_minus_target():
    net = three_outputs("cross_entropy", out_act="softmax", t=(0.0, 1.0, 0.0))
    network = Network(parse_spec(net.toml()))
    for n in network.output_layer.neurons:
        assert network.delta_definitions[n.delta] == n.out - n.target


def test_softmax_with_mse_runs_through_every_output():
    net = three_outputs("mse", out_act="softmax")
    _, ours = grads(net)
    _, expected = sympy_gradients(net)
    assert relative_error(ours, expected) < 1e-10
    network = Network(parse_spec(net.toml()))
    from derive.core.chain import derive

    d = derive(network, network.symbols["w3_1_1"])
    assert d.path_count == 3  # net3_1 reaches E through a3_1, a3_2 and a3_3


def test_a_custom_loss_formula_equal_to_a_built_in_gives_the_same_gradients():
    net = three_outputs("half_sse")
    custom = Net(**{**net.__dict__, "custom_loss": "(t - o)**2/2"})
    _, a = grads(net)
    _, b = grads(custom)
    assert relative_error(a, b) < 1e-12


def test_a_custom_loss_agrees_with_finite_differences():
    net = three_outputs("half_sse")
    text = net.toml().replace('kind = "half_sse"', 'expr = "log(cosh(o - t))"')
    network = Network(parse_spec(text))
    compiled = Compiled(network)
    _, named = compiled.named_gradients()

    def loss_of(theta):
        n2 = net.with_flat(theta)
        _, acts = forward(n2)
        return float(np.log(np.cosh(acts[-1] - n2.t)).sum())

    theta = net.flat()
    fd = np.array([(loss_of(theta + h) - loss_of(theta - h)) / 2e-6 for h in np.eye(theta.size) * 1e-6])
    assert agrees_with_finite_differences(np.array(list(named.values())), fd)


@pytest.mark.parametrize(
    ("builtin", "formula"),
    [("sigmoid", "1/(1 + exp(-x))"), ("tanh", "tanh(x)"), ("softplus", "log(1 + exp(x))"), ("relu", "max(x, 0)")],
)
def test_a_custom_formula_identical_to_a_built_in_gives_the_same_gradients(builtin, formula):
    net = three_outputs("half_sse", hidden=builtin)
    _, a = grads(net)
    _, b = grads(net, net.toml().replace(f'activation = "{builtin}"', f'activation = "{formula}"'))
    assert relative_error(a, b) < 1e-12


def test_textbook_forms_are_found_by_differentiating_the_formula():
    y = rules.Y
    assert sp.simplify(rules.activation("sigmoid").fprime_in_out - y * (1 - y)) == 0
    assert sp.simplify(rules.activation("tanh").fprime_in_out - (1 - y**2)) == 0
    assert sp.simplify(rules.activation("1/(1 + exp(-x))").fprime_in_out - y * (1 - y)) == 0
    assert rules.activation("linear").fprime_in_out == 1
    assert rules.activation("softplus").fprime_in_out is None  # not a polynomial in out
    assert rules.activation("x/(1 + exp(-x))").fprime_in_out is None


def test_relu_derivative_at_zero_is_zero_as_in_pytorch():
    d = rules.activation("relu").fprime
    assert d.subs(rules.X, 0) == 0
    assert d.subs(rules.X, 1) == 1
    assert d.subs(rules.X, -1) == 0


def test_softmax_jacobian_is_derived_and_written_in_the_outputs():
    nets = sp.symbols("n1:4", real=True)
    outs = sp.symbols("o1:4", real=True)
    jac = rules.activation("softmax").jacobian(nets, outs)
    for j in range(3):
        for i in range(3):
            expected = outs[j] * ((1 if i == j else 0) - outs[i])
            assert sp.expand(jac[j][i] - expected) == 0
            assert not jac[j][i].free_symbols & set(nets)


def test_relu_network_matches_finite_differences():
    net = three_outputs("sse", hidden="relu", out_act="linear")
    _, ours = grads(net)
    _, expected, _ = backprop(net)
    assert relative_error(ours, expected) < 1e-12
    assert agrees_with_finite_differences(ours, finite_differences(net))
