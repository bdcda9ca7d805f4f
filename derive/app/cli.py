"""The command line: parse arguments, call the library, print. Nothing else.

sympy is imported inside the commands that need it, so ``derive --help`` and
argument errors stay fast.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import files
from ..errors import DeriveError
from ..files import write_atomic
from ..spec.reading import MAX_STEPS
from ..version import __version__

if TYPE_CHECKING:
    from .api import Model

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
MAX_FLOAT_DIGITS = 17  # digits other commands print: a float64's
GRAD_DIGITS = click.option(
    "--digits",
    type=click.IntRange(3, 50),
    default=8,
    show_default=True,
    help="Significant digits of printed numbers, each correctly rounded (beyond 15: from the spec's decimals).",
)


def friendly(command: F) -> F:
    """Print a DeriveError as one clear message and exit with status 2; end quietly on a closed pipe."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            _closed_pipe()
        except DeriveError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:  # an output that cannot be written: say which, no traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}cannot write: {exc.strerror or exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _closed_pipe() -> None:
    """The reader went away (``derive … | head``): stop quietly with status 0, like other Unix tools."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
    except (OSError, ValueError):  # no real file descriptor (click's test runner)
        pass
    sys.exit(0)


def output_option(
    help: str = "Write to this file instead of standard output (whole or not at all; - is standard output).",
) -> Any:
    return click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None, help=help)


OUTPUT = output_option()
TRAIN_LIST_LIMIT = 64  # parameters printed one per line by `derive train` unless asked
LEARNING_RATE = click.option(
    "--learning-rate",
    "--lr",
    "learning_rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Override the spec's learning rate.",
)
QUIET = click.option("-q", "--quiet", is_flag=True, help="No progress messages on standard error.")

# --optimizer and its settings, shared by `derive train` and `derive fit`: one definition, so the two
# commands cannot drift apart in names, help or checking. Each default is None, "not given", so that
# only what the user typed overrides the spec's [training] (a new --optimizer starts from its own defaults).
OPTIMIZER_OPTIONS = (
    click.option(
        "--optimizer",
        default=None,
        help="Override the spec's optimizer: sgd, rmsprop, adam or adamw (torch.optim's, with its defaults).",
    ),
    click.option("--momentum", type=float, default=None, help="sgd's and rmsprop's momentum (default 0)."),
    click.option("--nesterov/--no-nesterov", default=None, help="sgd: Nesterov momentum (needs --momentum)."),
    click.option(
        "--weight-decay", type=float, default=None, help="L2 weight decay (adamw: the decoupled decay, default 0.01)."
    ),
    click.option("--alpha", type=float, default=None, help="rmsprop's smoothing constant (default 0.99)."),
    click.option("--beta1", type=float, default=None, help="adam's and adamw's first beta (default 0.9)."),
    click.option("--beta2", type=float, default=None, help="adam's and adamw's second beta (default 0.999)."),
    click.option("--eps", type=float, default=None, help="rmsprop's, adam's and adamw's epsilon (default 1e-8)."),
)
OPTIMIZER_KEYS = ("optimizer", "momentum", "nesterov", "weight_decay", "alpha", "beta1", "beta2", "eps")


def optimizer_options(command: F) -> F:
    """Add --optimizer, --momentum, … to a command, handed to it as one ``optimizer_settings`` dict.

    The dict holds only the options given, under the [training] keys they override, so the command passes
    it to :func:`with_optimizer` and the spec's own checks judge it (values are not range-checked by click:
    the messages must be the spec's, named by the option).
    """

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {key: kwargs.pop(key) for key in OPTIMIZER_KEYS}
        settings = {key: value for key, value in given.items() if value is not None}
        return command(*args, optimizer_settings=settings, **kwargs)

    decorated: Any = wrapper
    for option in reversed(OPTIMIZER_OPTIONS):  # listed in --help in the order written above
        decorated = option(decorated)
    return decorated


def with_optimizer(model: Model, settings: dict[str, Any]) -> Model:
    """The model with the optimiser options over its spec's [training] (the model itself when none are given)."""
    return model.with_training(settings) if settings else model


