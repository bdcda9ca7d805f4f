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
from derive.core.layers import transposed_forward

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
