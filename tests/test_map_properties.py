"""Random conv, pool and rnn architectures (hypothesis): every gradient, from the generated module and from one
derivation's exact pass, equals PyTorch autograd's (tests/conv_oracle.py, tests/rnn_oracle.py, which never import
derive) within 1e-9 relative."""

from __future__ import annotations

import numpy as np
from conftest import require_torch
from conv_oracle import compute as conv_compute
from conv_oracle import toml as conv_toml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rnn_oracle import compute as rnn_compute
from rnn_oracle import toml as rnn_toml

from derive.app.api import Model

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REL = 1e-9


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(b), 1e-12)


def values(rng: np.random.Generator, *shape: int) -> list:
    return np.round(rng.uniform(-0.6, 0.6, shape), 4).tolist()


@st.composite
def conv_nets(draw: st.DrawFn) -> dict:
    """An input of 1–2 channels, a conv (stride, padding, bias of any form), maybe a pool, a dense output."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    two_d = draw(st.booleans())
    channels = draw(st.integers(1, 2))
    side = draw(st.integers(4, 7))
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 1))
    out_channels = draw(st.integers(1, 3))
    dims = 2 if two_d else 1
    conv_side = (side + 2 * padding - kernel) // stride + 1
    bias = draw(st.sampled_from(["list", "number", "none"]))
    layers: list[dict] = [
        {
            "kind": f"conv{dims}d",
            "W": values(rng, out_channels, channels, *([kernel] * dims)),
            "b": values(rng, out_channels) if bias == "list" else (0.1 if bias == "number" else None),
            "stride": stride,
            "padding": padding,
            "activation": draw(st.sampled_from(["tanh", "sigmoid", "relu"])),
        }
    ]
    sides = conv_side
    pool = draw(st.sampled_from(["max", "avg", "none"]))
    if pool != "none" and conv_side >= 2:
        pool_kernel = draw(st.integers(2, min(3, conv_side)))
        pool_stride = draw(st.integers(1, pool_kernel))
        layers.append({"kind": f"{pool}pool{dims}d", "kernel": pool_kernel, "stride": pool_stride})
        sides = (conv_side - pool_kernel) // pool_stride + 1
    flat = out_channels * sides**dims
    outputs = draw(st.integers(1, 3))
    layers.append(
        {"kind": "dense", "W": values(rng, outputs, flat), "b": values(rng, outputs), "activation": "sigmoid"}
    )
    samples = draw(st.integers(1, 3))
    shape = [channels, *([side] * dims)]
    return {
        "shape": shape,
        "X": [values(rng, *shape) for _ in range(samples)],
        "T": np.round(rng.uniform(0, 1, (samples, outputs)), 3).tolist(),
        "loss": "half_sse",
        "reduction": draw(st.sampled_from(["mean", "sum"])),
        "layers": layers,
    }


@st.composite
def rnn_nets(draw: st.DrawFn) -> dict:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps, features, units = draw(st.integers(2, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    samples, outputs = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    return {
        "X": [values(rng, steps, features) for _ in range(samples)],
        "T": np.round(rng.uniform(0, 1, (samples, outputs)), 3).tolist(),
        "loss": "half_sse",
        "reduction": draw(st.sampled_from(["mean", "sum"])),
        "rnn": {
            "W": values(rng, units, features),
            "U": values(rng, units, units),
            "b": values(rng, units) if draw(st.booleans()) else None,
            "activation": draw(st.sampled_from(["tanh", "sigmoid", "relu", "softplus"])),
        },
        "out": {"W": values(rng, outputs, units), "b": values(rng, outputs), "activation": "sigmoid"},
    }


def _check(model: Model, want: dict[str, float], first: str) -> None:
    _, got = model.gradients()
    assert set(got) == set(want)
    for name, value in want.items():
        assert close(got[name], value), (name, got[name], value)
    derived = model.derived(first).value  # the exact pass (each sample's own, summed or averaged)
    assert derived is not None and close(float(derived), want[first]), (first, derived, want[first])


@SETTINGS
@given(conv_nets())
def test_random_conv_nets_match_torch(net):
    torch = require_torch()
    relu = net["layers"][0]["activation"] == "relu"
    model = Model.from_toml(conv_toml(net))
    if relu:  # a relu net exactly at 0 has no derivative there: torch and derive may pick either side
        nets = np.concatenate([np.ravel(z) for z in model._engine.trace().nets[1:2]])
        assume(np.min(np.abs(nets)) > 1e-9)
    want = conv_compute(torch, net)["grads"]
    first = next(name for name in want if name.startswith("w2_"))
    _check(model, want, first)


@SETTINGS
@given(rnn_nets())
def test_random_rnn_nets_match_torch(net):
    torch = require_torch()
    model = Model.from_toml(rnn_toml(net))
    if net["rnn"]["activation"] == "relu":
        nets = model._engine.trace().nets[1]
        assume(np.min(np.abs(nets)) > 1e-9)
    want = rnn_compute(torch, net)["grads"]
    _check(model, want, "u2_1_1")
