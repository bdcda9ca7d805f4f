"""The command line: parse arguments, call the library, print. Nothing else.

sympy is imported inside the commands that need it, so ``derive --help`` and
argument errors stay fast.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import DeriveError

F = TypeVar("F", bound=Callable[..., Any])

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Plain text for reading, JSON for programs.",
)
DIGITS = click.option(
    "--digits",
    type=click.IntRange(3, 17),
    default=8,
    show_default=True,
    help="Significant digits of printed numbers.",
)


def friendly(command: F) -> F:
    """Print a DeriveError as one clear message and exit with status 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DeriveError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:  # an output that cannot be written: say which, no traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}cannot write: {exc.strerror or exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def output_option(help: str = "Write to this file instead of standard output (written whole or not at all).") -> Any:
    return click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help=help)


OUTPUT = output_option()


def _emit(text: str, output: str | None) -> None:
    """Print, or write a file atomically: a temporary file renamed into place."""
    if output is None:
        click.echo(text, nl=False)
        return
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(data: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers), with a warning on stderr."""
    if isinstance(data, float) and not math.isfinite(data):
        click.echo(f"warning: a value is {data}; written as null", err=True)
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def _json(data: Any) -> str:
    return json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _dump(data: Any, output: str | None = None) -> None:
    _emit(_json(data), output)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="derive")
def main() -> None:
    """Symbolic backpropagation: chain-rule derivations of every gradient of a network.

    SPEC is a TOML file or the name of a built-in example (see `derive examples`).
    """


@main.command()
@click.argument("name", required=False)
@friendly
def examples(name: str | None) -> None:
    """List the built-in examples, or print one's TOML to copy and edit."""
    from .spec import builtin_example_text, builtin_examples, load_spec

    if name is None:
        for example in builtin_examples():
            spec = load_spec(example)
            sizes = "-".join(str(layer.size) for layer in spec.layers)
            click.echo(f"{example:<14} {sizes:<10} {spec.title}")
        return
    click.echo(builtin_example_text(name), nl=False)


@main.command()
@click.argument("spec")
@FORMAT
@DIGITS
@friendly
def show(spec: str, fmt: str, digits: int) -> None:
    """Print the network: layers, symbols, the forward pass and the loss."""
    from .api import Model
    from .overview import overview, overview_text

    model = Model.load(spec)
    if fmt == "json":
        _dump(overview(model))
    else:
        click.echo(overview_text(model, digits), nl=False)


@main.command()
@click.argument("spec")
@click.argument("param", required=False)
@click.option("--all", "all_", is_flag=True, help="Every weight and bias.")
@click.option(
    "--closed-form/--no-closed-form",
    default=None,
    help="Always or never print the expanded closed form (default: when it is short).",
)
@FORMAT
@DIGITS
@OUTPUT
@friendly
def grad(
    spec: str, param: str | None, all_: bool, closed_form: bool | None, fmt: str, digits: int, output: str | None
) -> None:
    """Derive ∂E/∂PARAM by the chain rule, with every factor and its number.

    PARAM is a weight or bias, or an input, net or out of any neuron
    (∂E/∂net is that neuron's δ).
    """
    from .api import Model
    from .printing import format_number
    from .report import Reporter

    if all_ == (param is not None):
        raise DeriveError(
            "give a PARAM or --all (not both)", hint="e.g. `derive grad mazur w5` or `derive grad mazur --all`"
        )
    model = Model.load(spec)
    if all_:
        model.network.require_numbers("derive grad --all")
        derivations = model.derivations()
        assert model.point is not None
        loss = model.point[_loss_symbol()]
        if fmt == "json":
            from .chain import as_float

            _dump({"loss": loss, "gradients": {k: as_float(d.value) for k, d in derivations.items()}}, output)
            return
        width = max(len(k) for k in derivations)
        lines = [f"E = {format_number(loss, digits)}"]
        for k, d in derivations.items():
            paths = f"{d.path_count} path{'s' if d.path_count != 1 else ''}"
            value = format_number(d.value, digits) if d.value is not None else "?"
            lines.append(f"∂E/∂{k:<{width}} = {value:>16}   ({paths})")
        _emit("\n".join(lines) + "\n", output)
        return
    assert param is not None
    derivation = model.derivation(param)
    reporter = Reporter(derivation, digits)
    if fmt == "json":
        _dump(reporter.to_json(), output)
    else:
        note = ""
        if not model.has_numbers:
            note = "(symbolic only: " + ", ".join(model.network.missing_numbers()) + " not given)\n\n"
        _emit(note + reporter.text(closed_form), output)


