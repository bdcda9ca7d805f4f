"""The generated module's products in the orientation chosen for speed give PyTorch's numbers, in its dtype.

A narrow layer on a wide input (300 → 30) is computed as (W aᵀ)ᵀ in float64 and as a Wᵀ in float32;
either way the loss and every gradient must be PyTorch autograd's, the gradients C-contiguous arrays of
the inputs' dtype (what an in-place optimiser step and a user's own code expect).
"""

import numpy as np
import pytest
from conftest import require_torch

from derive import Model
from derive.codegen.modules import compile_module, vector_module
from derive.core.layers import by_neuron, transposed_forward

SPEC = """
name = 'wide'
[loss]
kind = '{loss}'
[init]
seed = 3
[[layers]]
size = 300
[[layers]]
size = 30
activation = '{hidden}'
bias = 'per_neuron'
[[layers]]
size = 10
activation = '{output}'
bias = 'per_neuron'
"""

CASES = [("sigmoid", "softmax", "cross_entropy"), ("relu", "sigmoid", "half_sse"), ("tanh", "softmax", "cross_entropy")]


def _torch_loss_and_gradients(torch, params, X, T, hidden, output, loss):
    """The batch-mean loss and its gradients by PyTorch autograd, in the arrays' dtype."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x, t = torch.tensor(X), torch.tensor(T)
    z2 = x @ p["W2"].T + p["b2"]
    a2 = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[hidden](z2)
    z3 = a2 @ p["W3"].T + p["b3"]
    if output == "softmax":
        e = -(t * torch.log_softmax(z3, dim=1)).sum(dim=1).mean()
    else:
        e = (0.5 * (torch.sigmoid(z3) - t) ** 2).sum(dim=1).mean()
    e.backward()
    return e.item(), {k: v.grad.numpy() for k, v in p.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 17, 64])
@pytest.mark.parametrize(("hidden", "output", "loss"), CASES)
def test_the_fast_orientations_give_pytorchs_loss_and_gradients_in_the_inputs_dtype(
    hidden, output, loss, batch, dtype, tmp_path
):
    torch = require_torch()
    assert transposed_forward(30, 300)  # the case this file is about
    spec = tmp_path / "wide.toml"
    spec.write_text(SPEC.format(hidden=hidden, output=output, loss=loss))
    model = Model.load(str(spec))
    module = compile_module(vector_module(model))
    params = {k: v.astype(dtype) for k, v in module.init_params().items()}
    rng = np.random.default_rng(batch)
    X = rng.uniform(-1, 1, (batch, 300)).astype(dtype)
    T = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)] if output == "softmax" else rng.uniform(0, 1, (batch, 10))
    T = T.astype(dtype)
    loss_value, grads = module.loss_and_gradients(params, X, T)
    expected_loss, expected = _torch_loss_and_gradients(torch, params, X, T, hidden, output, loss)
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    assert float(loss_value) == pytest.approx(expected_loss, rel=rtol)
    assert np.asarray(loss_value).dtype == dtype
    for key, value in grads.items():
        assert value.dtype == dtype and value.flags.c_contiguous, key
        scale = np.abs(expected[key]).max()
        np.testing.assert_allclose(value, expected[key], rtol=rtol, atol=rtol * scale, err_msg=key)
    # gradients() and loss() are the same code without the other half
    assert float(module.loss(params, X, T)) == pytest.approx(expected_loss, rel=rtol)
    for key, value in module.gradients(params, X, T).items():
        np.testing.assert_array_equal(value, grads[key])


def test_the_orientation_rule_keeps_the_plain_product_where_it_was_measured_slower():
    # wide into narrow, not a multiple of 16: transposed; 16/32/64 neurons, 1024 neurons, narrow inputs: plain
    assert transposed_forward(30, 784) and transposed_forward(10, 256) and transposed_forward(100, 1024)
    assert not any(transposed_forward(n, 784) for n in (16, 32, 64, 256, 1024))
    assert not transposed_forward(30, 100) and not transposed_forward(2, 2)


DEEP = """
name = 'narrow'
[loss]
kind = '{loss}'
[init]
seed = 5
[[layers]]
size = 40
[[layers]]
size = 20
activation = '{hidden}'
bias = 'per_neuron'
[[layers]]
size = 12
activation = '{hidden}'
bias = '{bias}'
[[layers]]
size = 16
activation = '{hidden}'
bias = 'per_neuron'
[[layers]]
size = 5
activation = '{output}'
bias = 'per_neuron'
"""


def _torch_deep(torch, params, X, T, hidden, output, shared):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    f = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[hidden]
    a = torch.tensor(X)
    for layer in (2, 3, 4, 5):
        z = a @ p[f"W{layer}"].T + p[f"b{layer}"]  # a shared bias is a 0-d tensor: it broadcasts
        a = f(z) if layer < 5 else z
    t = torch.tensor(T)
    if output == "softmax":
        e = -(t * torch.log_softmax(a, dim=1)).sum(dim=1).mean()
    else:
        e = (0.5 * (torch.sigmoid(a) - t) ** 2).sum(dim=1).mean()
    e.backward()
    return e.item(), {k: v.grad.numpy() for k, v in p.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize(
    ("hidden", "output", "loss", "bias"),
    [
        ("sigmoid", "softmax", "cross_entropy", "per_neuron"),
        ("tanh", "sigmoid", "half_sse", "shared"),
        ("relu", "softmax", "cross_entropy", "shared"),
    ],
)
def test_layers_stored_neuron_by_neuron_give_pytorchs_numbers(hidden, output, loss, bias, batch, dtype, tmp_path):
    """40 → 20 → 12 → 16 → 5: the first two hidden layers and the output are stored neuron by neuron
    (transposed views), the 16 on 12 inputs sample by sample, so δ crosses between the layouts both ways."""
    torch = require_torch()
    assert by_neuron(20, 40) and by_neuron(12, 20) and not by_neuron(16, 12) and by_neuron(5, 16)
    spec = tmp_path / "narrow.toml"
    spec.write_text(DEEP.format(hidden=hidden, output=output, loss=loss, bias=bias))
    model = Model.load(str(spec))
    source = vector_module(model)
    assert "z2 = W2.dot(X.T).T" in source and "z4 = a3.dot(W4.T)" in source and "z5 = W5.dot(a4.T).T" in source
    assert "d2 = W3.T.dot(d3.T).T" in source and "d3 = W4.T.dot(d4.T).T" in source and "d4 = d5.dot(W5)" in source
    module = compile_module(source)
    params = {k: np.asarray(v, dtype=dtype) for k, v in module.init_params().items()}
    rng = np.random.default_rng(batch + 7)
    X = rng.uniform(-2, 2, (batch, 40)).astype(dtype)
    T = np.eye(5)[rng.integers(0, 5, batch)] if output == "softmax" else rng.uniform(0, 1, (batch, 5))
    T = T.astype(dtype)
    loss_value, grads = module.loss_and_gradients(params, X, T)
    expected_loss, expected = _torch_deep(torch, params, X, T, hidden, output, bias == "shared")
    rtol = 1e-10 if dtype == np.float64 else 5e-4
    assert float(loss_value) == pytest.approx(expected_loss, rel=rtol)
    assert set(grads) == set(expected)
    for key, value in grads.items():
        assert value.dtype == dtype and value.flags.c_contiguous and value.shape == params[key].shape, key
        scale = np.abs(expected[key]).max()
        np.testing.assert_allclose(value, expected[key], rtol=rtol, atol=rtol * scale, err_msg=key)
    for key, value in module.gradients(params, X, T).items():
        np.testing.assert_array_equal(value, grads[key])
    assert float(module.loss(params, X, T)) == pytest.approx(expected_loss, rel=rtol)
    assert np.asarray(T).flags.c_contiguous  # the caller's targets are read, never re-laid out in place


def test_a_layer_is_stored_neuron_by_neuron_only_where_it_was_measured_to_gain():
    # narrow layers after at least 16 neurons; the wide-input rule as before; Mazur's 2-2-2 and wide layers keep rows
    assert by_neuron(10, 30) and by_neuron(32, 16) and by_neuron(30, 784) and by_neuron(10, 256)
    assert not by_neuron(2, 2) and not by_neuron(10, 8) and not by_neuron(64, 64) and not by_neuron(256, 784)
    assert not by_neuron(32, 784)  # wide input, a multiple of 16: the plain product was faster
