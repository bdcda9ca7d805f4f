"""Reading the layers that work on maps: an input of a given shape, convolutions and poolings.

A map layer's neurons are the positions of its feature maps, flattened channel first ((c, r, k) order, as
torch.flatten does), so the rest of derive sees a layer of neurons as for a dense one. What a kind does with
its windows is :mod:`derive.core.layers`'; here are only the spec's keys, their checks and the names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .reading import BiasSpec, Geometry, LayerSpec, _Validator

CONV_KINDS = ("conv1d", "conv2d")
POOL_KINDS = ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d")
MAP_KINDS = CONV_KINDS + POOL_KINDS
CONV_KEYS = ("kind", "channels", "kernel", "stride", "padding", "activation", "weights", "bias")
POOL_KEYS = ("kind", "kernel", "stride")
POOL_ACTIVATION = "linear"  # a pool has no activation: a = z
MAX_MAP_SIDE = 4096
# What `grad` of a quantity, `lecture`, `exercises`, `check` and `show --full` do with a map layer: every net's
# products one by one (a table of (input, kernel entry) pairs for every window, then each net's sum in exact
# arithmetic or written out), ≈ 280 bytes and 1.5 µs a product. LeNet has 244,000 (`grad` 2.9 s, 114 MB); a
# 300×300 kernel over an 11×11 map has 10.9 million (`grad` took 3.1 GB and 15 s, `show --full` 3.7 GB and 2 min).
# Reading the spec, `export`, `fit`, `train` and `show` compute maps with NumPy (im2col) and need none of it.
MAX_MAP_PRODUCTS = 1_000_000


def dims_of(kind: str) -> int:
    """How many spatial axes a map kind works over (conv1d: 1, conv2d: 2)."""
    return 1 if kind.endswith("1d") else 2


def position_names(shape: Sequence[int]) -> list[str]:
    """The 1-based index suffixes of every position of maps of ``shape``, channel first: 1_1_1, 1_1_2, …"""
    return ["_".join(str(i + 1) for i in index) for index in product(*(range(n) for n in shape))]


AXES = {
    2: (("C", "channels"), ("L", "length")),
    3: (("C", "channels"), ("H", "height"), ("W", "width")),
}
SEQUENCE_AXES = (("T", "time steps"), ("D", "features"))


def input_shape(v: _Validator, table: dict[str, Any], key: str, sequence: bool = False) -> tuple[int, ...]:
    """``shape = [C, H, W]`` or ``[C, L]`` of the input layer (``[T, D]`` when an rnn reads it: ``sequence``)."""
    value = table["shape"]
    for k in ("names", "size"):
        if k in table:
            raise v.fail(f"{key}.{k}", "given with shape, which names the inputs itself (x1_2_3: channel, row, column)")
    want = "[T, D] (T time steps of D features)" if sequence else "[C, H, W] or [C, L]"
    if not isinstance(value, list) or len(value) not in ((2,) if sequence else (2, 3)):
        count = "2" if sequence else "2 or 3"
        raise v.fail(
            f"{key}.shape", f"expected {want}: {count} whole numbers from 1 to {MAX_MAP_SIDE}, got {_show(value)}"
        )
    axes = SEQUENCE_AXES if sequence else AXES[len(value)]
    for i, (n, (letter, meaning)) in enumerate(zip(value, axes)):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_MAP_SIDE:
            problem = "not a whole number" if isinstance(n, bool) or not isinstance(n, int) else "out of range"
            raise v.fail(
                f"{key}.shape[{i}]",
                f"{letter} ({meaning}) must be a whole number from 1 to {MAX_MAP_SIDE}, got {_show(n)}: {problem}",
            )
    return tuple(value)


def flatten_nested(v: _Validator, value: Any, shape: tuple[int, ...], key: str) -> Any:
    """Nested values (one sample shaped like ``shape``, or a batch of such) as flat rows; other values as given."""
    if not isinstance(value, list):
        return value
    depth = _depth(value)
    if depth == len(shape):
        return _flat(v, value, shape, key)
    if depth == len(shape) + 1:
        return [_flat(v, row, shape, f"{key}[{i}]") for i, row in enumerate(value)]
    want = "×".join(map(str, shape))
    raise v.fail(
        key,
        f"expected values nested like the shape {want} (one sample), or one level deeper (a batch), "
        f"got a list nested {depth} deep",
    )


def map_layer(v: _Validator, table: dict[str, Any], key: str, prev: LayerSpec, is_output: bool, kind: str) -> LayerSpec:
    """A conv or pool layer, its maps' shape worked out from the previous layer's."""
    from .reading import Geometry, LayerSpec

    conv = kind in CONV_KINDS
    if is_output:
        raise v.fail(
            f"{key}.kind",
            f"a {kind} layer cannot be the output layer",
            "add a dense layer after it (size = number of outputs): it flattens the maps in (channel, row, column) order",
        )
    v.keys(table, CONV_KEYS if conv else POOL_KEYS, key)
    dims = dims_of(kind)
    if not prev.shape:
        after = (
            "an input layer without a shape"
            if prev.number == 1
            else "an rnn layer (its last state is a flat vector)"
            if prev.steps
            else f"a {prev.kind} layer"
        )
        raise v.fail(
            f"{key}.kind",
            f"a {kind} layer after {after}: it needs maps",
            "give the input layer shape = [C, H, W] (or [C, L] for 1-D), and put conv and pool layers before dense ones",
        )
    if len(prev.shape) != dims + 1:
        want = "[C, H, W]" if dims == 2 else "[C, L]"
        raise v.fail(f"{key}.kind", f"{kind} needs maps shaped {want}; the layer before gives {_dims(prev.shape)}")
    in_channels, sides = prev.shape[0], prev.shape[1:]
    kernel = _per_axis(v, table, "kernel", key, dims, None, low=1)
    stride = _per_axis(v, table, "stride", key, dims, 1 if conv else kernel, low=1)
    padding = _per_axis(v, table, "padding", key, dims, 0, low=0) if conv else (0,) * dims
    for axis, (side, k, p) in enumerate(zip(sides, kernel, padding)):
        if k > side + 2 * p:
            what = f"the padded input ({side} + 2·{p} = {side + 2 * p})" if p else f"the input ({side})"
            raise v.fail(
                f"{key}.kernel",
                f"kernel {k} is larger than {what}" + (f" along axis {axis + 1}" if dims > 1 else ""),
            )
    out_sides = tuple((side + 2 * p - k) // s + 1 for side, k, s, p in zip(sides, kernel, stride, padding))
    number = prev.number + 1
    if conv:
        channels = table.get("channels")
        if channels is None:
            raise v.fail(f"{key}.channels", "missing: give the number of output channels, e.g. channels = 2")
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= MAX_MAP_SIDE:
            raise v.fail(f"{key}.channels", f"expected a whole number from 1 to {MAX_MAP_SIDE}, got {_show(channels)}")
    else:
        channels = in_channels
    shape = (channels, *out_sides)
    size = math.prod(shape)
    v.count_neurons(key, size, f" (this layer's maps are {_dims(shape)} = {size:,})")
    suffixes = position_names(shape)
    names = tuple(f"{number}_{s}" for s in suffixes)
    net_names = tuple(f"z{number}_{s}" for s in suffixes)
    out_names = tuple(f"a{number}_{s}" for s in suffixes)
    geometry = Geometry(kind, prev.shape, shape, kernel, stride, padding)
    _count_windows(v, key, geometry, conv)
    if not conv:
        return LayerSpec(
            number=number,
            names=names,
            net_names=net_names,
            out_names=out_names,
            activation=POOL_ACTIVATION,
            by_size=True,
            kind=kind,
            shape=shape,
            geometry=geometry,
        )
    activation = v.activation(table, key, is_output=False, size=size)
    fan_in = in_channels * math.prod(kernel)
    v.count_parameters(key, channels * (fan_in + 1))
    kernel_suffixes = position_names((in_channels, *kernel))
    weight_names = tuple(tuple(f"w{number}_{o + 1}_{s}" for s in kernel_suffixes) for o in range(channels))
    weights = _kernel_weights(v, table, key, (channels, in_channels, *kernel)) if "weights" in table else ()
    bias = _channel_bias(v, table, key, number, channels)
    return LayerSpec(
        number=number,
        names=names,
        net_names=net_names,
        out_names=out_names,
        activation=activation,
        weights=weights,
        weight_names=weight_names,
        bias=bias,
        by_size=True,
        kind=kind,
        shape=shape,
        geometry=geometry,
    )


def _channel_bias(v: _Validator, table: dict[str, Any], key: str, number: int, channels: int) -> BiasSpec:
    """One bias per output channel (a list, or "per_neuron" from 0), one shared by all (a number), or none."""
    from .reading import BiasKind, BiasSpec

    if "bias" not in table:
        return BiasSpec(BiasKind.NONE)
    value = table["bias"]
    if isinstance(value, str):
        if value != BiasKind.PER_NEURON.value:
            raise v.fail(
                f"{key}.bias",
                f"unknown bias kind {value!r}",
                'a conv layer takes a list (one per output channel), a number (one shared), or "per_neuron"',
            )
        values = (0.0,) * channels
    elif isinstance(value, list):
        values = v.numbers(value, f"{key}.bias", channels)
    else:
        return BiasSpec(BiasKind.SHARED, (f"b{number}",), (v.number(value, f"{key}.bias"),))
    return BiasSpec(BiasKind.PER_NEURON, tuple(f"b{number}_{o}" for o in range(1, channels + 1)), values)


def _kernel_weights(
    v: _Validator, table: dict[str, Any], key: str, shape: tuple[int, ...]
) -> tuple[tuple[float, ...], ...]:
    """weights[out][in][kh][kw] (torch's Conv2d.weight layout), as one row of C_in·kh·kw numbers per output channel."""
    value = table["weights"]
    layout = "[out][in][k]" if len(shape) == 3 else "[out][in][kh][kw]"
    want = "×".join(map(str, shape))
    if not isinstance(value, list) or len(value) != shape[0]:
        nested = f" nested {_depth(value)} deep ({len(shape)} expected)" if isinstance(value, list) else ""
        raise v.fail(
            f"{key}.weights", f"expected {want} weights ({layout}, torch's layout), got {_show(value)}{nested}"
        )
    # _flat names the first place that is off (weights[0][0][1]) and each number's own index
    return tuple(tuple(_flat(v, block, shape[1:], f"{key}.weights[{o}]")) for o, block in enumerate(value))


def _per_axis(
    v: _Validator, table: dict[str, Any], name: str, key: str, dims: int, default: Any, low: int
) -> tuple[int, ...]:
    """kernel, stride or padding: one whole number for every axis, or one per axis."""
    value = table.get(name, default)
    if value is None:
        raise v.fail(f"{key}.{name}", f"missing: give the {name} size, e.g. {name} = 3")
    if isinstance(value, tuple):
        return value
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) != dims:
        raise v.fail(f"{key}.{name}", f"expected one number or {dims}, got a list of {len(value)}")
    if any(isinstance(n, bool) or not isinstance(n, int) or not low <= n <= MAX_MAP_SIDE for n in values):
        raise v.fail(f"{key}.{name}", f"expected whole numbers from {low} to {MAX_MAP_SIDE}, got {_show(value)}")
    return tuple(values) * (dims if len(values) == 1 else 1)


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        depth += 1
        value = value[0]
    return depth


