"""Mazur's 2-2-2 example (seed 004), every number checked against the oracles."""

import numpy as np
import pytest
from oracles import agrees_with_finite_differences, backprop, finite_differences, isclose, mazur, relative_error, train

import derive
from derive.core.network import LOSS_SYMBOL

NAMES = ["w1", "w2", "w3", "w4", "b1", "w5", "w6", "w7", "w8", "b2"]


@pytest.fixture(scope="module")
def model():
    return derive.load("mazur")


def test_the_oracle_reproduces_the_articles_numbers():
    # The oracle is checked against Mazur's published values (not against derive).
    e, grad, inner = backprop(mazur())
    assert round(inner["a"][2][0], 8) == 0.75136507  # 004 prints 0.75136079, a typo
    assert round(inner["a"][2][1], 9) == 0.772928465
    assert round(e, 9) == 0.298371109
    assert round(grad[5], 9) == 0.082167041
    assert round(grad[0], 9) == 0.000438568


def test_forward_pass_matches_the_oracle(model):
    _, _, inner = backprop(mazur())
    point = model.point
    net = model.network
    for layer, (zs, acts) in enumerate(zip(inner["z"][1:], inner["a"][1:]), start=1):
        for n, z, a in zip(net.layers[layer].neurons, zs, acts):
            assert isclose(point[n.net], z, 1e-12)
            assert isclose(point[n.out], a, 1e-12)


def test_loss_matches_the_oracle(model):
    e, _, _ = backprop(mazur())
    assert isclose(model.point[LOSS_SYMBOL], e, 1e-12)


def test_every_gradient_matches_backprop_and_finite_differences(model):
    _, grad, _ = backprop(mazur())
    fd = finite_differences(mazur())
    derivations = model.derivations()
    assert list(derivations) == NAMES
    values = np.array([derivations[k].value for k in NAMES])
    assert relative_error(values, grad) < 1e-12
    assert agrees_with_finite_differences(values, fd, rel=1e-6)
    _, compiled = model.gradients()
    assert relative_error(np.array([compiled[k] for k in NAMES]), grad) < 1e-12


def test_shared_bias_gradient_sums_the_deltas_of_every_neuron_it_feeds(model):
    _, grad, inner = backprop(mazur())
    b1 = model.derivation("b1")
    assert b1.path_count == 4  # b1 feeds h1 and h2, each reaching o1 and o2
    assert isclose(b1.value, inner["delta"][1].sum(), 1e-12)
    assert isclose(b1.value, grad[4], 1e-12)
    assert round(b1.value, 9) == 0.018725609
    assert round(model.derivation("b2").value, 8) == 0.10040033


def test_w5_is_the_product_of_three_factors(model):
    d = model.derivation("w5")
    assert d.path_count == 1
    (path,) = d.paths
    assert [(f.of.name, f.wrt.name) for f in path.factors] == [
        ("E", "out_o1"),
        ("out_o1", "net_o1"),
        ("net_o1", "w5"),
    ]
    _, _, inner = backprop(mazur())
    o1, h1 = inner["a"][2][0], inner["a"][1][0]
    assert isclose(path.factors[0].value, o1 - 0.01, 1e-12)
    assert isclose(path.factors[1].value, o1 * (1 - o1), 1e-12)
    assert isclose(path.factors[2].value, h1, 1e-12)


def test_w1_sums_two_paths(model):
    d = model.derivation("w1")
    assert d.path_count == 2
    _, grad, _ = backprop(mazur())
    assert isclose(sum(p.value for p in d.paths), grad[0], 1e-12)
    assert [p.nodes[1].name for p in d.paths] == ["out_o1", "out_o2"]


def test_one_update_matches_the_oracle(model):
    trained, _ = train(mazur(), 1)
    engine = model.compiled()
    engine.train(1)
    params = engine.parameter_values()
    expected = dict(zip(NAMES, trained.flat()))
    for k in NAMES:
        assert isclose(params[k], expected[k], 1e-12), k
    assert params["b1"] == 0.35  # biases are not updated, as in the article


def test_ten_thousand_updates(model):
    _, history = train(mazur(), 10_000)
    engine = model.compiled()
    ours = engine.train(10_000)
    assert isclose(ours[-1], history[-1], 1e-9)
    assert round(history[-1], 12) == pytest.approx(3.5101878e-5, rel=1e-7)
    # the article's 0.0000351085 is the loss after 9,999 updates
    assert history[-2] == pytest.approx(3.51085e-5, rel=1e-4)
