"""Reading and validating a network spec (TOML) into frozen dataclasses.

Every user-facing error about a spec is raised here, as a :class:`SpecError`
naming the file and the key. The module uses the standard library only, so
``derive`` can report a bad spec without importing sympy.
"""

from __future__ import annotations

import keyword
import math
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import SpecError, listing, shorten, suggest
from .builtins import ACTIVATIONS, CONSTANTS, FUNCTIONS, LOSSES, SOFTMAX, builtin_activation, builtin_loss
from .maps import MAP_KINDS, flatten_nested, input_shape, map_layer, position_names
from .sequences import RNN, input_names, rnn_layer

BUILTIN_ACTIVATIONS = tuple(ACTIVATIONS)
BUILTIN_LOSSES = tuple(LOSSES)

# Names that would be read as something else: formula functions and constants,
# the loss symbol E, and the formula variables of loss formulas.
RESERVED_NAMES = frozenset(
    {
        *FUNCTIONS,
        *CONSTANTS,
        "E",
        "Abs",
        "Max",
        "Min",
        "Heaviside",
        "sign",
        "Piecewise",
        "oo",
        "zoo",
        "nan",
        "I",
        "S",
        "N",
        "O",
        "Q",
        "np",
        "numpy",
        "math",
        "self",
        "params",
    }
)
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
MAX_NAME_LENGTH = 40
MAX_TITLE_LENGTH = 200
MAX_NEURONS = 100_000
BYTES_PER_PARAMETER = 300  # measured: a named weight (its symbols, value, edges) costs ≈ 270 bytes in one `grad`
MEMORY_BUDGET = 2**30  # bytes a spec's network may take by that estimate: ≈ 3.5 million weights and biases
MAX_TOML_NESTING = 32  # brackets and braces inside one another (a spec needs 3), and the parts of a dotted key
# a spec's TOML items, counted by these marks before parsing (tomllib takes ≈ 100–400 bytes an item): a spec with
# every weight of 784-256-256-10 written out (benchmarks/big_specs.py, 2.5 MB) has 540,770
ITEM_MARKS = (",", ".", "=", "[", "{")
MAX_SPEC_ITEMS = 1_000_000
MAX_STEPS = 100_000  # updates any command runs: training.steps, --steps, a claim's X@N (mazur: 3 s)
MAX_TRAINING_WORK = 1_000_000_000  # steps × weights and biases: a training run's cost, refused before it starts

TOP_KEYS = (
    "name",
    "title",
    "description",
    "title_zh",
    "description_zh",
    "loss",
    "layers",
    "training",
    "init",
    "published",
    "grading",
)
GRADING_KEYS = ("digits",)  # [grading]: what derive check requires of a student's claims
PUBLISHED_KEYS = ("source", "source_zh")  # besides numbers named as `derive check` names them
PUBLISHED_RENAMED = {"loss": "E", "loss_after_step": "E'", "error": "E", "E_total": "E"}  # for the hint
LOSS_KEYS = ("kind", "expr", "reduction")
REDUCTIONS = ("mean", "sum")  # how the per-sample losses of a batch combine into E
MAX_SAMPLES = 10_000  # a spec's batch: every sample is derived and shown
TRAINING_KEYS = (
    "learning_rate",
    "update_biases",
    "steps",
    "optimizer",
    "momentum",
    "nesterov",
    "weight_decay",
    "alpha",
    "beta1",
    "beta2",
    "eps",
)
# torch.optim's optimisers and the settings each takes (learning_rate, update_biases and steps: every one)
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov", "weight_decay"),
    "rmsprop": ("momentum", "weight_decay", "alpha", "eps"),
    "adam": ("weight_decay", "beta1", "beta2", "eps"),
    "adamw": ("weight_decay", "beta1", "beta2", "eps"),
}
INIT_KEYS = ("seed", "scheme")
INPUT_LAYER_KEYS = ("names", "size", "shape", "values", "values_file", "out_names", "samples")
LAYER_KINDS = ("dense", *MAP_KINDS, RNN)  # derive.core.layers.KINDS: the kinds a spec may name
LAYER_KEYS = (
    "kind",
    "names",
    "size",
    "activation",
    "weights",
    "weight_names",
    "bias",
    "bias_names",
    "net_names",
    "out_names",
    "targets",
    "targets_file",
    "weights_layout",
)
TO_FROM, FROM_TO = "to_from", "from_to"  # weights[j][k] into neuron j from k (the default), or [k][j] as in x·W
UNIT_INTERVAL = ("sigmoid", SOFTMAX)  # the built-in activations whose outputs lie in (0, 1): bce's domain
BUILTIN_SUFFIX = " (built-in example)"  # how a built-in spec's source reads in messages
RANDOM = "random"  # values = "random": drawn from [init] seed (see _Validator.drawn)
NUMBER_FILE_SUFFIXES = (".npy", ".txt", ".csv")


class BiasKind(StrEnum):
    """How a layer's neurons are biased: not at all, one bias for the whole layer (Mazur's b1, b2), one each."""

    NONE = "none"
    SHARED = "shared"
    PER_NEURON = "per_neuron"


@dataclass(frozen=True)
class BiasSpec:
    """How a layer's neurons are biased, and the biases' names and values."""

    kind: BiasKind
    names: tuple[str, ...] = ()
    values: tuple[float, ...] = ()


@dataclass(frozen=True)
class Geometry:
    """Where a conv or pool layer's windows sit (every shape channel first: (C, H, W) or (C, L))."""

    kind: str  # conv2d, maxpool1d, …
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]  # zeros on each side (a conv's; pools have none)

    @property
    def dims(self) -> int:
        """How many spatial axes (1 or 2)."""
        return len(self.kernel)

    @property
    def fan_in(self) -> int:
        """Inputs of one window: C_in · kh · kw."""
        return self.in_shape[0] * math.prod(self.kernel)


@dataclass(frozen=True)
class LayerSpec:
    """One layer: its neurons' names, and for non-input layers how they compute."""

    number: int  # Nielsen's layer number: the input layer is 1
    names: tuple[str, ...]
    net_names: tuple[str, ...]
    out_names: tuple[str, ...]
    activation: str = ""  # built-in name or a formula in x; empty for the input layer
    weights: tuple[tuple[float, ...], ...] = ()  # empty: seeded (see derive.core.init)
    weight_names: tuple[tuple[str, ...], ...] = ()
    bias: BiasSpec = field(default_factory=lambda: BiasSpec(BiasKind.NONE))
    samples: tuple[tuple[float, ...], ...] | None = None  # input layer only: the inputs, a row per sample
    target_samples: tuple[tuple[float, ...], ...] | None = None  # output layer only: the targets, a row per sample
    target_names: tuple[str, ...] = ()
    by_size: bool = False  # given as size = N: Nielsen's generated names (w2_1_1, z2_1, a2_1)
    kind: str = "dense"  # how the layer's nets are made (derive.core.layers); the input layer has none
    shape: tuple[int, ...] = ()  # an input, conv or pool layer's maps (C, H, W) or (C, L); () for a flat layer
    geometry: Geometry | None = None  # a conv or pool layer's windows
    steps: int = 0  # an rnn layer's time steps T (its neurons are its H states at each step)

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def exposed_size(self) -> int:
        """How many outs the next layer reads: an rnn's H states at the last step; every neuron otherwise."""
        return self.size // self.steps if self.steps else self.size

    @property
    def parameter_shape(self) -> tuple[int, ...]:
        """The shape of the layer's weights in an exported module: (n, m) for dense, (C_out, C_in, kh, kw) for conv."""
        if self.geometry is not None:
            return (
                (len(self.weight_names), self.geometry.in_shape[0], *self.geometry.kernel) if self.weight_names else ()
            )
        return (len(self.weight_names), len(self.weight_names[0]) if self.weight_names else 0)

    @property
    def values(self) -> tuple[float, ...] | None:
        """The first sample's inputs (the only sample's, for a spec of one)."""
        return self.samples[0] if self.samples is not None else None

    @property
    def targets(self) -> tuple[float, ...] | None:
        """The first sample's targets (the only sample's, for a spec of one)."""
        return self.target_samples[0] if self.target_samples is not None else None