def _flat(v: _Validator, value: Any, shape: Sequence[int], key: str) -> list[Any]:
    """A nested list shaped ``shape``, flattened in C order; the key names the first place that is off."""
    if len(shape) == 1:
        if not isinstance(value, list) or len(value) != shape[0]:
            raise v.fail(key, f"expected {shape[0]} numbers, got {_show(value)}")
        for i, x in enumerate(value):
            if isinstance(x, list):
                raise v.fail(f"{key}[{i}]", f"expected a number, got {_show(x)}: nested one level too deep")
        return list(v.row(value, key))  # a bad number is named at its own index
    if not isinstance(value, list) or len(value) != shape[0]:
        raise v.fail(key, f"expected {shape[0]} rows here ({'×'.join(map(str, shape))} in all), got {_show(value)}")
    flat: list[Any] = []
    for i, part in enumerate(value):
        flat.extend(_flat(v, part, shape[1:], f"{key}[{i}]"))
    return flat


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:30]!r})"
    return repr(value)


def maps_words(shape: tuple[int, ...]) -> str:
    """(2, 3, 3) → "2 maps of 3×3"."""
    return f"{shape[0]} map{'s' if shape[0] != 1 else ''} of {'×'.join(map(str, shape[1:]))}"


def map_words(layer: LayerSpec) -> str:
    """A conv or pool layer in words: "conv2d 3×3 stride 1 padding 1 → 2 maps of 6×6"."""
    g = layer.geometry
    assert g is not None
    words = f"{layer.kind} {'×'.join(map(str, g.kernel))}"
    if any(s != 1 for s in g.stride) or layer.kind.startswith(("max", "avg")):
        words += f" stride {'×'.join(map(str, g.stride))}"
    if any(g.padding):
        words += f" padding {'×'.join(map(str, g.padding))}"
    return f"{words} → {maps_words(g.out_shape)}"


