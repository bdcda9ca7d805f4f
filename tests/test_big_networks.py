"""A network too big to write out symbol by symbol: one gradient is derived from the few neurons on its paths,
and every number agrees with the NumPy backprop of tests/oracles.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from oracles import Net, backprop, relative_error

from derive.app.api import Model
from derive.present.report import Reporter
from derive.spec.reading import parse_spec

SIZES = [40, 24, 24, 6]


def _net(seed: int = 3) -> Net:
    rng = np.random.default_rng(seed)
    t = np.zeros(SIZES[-1])
    t[2] = 1.0
    return Net(
        sizes=SIZES,
        activations=["relu", "relu", "softmax"],
        weights=[rng.normal(0, np.sqrt(2 / m), (n, m)) for m, n in itertools.pairwise(SIZES)],
        bias_kinds=["per_neuron", "per_neuron", "per_neuron"],
        biases=[rng.normal(0, 0.1, n) for n in SIZES[1:]],
        x=rng.uniform(0, 1, SIZES[0]),
        t=t,
        loss="cross_entropy",
    )


@pytest.fixture(scope="module")
def net_and_oracle():
    net = _net()
    return net, backprop(net)


@pytest.mark.parametrize("name", ["w2_1_1", "w2_24_40", "b2_3", "w3_5_7", "b4_6"])
def test_one_parameter_derived_alone_agrees_with_backprop(net_and_oracle, name):
    net, (_, grad, _) = net_and_oracle
    model = Model(parse_spec(net.toml()))
    derivation = model.derivation(name)
    expected = grad[net.parameter_names().index(name)]
    assert abs(derivation.value - expected) <= 1e-12 * max(1.0, abs(expected))
    Reporter(derivation).text()  # shown with numbers
    # only the symbols on the parameter's paths (and its δs') exist, not the network's 1,800 weights
    assert model.network.symbols.made < len(net.parameter_names()) / 2


def test_a_net_and_an_out_agree_with_backprop_deltas(net_and_oracle):
    net, (_, _, inner) = net_and_oracle
    model = Model(parse_spec(net.toml()))
    assert abs(model.derivation("z3_5").value - inner["delta"][2][4]) <= 1e-12
    # ∂E/∂a2_7 = Σ_i δ3_i w3_i7
    expected = float(net.weights[1][:, 6] @ inner["delta"][2])
    assert abs(model.derivation("a2_7").value - expected) <= 1e-12


def test_every_gradient_from_the_compiled_passes_agrees_with_backprop(net_and_oracle):
    net, (loss, grad, _) = net_and_oracle
    model = Model(parse_spec(net.toml()))
    e, values = model.gradient_values()
    assert abs(e - loss) <= 1e-12 * max(1.0, loss)
    assert relative_error(np.array([values[n] for n in net.parameter_names()]), grad) < 1e-12
    counts = model.path_counts()
    assert counts["w4_1_1"] == SIZES[-1]  # a softmax net feeds every output
    assert counts["w2_1_1"] == SIZES[2] * SIZES[3] * SIZES[3]


def test_show_summarises_a_big_layer_and_lists_everything_when_asked(net_and_oracle):
    from derive.present.overview import overview, overview_text

    net, _ = net_and_oracle
    model = Model(parse_spec(net.toml()))
    short, full = overview_text(model), overview_text(model, full=True)
    assert "--full lists them" in short and "--full" not in full
    assert full.count("\n") > short.count("\n")
    assert len(overview(model, full=True)["parameters"]) == len(net.parameter_names())