@dataclass(frozen=True)
class LossSpec:
    """The loss: a built-in ``kind`` or a per-output formula ``expr`` in o and t."""

    kind: str = ""
    expr: str = ""
    reduction: str = "mean"  # a batch's E: the mean or the sum of its samples' losses


@dataclass(frozen=True)
class TrainingSpec:
    """[training]: the optimiser and its settings, with torch.optim's defaults (the learning rate's is derive's)."""

    learning_rate: float = 0.5
    update_biases: bool = True
    steps: int = 1000
    optimizer: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0  # adamw's default is 0.01 (decoupled)
    alpha: float = 0.99
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


@dataclass(frozen=True)
class PublishedSpec:
    """Numbers a published article prints for this example, so a lecture can point out where it differs.

    Keys are ``derive check`` names: ``E``, any input/net/out name (its forward
    value), ``dE/dout_o1`` (an output's ∂E/∂out), ``w5'`` and ``E'`` (after one update),
    ``E@N`` and ``out_o1@N`` (after N updates). Values keep the digits as printed (text).
    """

    source: str
    values: tuple[tuple[str, str], ...]
    source_zh: str = ""
    # other sources, each a sub-table of [published] with its own source names and numbers: where a copy
    # of the article prints a number differently, the lecture says which source prints what
    others: tuple[PublishedSpec, ...] = ()

    def sources(self) -> tuple[PublishedSpec, ...]:
        """This source, then the others."""
        return (self, *self.others)


@dataclass(frozen=True)
class Spec:
    """A validated network spec; ``source`` is the file name used in messages."""

    name: str
    title: str
    description: str
    loss: LossSpec
    layers: tuple[LayerSpec, ...]
    training: TrainingSpec
    seed: int
    source: str
    title_zh: str = ""
    description_zh: str = ""
    published: PublishedSpec | None = None
    of_batch: tuple[int, int] | None = None  # (n, N): this is sample n (from 1) of a batch of N
    required_digits: int = 0  # [grading] digits: significant digits derive check requires (0: lenient)

    @property
    def display_source(self) -> str:
        """Where the spec came from, as a reader should see it: the file's name, or the built-in example."""
        return (
            self.source
            if self.source.endswith(BUILTIN_SUFFIX) or self.source.startswith("<")
            else Path(self.source).name
        )

    @property
    def samples(self) -> int:
        """How many samples the spec holds (1 when it gives a single sample, or none)."""
        for rows in (self.layers[0].samples, self.layers[-1].target_samples):
            if rows is not None:
                return len(rows)
        return 1

    @property
    def is_batch(self) -> bool:
        """More than one sample: E is the mean (or sum) of the samples' losses."""
        return self.samples > 1

    @property
    def worked(self) -> int:
        """The sample a batch's text works in full (from 1): the first whose inputs are all non-zero, else the
        first with the most non-zero inputs (a sample of zeros has first-layer gradients of 0, and shows little)."""
        rows = self.layers[0].samples
        if rows is None or len(rows) == 1:
            return 1
        best = max(sum(v != 0 for v in row) for row in rows)
        return next(n for n, row in enumerate(rows, start=1) if sum(v != 0 for v in row) == best)

    def sample(self, n: int) -> Spec:
        """The spec of sample ``n`` alone (counted from 0): its inputs and targets, the same parameters."""
        layers = list(self.layers)
        first, last = layers[0], layers[-1]
        if first.samples is not None:
            layers[0] = replace(first, samples=(first.samples[n],))
        if last.target_samples is not None:
            layers[-1] = replace(last, target_samples=(last.target_samples[n],))
        of_batch = (n + 1, self.samples) if self.is_batch else None
        return replace(self, layers=tuple(layers), published=None, of_batch=of_batch)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every weight and bias name, layer by layer (shared biases once)."""
        names: list[str] = []
        for layer in self.layers[1:]:
            if layer.steps:  # an rnn's rows are [W | U]: its input weights first, then its recurrent ones
                features = len(layer.weight_names[0]) - len(layer.weight_names)
                names.extend(w for row in layer.weight_names for w in row[:features])
                names.extend(u for row in layer.weight_names for u in row[features:])
            else:
                for row in layer.weight_names:
                    names.extend(row)
            names.extend(layer.bias.names)  # a shared bias has one name; names are unique (check_unique)
        return tuple(names)


# --------------------------------------------------------------------------
# loading


def builtin_examples() -> tuple[str, ...]:
    """The names of the examples shipped with the package."""
    folder = resources.files("derive") / "examples"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def builtin_example_text(name: str) -> str:
    """The TOML text of a built-in example."""
    if name not in builtin_examples():
        raise SpecError(
            f"no built-in example named {name!r}",
            hint=suggest(name, builtin_examples()) or "built-in examples: " + listing(builtin_examples()),
        )
    return (resources.files("derive") / "examples" / f"{name}.toml").read_text(encoding="utf-8")


def load_spec(ref: str | Path) -> Spec:
    """Load a spec from a file path, the name of a built-in example, or ``-`` (standard input)."""
    return parse_spec(*read_spec(ref))


def spec_text(ref: str | Path) -> tuple[str, str]:
    """(TOML text, source name for messages) of a spec file or a built-in example."""
    text, source, _ = read_spec(ref)
    return text, source


def read_spec(ref: str | Path) -> tuple[str, str, Path | None]:
    """(TOML text, source name for messages, folder its files are read from) of a spec reference."""
    from ..files import MAX_SPEC_BYTES, read_text_input, shown_path

    if str(ref) == "-":
        import sys

        text = sys.stdin.read(MAX_SPEC_BYTES + 1)
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"the spec is larger than the limit of {MAX_SPEC_BYTES:,} bytes", where="<stdin>")
        return text, "<stdin>", Path.cwd()
    path = Path(ref)
    if path.exists() and not path.is_dir():  # a FIFO or a device is refused by read_text_input, never read
        return read_text_input(path, "spec", MAX_SPEC_BYTES), shown_path(path), path.parent
    elif str(ref) in builtin_examples():
        text = builtin_example_text(str(ref))
        source = f"{ref}{BUILTIN_SUFFIX}"
    else:
        hint = suggest(str(ref), builtin_examples())
        if not hint:
            hint = "give a TOML file or a built-in example: " + listing(builtin_examples())
        what = "is a directory, not a spec file" if path.is_dir() else "no such file"
        raise SpecError(f"{what}, and no built-in example by that name", str(ref), hint)
    return text, source, None


def parse_spec(text: str, source: str = "<spec>", folder: Path | None = None) -> Spec:
    """Parse and validate TOML text; ``folder`` is where ``values_file`` paths are read from."""
    items = sum(map(text.count, ITEM_MARKS))  # C speed: before any work proportional to the items
    if items > MAX_SPEC_ITEMS:
        raise SpecError(
            f"about {items:,} TOML items (counted by their commas, dots, brackets, braces and = signs); the limit "
            f"is {MAX_SPEC_ITEMS:,} (spec item limit)",
            where=source,
            hint="a spec with every weight of a 784-256-256-10 network written out has 540,770; "
            "leave the weights out to have them drawn from [init] seed",
        )
    depth, dots = _nesting(text)
    if depth > MAX_TOML_NESTING:
        raise SpecError(
            f"brackets nested {depth} deep; the limit is {MAX_TOML_NESTING} (TOML nesting limit)", where=source
        )
    if dots > MAX_TOML_NESTING:
        raise SpecError(
            f"a dotted key {dots + 1:,} parts deep; the limit is {MAX_TOML_NESTING} (TOML nesting limit)", where=source
        )
    try:
        data = _fast_toml(text) or tomllib.loads(text, parse_float=_parse_float)
    except tomllib.TOMLDecodeError as exc:
        line = _single_bracket_layers(text)
        if line:
            raise SpecError(
                "[layers] declares one table, so a second one clashes",
                where=f"{source}: line {line}",
                hint="write [[layers]] (two brackets) before each layer: an array of tables",
            ) from None
        raise SpecError(f"malformed TOML: {exc}", where=source) from None
    return _Validator(source, folder).spec(data)


def validate_spec(data: Mapping[str, Any], source: str = "<dict>", folder: Path | None = None) -> Spec:
    """Validate a spec given as data (the tables TOML would give) exactly as a file's: same checks, same errors."""
    if not isinstance(data, Mapping):
        raise SpecError(f"expected a table of the spec's keys, got {_describe(data)}", where=source)
    return _Validator(source, folder).spec(dict(data))