@main.command()
@click.argument("spec")
@output_option("The PDF to write [default: output/<name>.pdf].")
@click.option("--tex", "keep_tex", is_flag=True, help="Also keep the .tex next to the PDF.")
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="English (pdflatex) or Chinese (xelatex, ctex).",
)
@click.option(
    "--steps",
    type=click.IntRange(0, 1_000_000),
    default=None,
    help="Training steps to plot [default: the spec's training.steps].",
)
@click.option("--exercises", is_flag=True, help="Add a page of exercises and a separate answer key.")
@DIGITS
@friendly
def lecture(
    spec: str, output: str | None, keep_tex: bool, lang: str, steps: int | None, exercises: bool, digits: int
) -> None:
    """Write a typeset step-by-step backpropagation lecture (PDF)."""
    from .api import Model
    from .lecture import Options, tex_source
    from .texbuild import TexMissing, check_tools, compile_pdf, write_tex

    model = Model.load(spec)
    target = Path(output) if output else Path("output") / f"{model.spec.name}.pdf"
    source = tex_source(model, Options(lang=lang, digits=digits, steps=steps, exercises=exercises))
    tex_path = target.with_suffix(".tex")
    try:
        check_tools(lang)
    except TexMissing as exc:
        write_tex(tex_path, source)
        raise TexMissing(exc.message + f"; wrote the LaTeX source to {tex_path}", hint=exc.hint) from None
    compile_pdf(source, target, lang, keep_tex=tex_path if keep_tex else None)
    click.echo(f"wrote {target}" + (f" and {tex_path}" if keep_tex else ""))


@main.command()
@click.argument("spec")
@output_option("The module to write [default: standard output].")
@click.option(
    "--style",
    type=click.Choice(["vector", "scalar"]),
    default="vector",
    show_default=True,
    help="vector: batched NumPy per layer; scalar: one closed-form function per parameter.",
)
@friendly
def export(spec: str, output: str | None, style: str) -> None:
    """Write a NumPy module of gradient code generated from the derivations."""
    from .api import Model
    from .codegen import scalar_module, vector_module

    model = Model.load(spec)
    source = vector_module(model) if style == "vector" else scalar_module(model)
    _emit(source, output)
    if output:
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--budget",
    type=click.FloatRange(0.05, 60),
    default=1.0,
    show_default=True,
    help="Seconds of timing per implementation and shape.",
)
@click.option(
    "--torch-compile/--no-torch-compile",
    default=True,
    show_default=True,
    help="Also time torch.compile (its first compile takes ~40 s a shape).",
)
@click.option("--quick", is_flag=True, help="Only the small shapes (Mazur and 784-30-10).")
@OUTPUT
@friendly
def bench(fmt: str, budget: float, torch_compile: bool, quick: bool, output: str | None) -> None:
    """Time the generated module against hand-written backprop and PyTorch, in one run."""
    from .bench import SHAPES, run, table

    shapes = SHAPES[:3] if quick else SHAPES
    data = run(shapes, budget=budget, torch_compile=torch_compile, log=lambda m: click.echo(m, err=True))
    _emit(_json(data) if fmt == "json" else table(data), output)


def _loss_symbol() -> Any:
    from .network import LOSS_SYMBOL

    return LOSS_SYMBOL


@main.command()
@click.argument("spec")
@click.option(
    "--steps",
    type=click.IntRange(0, 10_000_000),
    default=None,
    help="Updates to run [default: the spec's training.steps].",
)
@click.option(
    "--learning-rate",
    "--lr",
    "learning_rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Override the spec's learning rate.",
)
@FORMAT
@DIGITS
@friendly
def train(spec: str, steps: int | None, learning_rate: float | None, fmt: str, digits: int) -> None:
    """Run gradient descent with code compiled from the derivation."""
    from .api import Model
    from .printing import format_number

    model = Model.load(spec)
    model.network.require_numbers("derive train")
    assert model.point is not None  # checks that the forward pass is finite at the start
    training = model.spec.training
    n = training.steps if steps is None else steps
    lr = training.learning_rate if learning_rate is None else learning_rate
    engine = model.compiled()
    history = engine.train(n, lr)
    outputs = engine.outputs()
    parameters = engine.parameter_values()
    breakdown = engine.breakdown(history)
    if breakdown is not None:
        click.echo(f"warning: {breakdown.message()}", err=True)
    if fmt == "json":
        _dump(
            {
                "steps": n,
                "learning_rate": lr,
                "update_biases": training.update_biases,
                "loss_before": history[0],
                "loss": history[-1],
                "outputs": outputs,
                "parameters": parameters,
            }
        )
        return
    biases = "biases updated" if training.update_biases else "biases not updated"
    click.echo(f"{model.spec.name}: {n} step{'s' if n != 1 else ''} of gradient descent (η = {lr:g}, {biases})")
    click.echo(f"loss before: {format_number(history[0], digits)}")
    click.echo(f"loss after:  {format_number(history[-1], digits)}")
    out_names = [o.name for o in model.network.output_layer.outs]
    click.echo("outputs:     " + ", ".join(f"{k} = {format_number(v, digits)}" for k, v in zip(out_names, outputs)))
    click.echo("parameters:")
    width = max(len(k) for k in parameters)
    for k, v in parameters.items():
        click.echo(f"  {k:<{width}} = {format_number(v, digits)}")


if __name__ == "__main__":  # pragma: no cover
    main()