def _complete_spec(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of SPEC: built-in example names, and files (the shell lists those)."""
    from click.shell_completion import CompletionItem

    from ..spec.reading import builtin_examples

    items = [CompletionItem(name) for name in builtin_examples() if name.startswith(incomplete)]
    return [*items, CompletionItem(incomplete, type="file")]


def _complete_param(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of PARAM: the spec's parameter names (the spec is read, never run)."""
    from click.shell_completion import CompletionItem

    from ..spec.reading import load_spec

    try:
        spec = load_spec(ctx.params.get("spec") or "")
    except DeriveError:
        return []
    names = list(spec.parameter_names)
    names += [f"W{layer.number}" for layer in spec.layers[1:]]
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


SPEC = click.argument("spec", shell_complete=_complete_spec)


def _to_stdout(output: str | None) -> bool:
    return output is None or output == "-"


def wrote(*paths: Path | str) -> None:
    """The one convention for files written: ``wrote PATH`` on standard error, stdout keeps only the output."""
    for path in paths:
        click.echo(f"wrote {path}", err=True)


def _emit(text: str, output: str | None) -> None:
    """Print, or write a file atomically (a temporary file renamed into place) and say so on stderr."""
    if _to_stdout(output):
        click.echo(text, nl=not text.endswith("\n"))  # a terminal's prompt starts on a line of its own
        return
    assert output is not None
    wrote(write_atomic(output, text))


def _width(output: str | None) -> int:
    """How wide printed text may be: the terminal's width on a terminal, else 100 columns."""
    from ..present.width import DEFAULT_WIDTH, output_width

    return output_width() if _to_stdout(output) else DEFAULT_WIDTH


def _progress_wanted(quiet: bool) -> bool:
    """Progress goes to stderr only when a person is watching it."""
    return not quiet and sys.stderr.isatty()


def _stage_reporter(quiet: bool) -> Callable[[str], None]:
    """A function that announces the stages of long work on stderr, with their times, when someone watches."""
    if not _progress_wanted(quiet):
        return lambda message: None
    import time

    start = time.perf_counter()

    def say(message: str) -> None:
        click.echo(f"[{time.perf_counter() - start:5.1f} s] {message} …", err=True)

    return say


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _json(data: Any) -> str:
    """JSON as every command prints it (NaN and infinities as null, with a warning on stderr)."""
    from ..present.report import json_text

    return json_text(data, warn=_warn)


def _dump(data: Any, output: str | None = None) -> None:
    _emit(_json(data), output)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", message="derive %(version)s")
@click.option(
    "--allow-outside",
    is_flag=True,
    help="Let a spec name files (values_file, targets_file) outside its own folder.",
)
@click.pass_context
def main(ctx: click.Context, allow_outside: bool) -> None:
    """Symbolic backpropagation: chain-rule derivations of every gradient of a network.

    SPEC is a TOML file or the name of a built-in example (see `derive examples`).
    """
    files.forget_inputs()
    files.allow_outside(allow_outside)
    _stop_on_signals(ctx)


STOP_SIGNALS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}  # exit statuses as shells give them (128 + N)


def _stop_on_signals(ctx: click.Context) -> None:
    """The one home of signal handling: on Ctrl-C, SIGTERM or SIGHUP, end TeX, remove every temporary, exit 128+N.

    A signal the command was started ignoring (nohup, a background job) stays ignored;
    the previous handlers come back when the command ends (tests run many in one process).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    previous: dict[int, Any] = {}
    for name, status in STOP_SIGNALS.items():
        signum = getattr(signal, name, None)
        if signum is None or signal.getsignal(signum) == signal.SIG_IGN:
            continue

        def stop(number: int, frame: Any, status: int = status) -> None:
            files.stop_cleanly(lambda: os._exit(status))

        previous[signum] = signal.signal(signum, stop)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    ctx.call_on_close(restore)


@main.command()
@click.argument("name", required=False, shell_complete=_complete_spec)
@friendly
def examples(name: str | None) -> None:
    """List the built-in examples, or print one's TOML to copy and edit."""
    from ..spec.reading import builtin_example_text, builtin_examples, load_spec

    if name is None:
        rows = []
        for example in builtin_examples():
            spec = load_spec(example)
            rows.append((example, "-".join(_layer_size(layer) for layer in spec.layers), spec.title))
        wide = max(len(sizes) for _, sizes, _ in rows)
        for example, sizes, title in rows:
            click.echo(f"{example:<14} {sizes:<{max(wide, 10)}} {title}")
        return
    click.echo(builtin_example_text(name), nl=False)


def _layer_size(layer: Any) -> str:
    """A layer in a list of sizes: 64, an input map 1×28×28, maps 6@24×24, an rnn of 2 units rnn2."""
    if layer.geometry is not None:
        channels, *sides = layer.geometry.out_shape
        return f"{channels}@" + "×".join(str(n) for n in sides)
    if layer.steps:
        return f"rnn{layer.exposed_size}"
    if layer.shape:
        return "×".join(str(n) for n in layer.shape)
    return str(layer.size)


NEW_EXAMPLES = """\b
Examples:
  derive new 4-5-3 --hidden tanh --out softmax -o net.toml
  derive new --conv 1x6x6 --channels 2 --kernel 3 --pool max -o conv.toml
  derive new --conv 1x16 --kernel 3 --pool avg --outputs 3     (1-D: channels x length)
  derive new --rnn 5x3 --units 4 --outputs 1 -o rnn.toml
"""


