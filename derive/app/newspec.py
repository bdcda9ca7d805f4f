"""A commented spec to start from: ``derive new 4-5-3 --hidden tanh --out softmax``, a convolutional one
(``derive new --conv 1x6x6 --kernel 3``) or a recurrent one (``derive new --rnn 5x3 --units 4``).

The text is validated by the spec parser before it is handed back, so what
``derive new`` writes always loads. Standard library only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from ..errors import DeriveError, suggest
from ..spec.reading import (
    BUILTIN_ACTIVATIONS,
    BUILTIN_LOSSES,
    MAX_NEURONS,
    NAME_RE,
    UNIT_INTERVAL,
    drawn,
    identifier_for,
    parse_spec,
)
from ..spec.sequences import work_problem

SPELLED_OUT = 16  # up to this many inputs/targets are written as numbers, beyond it as "random"
SPELLED_OUT_MAPS = 256  # a map or a sequence: up to 16×16 numbers are written out, a row a line, like tinyconv's
KINDS = ("dense", "conv", "rnn")
POOLS = ("max", "avg", "none")
CONV_DEFAULTS = {"channels": 2, "kernel": 2, "stride": 1, "padding": 0, "pool": "max", "pool_kernel": 2, "outputs": 2}
RNN_DEFAULTS = {"units": 2, "outputs": 1}  # the built-in rnn's: 2 tanh units, one output reading the last state
EXAMPLES = {"conv": "derive new --conv 1x6x6 --kernel 3", "rnn": "derive new --rnn 5x3 --units 4"}
HIDDEN_DEFAULTS = {"dense": "sigmoid", "conv": "relu", "rnn": "tanh"}  # as the built-ins mazur, tinyconv, rnn


@dataclass(frozen=True)
class NewSpec:
    """What ``derive new`` was asked for."""

    sizes: tuple[int, ...]  # dense: every layer; conv and rnn: empty (their input is ``shape``)
    hidden: str = "sigmoid"  # "": the kind's own default (sigmoid, relu for conv, tanh for rnn)
    out: str = ""  # default: softmax for cross_entropy, else sigmoid
    loss: str = ""  # default: cross_entropy for a softmax output, else half_sse
    seed: int = 0
    name: str = "network"
    kind: str = "dense"  # or "conv" (input → conv → pool → dense output) or "rnn" (sequence → rnn → dense output)
    shape: tuple[int, ...] = ()  # conv: (C, H, W) or (C, L); rnn: (T, D)
    # None: not asked for (the kind's default); given to a kind that has no such layer, it is refused
    channels: int | None = None
    kernel: int | None = None
    stride: int | None = None
    padding: int | None = None
    pool: str | None = None
    pool_kernel: int | None = None
    units: int | None = None
    outputs: int | None = None


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"4-5-3"`` → (4, 5, 3): at least an input and an output layer."""
    parts = text.replace("x", "-").replace(",", "-").split("-")
    try:
        if not all(p.isascii() and p.isdigit() for p in parts):  # int() would read 4_3 as 43
            raise ValueError(text)
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise DeriveError(
            f"cannot read the layer sizes {text!r}", where="SIZES", hint="write them as 4-5-3 (input-hidden-output)"
        ) from None
    if len(sizes) < 2:
        raise DeriveError("need at least an input and an output layer", where="SIZES", hint="e.g. 2-2-2")
    if any(not 1 <= s <= MAX_NEURONS for s in sizes):
        raise DeriveError(f"every layer needs 1 to {MAX_NEURONS} neurons", where="SIZES")
    return sizes


def parse_shape(text: str, option: str, lengths: tuple[int, ...], hint: str) -> tuple[int, ...]:
    """``"1x6x6"`` → (1, 6, 6): an input's shape, its numbers joined by x, - or commas."""
    parts = text.lower().replace("×", "x").replace("-", "x").replace(",", "x").split("x")
    if not all(p.strip().isascii() and p.strip().isdigit() for p in parts) or len(parts) not in lengths:
        raise DeriveError(f"cannot read the input shape {text!r}", where=option, hint=hint)
    shape = tuple(int(p) for p in parts)
    if any(not 1 <= n <= MAX_NEURONS for n in shape) or math.prod(shape) > MAX_NEURONS:
        raise DeriveError(f"every side must be at least 1, and the input at most {MAX_NEURONS:,} numbers", where=option)
    return shape