def with_values(
    spec: Spec,
    inputs: Sequence[float] | None = None,
    targets: Sequence[float] | None = None,
    parameters: Mapping[str, float] | None = None,
    seeded: Callable[[int], Sequence[Sequence[float]]] | None = None,
) -> Spec:
    """A copy of ``spec`` with new inputs, targets or weight/bias values, checked as a spec file's would be.

    ``parameters`` maps weight and bias names to values; ``seeded(index)`` gives the
    drawn weights of a layer whose spec leaves them to the seed (to change one of them).
    The published numbers are dropped: they belong to the original example.
    """
    check = _Validator(spec.source)
    layers = list(spec.layers)
    if inputs is not None:
        rows = check.given_numbers({"values": list(inputs)}, "inputs", "values", layers[0].size, spec.seed)
        assert rows is not None
        layers[0] = replace(layers[0], samples=rows)
    if targets is not None:
        rows = check.given_numbers({"targets": list(targets)}, "targets", "targets", layers[-1].size, spec.seed)
        assert rows is not None
        layers[-1] = replace(layers[-1], target_samples=rows)
    first, last = layers[0].samples, layers[-1].target_samples
    if first is not None and last is not None and len(first) != len(last):
        raise check.fail("targets", f"{len(last)} rows of targets for {len(first)} samples of inputs")
    for name, value in (parameters or {}).items():
        key = f"weights[{name!r}]"
        number = check.number(value, key)
        for i, layer in enumerate(layers[1:], start=1):
            row_of = {w: (j, k) for j, row in enumerate(layer.weight_names) for k, w in enumerate(row)}
            if name in row_of:
                given = layer.weights or (seeded(i) if seeded is not None else ())
                matrix = [list(map(float, row)) for row in given]
                j, k = row_of[name]
                matrix[j][k] = number
                layers[i] = replace(layer, weights=tuple(tuple(row) for row in matrix))
                break
            if name in layer.bias.names:
                values = list(layer.bias.values)
                values[layer.bias.names.index(name)] = number
                layers[i] = replace(layer, bias=replace(layer.bias, values=tuple(values)))
                break
        else:
            hint = suggest(name, spec.parameter_names) or "weights and biases: " + listing(spec.parameter_names)
            raise check.fail(key, "no weight or bias by that name", hint)
    changed = replace(spec, layers=tuple(layers), published=None)
    check.check_loss_fits(changed)
    return changed


def with_training(spec: Spec, settings: Mapping[str, Any], option: Callable[[str], str] | None = None) -> Spec:
    """A copy of ``spec`` whose [training] takes ``settings`` (``{"optimizer": "adam", "beta1": 0.8}``) over its own.

    Checked by the same code as a spec's [training], so the errors are the same one-liners; ``option(key)``
    names where a setting came from (``--beta1``) instead of ``training.beta1``. A new ``optimizer`` starts
    from its own defaults (the spec's momentum is not Adam's); without one, the spec's optimiser keeps its
    settings and takes the new ones, and a setting it does not take is refused (sgd takes no beta1).
    """
    t = spec.training
    table: dict[str, Any] = {"learning_rate": t.learning_rate, "update_biases": t.update_biases, "steps": t.steps}
    name = settings.get("optimizer", t.optimizer)
    if name == t.optimizer:
        defaults = TrainingSpec()
        table["optimizer"] = t.optimizer
        for key in OPTIMIZERS[t.optimizer]:
            if getattr(t, key) != getattr(defaults, key):
                table[key] = getattr(t, key)
    table.update(settings)
    return replace(spec, training=_SettingsValidator(spec.source, option).training(table))


FAST_TOML_FROM = 64_000  # characters: below, the standard parser's time does not matter


def _fast_toml(text: str) -> dict[str, Any] | None:
    """A big spec (every weight written out) parsed by rtoml when it is installed (8× faster), else None.

    Anything rtoml refuses is left to tomllib, whose messages the errors quote.
    """
    if len(text) < FAST_TOML_FROM:
        return None
    try:
        import rtoml
    except ImportError:
        return None
    try:
        data: dict[str, Any] = rtoml.loads(text)
    except rtoml.TomlParsingError:  # tomllib reports the problem, in the words the errors quote
        return None
    return data


def _nesting(text: str) -> tuple[int, int]:
    """How deep [ and { nest in TOML text, and the most dots in one key, outside strings and comments (upper
    bounds for odd text: a number's dot counts once). tomllib's time grows with the square of a key's dots."""
    deepest = depth = dots = most_dots = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            dots = 0
            i = text.find("\n", i)
            if i < 0:
                break
        elif c in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else c
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                j += 2 if text[j] == "\\" and c == '"' else 1
            i = j + len(quote) - 1
        elif c == ".":
            dots += 1
            most_dots = max(most_dots, dots)
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
            dots = 0
        elif c in "]}":
            depth = max(depth - 1, 0)
            dots = 0
        elif c in "=,\n":
            dots = 0
        i += 1
    return deepest, most_dots