@main.command(epilog=NEW_EXAMPLES)
@click.argument("sizes", required=False)
@click.option(
    "--conv",
    "conv_shape",
    metavar="CxHxW",
    default=None,
    help="Start a convolutional spec on an input of C channels of H×W (or CxL for 1-D): "
    "input → conv → pool → dense output, as the built-in tinyconv.",
)
@click.option(
    "--rnn",
    "rnn_shape",
    metavar="TxD",
    default=None,
    help="Start a recurrent spec on a sequence of T steps of D features: input → rnn → dense output reading "
    "the last state, as the built-in rnn.",
)
@click.option(
    "--hidden",
    default="",
    help="Activation of the hidden layers (the conv or rnn layer) [default: sigmoid; relu with --conv, "
    "tanh with --rnn].",
)
@click.option(
    "--out",
    "out",
    default="",
    help="Activation of the output layer [default: softmax for cross_entropy, else sigmoid].",
)
@click.option("--loss", default="", help="Loss [default: cross_entropy for a softmax output, else half_sse].")
@click.option("--channels", type=int, default=None, help="--conv: output channels (kernels) [default: 2].")
@click.option("--kernel", type=int, default=None, help="--conv: kernel size [default: 2].")
@click.option("--stride", type=int, default=None, help="--conv: the convolution's stride [default: 1].")
@click.option("--padding", type=int, default=None, help="--conv: zeros on each side of the input [default: 0].")
@click.option("--pool", default=None, help="--conv: a pooling layer after it, max, avg or none [default: max].")
@click.option("--pool-kernel", type=int, default=None, help="--conv: the pool's window (and stride) [default: 2].")
@click.option("--units", type=int, default=None, help="--rnn: hidden units H [default: 2].")
@click.option(
    "--outputs", type=int, default=None, help="--conv, --rnn: outputs [default: 2 with --conv, 1 with --rnn]."
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the weights, inputs and targets."
)
@click.option("--name", default="network", show_default=True, help="The spec's name.")
@OUTPUT
@friendly
def new(
    sizes: str | None,
    conv_shape: str | None,
    rnn_shape: str | None,
    hidden: str,
    out: str,
    loss: str,
    channels: int | None,
    kernel: int | None,
    stride: int | None,
    padding: int | None,
    pool: str | None,
    pool_kernel: int | None,
    units: int | None,
    outputs: int | None,
    seed: int,
    name: str,
    output: str | None,
) -> None:
    """Write a commented spec to start from: dense (SIZES), convolutional (--conv) or recurrent (--rnn).

    SIZES are a dense network's layer sizes from input to output, e.g. 4-5-3.
    --conv and --rnn take the input's shape instead of SIZES, and their layers
    from the options marked with them. Inputs and targets are drawn from the
    seed, so `derive grad`, `lecture` and `train` work on it at once.
    """
    from .newspec import NewSpec, request_for

    request = request_for(
        sizes,
        conv_shape,
        rnn_shape,
        NewSpec(
            (),
            hidden=hidden,
            out=out,
            loss=loss,
            seed=seed,
            name=name,
            channels=channels,
            kernel=kernel,
            stride=stride,
            padding=padding,
            pool=pool,
            pool_kernel=pool_kernel,
            units=units,
            outputs=outputs,
        ),
    )
    from .newspec import spec_text

    _emit(spec_text(request), output)


@main.command()
@SPEC
@click.option("--full", is_flag=True, help="Every neuron and parameter, however many (a big network is summarised).")
@FORMAT
@DIGITS
@OUTPUT
@friendly
def show(spec: str, full: bool, fmt: str, digits: int, output: str | None) -> None:
    """Print the network: layers, symbols, the forward pass and the loss."""
    from .api import Model

    model = Model.load(spec)
    if fmt == "json":
        _dump(model.overview(full), output)
    else:
        _emit(model.show(digits, full=full, width=_width(output)), output)


