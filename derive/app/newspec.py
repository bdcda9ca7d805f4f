"""A commented spec to start from: ``derive new 4-5-3 --hidden tanh --out softmax``.

The text is validated by the spec parser before it is handed back, so what
``derive new`` writes always loads. Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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

SPELLED_OUT = 16  # up to this many inputs/targets are written as numbers, beyond it as "random"


@dataclass(frozen=True)
class NewSpec:
    """What ``derive new`` was asked for."""

    sizes: tuple[int, ...]
    hidden: str = "sigmoid"
    out: str = ""  # default: softmax for cross_entropy, else sigmoid
    loss: str = ""  # default: cross_entropy for a softmax output, else half_sse
    seed: int = 0
    name: str = "network"


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


def resolve(request: NewSpec) -> NewSpec:
    """Fill in the defaults that depend on each other, and check every choice."""
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
    return NewSpec(request.sizes, hidden, out, loss, request.seed, request.name)


def _numbers(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


def spec_text(request: NewSpec) -> str:
    """The commented TOML of a new spec; it parses, and has inputs and targets so every command works at once."""
    r = resolve(request)
    sizes = "-".join(str(s) for s in r.sizes)
    hidden = len(r.sizes) - 2
    layers = "no hidden layer" if hidden == 0 else f"{r.hidden} hidden layer{'s' if hidden > 1 else ''}"
    title = f"A {sizes} network: {layers}, {r.out} output, {r.loss} loss"
    n_in, n_out = r.sizes[0], r.sizes[-1]
    lines = [
        f"# {title}.",
        f"# Written by `derive new {sizes}`; edit anything. Check it with `derive show FILE`,",
        "# then `derive grad FILE PARAM`, `derive lecture FILE`, `derive train FILE`.",
        f"name = {json.dumps(r.name)}",
        f"title = {json.dumps(title)}",
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