def _single_bracket_layers(text: str) -> int:
    """The line of a second ``[layers]`` header (the usual slip for ``[[layers]]``), or 0."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\s*layers\s*\]\s*(#.*)?$", line)]
    return lines[1] if len(lines) > 1 else 0


# --------------------------------------------------------------------------
# validation


class _Validator:
    def __init__(self, source: str, folder: Path | None = None) -> None:
        self.source = source
        self.folder = folder
        self.loss_kind = ""
        self.given: list[set[str]] = []  # the keys each [[layers]] table gives, to report names where they were written
        self.parameters = 0  # weights and biases of the layers read so far
        self.neurons = 0  # neurons of the layers read so far (inputs included)
        self.samples: int | None = None  # how many samples the input layer gives, once it is read
        self.input_table: dict[str, Any] = {}

    def fail(self, key: str, message: str, hint: str = "") -> SpecError:
        return SpecError(message, where=f"{self.source}: {key}", hint=hint)

    # -- generic checks ----------------------------------------------------

    def keys(self, table: dict[str, Any], allowed: tuple[str, ...], key: str) -> None:
        for k in table:
            if k not in allowed:
                where = f"{key}.{k}" if key else k
                hint = suggest(k, allowed) or "valid keys: " + ", ".join(allowed)
                raise self.fail(where, "unknown key", hint)

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {_describe(value)}")
        result = value if type(value) is WrittenFloat else float(value)
        if not math.isfinite(result):
            raise self.fail(key, f"expected a finite number, got {value}")
        return result

    def numbers(self, value: Any, key: str, length: int) -> tuple[float, ...]:
        noun = "number" if length == 1 else "numbers"
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of {length} {noun}, got {_describe(value)}")
        if any(isinstance(v, list) for v in value):
            raise self.fail(key, f"expected {length} {noun}, got a list inside it: a batch nests one level only")
        if len(value) != length:
            raise self.fail(key, f"expected {length} {noun}, got {len(value)}")
        return self.row(value, key)

    def row(self, value: list[Any], key: str) -> tuple[float, ...]:
        """The numbers of a list; the key of a bad one is spelled only when there is one (big specs hold 10⁵)."""
        try:
            floats = tuple(map(_plain_float, value))
            if math.isfinite(math.fsum(map(abs, floats))):
                return floats
        except (TypeError, OverflowError):
            pass
        return tuple(self.number(v, f"{key}[{i}]") for i, v in enumerate(value))

    def name(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a name (a string), got {_describe(value)}")
        if not NAME_RE.match(value):
            raise self.fail(
                key,
                f"{value!r} is not a valid name: use a letter followed by letters, "
                "digits or underscores (names must work in LaTeX and Python)",
            )
        if len(value) > MAX_NAME_LENGTH:
            raise self.fail(key, f"name {shorten(value)} is longer than {MAX_NAME_LENGTH} characters")
        if keyword.iskeyword(value) or keyword.issoftkeyword(value):
            raise self.fail(key, f"{value!r} is a Python keyword; choose another name")
        if value in RESERVED_NAMES:
            raise self.fail(key, f"{value!r} is reserved (a function, constant or the loss E)")
        return value

    def spec_name(self, value: Any) -> str:
        """The spec's ``name``: an identifier, since it names generated modules and LaTeX; a file-like name is
        refused with the identifier to write instead."""
        if isinstance(value, str) and not NAME_RE.match(value):
            fixed = identifier_for(value)
            if fixed:
                raise self.fail(
                    "name",
                    f"{value!r} is not a valid name: a spec's name is an identifier (letters, digits and "
                    "underscores, a letter first), as it names generated Python modules and LaTeX; "
                    "the file's name may differ",
                    f'write name = "{fixed}"',
                )
        return self.name(value, "name")

    def names(self, value: Any, key: str, length: int) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of {length} names, got {_describe(value)}")
        if len(value) != length:
            raise self.fail(key, f"expected {length} names, got {len(value)}")
        return tuple(self.name(v, f"{key}[{i}]") for i, v in enumerate(value))

    def text(self, value: Any, key: str, limit: int) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_describe(value)}")
        if len(value) > limit:
            raise self.fail(key, f"longer than {limit} characters")
        if any(c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
            # Cf: bidirectional overrides and zero-width characters would reorder or hide text in a terminal or page
            raise self.fail(key, "contains control characters or invisible formatting characters")
        return value

    # -- the spec ------------------------------------------------------------

    def spec(self, data: dict[str, Any]) -> Spec:
        self.keys(data, TOP_KEYS, "")
        name = self.spec_name(data["name"]) if "name" in data else "network"
        title = self.text(data.get("title", name), "title", MAX_TITLE_LENGTH)
        description = self.text(data.get("description", ""), "description", 4000)
        title_zh = self.text(data.get("title_zh", ""), "title_zh", MAX_TITLE_LENGTH)
        description_zh = self.text(data.get("description_zh", ""), "description_zh", 4000)
        loss = self.loss(data.get("loss"))
        self.loss_kind = loss.kind
        training = self.training(data.get("training", {}))
        seed = self.init(data.get("init", {}))
        layers = self.layers(data.get("layers"), seed)
        spec = Spec(
            name=name,
            title=title,
            description=description,
            loss=loss,
            layers=layers,
            training=training,
            seed=seed,
            source=self.source,
            title_zh=title_zh,
            description_zh=description_zh,
        )
        self.check_unique(spec)
        self.check_loss_fits(spec)
        if isinstance(data.get("training"), dict) and "steps" in data["training"]:
            check_steps(training.steps, self.parameters, f"{self.source}: training.steps")
        if "published" in data:
            spec = replace(spec, published=self.published(data["published"], spec))
        if "grading" in data:
            spec = replace(spec, required_digits=self.grading(data["grading"]))
        return spec

    def grading(self, table: Any) -> int:
        """[grading] digits = K: every claim checked against this spec shows K significant digits, rounded."""
        if not isinstance(table, dict):
            raise self.fail("grading", f"expected a table, got {_describe(table)}")
        self.keys(table, GRADING_KEYS, "grading")
        digits = table.get("digits", 0)
        if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 50:
            raise self.fail(
                "grading.digits", f"expected a whole number of digits from 1 to 50, got {_describe(digits)}"
            )
        return digits

    def published(self, table: Any, spec: Spec, key: str = "published") -> PublishedSpec:
        """The published numbers, named as ``derive check`` names them (one grammar, one verdict rule).

        A sub-table is another source (a copy of the article) with its own ``source`` and numbers.
        """
        if not isinstance(table, dict):
            raise self.fail(key, f"expected a table, got {_describe(table)}")
        names: list[str] = ["E"]
        for layer in spec.layers:
            names.extend(layer.out_names)
            names.extend(layer.net_names)
        names.extend(spec.parameter_names)
        names.extend(f"dE/d{o}" for o in spec.layers[-1].out_names)  # ∂E/∂out: a copy's own next number
        updated = ["E'", *(f"{p}'" for p in spec.parameter_names)]
        after = ("E", *spec.layers[-1].out_names)  # NAME@N: after N updates
        source = source_zh = ""
        values: list[tuple[str, str]] = []
        others: list[PublishedSpec] = []
        for name, value in table.items():
            stem, at, steps = name.partition("@")
            known = name in names or name in updated or (at and stem in after and steps.isdigit() and int(steps) > 0)
            if isinstance(value, dict) and not known and name not in PUBLISHED_KEYS:
                if key != "published":
                    raise self.fail(f"{key}.{name}", "a source's table holds numbers, not another table")
                other = self.published(value, spec, f"{key}.{name}")
                if not other.source:
                    raise self.fail(f"{key}.{name}.source", 'missing: name the source, e.g. source = "a copy"')
                others.append(other)
                continue
            if name in PUBLISHED_KEYS:
                if name == "source":
                    source = self.text(value, f"{key}.source", MAX_TITLE_LENGTH)
                else:
                    source_zh = self.text(value, f"{key}.source_zh", MAX_TITLE_LENGTH)
                continue
            if not known:
                hint = (
                    f"write {PUBLISHED_RENAMED[name]!r}"
                    if name in PUBLISHED_RENAMED
                    else suggest(name, (*names, *updated))
                    or "keys: source, E, a symbol name, NAME' (after one update), E@N or an output@N (after N),"
                    " or a sub-table for another source"
                )
                raise self.fail(f"{key}.{name}", "unknown key", hint)
            values.append((name, self.published_number(value, f"{key}.{name}")))
        return PublishedSpec(source=source, values=tuple(values), source_zh=source_zh, others=tuple(others))

    def loss(self, table: Any) -> LossSpec:
        if table is None:
            raise self.fail("loss", 'missing: give [loss] kind = "half_sse" or expr = "…"')
        if isinstance(table, str):  # loss = "bce": a shorthand for [loss] kind = "bce"
            table = builtin_loss(table) or table
            if table not in BUILTIN_LOSSES:
                hint = suggest(table, BUILTIN_LOSSES) or (
                    "built-in losses: " + ", ".join(BUILTIN_LOSSES) + '; a formula goes in [loss] expr = "…"'
                )
                raise self.fail("loss", f"unknown loss {table!r}", hint)
            return LossSpec(kind=table)
        if not isinstance(table, dict):
            raise self.fail("loss", f"expected a table, got {_describe(table)}")
        self.keys(table, LOSS_KEYS, "loss")
        if ("kind" in table) == ("expr" in table):
            raise self.fail("loss", "give exactly one of kind or expr")
        reduction = table.get("reduction", "mean")
        if reduction not in REDUCTIONS:
            hint = (suggest(reduction, REDUCTIONS) if isinstance(reduction, str) else "") or (
                '"mean" (E is the mean of the samples\' losses) or "sum"'
            )
            shown = repr(reduction) if isinstance(reduction, str) else _describe(reduction)
            raise self.fail("loss.reduction", f"unknown reduction {shown}", hint)
        return replace(self.loss_kind_or_expr(table), reduction=reduction)

    def loss_kind_or_expr(self, table: dict[str, Any]) -> LossSpec:
        if "kind" in table:
            kind = table["kind"]
            if isinstance(kind, str):
                kind = builtin_loss(kind) or kind
            if not isinstance(kind, str) or kind not in BUILTIN_LOSSES:
                hint = (suggest(kind, BUILTIN_LOSSES) if isinstance(kind, str) else "") or (
                    "built-in losses: " + ", ".join(BUILTIN_LOSSES)
                )
                raise self.fail("loss.kind", f"unknown loss {kind!r}", hint)
            return LossSpec(kind=kind)
        expr = self.text(table["expr"], "loss.expr", 400)
        return LossSpec(expr=expr)

    def training(self, table: Any) -> TrainingSpec:
        if not isinstance(table, dict):
            raise self.fail("training", f"expected a table, got {_describe(table)}")
        self.keys(table, TRAINING_KEYS, "training")
        lr = self.number(table.get("learning_rate", 0.5), "training.learning_rate")
        if lr <= 0:
            raise self.fail("training.learning_rate", f"must be positive, got {lr}")
        update = table.get("update_biases", True)
        if not isinstance(update, bool):
            raise self.fail("training.update_biases", f"expected true or false, got {_describe(update)}")
        steps = table.get("steps", 1000)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
            raise self.fail(
                "training.steps", f"expected a whole number from 0 to {MAX_STEPS} (the step limit), got {steps!r}"
            )
        return TrainingSpec(learning_rate=lr, update_biases=update, steps=steps, **self.optimizer(table))

    def optimizer(self, table: dict[str, Any]) -> dict[str, Any]:
        """The optimiser's name and settings, each checked as torch.optim checks it, and given to its optimiser only."""
        name = table.get("optimizer", "sgd")
        if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
            hint = (suggest(name.lower(), tuple(OPTIMIZERS)) if isinstance(name, str) else "") or (
                "optimizers: " + ", ".join(OPTIMIZERS)
            )
            shown = repr(name) if isinstance(name, str) else _describe(name)
            raise self.fail("training.optimizer", f"unknown optimizer {shown}", hint)
        name = name.lower()
        for key in ("momentum", "nesterov", "weight_decay", "alpha", "beta1", "beta2", "eps"):
            if key in table and key not in OPTIMIZERS[name]:
                takers = [o for o, keys in OPTIMIZERS.items() if key in keys]
                raise self.fail(
                    f"training.{key}", f"{name} takes no {key}", f"{key} is a setting of {' and '.join(takers)}"
                )
        settings: dict[str, Any] = {"optimizer": name}
        for key in ("momentum", "weight_decay", "eps"):
            if key in table:
                value = self.number(table[key], f"training.{key}")
                if value < 0:
                    raise self.fail(f"training.{key}", f"must be ≥ 0, got {value}")
                settings[key] = value
        for key in ("alpha", "beta1", "beta2"):
            if key in table:
                value = self.number(table[key], f"training.{key}")
                if not 0 <= value < 1:
                    raise self.fail(f"training.{key}", f"must lie in [0, 1), got {value}")
                settings[key] = value
        if "nesterov" in table:
            nesterov = table["nesterov"]
            if not isinstance(nesterov, bool):
                raise self.fail("training.nesterov", f"expected true or false, got {_describe(nesterov)}")
            if nesterov and not settings.get("momentum", 0.0) > 0:
                raise self.fail("training.nesterov", "Nesterov momentum needs a momentum", "set momentum = 0.9, say")
            settings["nesterov"] = nesterov
        if name == "adamw" and "weight_decay" not in settings:
            settings["weight_decay"] = 0.01  # torch.optim.AdamW's default
        return settings

    def init(self, table: Any) -> int:
        if not isinstance(table, dict):
            raise self.fail("init", f"expected a table, got {_describe(table)}")
        self.keys(table, INIT_KEYS, "init")
        seed = table.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise self.fail("init.seed", f"expected a whole number from 0 up, got {_describe(seed)}")
        scheme = table.get("scheme", "auto")
        if scheme != "auto":
            raise self.fail(
                "init.scheme", f"unknown scheme {scheme!r}", 'only "auto" (Xavier, or He for relu) is supported'
            )
        return seed

    def layers(self, value: Any, seed: int) -> tuple[LayerSpec, ...]:
        if value is None:
            raise self.fail("layers", "missing: give at least an input layer and an output layer as [[layers]]")
        if isinstance(value, dict):
            raise self.fail(
                "layers",
                "[layers] is a single table, but each layer needs its own",
                "write [[layers]] (two brackets) before each layer",
            )
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise self.fail("layers", "expected an array of tables ([[layers]])")
        self.given = [set(t) for t in value]
        if len(value) < 2:
            raise self.fail("layers", f"need at least 2 layers (input and output), got {len(value)}")
        layers: list[LayerSpec] = []
        for i, table in enumerate(value):
            key = f"layers[{i}]"
            is_output = i == len(value) - 1
            if i == 0:
                sequence = len(value) > 1 and value[1].get("kind") == RNN
                layer = self.input_layer(table, key, seed, sequence)
            else:
                layer = self.layer(table, key, layers[-1], is_output, seed)
                if layer.kind == RNN and layers[0].by_size:  # a sequence's inputs: x1_t1 (feature 1 at step 1)
                    steps, features = layers[0].shape
                    renamed = input_names(steps, features)
                    layers[0] = replace(layers[0], names=renamed, out_names=renamed)
            layers.append(layer)
        return tuple(layers)

    def sizes(self, table: dict[str, Any], key: str) -> int:
        if "names" in table and "size" in table:
            raise self.fail(key, "give names or size, not both")
        if "names" in table:
            names = table["names"]
            if not isinstance(names, list) or not names:
                raise self.fail(f"{key}.names", "expected a non-empty list of names")
            return len(names)
        if "size" in table:
            size = table["size"]
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_NEURONS:
                raise self.fail(f"{key}.size", f"expected a whole number from 1 to {MAX_NEURONS}, got {size!r}")
            return size
        raise self.fail(key, "missing: give names = [...] or size = N")

    def input_layer(self, table: dict[str, Any], key: str, seed: int, sequence: bool = False) -> LayerSpec:
        for k in table:
            if k in LAYER_KEYS and k not in INPUT_LAYER_KEYS:
                raise self.fail(f"{key}.{k}", "the input layer (the first) takes no " + k)
        self.keys(table, INPUT_LAYER_KEYS, key)
        shape: tuple[int, ...] = ()
        if "shape" in table:
            shape = input_shape(self, table, key, sequence)
            n = math.prod(shape)
            if n > MAX_NEURONS:
                raise self.fail(f"{key}.shape", f"{n:,} inputs; the limit is {MAX_NEURONS:,} (neuron limit)")
            names = tuple(f"x{s}" for s in position_names(shape))
            if "values" in table:  # nested like the shape: flat rows from here on
                table = {**table, "values": flatten_nested(self, table["values"], shape, f"{key}.values")}
        else:
            n = self.sizes(table, key)
            if "names" in table:
                names = self.names(table["names"], f"{key}.names", n)
            else:
                names = tuple(f"x{j}" for j in range(1, n + 1))
        self.count_neurons(key, n)
        self.input_table = table
        self.samples = self.sample_count(table, key)
        batch = self.given_numbers(table, key, "values", n, seed)
        if batch is not None:
            self.samples = len(batch)
        return LayerSpec(
            number=1,
            names=names,
            net_names=(),
            out_names=names,
            samples=batch,
            by_size="names" not in table,
            shape=shape,
        )

    def sample_count(self, table: dict[str, Any], key: str) -> int | None:
        """``samples = N``: how many samples "random" or a values file gives (None when not said)."""
        if "samples" not in table:
            return None
        count = table["samples"]
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SAMPLES:
            raise self.fail(f"{key}.samples", f"expected a whole number from 1 to {MAX_SAMPLES}, got {count!r}")
        if isinstance(table.get("values"), list):
            raise self.fail(
                f"{key}.samples",
                "given with a list of values, which says how many samples there are itself",
                'samples = N goes with values = "random" or values_file',
            )
        return count

    def layer(
        self,
        table: dict[str, Any],
        key: str,
        prev: LayerSpec,
        is_output: bool,
        seed: int,
    ) -> LayerSpec:
        kind = table.get("kind", "dense")
        if kind not in LAYER_KINDS:
            hint = (suggest(kind, LAYER_KINDS) if isinstance(kind, str) else "") or "layer kinds: " + ", ".join(
                LAYER_KINDS
            )
            what = (
                f"unknown layer kind {shorten(kind)}"
                if isinstance(kind, str)
                else f"expected a layer kind (a string), got {_describe(kind)}"
            )
            raise self.fail(f"{key}.kind", what, hint)
        if kind in MAP_KINDS:
            return map_layer(self, table, key, prev, is_output, kind)
        if kind == RNN:
            return rnn_layer(self, table, key, prev, is_output)
        self.keys(table, LAYER_KEYS, key)
        number = prev.number + 1
        n = self.sizes(table, key)
        by_size = "names" not in table
        if by_size:
            names = tuple(f"{number}_{j}" for j in range(1, n + 1))  # internal only
            net_default = tuple(f"z{number}_{j}" for j in range(1, n + 1))
            out_default = tuple(f"a{number}_{j}" for j in range(1, n + 1))
            target_default = tuple(f"y{j}" for j in range(1, n + 1))
        else:
            names = self.names(table["names"], f"{key}.names", n)
            net_default = tuple(f"net_{s}" for s in names)
            out_default = tuple(f"out_{s}" for s in names)
            target_default = tuple(f"target_{s}" for s in names)
        net_names = self.names(table["net_names"], f"{key}.net_names", n) if "net_names" in table else net_default
        out_names = self.names(table["out_names"], f"{key}.out_names", n) if "out_names" in table else out_default

        activation = self.activation(table, key, is_output, n)
        m = prev.exposed_size  # an rnn before it: its last state
        self.count_parameters(key, n * (m + 1))  # first: a layer too wide for memory is told so
        self.count_neurons(key, n)
        if "weight_names" in table:
            weight_names = self.matrix_names(table["weight_names"], f"{key}.weight_names", n, m)
        elif by_size or (prev.by_size and prev.number > 1):  # an input layer's x1, x2 … are real names
            weight_names = tuple(tuple(f"w{number}_{j}_{k}" for k in range(1, m + 1)) for j in range(1, n + 1))
        else:  # named neurons name their weights: w_h1_x1 runs from x1 into h1
            weight_names = tuple(tuple(f"w_{to}_{frm}" for frm in prev.names) for to in names)
        # omitted weights stay empty here: derive.core.init draws them from [init] seed
        weights = self.layer_weights(table, key, n, m)

        bias = self.bias(table, key, number, n if by_size else names)

        for k in ("targets", "targets_file"):
            if k in table and not is_output:
                raise self.fail(f"{key}.{k}", "only the output layer (the last) has targets")
        targets = self.given_numbers(table, key, "targets", n, seed, activation)
        inputs = self.samples if self.samples is not None else 1
        given = any(k in self.input_table for k in ("values", "values_file", "samples"))
        if targets is not None and given and len(targets) != inputs:
            random_inputs = self.input_table.get("values") == RANDOM and "samples" not in self.input_table
            hint = (
                f'add samples = {len(targets)} to the input layer: its "random" values are one sample unless it says'
                if random_inputs
                else "give one row of targets per sample, in the order of the inputs (one output: [[0], [1], …])"
            )
            raise self.fail(
                f"{key}.targets",
                f"{len(targets)} sample{'s' if len(targets) != 1 else ''} of targets for "
                f"{inputs} sample{'s' if inputs != 1 else ''} of inputs",
                hint,
            )
        return LayerSpec(
            number=number,
            names=names,
            net_names=net_names,
            out_names=out_names,
            activation=activation,
            weights=weights,
            weight_names=weight_names,
            bias=bias,
            target_samples=targets,
            target_names=target_default if is_output else (),
            by_size=by_size,
        )

    def activation(self, table: dict[str, Any], key: str, is_output: bool, size: int) -> str:
        """A layer's activation: a built-in's name (as the table spells it) or a formula in x."""
        activation = table.get("activation", "")
        if not isinstance(activation, str) or not activation.strip():
            raise self.fail(
                f"{key}.activation",
                "missing: give a built-in activation (" + ", ".join(BUILTIN_ACTIVATIONS) + ") or a formula in x",
            )
        activation = self.text(activation, f"{key}.activation", 400).strip()
        if _looks_like_name(activation):
            activation = builtin_activation(activation) or activation  # ReLU, Sigmoid: the table's spelling
        builtin = ACTIVATIONS.get(activation)
        if builtin is not None and builtin.layer_map and not is_output:
            raise self.fail(f"{key}.activation", f"{activation} is allowed on the output layer only")
        if builtin is not None and builtin.layer_map and size < 2:
            raise self.fail(f"{key}.activation", f"{activation} over a single neuron is the constant 1; use sigmoid")
        if _looks_like_name(activation) and activation not in BUILTIN_ACTIVATIONS:
            hint = suggest(activation, BUILTIN_ACTIVATIONS)
            if hint or activation != "x":
                raise self.fail(
                    f"{key}.activation",
                    f"unknown activation {activation!r}",
                    hint or "built in: " + ", ".join(BUILTIN_ACTIVATIONS) + "; or a formula in x",
                )
        return activation

    def count_neurons(self, key: str, added: int, what: str = "") -> None:
        """Count a layer's neurons from its size alone; refuse before any is named when the spec passes the limit."""
        self.neurons += added
        if self.neurons > MAX_NEURONS:
            raise self.fail(
                key,
                f"{self.neurons:,} neurons up to this layer{what}; the limit is {MAX_NEURONS:,} (neuron limit)",
                "make the layers smaller",
            )

    def count_parameters(self, key: str, added: int) -> None:
        """Count a layer's weights and biases; refuse before any is drawn or named when they would not fit."""
        self.parameters += added
        estimate = self.parameters * BYTES_PER_PARAMETER
        if estimate > MEMORY_BUDGET:
            raise self.fail(
                key,
                f"{self.parameters:,} weights and biases up to this layer would take about {estimate / 2**30:.1f} GiB "
                f"(≈ {BYTES_PER_PARAMETER} bytes each); the limit is {MEMORY_BUDGET / 2**30:g} GiB (memory limit)",
                "derive names and derives every parameter; make the layers narrower",
            )

    def published_number(self, value: Any, key: str) -> str:
        """A published number as printed: a TOML number, or a string when its trailing zeros matter ("0.40")."""
        if isinstance(value, str):
            text = value.strip().replace("−", "-")
            if not re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
                raise self.fail(key, f"expected a number, got {_describe(value)}")
            return text
        return repr(self.number(value, key))

    def given_numbers(
        self, table: dict[str, Any], key: str, field: str, n: int, seed: int, activation: str = ""
    ) -> tuple[tuple[float, ...], ...] | None:
        """Inputs (``values``) or targets, one row per sample: a list (a list of lists for a batch),
        ``"random"`` (from the seed) or a file (``values_file``)."""
        file_key = f"{field}_file"
        count = self.samples or 1
        if field in table and file_key in table:
            raise self.fail(f"{key}.{file_key}", f"give {field} or {file_key}, not both")
        if file_key in table:
            flat = self.numbers_from_file(table[file_key], f"{key}.{file_key}", n * count)
            return tuple(flat[i * n : (i + 1) * n] for i in range(count))
        if field not in table:
            return None
        value = table[field]
        if isinstance(value, str):
            if value != RANDOM:
                raise self.fail(
                    f"{key}.{field}",
                    f"expected a list of {n} numbers or {RANDOM!r}, got {_describe(value)}",
                    suggest(value, (RANDOM,)),
                )
            return drawn(field, n, seed, self.loss_kind, activation, count)
        if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
            if len(value) > MAX_SAMPLES:
                raise self.fail(f"{key}.{field}", f"{len(value)} samples; the limit is {MAX_SAMPLES:,}")
            return tuple(self.numbers(row, f"{key}.{field}[{i}]", n) for i, row in enumerate(value))
        if isinstance(value, list) and any(isinstance(row, list) for row in value):
            raise self.fail(
                f"{key}.{field}",
                "mixes numbers and lists",
                f"one sample is a list of {n} numbers; a batch is a list of such lists, one per sample",
            )
        if field == "targets" and self.samples is not None and self.samples > 1 and isinstance(value, list):
            rows = ", ".join(f"[{', '.join(['…'] * n)}]" for _ in range(min(self.samples, 3)))
            raise self.fail(
                f"{key}.targets",
                f"the inputs are a batch of {self.samples} samples, and the targets one flat list",
                f"give a row of {n} target{'s' if n != 1 else ''} per sample, in the inputs' order: "
                f"[{rows}{', …' if self.samples > 3 else ''}] (one output: [[0], [1], …])",
            )
        return (self.numbers(value, f"{key}.{field}", n),)

    def numbers_from_file(self, value: Any, key: str, n: int) -> tuple[float, ...]:
        """n numbers from a .npy file or a text file of numbers, relative to the spec's folder."""
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a file name, got {_describe(value)}")
        suffix = Path(value).suffix.lower()
        if suffix not in NUMBER_FILE_SUFFIXES:
            raise self.fail(
                key, f"cannot read {suffix or 'a file without suffix'}", "use " + ", ".join(NUMBER_FILE_SUFFIXES)
            )
        from ..files import InputError, number_file

        folder = self.folder if self.folder is not None else Path.cwd()  # standard input and the API: here
        try:
            return number_file(folder, value, f"{self.source}: {key}", n)
        except InputError as exc:
            raise SpecError(exc.message, where=exc.where, hint=exc.hint) from None

    def layer_weights(self, table: dict[str, Any], key: str, n: int, m: int) -> tuple[tuple[float, ...], ...]:
        """The layer's weights as weights[j][k] (into neuron j from neuron k), however ``weights_layout`` wrote them."""
        layout = table.get("weights_layout", TO_FROM)
        if layout not in (TO_FROM, FROM_TO):
            raise self.fail(
                f"{key}.weights_layout",
                f"unknown layout {layout!r}",
                f'"{TO_FROM}" (weights[j][k] into neuron j from neuron k, the default) or "{FROM_TO}" '
                "(weights[k][j]: one row per input, as W in x·W)",
            )
        if "weights" not in table:
            if "weights_layout" in table:
                raise self.fail(f"{key}.weights_layout", "given without weights")
            return ()  # seeded: derive.core.init draws them from [init] seed
        if layout == TO_FROM:
            return self.matrix(table["weights"], f"{key}.weights", n, m)
        value = table["weights"]
        if (
            not isinstance(value, list)
            or len(value) != m
            or not all(isinstance(r, list) and len(r) == n for r in value)
        ):
            raise self.fail(
                f"{key}.weights",
                f'expected a {m}×{n} matrix (weights_layout = "{FROM_TO}": weights[k][j] from neuron k of the '
                f"previous layer into neuron j), got {_shape(value)}",
                f"write one row per input to this layer ({m} rows), each with {n} weights, one per neuron",
            )
        rows = [self.row(row, f"{key}.weights[{k}]") for k, row in enumerate(value)]
        return tuple(tuple(rows[k][j] for k in range(m)) for j in range(n))

    def matrix(self, value: Any, key: str, n: int, m: int) -> tuple[tuple[float, ...], ...]:
        shape = f"{n}×{m} (weights[j][k] from neuron k of the previous layer into neuron j)"
        got = _shape(value)
        if n != m and got == f"{m}×{n}":
            raise self.fail(
                key,
                f"expected a {shape} matrix, got {got}: transposed?",
                f"write one row per neuron of this layer ({n} rows), each with {m} weights, one per input to it; "
                f'or keep the rows and add weights_layout = "{FROM_TO}"',
            )
        if not isinstance(value, list) or len(value) != n or not all(isinstance(r, list) for r in value):
            raise self.fail(key, f"expected a {shape} matrix, got {got}")
        rows = []
        for j, row in enumerate(value):
            if len(row) != m:
                raise self.fail(key, f"expected a {shape} matrix, got {_shape(value)}")
            rows.append(self.row(row, f"{key}[{j}]"))
        return tuple(rows)

    def matrix_names(self, value: Any, key: str, n: int, m: int) -> tuple[tuple[str, ...], ...]:
        if (
            not isinstance(value, list)
            or len(value) != n
            or not all(isinstance(r, list) and len(r) == m for r in value)
        ):
            raise self.fail(key, f"expected a {n}×{m} matrix of names, got {_shape(value)}")
        return tuple(tuple(self.name(v, f"{key}[{j}][{k}]") for k, v in enumerate(row)) for j, row in enumerate(value))

    def bias(self, table: dict[str, Any], key: str, number: int, neurons: tuple[str, ...] | int | None) -> BiasSpec:
        """The layer's bias; per-neuron biases are named after named neurons (b_h1), else b{layer}_{j}."""
        names_of_neurons = neurons if isinstance(neurons, tuple) else None
        n = len(neurons) if isinstance(neurons, tuple) else int(neurons or 0)
        if "bias" not in table:
            if "bias_names" in table:
                raise self.fail(f"{key}.bias_names", "given without bias")
            return BiasSpec(BiasKind.NONE)
        value = table["bias"]
        names_value = table.get("bias_names")
        if isinstance(value, str):
            kinds = (BiasKind.SHARED.value, BiasKind.PER_NEURON.value)
            if value not in kinds:
                hint = suggest(value, kinds) or 'use a number, a list, "shared" or "per_neuron"'
                raise self.fail(f"{key}.bias", f"unknown bias kind {value!r}", hint)
            kind = BiasKind(value)
            values = (0.0,) if kind is BiasKind.SHARED else (0.0,) * n
        elif isinstance(value, list):
            kind = BiasKind.PER_NEURON
            values = self.numbers(value, f"{key}.bias", n)
        else:
            kind = BiasKind.SHARED
            values = (self.number(value, f"{key}.bias"),)
        if kind is BiasKind.SHARED:
            if names_value is None:
                names: tuple[str, ...] = (f"b{number}",)
            elif isinstance(names_value, str):
                names = (self.name(names_value, f"{key}.bias_names"),)
            else:
                raise self.fail(f"{key}.bias_names", "a shared bias takes one name (a string)")
        else:
            if names_value is None and names_of_neurons is not None:
                names = tuple(f"b_{s}" for s in names_of_neurons)
            elif names_value is None:
                names = tuple(f"b{number}_{j}" for j in range(1, n + 1))
            else:
                names = self.names(names_value, f"{key}.bias_names", n)
        return BiasSpec(kind=kind, names=names, values=values)

    def check_unique(self, spec: Spec) -> None:
        """Every symbol name once; a clash is reported at the key the user wrote, not at a default's key."""
        neurons = [
            name
            for i, layer in enumerate(spec.layers[1:], 1)
            if i < len(self.given) and "names" in self.given[i]
            for name in layer.names
        ]
        every = [name for layer in spec.layers for name in _layer_names(layer)] + neurons
        if len(set(every)) == len(every):
            return  # the usual case; a clash is located below, where every key is spelled
        seen: dict[str, str] = {}

        def claim(name: str, where: str) -> None:
            if name in seen:
                raise self.fail(where, f"duplicate name {name!r} (also used at {seen[name]})")
            seen[name] = where

        for i, layer in enumerate(spec.layers):
            key = f"layers[{i}]"
            given = self.given[i] if i < len(self.given) else set()

            def written(field: str, index: str, name: str, what: str, key: str = key, given: set[str] = given) -> str:
                """The key where ``name`` came from: its own key, or the neuron names/size it was derived from."""
                if field in given:
                    return f"{key}.{field}{index}"
                source = "names" + index[: index.find("]") + 1] if "names" in given and index else "size"
                if field == "bias_names":
                    source = "bias"
                return f"{key}.{source} ({what} {name!r})"

            if i == 0:
                for j, s in enumerate(layer.names):
                    claim(s, written("names", f"[{j}]", s, "input"))
                continue
            if "names" in given:  # a neuron's name is a name too: w_a_a would not say which a
                for j, s in enumerate(layer.names):
                    claim(s, f"{key}.names[{j}]")
            for j in range(layer.size):
                claim(layer.net_names[j], written("net_names", f"[{j}]", layer.net_names[j], "net name"))
                claim(layer.out_names[j], written("out_names", f"[{j}]", layer.out_names[j], "out name"))
            for j, row in enumerate(layer.weight_names):
                for k, w in enumerate(row):
                    claim(w, written("weight_names", f"[{j}][{k}]", w, "weight name"))
            for j, b in enumerate(layer.bias.names):
                index = "" if layer.bias.kind is BiasKind.SHARED else f"[{j}]"
                claim(b, written("bias_names", index, b, "bias name"))
            for j, t in enumerate(layer.target_names):
                claim(t, written("target_names", f"[{j}]", t, "target name"))

    def check_loss_fits(self, spec: Spec) -> None:
        out = spec.layers[-1]
        key = f"layers[{len(spec.layers) - 1}]"
        if spec.loss.kind == "cross_entropy":
            if out.activation != SOFTMAX:
                raise self.fail(
                    "loss.kind",
                    "cross_entropy needs a softmax output layer",
                    f'set activation = "softmax" in {key}, or use loss kind "bce"',
                )
            for i, row in enumerate(out.target_samples or ()):
                where = f"{key}.targets" + (f"[{i}]" if spec.is_batch else "")
                if any(t < 0 for t in row):
                    raise self.fail(where, "cross_entropy targets must be ≥ 0")
                if abs(sum(row) - 1.0) > 1e-9:
                    raise self.fail(where, f"cross_entropy targets must sum to 1, these sum to {sum(row):g}")
        for i, row in enumerate(out.target_samples or ()):
            if spec.loss.kind == "bce" and any(not 0 <= t <= 1 for t in row):
                where = f"{key}.targets" + (f"[{i}]" if spec.is_batch else "")
                raise self.fail(where, "bce targets must lie in [0, 1]")
        self.check_bce_output(spec)

    def check_bce_output(self, spec: Spec) -> None:
        """bce takes log(o) and log(1 − o): a built-in output activation must stay inside (0, 1).

        A formula activation is checked where the network is evaluated, at the spec's numbers
        (:func:`bce_outputs_problem`).
        """
        out = spec.layers[-1]
        if spec.loss.kind != "bce" or out.activation not in ACTIVATIONS or out.activation in UNIT_INTERVAL:
            return
        key = f"layers[{len(spec.layers) - 1}]"
        raise self.fail(
            "loss.kind",
            f"bce needs outputs in (0, 1) (it takes log(o) and log(1 − o)), but the output layer's activation "
            f"{out.activation!r} gives outputs outside (0, 1)",
            f'set activation = "sigmoid" in {key}, or use activation = "softmax" with loss kind "cross_entropy"',
        )