@main.command()
@SPEC
@click.argument("param", required=False, shell_complete=_complete_param)
@click.option("--all", "all_", is_flag=True, help="Every weight and bias.")
@click.option(
    "--closed-form/--no-closed-form",
    default=None,
    help="Always or never print the expanded closed form (default: when it is short).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "latex"]),
    default="text",
    show_default=True,
    help="Plain text for reading, JSON for programs, LaTeX (an align* of every step) for documents.",
)
@GRAD_DIGITS
@OUTPUT
@friendly
def grad(
    spec: str, param: str | None, all_: bool, closed_form: bool | None, fmt: str, digits: int, output: str | None
) -> None:
    """Derive ∂E/∂PARAM by the chain rule, with every factor and its number.

    PARAM is a weight or bias, or an input, net or out of any neuron
    (∂E/∂net is that neuron's δ), or a whole layer as an exported module names
    it (W3: the matrix ∂E/∂W3 = δ3 a2ᵀ; b3: its bias gradient).
    """
    from ..core.policy import as_float
    from ..present.printing import format_number
    from .api import Model

    if all_ == (param is not None):
        raise DeriveError(
            "give a PARAM or --all (not both)", hint="e.g. `derive grad mazur w5` or `derive grad mazur --all`"
        )
    model = Model.load(spec)
    if fmt == "latex" and (all_ or param is None or param not in model.network.symbols):
        from ..present.matrix import is_matrix_key

        if all_ or (param is not None and is_matrix_key(param)):
            what = "every gradient" if all_ else f"the layer matrix {param}"
            raise DeriveError(
                f"--format latex writes one derivation, not {what}",
                where="--format",
                hint="give one weight or bias, e.g. w5; --format json holds a matrix's LaTeX",
            )
    if digits > MAX_FLOAT_DIGITS and (all_ or param not in model.network.symbols):
        from ..present.matrix import is_matrix_key

        if all_ or (param is not None and is_matrix_key(param)):
            what = "--all" if all_ else f"the layer matrix {param}"
            raise DeriveError(
                f"{what} prints float64 gradients, at most {MAX_FLOAT_DIGITS} digits",
                where=f"--digits {digits}",
                hint="ask for one weight or bias (derive grad SPEC w5 --digits 50) for more",
            )
    if all_:
        model.network.require_numbers(
            "derive grad --all", "ask for one parameter (`derive grad SPEC PARAM` works without numbers)"
        )
        # numbers from the compiled passes: no derivation is built, as none is printed
        loss, values = model.gradient_values()
        if fmt == "json":
            from ..core.policy import as_float

            batch = {"samples": model.samples, "reduction": model.spec.loss.reduction} if model.is_batch else {}
            _dump({"loss": loss, **batch, "gradients": {k: as_float(v) for k, v in values.items()}}, output)
            return
        counts = model.path_counts()
        width = max(len(k) for k in values)
        lines = [f"E = {format_number(loss, digits)}"]
        if model.is_batch:  # E and every gradient are the batch's
            lines[0] += f"   (the {model.spec.loss.reduction} over {model.samples} samples)"
        for k, v in values.items():
            paths = f"{counts[k]} path{'s' if counts[k] != 1 else ''}"
            value = format_number(v, digits) if v is not None else "?"
            lines.append(f"∂E/∂{k:<{width}} = {value:>16}   ({paths})")
        _emit("\n".join(lines) + "\n", output)
        return
    assert param is not None
    from ..present.matrix import MatrixGradient

    derivation = model.derivation(param, digits)  # W3, b3: a whole layer, unless the spec has names of its own so
    if isinstance(derivation, MatrixGradient):
        _emit(_json(derivation.to_dict()) if fmt == "json" else derivation.text(digits), output)
        return
    # an optimiser beyond plain gradient descent: its rule and two steps of this parameter follow the derivation
    update = model.update(param, derivation.value)
    if fmt == "json":
        data = derivation.to_dict(digits)
        if update is not None:
            data["update"] = update.to_dict(digits)
        _emit(_json(data), output)
    elif fmt == "latex":
        _emit(derivation.latex(digits) + ("" if update is None else update.latex(digits)), output)
    else:
        text = derivation.text(digits, closed_form, _width(output))
        _emit(text if update is None else text + "\n" + update.text(digits), output)


LECTURE_FORMATS = ("pdf", "tex", "html")  # the suffixes that pick one: derive.files.LECTURE_SUFFIXES


@main.command()
@SPEC
@output_option("The file to write; its suffix picks the format [default: output/<spec file name>.pdf].")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(LECTURE_FORMATS),
    default=None,
    help="pdf: compiled with TeX; tex: the LaTeX source only; html: one self-contained web page (MathML, no TeX "
    "needed) [default: from -o's suffix, else pdf].",
)
@click.option("--tex", "keep_tex", is_flag=True, help="Also keep the .tex next to the PDF.")
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="English (pdflatex) or Chinese (xelatex, ctex; any browser for html).",
)
@click.option(
    "--steps",
    type=click.IntRange(0, MAX_STEPS),
    default=None,
    help="Training steps to plot [default: the spec's training.steps].",
)
@click.option("--exercises", is_flag=True, help="Add a page of exercises and a separate answer key.")
@click.option(
    "--mazur-steps",
    is_flag=True,
    help="Add Mazur's intermediate step in the hidden layer: dE/dout_h1 = dE_o1/dout_h1 + dE_o2/dout_h1, "
    "one part per output's error, where the path sum starts to look like the delta sum.",
)
@DIGITS
@QUIET
@friendly
def lecture(
    spec: str,
    output: str | None,
    fmt: str | None,
    keep_tex: bool,
    lang: str,
    steps: int | None,
    exercises: bool,
    mazur_steps: bool,
    digits: int,
    quiet: bool,
) -> None:
    """Write a step-by-step backpropagation lecture: a PDF, its LaTeX source, or a web page."""
    from ..files import check_target
    from .api import Model

    fmt, target = _lecture_target(spec, output, fmt)
    if fmt == "html" and keep_tex:
        raise DeriveError("--tex keeps the LaTeX source next to a PDF; an HTML lecture has none", where="--tex")
    if target is not None and output != "-":
        check_target(target)
    model = Model.load(spec)
    if output == "-":  # the source, to standard output
        from ..lecture import Options, html_source, tex_source

        options = Options(lang=lang, digits=digits, steps=steps, exercises=exercises, mazur_steps=mazur_steps)
        click.echo((html_source if fmt == "html" else tex_source)(model, options), nl=False)
        return
    if target is None:
        target = Path("output") / f"{model.spec.name if spec == '-' else _spec_stem(spec)}.{fmt}"  # stdin: the name
        target.parent.mkdir(exist_ok=True)  # the default folder is ours to create, unlike a folder the user names
    written = model.lecture(
        target,
        fmt,  # type: ignore[arg-type]  # a click choice of LECTURE_FORMATS
        lang=lang,
        steps=steps,
        exercises=exercises,
        digits=digits,
        keep_tex=keep_tex,
        progress=_stage_reporter(quiet),
        mazur_steps=mazur_steps,
    )
    wrote(*written)


