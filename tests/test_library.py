"""derive as a library, closed forms against sympy.diff, names and LaTeX."""

import numpy as np
import pytest
import sympy as sp
from oracles import backprop, mazur

import derive
from derive.core.chain import derive as derive_one
from derive.core.init import weights
from derive.core.network import Network
from derive.errors import TooLargeError
from derive.spec.naming import latex_name
from derive.spec.reading import parse_spec


def test_library_round_trip():
    model = derive.load("mazur")
    d = model.derivation("w5")
    assert d.form == "paths"
    assert isinstance(d.expression, sp.Expr)
    assert d.value == pytest.approx(backprop(mazur())[1][5], rel=1e-12)
    _, grads = model.gradients()
    assert grads["w5"] == pytest.approx(d.value, rel=1e-12)


def test_closed_form_matches_sympy_diff_of_a_loss_built_here():
    model = derive.load("mazur")
    s = {
        n: sp.Symbol(n, real=True)
        for n in ["i1", "i2", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b1", "b2", "target_o1", "target_o2"]
    }

    def sig(z):
        return 1 / (1 + sp.exp(-z))

    h1 = sig(s["w1"] * s["i1"] + s["w2"] * s["i2"] + s["b1"])
    h2 = sig(s["w3"] * s["i1"] + s["w4"] * s["i2"] + s["b1"])
    o1 = sig(s["w5"] * h1 + s["w6"] * h2 + s["b2"])
    o2 = sig(s["w7"] * h1 + s["w8"] * h2 + s["b2"])
    E = (s["target_o1"] - o1) ** 2 / 2 + (s["target_o2"] - o2) ** 2 / 2
    values = {s["i1"]: 0.05, s["i2"]: 0.10, s["target_o1"]: 0.01, s["target_o2"]: 0.99}
    values |= dict(zip([s[k] for k in ["w1", "w2", "w3", "w4", "b1", "w5", "w6", "w7", "w8", "b2"]], mazur().flat()))
    rng = np.random.default_rng(0)
    for name in ["w1", "w5", "b1", "b2", "w8"]:
        closed = model.derivation(name).closed_form()
        ours = closed.xreplace({model.network.symbols[k]: s[k] for k in s})
        expected = sp.diff(E, s[name])
        for _ in range(3):  # equal as functions: compare at random points too
            pt = {k: float(rng.uniform(-1, 1)) for k in s.values()}
            assert float(ours.evalf(subs=pt)) == pytest.approx(float(expected.evalf(subs=pt)), rel=1e-10)
        assert float(ours.evalf(subs=values)) == pytest.approx(float(expected.evalf(subs=values)), rel=1e-12)


def test_closed_form_size_guard_is_fast_and_clear():
    layers = "\n".join(["[[layers]]\nsize = 4\nactivation = 'tanh'"] * 8)
    spec = parse_spec(
        f"name = 'deep'\n[loss]\nkind = 'sse'\n[[layers]]\nsize = 4\n{layers}\n[[layers]]\nsize = 2\nactivation = 'linear'\n"
    )
    net = Network(spec)
    d = derive_one(net, net.symbols["w2_1_1"])
    assert d.form == "delta"
    with pytest.raises(TooLargeError, match="closed form of ∂E/∂w2_1_1 would have about"):
        d.closed_form()


@pytest.mark.parametrize(
    ("name", "nielsen", "latex"),
    [
        ("w2_1_11", True, "w^{2}_{1,11}"),
        ("z3_2", True, "z^{3}_{2}"),
        ("b2", True, "b^{(2)}"),
        ("b1", False, "b_{1}"),
        ("w5", False, "w_{5}"),
        ("w11", False, "w_{11}"),
        ("net_h1", False, r"\mathrm{net}_{h1}"),
        ("target_o1", False, r"\mathrm{target}_{o1}"),
        ("x1", True, "x_{1}"),
        ("alpha", False, r"\mathrm{alpha}"),
    ],
)
def test_latex_names(name, nielsen, latex):
    assert latex_name(name, nielsen) == latex


def test_nielsen_defaults_for_layers_given_by_size():
    spec = parse_spec(
        "[loss]\nkind = 'sse'\n[[layers]]\nsize = 2\n[[layers]]\nsize = 3\nactivation = 'relu'\nbias = 'shared'\n[[layers]]\nsize = 1\nactivation = 'linear'\nbias = 'per_neuron'\n"
    )
    net = Network(spec)
    assert [s.name for s in net.parameters][:3] == ["w2_1_1", "w2_1_2", "w2_2_1"]
    assert "b2" in net.symbols and "b3_1" in net.symbols
    assert {"x1", "x2", "z2_1", "a2_3", "z3_1", "a3_1", "y1"} <= set(net.symbols)
    assert net.latex[net.symbols["b2"]] == "b^{(2)}"
    assert net.missing_numbers() == ["layers[0].values (the inputs)", "layers[2].targets"]


def test_seeded_initialisation_is_reproducible():
    text = "[init]\nseed = 3\n[loss]\nkind = 'sse'\n[[layers]]\nsize = 3\n[[layers]]\nsize = 4\nactivation = 'tanh'\n[[layers]]\nsize = 2\nactivation = 'linear'\n"
    a, b = parse_spec(text), parse_spec(text)
    assert np.array_equal(weights(a, 1), weights(b, 1))
    c = parse_spec(text.replace("seed = 3", "seed = 4"))
    assert not np.array_equal(weights(a, 1), weights(c, 1))
    limit = (6 / (3 + 4)) ** 0.5  # Xavier uniform for tanh
    assert weights(a, 1).shape == (4, 3)
    assert np.all(np.abs(weights(a, 1)) <= limit)
    assert np.array_equal(weights(a, 1), np.round(weights(a, 1), 4))
    relu = parse_spec(text.replace("'tanh'", "'relu'"))
    assert abs(weights(relu, 1).std() - (2 / 3) ** 0.5) < 0.6  # He normal: std √(2/fan_in), loosely (12 draws)


def test_biases_named_as_in_000_are_subscripts_not_layer_superscripts():
    net = derive.load("chain_221").network
    assert [net.latex[net.symbols[b]] for b in ("b1", "b2", "b3")] == ["b_{1}", "b_{2}", "b_{3}"]
    mazur_net = derive.load("mazur").network
    assert mazur_net.latex[mazur_net.symbols["b1"]] == "b_{1}"  # a shared bias in layer 2, named by Mazur


def test_a_sum_that_cancels_to_rounding_noise_is_shown_as_zero():
    from derive.present.display import display_point, shown_value

    model = derive.load("softmax")
    net = model.network
    h3 = net.symbols["net_h3"]
    exact = model.point[h3]
    assert exact != 0 and abs(exact) < 1e-15  # 0.1 − 0.04 − 0.2 + 0.14 in floating point
    assert shown_value(net.net_definitions[h3], exact, model.point) == 0.0
    assert display_point(net, model.point)[h3] == 0.0
    assert model.point[h3] == exact  # the numbers themselves stay exact
    other = net.symbols["net_h1"]
    assert shown_value(net.net_definitions[other], model.point[other], model.point) == model.point[other]