class _SettingsValidator(_Validator):
    """The spec's checks of [training], with each error at the option a setting came from (``--beta1``)."""

    def __init__(self, source: str, option: Callable[[str], str] | None) -> None:
        super().__init__(source)
        self.option = option

    def fail(self, key: str, message: str, hint: str = "") -> SpecError:
        if self.option is None:
            return super().fail(key, message, hint)
        return SpecError(message, where=self.option(key.removeprefix("training.")), hint=hint)


def check_steps(steps: int, parameters: int, where: str) -> None:
    """Refuse a training run of ``steps`` updates of ``parameters`` weights and biases beyond the limits."""
    if steps > MAX_STEPS:
        raise SpecError(f"{steps:,} updates; the limit is {MAX_STEPS:,} (the step limit)", where=where)
    if steps * parameters > MAX_TRAINING_WORK:
        raise SpecError(
            f"{steps:,} updates of {parameters:,} weights and biases are {steps * parameters:,} parameter updates; "
            f"the limit is {MAX_TRAINING_WORK:,} (the training work limit)",
            where=where,
            hint="ask for fewer steps",
        )


def drawn(
    field: str, n: int, seed: int, loss_kind: str, activation: str, samples: int = 1
) -> tuple[tuple[float, ...], ...]:
    """``values = "random"``: inputs uniform in [0, 1), targets the loss can take, rounded to 4 decimals; a row a sample.

    Targets are one-hot for softmax outputs, 0 or 1 for bce, uniform in [0, 1) otherwise. Each draws from its own
    stream ``default_rng([seed, 0, 1])`` (inputs) or ``[seed, 0, 2]`` (targets), apart from the weights' streams;
    the first sample of a batch is the single sample drawn with the same seed.
    """
    import numpy as np  # only for drawn numbers

    rng = np.random.default_rng([seed, 0, 1 if field == "values" else 2])
    if field == "targets" and (activation == SOFTMAX or loss_kind == "cross_entropy"):
        rows = []
        for _ in range(samples):
            one_hot = [0.0] * n
            one_hot[int(rng.integers(n))] = 1.0
            rows.append(tuple(one_hot))
        return tuple(rows)
    if field == "targets" and loss_kind == "bce":
        return tuple(tuple(float(v) for v in rng.integers(0, 2, n)) for _ in range(samples))
    return tuple(tuple(float(v) for v in np.round(rng.uniform(0.0, 1.0, n), 4)) for _ in range(samples))