def _spec_stem(spec: str) -> str:
    """The name outputs are called by: the spec file's stem, or the built-in example's name."""
    return Path(spec).stem if spec.endswith(".toml") else Path(spec).name


def _lecture_target(spec: str, output: str | None, fmt: str | None) -> tuple[str, Path | None]:
    """(format, file to write or None for the default) from --format and -o, which must agree."""
    if output is None:
        return fmt or "pdf", None
    if output == "-":
        if fmt not in ("tex", "html"):
            raise DeriveError("-o - writes text to standard output: add --format tex or --format html", where="-o")
        return fmt, Path("-")
    from ..files import OutputError, lecture_format

    target = Path(output)
    if os.path.isfile(spec) and target.exists() and os.path.samefile(spec, target):  # before its suffix is judged
        raise OutputError(
            "is the spec this command reads; writing it would destroy it",
            where=output,
            hint="choose another output file",
        )
    return lecture_format(target, fmt), target


@main.command()
@SPEC
@output_option("The module to write [default: standard output].")
@click.option(
    "--style",
    type=click.Choice(["vector", "scalar"]),
    default="vector",
    show_default=True,
    help="vector: batched NumPy per layer; scalar: one closed-form function per parameter.",
)
@click.option(
    "--backend",
    type=click.Choice(["numpy", "array-api"]),
    default="numpy",
    show_default=True,
    help="numpy: NumPy only, fastest; array-api: any array library (NumPy, PyTorch, CuPy, JAX, Dask), needs array-api-compat (the array extra).",
)
@friendly
def export(spec: str, output: str | None, style: str, backend: str) -> None:
    """Write a NumPy module of gradient code generated from the derivations."""
    from .api import Model

    _emit(Model.load(spec).export(style=style, backend=backend), output)  # type: ignore[arg-type]


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
    help="Also time torch.compile (its first compile takes seconds a shape).",
)
@click.option("--quick", is_flag=True, help="Only the small shapes (Mazur and 784-30-10 at batch 1 and 64).")
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Threads for BLAS, JAX and PyTorch alike.",
)
@OUTPUT
@QUIET
@friendly
def bench(
    fmt: str, budget: float, torch_compile: bool, quick: bool, threads: int, output: str | None, quiet: bool
) -> None:
    """Time the generated module against hand-written backprop, JAX, PyTorch and the GEMMs alone, a LeNet and
    a recurrent net against PyTorch eager, in one run."""
    from ..bench.measure import QUICK, SHAPES, run, table

    shapes = SHAPES[:QUICK] if quick else SHAPES

    def log(message: str) -> None:
        if _progress_wanted(quiet):
            click.echo(message, err=True)

    from ..bench.measure import left_out

    for note in left_out(torch_compile):  # before the minutes of timing, not after
        _warn(note)
    data = run(shapes, budget=budget, torch_compile=torch_compile, log=log, threads=threads)
    from ..bench import conv  # LeNet against PyTorch eager, and `derive grad lenet` against `import sympy`
    from ..bench.recurrent import measure_rnn, rnn_table

    data["conv"] = conv.run(budget=budget, repeats=1 if quick else 3, log=log)
    log("timing the recurrent net (T 20, D 8, H 32, batch 32) against a torch loop")
    data["rnn"] = measure_rnn(budget)
    text = table(data) + "\n" + conv.table(data["conv"]) + "\n" + rnn_table(data["rnn"])
    _emit(_json(data) if fmt == "json" else text, output)