def request_for(sizes: str | None, conv: str | None, rnn: str | None, options: NewSpec) -> NewSpec:
    """The request from ``derive new``'s arguments: SIZES (dense), --conv SHAPE or --rnn SHAPE, exactly one."""
    given = [what for what, value in (("SIZES", sizes), ("--conv", conv), ("--rnn", rnn)) if value is not None]
    if not given:
        raise DeriveError(
            "missing: the layer sizes, or --conv or --rnn with the input's shape",
            where="SIZES",
            hint="e.g. derive new 4-5-3, " + ", ".join(EXAMPLES.values()),
        )
    if len(given) > 1:
        hint = "--conv and --rnn take the input's shape instead of SIZES" if "SIZES" in given else "choose one"
        raise DeriveError(f"give one of SIZES, --conv and --rnn, not {' and '.join(given)}", where=given[1], hint=hint)
    if conv is not None:
        shape = parse_shape(conv, "--conv", (2, 3), "write C×H×W as 1x6x6, or C×L as 1x16 for 1-D")
        return replace(options, kind="conv", shape=shape)
    if rnn is not None:
        shape = parse_shape(rnn, "--rnn", (2,), "write T×D (time steps × features) as 5x3")
        return replace(options, kind="rnn", shape=shape)
    assert sizes is not None
    return replace(options, sizes=parse_sizes(sizes))


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    name = value.strip().lower()
    if name not in choices:
        raise DeriveError(
            f"unknown {option.strip('-')} {value!r}",
            where=option,
            hint=suggest(name, choices) or "one of " + ", ".join(choices),
        )
    return name


def _activation(value: str, choices: tuple[str, ...], option: str) -> str:
    """A built-in activation's name (in any case), or a formula in x as a spec file takes it."""
    if NAME_RE.match(value.strip()):
        return _choice(value, choices, option)
    import sympy as sp  # only for a formula

    from ..core.formula import parse_formula

    formula = value.strip()
    parse_formula(formula, {"x": sp.Symbol("x", real=True)}, where=option)  # a bad formula is the option's error
    return formula


OPTION_OF = {  # the NewSpec fields that belong to one kind, as the options spell them
    "channels": "--channels",
    "kernel": "--kernel",
    "stride": "--stride",
    "padding": "--padding",
    "pool": "--pool",
    "pool_kernel": "--pool-kernel",
    "units": "--units",
    "outputs": "--outputs",
}
OWN_FIELDS = {"dense": (), "conv": tuple(CONV_DEFAULTS), "rnn": tuple(RNN_DEFAULTS)}