def bce_outputs_problem(spec: Spec, outputs: Mapping[str, float]) -> SpecError | None:
    """For a formula output activation under bce: the error when an output at the spec's numbers is outside (0, 1)."""
    out = spec.layers[-1]
    if spec.loss.kind != "bce" or out.activation in ACTIVATIONS:
        return None
    outside = {name: value for name, value in outputs.items() if not 0 < value < 1}
    if not outside:
        return None
    shown = ", ".join(f"{name} = {value:.8g}" for name, value in list(outside.items())[:4])
    return SpecError(
        f"bce needs outputs in (0, 1) (it takes log(o) and log(1 − o)), but the activation {out.activation!r} "
        f"gives {shown} at the spec's numbers",
        where=f"{spec.source}: layers[{len(spec.layers) - 1}].activation",
        hint='use activation = "sigmoid", or activation = "softmax" with loss kind "cross_entropy"',
    )


def identifier_for(text: str) -> str:
    """A file-like name as an identifier (my-net.v2 → my_net_v2), or "" when none is near."""
    fixed = re.sub(r"[^A-Za-z0-9_]+", "_", text.strip()).strip("_")
    if fixed and not fixed[0].isalpha():
        fixed = "n_" + fixed
    return fixed[:MAX_NAME_LENGTH] if NAME_RE.match(fixed) else ""