@main.command()
@SPEC
@click.option(
    "--steps",
    type=click.IntRange(0, MAX_STEPS),
    default=None,
    help="Updates to run [default: the spec's training.steps].",
)
@LEARNING_RATE
@optimizer_options
@click.option(
    "--summary/--parameters",
    "summary",
    default=None,
    help="Losses and outputs only, or also every parameter [default: parameters when there are at most "
    f"{TRAIN_LIST_LIMIT}].",
)
@FORMAT
@DIGITS
@OUTPUT
@QUIET
@friendly
def train(
    spec: str,
    steps: int | None,
    learning_rate: float | None,
    optimizer_settings: dict[str, Any],
    summary: bool | None,
    fmt: str,
    digits: int,
    output: str | None,
    quiet: bool,
) -> None:
    """Run gradient descent, or the spec's optimiser, with code compiled from the derivation.

    --optimizer and its settings override the spec's [training] and are checked as its keys are.
    """
    from ..core.optimizer import Optimizer
    from ..present.printing import format_number
    from .api import TRAIN_CHUNK, Model

    model = with_optimizer(Model.load(spec), optimizer_settings)
    total = steps if steps is not None else model.spec.training.steps
    if _progress_wanted(quiet) and total >= 2 * TRAIN_CHUNK:
        with click.progressbar(length=total, label="training", file=sys.stderr) as bar:
            run = model.train(steps, learning_rate, progress=bar.update)
    else:
        run = model.train(steps, learning_rate)
    n, lr, history, outputs, parameters = run.steps, run.learning_rate, run.history, run.outputs, run.parameters
    training = model.spec.training
    if run.breakdown is not None:
        click.echo(f"warning: {run.breakdown.message()}", err=True)
    if fmt == "json":
        _dump(
            {
                "steps": n,
                "learning_rate": lr,
                "update_biases": training.update_biases,
                "optimizer": training.optimizer,
                "loss_before": history[0],
                "loss": history[-1],
                "outputs": outputs if model.is_batch else outputs[0],  # a row per sample for a batch
                **({} if summary else {"parameters": parameters}),  # JSON lists them unless --summary is given
            },
            output,
        )
        return
    biases = "biases updated" if training.update_biases else "biases not updated"
    batch = f", full batch of {model.samples} samples, E the {model.spec.loss.reduction}" if model.is_batch else ""
    lines = [
        f"{model.spec.name}: {n} step{'s' if n != 1 else ''} of {Optimizer.of(model.spec).describe()} "
        f"(η = {lr:g}, {biases}{batch})",
        f"loss before: {format_number(history[0], digits)}",
        f"loss after:  {format_number(history[-1], digits)}",
    ]
    out_names = [o.name for o in model.network.output_layer.outs]
    for n, row in enumerate(outputs, start=1):
        at = f"[{n}]" if model.is_batch else ""  # as check names a sample's quantity
        label = f"sample {n}:" if model.is_batch else "outputs:"
        shown = ", ".join(f"{k}{at} = {format_number(v, digits)}" for k, v in zip(out_names, row))
        lines.append(f"{label:<13}{shown}")
    if summary is None:
        summary = len(parameters) > TRAIN_LIST_LIMIT
        if summary:
            lines.append(f"{len(parameters)} parameters (list them with --parameters, or --format json)")
    if not summary:
        lines.append("parameters:")
        width = max(len(k) for k in parameters)
        lines.extend(f"  {k:<{width}} = {format_number(v, digits)}" for k, v in parameters.items())
    from ..present.width import fold

    _emit(fold("\n".join(lines), _width(output)) + "\n", output)


@main.command("check")
@SPEC
@click.argument("claims", nargs=-1)
@click.option(
    "--claims",
    "claims_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A file of claims: one NAME = VALUE a line, # comments.",
)
@click.option(
    "--min-digits",
    type=click.IntRange(1, 50),
    default=None,
    help="Require at least K significant digits, correctly rounded [default: the spec's [grading] digits, else lenient].",
)
@FORMAT
@friendly
def check_command(
    spec: str, claims: tuple[str, ...], claims_file: str | None, min_digits: int | None, fmt: str
) -> None:
    """Check published numbers: each CLAIM is NAME=VALUE, e.g. out_o1=0.75136507 dE/dw5=0.082167041.

    NAME is a symbol of the spec, E, an output's error E_o1, delta_h1, dE/dX,
    dE_o1/dX, one chain-rule factor such as dout_o1/dnet_o1, and any of these
    after N updates as NAME@N (NAME' is NAME@1). A claim is judged exactly
    (up to 50 digits) against the spec's numbers as written. With required
    digits (--min-digits, or a student's variant) it must show that many,
    correctly rounded; otherwise a truncation also passes (diagnosis
    truncated). A wrong claim is diagnosed when a named mistake reproduces
    it. Exit status: 0 all ok, 1 some wrong, 2 bad input.
    """
    from ..check.claims import argument_claims, check, load_claims, report_json, report_text
    from .api import Model

    given = argument_claims(claims)
    if claims_file is not None:
        given += load_claims(claims_file)
    if not given:
        raise DeriveError("no claims to check", hint="give NAME=VALUE arguments or --claims FILE")
    report = check(Model.load(spec), given, min_digits)
    if fmt == "json":
        _dump(report_json(report))
    else:
        click.echo(report_text(report, claims_file or ""), nl=False)
    sys.exit(1 if report.wrong else 0)


