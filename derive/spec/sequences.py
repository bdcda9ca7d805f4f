"""Reading a recurrent layer: h_t = f(W x_t + U h_{t−1} + b) over the T steps of a [T, D] input, h_0 = 0.

The layer's neurons are its states at every step, step first (z2_1_t1 … z2_H_t1, z2_1_t2, …), so the rest of
derive sees a layer of neurons; a dense layer after it reads the last state only. Its weights are one row per
unit j: the input weights w2_j_1 … w2_j_D, then the recurrent weights u2_j_1 … u2_j_H ([W | U]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .reading import LayerSpec, Spec, _Validator

RNN = "rnn"
RNN_KEYS = ("kind", "size", "activation", "weights", "recurrent_weights", "bias")
# What derive works symbolically, state by state (`grad` of an rnn's quantity, `lecture`, `exercises`, `check`):
# every state is derived and shown by itself (sympy: ≈ 1 ms a state; a lecture's equations ≈ 6 ms, and more for
# each input weight), and each weight is used at every step. At these limits `grad` takes ≈ 3 s and a lecture
# ≤ 20 s; T = 2000 steps of 48 units (96,000 states) ran for minutes, and a lecture of 64 units over 300 features
# 100 s. Reading the spec, `export`, `fit`, `train` and `show` need none of it (a 28-step rnn of 128 units over 28
# features exports in 0.15 s), so the limits are checked by the commands that work states (require_workable).
MAX_RNN_STATES = 2048  # T·H
MAX_RNN_PARAMETERS = 4096  # H·(D + H + 1): W, U and b
MAX_RNN_USES = 100_000  # T·H·(D + H + 1): every weight at every step


def input_names(steps: int, features: int) -> tuple[str, ...]:
    """A sequence's inputs, step first: x1_t1 … xD_t1, x1_t2, … (feature k at step t)."""
    return tuple(f"x{k}_t{t}" for t in range(1, steps + 1) for k in range(1, features + 1))


def rnn_layer(v: _Validator, table: dict[str, Any], key: str, prev: LayerSpec, is_output: bool) -> LayerSpec:
    """An rnn layer over the input sequence before it."""
    from .reading import LayerSpec

    if is_output:
        raise v.fail(
            f"{key}.kind",
            "an rnn layer cannot be the output layer: a loss at every time step (many-to-many) is not supported",
            "add a dense layer after it: it reads the last state",
        )
    v.keys(table, RNN_KEYS, key)
    if prev.number != 1:
        what = "another rnn layer" if prev.kind == RNN else f"a {prev.kind} layer"
        raise v.fail(
            f"{key}.kind",
            f"an rnn layer after {what}: an rnn reads the input sequence (stacked recurrent layers are not supported)",
            "put the rnn layer right after an input layer with shape = [T, D]",
        )
    if len(prev.shape) != 2:
        got = f"shape {list(prev.shape)}" if prev.shape else "no shape"
        raise v.fail(
            f"{key}.kind",
            f"an rnn layer needs an input sequence with shape = [T, D] (T time steps of D features); the input has {got}",
        )
    steps, features = prev.shape
    units = v.sizes(table, key)
    v.count_neurons(key, steps * units, f" (this layer's {units} states at each of {steps} steps: {steps * units:,})")
    number = prev.number + 1
    activation = v.activation(table, key, False, units)
    v.count_parameters(key, units * (features + units + 1))
    weight_names = tuple(
        tuple(f"w{number}_{j}_{k}" for k in range(1, features + 1))
        + tuple(f"u{number}_{j}_{k}" for k in range(1, units + 1))
        for j in range(1, units + 1)
    )
    given = [k for k in ("weights", "recurrent_weights") if k in table]
    if len(given) == 1:
        missing = "recurrent_weights" if given == ["weights"] else "weights"
        raise v.fail(f"{key}.{missing}", f"missing: given {given[0]} without it; give both, or neither (seeded)")
    weights: tuple[tuple[float, ...], ...] = ()
    if given:
        w = v.matrix(table["weights"], f"{key}.weights", units, features)
        u = _recurrent(v, table["recurrent_weights"], f"{key}.recurrent_weights", units)
        weights = tuple(wr + ur for wr, ur in zip(w, u))
    bias = v.bias(table, key, number, units)
    suffixes = [f"{j}_t{t}" for t in range(1, steps + 1) for j in range(1, units + 1)]
    return LayerSpec(
        number=number,
        names=tuple(f"{number}_{s}" for s in suffixes),
        net_names=tuple(f"z{number}_{s}" for s in suffixes),
        out_names=tuple(f"a{number}_{s}" for s in suffixes),
        activation=activation,
        weights=weights,
        weight_names=weight_names,
        bias=bias,
        by_size=True,
        kind=RNN,
        steps=steps,
    )


def _recurrent(v: _Validator, value: Any, key: str, units: int) -> tuple[tuple[float, ...], ...]:
    """U, H × H: into unit j from the previous state's unit k."""
    if (
        not isinstance(value, list)
        or len(value) != units
        or not all(isinstance(r, list) and len(r) == units for r in value)
    ):
        from .reading import _shape

        got = _shape(value)
        raise v.fail(
            key,
            f"expected a {units}×{units} matrix (recurrent_weights[j][k] into unit j from the previous state's "
            f"unit k), got {got}",
        )
    return tuple(v.row(row, f"{key}[{j}]") for j, row in enumerate(value))


def work_problem(steps: int, features: int, units: int) -> str | None:
    """Why an rnn of ``units`` over ``steps`` steps of ``features`` is too big to work state by state, or None."""
    parameters = units * (features + units + 1)
    what = f"an rnn of {units:,} unit{'s' if units != 1 else ''} over {steps:,} step{'s' if steps != 1 else ''}"
    for count, limit, message in (
        (steps * units, MAX_RNN_STATES, "has {:,} states (T·H); the limit is {:,} (rnn state limit)"),
        (
            parameters,
            MAX_RNN_PARAMETERS,
            f"of {features:,} features has {{:,}} weights and biases (H·(D + H + 1)); the limit is {{:,}} "
            "(rnn parameter limit)",
        ),
        (
            steps * parameters,
            MAX_RNN_USES,
            f"of {features:,} features uses its weights and biases T·H·(D + H + 1) = {{:,}} times; the limit is {{:,}} "
            "(rnn work limit)",
        ),
    ):
        if count > limit:
            return f"{what} {message.format(count, limit)}"
    return None


def require_workable(spec: Spec, command: str) -> None:
    """Refuse ``command`` (one that derives an rnn state by state, or writes every map net's products) when an rnn
    layer is beyond the limits above, or the map layers beyond :data:`derive.spec.maps.MAX_MAP_PRODUCTS`."""
    from ..errors import DeriveError
    from .maps import map_work_problem

    maps = map_work_problem(spec.layers)
    if maps is not None:
        index, why = maps
        raise DeriveError(
            f"layers[{index}].kernel: {command} works every net's products one by one, and {why}",
            where=spec.source,
            hint="derive export, fit, train and show take it; for the derivations use a smaller kernel, input or "
            "fewer channels, or a larger stride",
        )

    for index, layer in enumerate(spec.layers):
        if layer.kind != RNN:
            continue
        steps, features = spec.layers[index - 1].shape
        problem = work_problem(steps, features, layer.exposed_size)
        if problem is not None:
            raise DeriveError(
                f"layers[{index}].size: {command} works every state by itself, and {problem}",
                where=spec.source,
                hint="derive export, fit, train and show take it; for the derivations shorten the sequence or the "
                "features (the input's shape = [T, D]) or use fewer units",
            )