def map_products(layer: LayerSpec) -> int:
    """The products a map layer's nets hold in all: every output position of every channel times its window's
    inputs (a conv's C_in·kh·kw, a pool's kh·kw), the zero padding included; 0 for other layers."""
    g = layer.geometry
    if g is None:
        return 0
    window = g.fan_in if g.kind in CONV_KINDS else math.prod(g.kernel)
    return math.prod(g.out_shape) * window


def map_work_problem(layers: Sequence[LayerSpec]) -> tuple[int, str] | None:
    """(the layer's index, why) when the map layers up to it hold more than MAX_MAP_PRODUCTS products, or None."""
    total = 0
    for index, layer in enumerate(layers):
        added = map_products(layer)
        total += added
        if added and total > MAX_MAP_PRODUCTS:
            return index, (
                f"the map layers up to this one hold {total:,} products (output positions × window inputs); "
                f"the limit is {MAX_MAP_PRODUCTS:,} (map work limit)"
            )
    return None


WINDOW_TABLE_BYTES = 48  # per (position, window entry) of one channel: the index grids, the flat table and masks


def _count_windows(v: _Validator, key: str, g: Geometry, conv: bool) -> None:
    """Refuse a map layer whose float pass would not fit in memory: every window's inputs copied out for each
    sample (im2col: positions × C_in·kh·kw floats for a conv, C·positions × kh·kw for a pool) and the window table
    (positions × kh·kw indices, made with its index grids). A 140×140 kernel over a 280×280 input passes the
    neuron and parameter limits, but its columns are 3.1 GB: `show` took 3.3 GB and `train` died of it."""
    from .reading import MEMORY_BUDGET

    positions = math.prod(g.out_shape[1:])
    entries = math.prod(g.kernel)
    per_sample = positions * (g.fan_in if conv else g.in_shape[0] * entries)
    samples = max(v.samples or 1, 1)
    estimate = 8 * per_sample * samples + WINDOW_TABLE_BYTES * positions * entries
    if estimate > MEMORY_BUDGET:
        raise v.fail(
            f"{key}.kernel",
            f"its windows would take about {estimate / 2**30:.1f} GiB ({positions:,} positions × "
            f"{per_sample // positions:,} window inputs × {samples:,} sample{'s' if samples != 1 else ''} as floats, "
            f"and the window table); the limit is {MEMORY_BUDGET / 2**30:g} GiB (memory limit)",
            "use a smaller kernel or input, a larger stride, or fewer samples",
        )