@main.command("grade")
@click.argument("class_dir", metavar="CLASS_DIR", type=click.Path(file_okay=False))
@click.argument("submissions", metavar="SUBMISSIONS_DIR", type=click.Path(file_okay=False))
@output_option("Write the gradebook to this file (whole or not at all; - is standard output).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="CSV for a spreadsheet, JSON for programs.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress on standard error.")
@friendly
def grade_command(class_dir: str, submissions: str, output: str | None, fmt: str, quiet: bool) -> None:
    """A gradebook of a class set: each SUBMISSIONS_DIR/student-NN.txt checked against CLASS_DIR's variant.

    CLASS_DIR is what `derive exercises` wrote. Columns: student,status,score,total,reason, then one per
    question (ok, wrong: DIAGNOSIS, or missing). A missing or unreadable submission scores 0 and never
    stops the gradebook. Exit status: 0 when the gradebook was written, 2 for bad arguments.
    """
    from ..grading.gradebook import grade_class, gradebook_csv, gradebook_json
    from .api import Model

    book = grade_class(class_dir, submissions, load=Model, log=_stage_reporter(quiet))
    if book.ignored:
        shown = ", ".join(book.ignored[:5]) + (f", … ({len(book.ignored) - 5} more)" if len(book.ignored) > 5 else "")
        click.echo(f"note: not named like a student of the class, not graded: {shown}", err=True)
    if fmt == "json":
        _dump(gradebook_json(book), output)
    else:
        _emit(gradebook_csv(book), output)


# -- derive fit ------------------------------------------------------------------


@main.command()
@SPEC
@click.option(
    "--data",
    "data_ref",
    required=True,
    help="digits (scikit-learn's, needs the data extra: pip install 'derive-backprop[data]'), FILE.npz (X with T or y) or FILE.csv (label last).",
)
@click.option(
    "--epochs", type=click.IntRange(0, 1_000_000), default=30, show_default=True, help="Passes over the training rows."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Rows per gradient step (the last batch holds the rest).",
)
@LEARNING_RATE
@optimizer_options
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.25,
    show_default=True,
    help="Rows held out for testing (per class, when there are labels); 0 holds none out.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the split and the shuffling (initial weights are the spec's).",
)
@click.option(
    "--scale",
    type=click.Choice(["none", "standard", "minmax"]),
    default="standard",
    show_default=True,
    help="Scale the inputs by the training rows' mean and std, or min and max, or not at all (folded into W2 "
    "and b2 when saved, so the saved parameters take raw inputs).",
)
@click.option(
    "--one-hot/--no-one-hot",
    default=None,
    help="One-hot encode the labels [default: when the network has several outputs].",
)
@output_option("The trained parameters (.npz, the exported module's keys) [default: output/<name>.npz].")
@FORMAT
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (there is none when stderr is not a terminal).")
@friendly
def fit(
    spec: str,
    data_ref: str,
    epochs: int,
    batch_size: int,
    learning_rate: float | None,
    optimizer_settings: dict[str, Any],
    test_fraction: float,
    seed: int,
    scale: str,
    one_hot: bool | None,
    output: str | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Train SPEC's network on a data set with its generated module (mini-batches, the spec's optimiser).

    --optimizer and its settings override the spec's [training] and are checked as its keys are.
    """
    from ..core.optimizer import Optimizer
    from ..files import check_target
    from ..fit.data import load_data
    from ..fit.training import FitOptions, save_fit, scaling_path, target_range
    from ..fit.training import fit as run_fit
    from ..present.printing import format_number
    from .api import Model

    if output == "-":
        raise DeriveError("the trained parameters are a binary .npz file: give -o FILE.npz", where="-o")
    if output:
        check_target(output)  # before training, not after
    model = with_optimizer(Model.load(spec), optimizer_settings)
    sizes = [layer.size for layer in model.spec.layers]
    data = load_data(data_ref, sizes[0], sizes[-1], one_hot, target_range(model))
    if output:
        check_target(output)  # now that the data set is read: -o onto it would destroy it
    target = Path(output) if output else Path("output") / f"{model.spec.name}.npz"
    if target.parent.is_dir():  # where a scaling the parameters cannot absorb goes (never onto an input)
        check_target(scaling_path(target))
    options = FitOptions(epochs, batch_size, learning_rate, test_fraction, seed, scale)
    if quiet or not sys.stderr.isatty() or epochs == 0:
        result = run_fit(model, data, options)
    else:
        with click.progressbar(
            length=epochs,
            label=f"{model.spec.name}: training",
            file=sys.stderr,
            show_pos=True,
            item_show_func=lambda s: s,
        ) as bar:

            def progress(epoch: int, loss: float, accuracy: float) -> None:
                bar.update(1, f"loss {format_number(loss, 4)}, accuracy {100 * accuracy:.1f} %")

            result = run_fit(model, data, options, progress)
    if not math.isfinite(result.train_loss):
        click.echo(f"warning: training diverged: the loss is {result.train_loss}; try a smaller --lr", err=True)
    beside = save_fit(result, target)
    if beside is not None:
        first = model.spec.layers[1]
        why = (
            "is a convolution, whose kernels are shared by every input position"
            if first.geometry is not None
            else "is recurrent, its input weights shared by every time step"
            if first.steps
            else "has no bias per neuron"
        )
        click.echo(
            f"warning: layer 2 {why}, so it cannot absorb the {scale} scaling: the saved parameters expect "
            f"inputs scaled as (X - shift)/scale, with shift and scale saved in {beside}",
            err=True,
        )
    if fmt == "json":
        _dump(result.summary())
    else:

        def row(name: str, loss: float | None, accuracy: float | None) -> str:
            if loss is None or accuracy is None:
                return f"{name:<6} {'-':>12} {'-':>10}"
            return f"{name:<6} {format_number(loss, 6):>12} {100 * accuracy:>8.2f} %"

        click.echo(
            f"{model.spec.name}: {epochs} epoch{'s' if epochs != 1 else ''} of mini-batch "
            f"{Optimizer.of(model.spec).describe()} "
            f"(batch {batch_size}, η = {result.learning_rate:g}) on {result.train_rows} rows of {data.source}, "
            f"{result.test_rows} held out"
        )
        click.echo(f"{'':<6} {'loss':>12} {'accuracy':>10}")
        click.echo(row("train", result.train_loss, result.train_accuracy))
        click.echo(row("test", result.test_loss, result.test_accuracy))
        click.echo(f"{result.seconds:.2f} s of training")
    click.echo(f"wrote {target}", err=True)


@main.command()
@SPEC
@click.option("--students", type=click.IntRange(1, 1000), required=True, help="How many variants (one per student).")
@click.option(
    "--seed", type=click.IntRange(min=0), required=True, help="The seed every student's numbers are drawn from."
)
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="The folder to write [default: output/<name>-exercises].",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="English (pdflatex) or Chinese (xelatex, ctex).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pdf", "html", "moodle"]),
    default="pdf",
    show_default=True,
    help="PDF (LaTeX), self-contained web pages (no TeX needed), or a Moodle XML question bank.",
)
@click.option("--weights", is_flag=True, help="Draw new weights and biases too, not only inputs and targets.")
@click.option(
    "--lectures", is_flag=True, help="Also write each variant's whole lecture with its exercises (every number worked)."
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 32),
    default=None,
    help="LaTeX builds at a time [default: the number of CPUs, at most 4].",
)
@DIGITS
@friendly
def exercises(
    spec: str,
    students: int,
    seed: int,
    directory: str | None,
    lang: str,
    fmt: str,
    weights: bool,
    lectures: bool,
    jobs: int | None,
    digits: int,
) -> None:
    """One exercise sheet and answer key per student, each from its own variant of SPEC.

    Writes DIR/student-NN.toml (the variant's spec), student-NN-sheet.pdf,
    student-NN-key.pdf (answers with the working; .html with --format html),
    student-NN-answers.txt and variants.toml; --format moodle writes
    moodle-questions.xml (one category per student) instead of sheets and keys.
    Grade a student with `derive check DIR/student-NN.toml --claims THEIR-ANSWERS.txt`,
    a class with `derive grade DIR SUBMISSIONS_DIR`.
    """
    from ..sheets.classes import build_class, check_format, write_class
    from .api import Model

    check_format(fmt)
    class_set = build_class(spec, students, seed, weights, digits, load=Model)
    target = Path(directory) if directory else Path("output") / f"{class_set.name}-exercises"
    workers = jobs or min(4, os.cpu_count() or 1)
    watching = sys.stderr.isatty()  # progress is for a person at a terminal, not for a log

    def progress(message: str) -> None:
        if watching:
            click.echo(message, err=True)

    from ..grading.moodle import question_bank

    seconds = write_class(class_set, target, lang, digits, workers, progress, lectures, fmt, question_bank)
    sheets, keys = ("sheet", "answer key") if students == 1 else ("sheets", "answer keys")
    lectures_too = f", {students} lecture{'s' if students != 1 else ''}" if lectures else ""
    made = f"{students} {sheets}, {students} {keys}{lectures_too}"
    if fmt == "moodle":
        made = f"a Moodle question bank ({len(class_set.question_names) * students} questions)"
    click.echo(f"wrote {made}, their specs and variants.toml to {target} ({seconds:.1f} s)", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
