"""Hypothesis strategies for random networks (plain data, see oracles.Net)."""

import numpy as np
from hypothesis import strategies as st
from oracles import ACTIVATIONS, CUSTOM_LOSSES, LOSSES, Net

ELEMENTWISE = sorted(ACTIVATIONS)


@st.composite
def networks(draw, min_hidden=1, max_hidden=4, max_width=5, losses=LOSSES):
    hidden = draw(st.integers(min_hidden, max_hidden))
    loss = draw(st.sampled_from(losses))
    sizes = [draw(st.integers(1, max_width)) for _ in range(hidden + 1)]
    n_out = draw(st.integers(2 if loss == "cross_entropy" else 1, max_width))
    sizes.append(n_out)
    activations = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(hidden)]
    if loss == "cross_entropy":
        out_act = "softmax"
    elif loss == "bce":
        out_act = draw(st.sampled_from(["sigmoid", "1/(1 + exp(-x))", *(["softmax"] if n_out > 1 else [])]))
    else:
        out_act = draw(st.sampled_from([*ELEMENTWISE, *(["softmax"] if n_out > 1 else [])]))
    activations.append(out_act)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-1, 1, size=(sizes[i + 1], sizes[i])).round(6) for i in range(len(sizes) - 1)]
    kinds = [draw(st.sampled_from(["none", "shared", "per_neuron"])) for _ in activations]
    biases = []
    for kind, n in zip(kinds, sizes[1:]):
        if kind == "shared":
            biases.append(np.array(round(float(rng.uniform(-0.5, 0.5)), 6)))
        elif kind == "per_neuron":
            biases.append(rng.uniform(-0.5, 0.5, size=n).round(6))
        else:
            biases.append(np.zeros(0))
    x = rng.uniform(-1, 1, size=sizes[0]).round(6)
    if loss == "cross_entropy":
        t = np.zeros(n_out)
        t[int(rng.integers(n_out))] = 1.0
        if draw(st.booleans()):  # soft targets that still sum to 1
            t = np.full(n_out, 1.0 / n_out)
            t[-1] = 1.0 - t[:-1].sum()
    elif loss == "bce":
        t = rng.uniform(0, 1, size=n_out).round(4)
    else:
        t = rng.uniform(-1, 1, size=n_out).round(4)
    return Net(
        sizes=sizes,
        activations=activations,
        weights=weights,
        bias_kinds=kinds,
        biases=biases,
        x=x,
        t=t,
        loss=loss,
        learning_rate=0.1,
        update_biases=draw(st.booleans()),
        custom_loss=CUSTOM_LOSSES.get(loss, ""),
    )
