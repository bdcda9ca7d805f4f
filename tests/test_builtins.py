"""The table of built-ins: every entry has each of its faces (parser, sympy rule, NumPy printer, init scheme),
and the activations added through it agree with PyTorch, in derive and in exported modules."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp
from conftest import require_torch
from oracles import ACTIVATIONS as ORACLE_ACTIVATIONS
from oracles import Net, backprop, relative_error, torch_gradients

from derive.app.api import Model
from derive.codegen.modules import compile_module, vector_module
from derive.codegen.numpy_printer import numpy_code
from derive.core.formula import parse_formula
from derive.core.init import _namespace as init_functions
from derive.core.init import scheme
from derive.core.rules import Activation, LayerMap, activation, loss
from derive.errors import SpecError
from derive.spec.builtins import ACTIVATIONS, FUNCTIONS, LOSSES, Init
from derive.spec.reading import parse_spec

X = sp.Symbol("x", real=True)
POINTS = np.array([0.3, 0.75, 1.4, 2.2])  # inside every function's domain (log, sqrt, atan …)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_formula_function_has_a_numpy_printer_that_computes_it(name):
    text = f"{name}(x)" if FUNCTIONS[name].arity == 1 else f"{name}(x, 1)"
    expr = parse_formula(text, {"x": X})
    code = numpy_code(expr, {X: "z"})
    namespace = {"np": np, "math": math, "z": POINTS}
    # the code is printed by derive from a tree it built: its own names only
    got = np.broadcast_to(eval(code, namespace), POINTS.shape)
    expected = [float(expr.subs(X, v).evalf(30)) for v in POINTS]
    assert np.allclose(got, expected, rtol=1e-14, atol=0), (name, code)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_has_a_rule_and_an_init_scheme(name):
    rule = activation(name)
    assert isinstance(rule, LayerMap if ACTIVATIONS[name].layer_map else Activation)
    spec = parse_spec(f'[loss]\nkind = "half_sse"\n[[layers]]\nsize = 2\n[[layers]]\nsize = 2\nactivation = "{name}"\n')
    assert scheme(spec.layers[1]) in {i.value for i in Init}
    assert callable(init_functions[scheme(spec.layers[1])])


def test_rectifiers_draw_he_weights_the_rest_xavier():
    assert {n for n, a in ACTIVATIONS.items() if a.init is Init.HE} == {"relu", "elu", "leaky_relu", "gelu"}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_parses(name):
    assert loss(name, "").per_output.has(sp.Symbol("o", real=True))


@pytest.mark.parametrize("written", ["ReLU", "GELU", "Leaky_ReLU", "Sigmoid"])
def test_activation_names_are_read_in_any_case(written):
    spec = parse_spec(f'loss = "MSE"\n[[layers]]\nsize = 2\n[[layers]]\nsize = 2\nactivation = "{written}"\n')
    assert spec.layers[1].activation == written.lower()
    assert spec.loss.kind == "mse"


def test_a_misspelled_new_activation_gets_a_suggestion():
    with pytest.raises(SpecError) as err:
        parse_spec('loss = "mse"\n[[layers]]\nsize = 2\n[[layers]]\nsize = 2\nactivation = "geluu"\n')
    assert "gelu" in str(err.value)


def _net(hidden: str, seed: int) -> Net:
    rng = np.random.default_rng(seed)
    sizes = [3, 4, 4, 2]
    return Net(
        sizes=sizes,
        activations=[hidden, hidden, "sigmoid"],
        weights=[rng.normal(0, 1, (n, m)) for m, n in itertools.pairwise(sizes)],
        bias_kinds=["per_neuron", "shared", "per_neuron"],
        biases=[rng.normal(0, 0.5, 4), np.array(rng.normal(0, 0.5)), rng.normal(0, 0.5, 2)],
        x=rng.uniform(-1, 1, 3),
        t=rng.uniform(0, 1, 2),
        loss="half_sse",
    )


@pytest.mark.parametrize("hidden", ["elu", "leaky_relu", "gelu"])
def test_new_activations_agree_with_torch_in_derive_and_in_the_exported_module(hidden):
    assert hidden in ORACLE_ACTIVATIONS
    torch = require_torch()
    for seed in range(3):
        net = _net(hidden, seed)
        model = Model(parse_spec(net.toml()))
        loss_value, grads = model.gradients()
        e_torch, g_torch = torch_gradients(net)
        ours = np.array([grads[n] for n in net.parameter_names()])
        assert abs(loss_value - e_torch) <= 1e-12 * max(1.0, abs(e_torch))
        assert relative_error(ours, g_torch) < 1e-10
        assert relative_error(ours, backprop(net)[1]) < 1e-10
        one = model.derivation(net.parameter_names()[0]).value
        assert abs(one - g_torch[0]) <= 1e-10 * max(1.0, abs(g_torch[0]))
        module = compile_module(vector_module(model))
        X, T = net.x[None, :], net.t[None, :]
        e_module, g_module = module.loss_and_gradients(module.init_params(), X, T)
        flat = np.concatenate([np.ravel(g_module[k]) for k in ("W2", "b2", "W3", "b3", "W4", "b4")])
        assert abs(e_module - e_torch) <= 1e-12 * max(1.0, abs(e_torch))
        assert relative_error(flat, g_torch) < 1e-10
    assert torch.__version__