def _layer_names(layer: LayerSpec) -> list[str]:
    """Every name a layer gives its symbols (an input layer: its inputs)."""
    if not layer.net_names:
        return list(layer.names)
    names = [*layer.net_names, *layer.out_names, *layer.bias.names, *layer.target_names]
    for row in layer.weight_names:
        names.extend(row)
    return names


def _plain_float(value: Any) -> float:
    """A TOML number as a float; TypeError for anything else (booleans included)."""
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is WrittenFloat:
        return value
    raise TypeError(value)


class WrittenFloat(float):
    """A spec's number written with more digits than its float keeps (6.8813735870195432): the float, and
    ``text``, the decimal as written, for the exact pass (:func:`derive.core.policy.written`)."""

    text: str


def _parse_float(text: str) -> float:
    """TOML's parse_float: a float, or a :class:`WrittenFloat` when the float's shortest form loses digits."""
    value = float(text)
    cleaned = text.replace("_", "")
    if math.isfinite(value) and Decimal(cleaned) != Decimal(repr(value)):
        written = WrittenFloat(value)
        written.text = cleaned
        return written
    return value


def _looks_like_name(text: str) -> bool:
    return bool(NAME_RE.match(text))


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:30]!r})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value!r}"


def _shape(value: Any) -> str:
    if not isinstance(value, list):
        return _describe(value)
    if value and not any(isinstance(r, list) for r in value):
        return f"a flat list of {len(value)}, not rows"
    if not all(isinstance(r, list) for r in value):
        j = next(j for j, r in enumerate(value) if not isinstance(r, list))
        return f"a list of {len(value)} whose item {j} is {_describe(value[j])}, not a row"
    rows = [len(r) for r in value]
    if rows and all(r == rows[0] for r in rows):
        return f"{len(value)}×{rows[0]}"
    return f"{len(value)} rows of lengths {rows}"