def _resolve_kind(request: NewSpec) -> NewSpec:
    """Check the kind's own options, refuse another kind's, and fill in the kind's defaults.

    The checks of a map's sizes are made here, in the options' words, rather than left to the spec
    parser, whose message would name a key of a file the user has not seen yet.
    """
    if request.kind not in KINDS:
        raise DeriveError(f"unknown kind {request.kind!r}", hint="one of " + ", ".join(KINDS))
    own = OWN_FIELDS[request.kind]
    for field, option in OPTION_OF.items():
        if getattr(request, field) is None or field in own:
            continue
        takes = " and ".join(f"--{k}" for k in ("conv", "rnn") if field in OWN_FIELDS[k])
        if request.kind != "dense":
            raise DeriveError(f"{option} is an option of {takes}, not of --{request.kind}", where=option)
        if field == "outputs":
            raise DeriveError(
                f"{option} is for {takes}: a dense network's outputs are the last of SIZES",
                where=option,
                hint="derive new 4-5-3 has 3 outputs",
            )
        kind = "conv" if field in OWN_FIELDS["conv"] else "rnn"
        raise DeriveError(f"{option} is an option of {takes}", where=option, hint=f"e.g. {EXAMPLES[kind]}")
    hidden = request.hidden or HIDDEN_DEFAULTS[request.kind]
    if request.kind == "dense":
        return replace(request, hidden=hidden)
    defaults: dict[str, object] = dict(CONV_DEFAULTS if request.kind == "conv" else RNN_DEFAULTS)
    filled = {
        field: getattr(request, field) if getattr(request, field) is not None else defaults[field] for field in own
    }
    for field in own:
        if field != "pool" and filled[field] < (0 if field == "padding" else 1):  # type: ignore[operator]
            raise DeriveError(
                f"must be {'≥ 0' if field == 'padding' else 'at least 1'}, got {filled[field]}", where=OPTION_OF[field]
            )
    r = replace(request, hidden=hidden, **filled)  # type: ignore[arg-type]
    if r.kind == "rnn":
        steps, features = r.shape
        problem = work_problem(steps, features, r.units or 0)
        if problem:
            raise DeriveError(problem, where=f"--rnn {steps}x{features} --units {r.units}", hint="fewer steps or units")
        return r
    pool = _choice(str(r.pool), POOLS, "--pool")
    if pool == "none" and request.pool_kernel is not None:
        raise DeriveError("--pool none has no pool kernel", where="--pool-kernel", hint="leave it out, or --pool max")
    sides = r.shape[1:]
    k, s, p = r.kernel or 0, r.stride or 0, r.padding or 0
    if k > min(sides) + 2 * p:
        side = min(sides)
        padded = f"the padded input ({side} + 2·{p} = {side + 2 * p})" if p else f"the input's side ({side})"
        raise DeriveError(
            f"kernel {k} is larger than {padded}", where="--kernel", hint="a smaller --kernel, or --padding"
        )
    conv_sides = tuple((side + 2 * p - k) // s + 1 for side in sides)
    if pool != "none" and (r.pool_kernel or 0) > min(conv_sides):
        shown = "×".join(map(str, conv_sides))
        raise DeriveError(
            f"pool kernel {r.pool_kernel} is larger than the convolution's maps ({shown})",
            where="--pool-kernel",
            hint="a smaller --pool-kernel, or --pool none",
        )
    neurons = math.prod(r.shape) + (r.channels or 0) * math.prod(conv_sides)
    if neurons > MAX_NEURONS:
        raise DeriveError(
            f"the input and the {r.channels} maps of {'×'.join(map(str, conv_sides))} hold {neurons:,} neurons; "
            f"the limit is {MAX_NEURONS:,}",
            where="--channels",
            hint="fewer channels, a smaller input, or a --stride",
        )
    return replace(r, pool=pool)


def resolve(request: NewSpec) -> NewSpec:
    """Fill in the defaults that depend on each other, and check every choice."""
    request = _resolve_kind(request)
    hidden_choices = tuple(a for a in BUILTIN_ACTIVATIONS if a != "softmax")
    hidden = _activation(request.hidden, hidden_choices, "--hidden")
    loss = _choice(request.loss, BUILTIN_LOSSES, "--loss") if request.loss else ""
    out = _activation(request.out, BUILTIN_ACTIVATIONS, "--out") if request.out else ""
    if not out:
        out = "softmax" if loss == "cross_entropy" else "sigmoid"
    if not loss:
        loss = "cross_entropy" if out == "softmax" else "half_sse"
    if loss == "cross_entropy" and out != "softmax":  # said in the options' terms, not the spec's keys
        raise DeriveError("--loss cross_entropy needs a softmax output", where="--out", hint="add --out softmax")
    if loss == "bce" and out in BUILTIN_ACTIVATIONS and out not in UNIT_INTERVAL:  # a formula: checked at its numbers
        raise DeriveError(
            f"--loss bce needs outputs in (0, 1), and {out} gives others", where="--out", hint="add --out sigmoid"
        )
    if not NAME_RE.match(request.name):
        fixed = identifier_for(request.name)
        raise DeriveError(
            f"{request.name!r} is not a valid name: a spec's name is an identifier, as it names generated "
            "Python modules and LaTeX (the file's name may differ)",
            where="--name",
            hint=f"--name {fixed}" if fixed else "a letter, then letters, digits or _",
        )
    return replace(request, hidden=hidden, out=out, loss=loss)


def _numbers(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


def _head(r: NewSpec, title: str, command: str) -> list[str]:
    """The lines every new spec starts with: what it is, how it was made, its name, loss, seed and training."""
    return [
        f"# {title}.",
        f"# Written by `derive new {command}`; edit anything. Check it with `derive show FILE`,",
        "# then `derive grad FILE PARAM`, `derive lecture FILE`, `derive train FILE`.",
        f"name = {json.dumps(r.name)}",
        f"title = {json.dumps(title, ensure_ascii=False)}",  # ASCII for a dense one, as before
        "",
        "[loss]",
        f'kind = "{r.loss}"  # built in: {", ".join(BUILTIN_LOSSES)}; or expr = "…" in o and t',
        "",
        "[init]",
        f'seed = {r.seed}  # weights left out below, and values = "random", are drawn from this seed',
        "",
        "[training]",
        "learning_rate = 0.5",
        "steps = 1000",
        "",
    ]


def _nested(values: tuple[float, ...], shape: tuple[int, ...], column: int) -> str:
    """Flat numbers as TOML lists nested like ``shape``, a row (the last axis) a line, aligned under the
    bracket that opens at ``column``, as the built-in tinyconv writes its input."""
    if len(shape) == 1:
        return _numbers(values)
    step = math.prod(shape[1:])
    parts = [_nested(values[i * step : (i + 1) * step], shape[1:], column + 1) for i in range(shape[0])]
    return "[" + (",\n" + " " * (column + 1)).join(parts) + "]"


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


HIDDEN_CHOICES = tuple(a for a in BUILTIN_ACTIVATIONS if a != "softmax")


def _map_spec_text(r: NewSpec) -> str:
    """A convolutional spec (input maps → conv → pool → dense output) or a recurrent one (sequence → rnn →
    dense output reading the last state), in the format of the built-ins tinyconv and rnn.

    Weights are left to the seed (scaled by the fan-in, as any omitted weights are), and the worked
    example's inputs and targets are written out when small, so every command has numbers at once.
    """
    n_in = math.prod(r.shape)
    n_out = r.outputs or 1
    outputs = _plural(n_out, f"{r.out} output")
    hidden_comment = f"built in: {', '.join(HIDDEN_CHOICES)}; or a formula in x"
    if r.kind == "conv":
        dims = len(r.shape) - 1
        suffix = f"{dims}d"
        k, s, p, q = r.kernel or 1, r.stride or 1, r.padding or 0, r.pool_kernel or 1
        sides = tuple((side + 2 * p - k) // s + 1 for side in r.shape[1:])
        pooled = tuple((side - q) // q + 1 for side in sides)
        kernel = _dims((k,) * dims)
        maps, pooled_maps = (
            (f"{_dims(sides)} map", f"{_dims(pooled)}")
            if dims == 2
            else (f"map of length {sides[0]}", f"length {pooled[0]}")
        )
        pool_part = "" if r.pool == "none" else f", {r.pool} pool {q}"
        title = (
            f"A convolutional network: a {_dims(r.shape)} input, conv {r.channels}@{kernel} ({r.hidden})"
            f"{pool_part}, {outputs}, {r.loss} loss"
        )
        command = f"--conv {'x'.join(map(str, r.shape))} --channels {r.channels} --kernel {k}"
        command += f" --stride {s}" * (s != 1) + f" --padding {p}" * (p != 0) + f" --pool {r.pool}"
        command += f" --pool-kernel {q}" * (r.pool != "none")
        input_comment = f"# The input: {_plural(r.shape[0], 'channel')} of {_dims(r.shape[1:])}."
        shape_comment = (
            "[C, H, W]: inputs x1_2_3 (channel, row, column)"
            if dims == 2
            else "[C, L]: inputs x1_2 (channel, position)"
        )
    else:
        steps, features = r.shape
        title = (
            f"A recurrent network: {_plural(steps, 'step')} of {_plural(features, 'feature')}, "
            f"an rnn of {_plural(r.units or 1, f'{r.hidden} unit')}, {outputs} reading the last state, {r.loss} loss"
        )
        command = f"--rnn {steps}x{features} --units {r.units}"
        input_comment = (
            f"# The input: a sequence of {_plural(steps, 'time step')}, {_plural(features, 'feature')} each."
        )
        shape_comment = "[T, D]: inputs x1_t1, x2_t1, …, x1_t2, … (feature k at step t)"
    lines = [*_head(r, title, command), input_comment, "[[layers]]", f"shape = {list(r.shape)}  # {shape_comment}"]
    if n_in <= SPELLED_OUT_MAPS:
        # centred, as standardised inputs are: inputs all ≥ 0 under a kernel whose weights sum below 0 leave its
        # relu map dead at every position, every gradient into it 0 (the seed's [0, 1) draws, moved to [-1, 1))
        flat = tuple(round(2 * v - 1, 4) for v in drawn("values", n_in, r.seed, r.loss, "")[0])
        lines.append('# drawn from the seed in [-1, 1), nested like the shape; or "random", or values_file = "x.npy"')
        lines.append(f"values = {_nested(flat, r.shape, len('values = '))}")
    else:
        lines.append('values = "random"  # uniform in [0, 1) from the seed; or values_file = "x.npy"')
    if r.kind == "conv":
        uses = math.prod(sides)
        lines += [
            "",
            f"# A convolution: {_plural(r.channels or 1, 'kernel')} of {kernel}; each kernel weight is used at the "
            f"{_plural(uses, 'position')} of its {maps}.",
            "[[layers]]",
            f'kind = "conv{suffix}"',
            f"channels = {r.channels}  # output channels: maps z2_c_… and a2_c_…, kernel weights w2_o_i_…",
            f"kernel = {k}" + ("  # or [kh, kw]" if dims == 2 else ""),
            f"stride = {s}" + ("  # or [sh, sw]" if dims == 2 else ""),
            f"padding = {p}  # zeros on each side",
            f"activation = {json.dumps(r.hidden)}  # {hidden_comment}",
            'bias = "per_neuron"  # one per output channel, from 0; or a number, a list',
            f"# weights = [...]: [out][in]{'[row][column]' if dims == 2 else '[position]'}, as torch's "
            f"Conv{suffix}.weight; left out, drawn from the seed and scaled by the fan-in",
        ]
        if r.pool != "none":
            how = (
                "δ goes back to each window's largest entry"
                if r.pool == "max"
                else "each entry of a window gets 1/K of δ"
            )
            lines += [
                "",
                f"# {'Max' if r.pool == 'max' else 'Average'} pooling, each {maps} to {pooled_maps}: {how}.",
                "[[layers]]",
                f'kind = "{r.pool}pool{suffix}"',
                f"kernel = {q}  # stride: the kernel size unless given; no padding",
            ]
        order = "channel, row, column" if dims == 2 else "channel, position"
        lines += ["", f"# The output layer: it reads the maps flattened ({order}), as torch.flatten."]
    else:
        lines += [
            "",
            f"# The recurrent layer: h_t = {r.hidden}(W x_t + U h_(t-1) + b) with h_0 = 0; each weight is used at "
            "every step.",
            "[[layers]]",
            'kind = "rnn"',
            f"size = {r.units}  # H units: states a2_j_t…, input weights w2_j_k, recurrent weights u2_j_k",
            f"activation = {json.dumps(r.hidden)}  # {hidden_comment}",
            'bias = "per_neuron"  # one per unit, from 0; or a list',
            "# weights = [...] (H×D) and recurrent_weights = [...] (H×H): left out, drawn from the seed as one [W | U]",
            "",
            "# The output layer: it reads the last state.",
        ]
    lines += [
        "[[layers]]",
        f"size = {n_out}",
        f"activation = {json.dumps(r.out)}  # built in: {', '.join(BUILTIN_ACTIVATIONS)}; or a formula in x",
        'bias = "per_neuron"  # or a number, a list, "shared"; weights = [[...]] to give them',
    ]
    targets = drawn("targets", n_out, r.seed, r.loss, r.out)[0]
    if n_out <= SPELLED_OUT:
        lines.append(f"targets = {_numbers(targets)}  # drawn from the seed")
    else:
        lines.append('targets = "random"  # drawn from the seed; or targets_file = "t.npy"')
    return "\n".join(lines) + "\n"


def spec_text(request: NewSpec) -> str:
    """The commented TOML of a new spec; it parses, and has inputs and targets so every command works at once."""
    r = resolve(request)
    if r.kind != "dense":
        text = _map_spec_text(r)
        parse_spec(text, "derive new")  # what we write must load: a failure here is a bug, not the user's
        return text
    sizes = "-".join(str(s) for s in r.sizes)
    hidden = len(r.sizes) - 2
    layers = "no hidden layer" if hidden == 0 else f"{r.hidden} hidden layer{'s' if hidden > 1 else ''}"
    title = f"A {sizes} network: {layers}, {r.out} output, {r.loss} loss"
    n_in, n_out = r.sizes[0], r.sizes[-1]
    lines = [
        *_head(r, title, sizes),
        "# The input layer. Its values are the inputs of the worked example.",
        "[[layers]]",
        f"size = {n_in}",
    ]
    if n_in <= SPELLED_OUT:
        lines.append(f"values = {_numbers(drawn('values', n_in, r.seed, r.loss, '')[0])}  # drawn from the seed")
    else:
        lines.append('values = "random"  # uniform in [0, 1) from the seed; or values_file = "x.npy"')
    for i, size in enumerate(r.sizes[1:], start=2):
        is_output = i == len(r.sizes)
        activation = r.out if is_output else r.hidden
        lines += [
            "",
            "# The output layer." if is_output else f"# Hidden layer {i - 1}.",
            "[[layers]]",
            f"size = {size}  # or names = [...] to name the neurons",
            f"activation = {json.dumps(activation)}  # built in: {', '.join(BUILTIN_ACTIVATIONS)}; or a formula in x",
            'bias = "per_neuron"  # or a number, a list, "shared"; weights = [[...]] to give them',
        ]
        if is_output:
            targets = drawn("targets", n_out, r.seed, r.loss, r.out)[0]
            if n_out <= SPELLED_OUT:
                lines.append(f"targets = {_numbers(targets)}  # drawn from the seed")
            else:
                lines.append('targets = "random"  # drawn from the seed; or targets_file = "t.npy"')
    text = "\n".join(lines) + "\n"
    parse_spec(text, "derive new")  # what we write must load: a failure here is a bug, not the user's
    return text
