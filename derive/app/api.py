"""The library entry point: a spec, its network, its numbers and its derivations.

Everything the command line does is a method here (the CLI is a thin skin over it):
``derive grad`` is :meth:`Model.derivation` (and :meth:`Derivation.text`), ``derive show``
:meth:`Model.show`,
``derive lecture`` :meth:`Model.lecture`, ``derive export`` :meth:`Model.export`,
``derive train`` :meth:`Model.train`, ``derive check`` :meth:`Model.check`,
``derive fit`` :meth:`Model.fit`, ``derive exercises`` :meth:`Model.exercises`.
The commands without a model are functions of :mod:`derive.app.commands`, exported by ``derive``:
``examples``, ``new``, ``grade`` (``derive check`` of a student's answers file) and ``benchmark``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import sympy as sp

from ..codegen.engine import Breakdown, Compiled
from ..core.chain import BatchDerivation, Derivation, ExactPoint, derive, derive_all, derive_batch, exact_point
from ..core.network import LOSS_SYMBOL, Network, SymbolKind
from ..core.point import Point
from ..core.policy import POLICY, Number, as_float, reduce_exact
from ..errors import DeriveError
from ..files import LectureFormat, lecture_format
from ..present.numbers import FLOAT_DIGITS
from ..present.report import BatchReporter, Reporter, json_text, sample_line
from ..spec.reading import (
    BUILTIN_ACTIVATIONS,
    Spec,
    bce_outputs_problem,
    check_steps,
    load_spec,
    parse_spec,
    validate_spec,
    with_training,
    with_values,
)

if TYPE_CHECKING:
    from ..check.claims import Report
    from ..fit.training import FitResult
    from ..present.matrix import MatrixGradient
    from ..present.update import Update

SpecRef = str | Path | Mapping[str, Any]
TRAIN_CHUNK = 2000  # steps between progress reports


EXACT_ZEROS_UP_TO = 200  # parameters: up to this many, a gradient 0 in floats is derived exactly (gradient_values)


@dataclass(frozen=True)
class Training:
    """What :meth:`Model.train` gives back: the losses, the outputs and parameters after the run."""

    steps: int
    learning_rate: float
    update_biases: bool
    history: list[float] = field(repr=False)  # the loss before each update and after the last
    outputs: list[list[float]]  # after the run: a row per sample (one row for a single sample)
    parameters: dict[str, float] = field(repr=False)
    breakdown: Breakdown | None = None  # why the loss stopped being a float, if it did

    def __repr__(self) -> str:
        return (
            f"Training(steps={self.steps}, learning_rate={self.learning_rate}, update_biases={self.update_biases}, "
            f"loss_before={self.loss_before!r}, loss={self.loss!r}, outputs={self.outputs!r}, "
            f"breakdown={self.breakdown!r})"
        )

    @property
    def loss_before(self) -> float:
        return self.history[0]

    @property
    def loss(self) -> float:
        return self.history[-1]


class Shown:
    """A derivation as the library hands it out: the data (every field of :class:`derive.core.chain.Derivation`
    or :class:`~derive.core.chain.BatchDerivation` reads through) and the ways ``derive grad`` prints it.
    """

    def __init__(self, derivation: Derivation | BatchDerivation, sample: tuple[int, int] | None = None) -> None:
        self.derivation = derivation
        self.sample = sample  # (n, N): the derivation is sample n's alone, of a batch of N

    def __getattr__(self, name: str) -> Any:
        if name == "derivation":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.derivation, name)

    @property
    def value(self) -> Number | None:
        return self.derivation.value

    def _reporter(self, digits: int) -> Reporter | BatchReporter:
        d = self.derivation
        return BatchReporter(d, digits) if isinstance(d, BatchDerivation) else Reporter(d, digits)

    def text(self, digits: int = 8, closed_form: bool | None = None, width: int | None = 100) -> str:
        """What ``derive grad SPEC PARAM`` prints: every path (or δ term), its factors and their numbers.

        ``closed_form``: True always prints the expanded closed form, False never, None when it fits on a line.
        No line is wider than ``width`` (the CLI passes the terminal's; None: lines as long as they come).
        For a batch: sample 1 in full, every sample side by side, then their mean or sum.
        """
        text = self._reporter(digits).text(closed_form, width)
        if self.sample is None or not isinstance(self.derivation, Derivation):
            return text
        n, count = self.sample
        line = sample_line(self.derivation, n, count, digits)
        return f"{line}: E here is E[{n}], this sample's own loss\n\n{text}"

    def to_dict(self, digits: int = 8) -> dict[str, object]:
        """The data of ``derive grad SPEC PARAM --format json`` (``sample``: n for one sample of a batch)."""
        data = self._reporter(digits).to_json()
        if self.sample is not None:
            data["sample"], data["samples"] = self.sample
        return data

    def to_json(self, digits: int = 8) -> str:
        """What ``derive grad SPEC PARAM --format json`` prints."""
        return json_text(self.to_dict(digits))

    def latex(self, digits: int = 8) -> str:
        """What ``derive grad SPEC PARAM --format latex`` prints: an ``align*`` of every step."""
        return self._reporter(digits).latex()

    def __repr__(self) -> str:
        return repr(self.derivation)

    def _repr_html_(self) -> str:
        from .notebook import derivation_html

        return derivation_html(self.derivation)

    def _repr_markdown_(self) -> str:
        name = self.derivation.quantity.name
        return f"**∂E/∂{name} by the chain rule**\n\n```text\n{self.text()}```\n"

    def _repr_latex_(self) -> str:
        body = self.latex().replace("\\begin{align*}", "\\begin{aligned}").replace("\\end{align*}", "\\end{aligned}")
        return f"$$\n{body.strip()}\n$$"


@dataclass(repr=False)
class Model:
    """A loaded spec with everything derived from it, computed on first use.

    >>> m = Model.load("mazur")
    >>> round(m.derivation("w5").value, 9)
    0.082167041
    """

    spec: Spec

    @cached_property
    def network(self) -> Network:
        """The symbolic network, built on first use (a big network has many symbols).

        A max pool passes on each window's largest input, as the float pass finds it (for a batch: in the
        worked sample; :meth:`_sample_networks` has each sample's own).
        """
        return Network(self.spec, self._routes if self._max_pools else None)

    @property
    def _max_pools(self) -> bool:
        return any(layer.kind.startswith("maxpool") for layer in self.spec.layers)

    def _routes(self, index: int) -> list[int]:
        self.network.require_numbers("max pooling", "give the input layer values")
        return self._engine.routes(index, self.spec.worked - 1)

    def _sample_networks(self) -> list[Network] | None:
        """A batch with max pools: each sample's network, routed by its own numbers (else None: one for all)."""
        if not (self._max_pools and self.is_batch):
            return None
        engine = self._engine
        return [Network(self.spec, partial(engine.routes, sample=n)) for n in range(self.samples)]

    # -- loading ------------------------------------------------------------------

    @classmethod
    def load(cls, ref: SpecRef) -> Model:
        """A model from any of:

        - a dict (or other mapping) of the spec's tables, validated like a file (:meth:`from_dict`);
        - a string holding a newline: TOML text (:meth:`from_toml`);
        - any other string or a Path: a spec file, a built-in example's name (``"mazur"``), or ``-`` for stdin.
        """
        if isinstance(ref, Mapping):
            return cls.from_dict(ref)
        if isinstance(ref, str) and "\n" in ref:
            return cls.from_toml(ref)
        return cls(load_spec(ref))

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> Model:
        """A model from TOML text; ``source`` names it in error messages."""
        return cls(parse_spec(text, source))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Model:
        """A model from the spec's tables as Python data (NumPy arrays and tuples become lists), validated."""
        return cls(validate_spec(_plain(data), source))

    def with_values(
        self,
        *,
        inputs: Sequence[float] | None = None,
        targets: Sequence[float] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> Model:
        """A new model with other inputs, targets or weights/biases (by name), checked like a spec file.

        >>> Model.load("mazur").with_values(weights={"w5": 0.3}).spec.layers[2].weights[0]
        (0.3, 0.45)
        """
        from ..core.init import weights as seeded

        spec = with_values(
            self.spec,
            inputs=_plain(inputs) if inputs is not None else None,
            targets=_plain(targets) if targets is not None else None,
            parameters=_plain(dict(weights)) if weights is not None else None,
            seeded=lambda index: seeded(self.spec, index).tolist(),
        )
        return Model(spec)

    def with_training(self, settings: Mapping[str, Any]) -> Model:
        """A new model whose [training] takes these settings over the spec's, checked as the spec's keys are.

        >>> Model.load("mazur").with_training({"optimizer": "adam", "beta1": 0.8}).spec.training.beta1
        0.8

        A new optimizer starts from its own defaults; errors name the setting as ``derive fit``'s and ``derive train``'s option (``--beta1``).
        """
        return Model(with_training(self.spec, _plain(dict(settings)), _option_name))

    # -- what a notebook shows ------------------------------------------------------

    def __repr__(self) -> str:
        spec = self.spec
        sizes = "-".join(str(layer.size) for layer in spec.layers)
        activations = "/".join(layer.activation for layer in spec.layers[1:])
        if len(activations) > 60:
            activations = activations[:57] + "…"
        loss = spec.loss.kind or spec.loss.expr
        return (
            f"<Model {spec.name!r} {sizes}: {activations}, loss {loss}, "
            f"{len(spec.parameter_names):,} parameters; from {spec.display_source}>"
        )

    def _repr_html_(self) -> str:
        from .notebook import model_html

        return model_html(self)

    @property
    def has_numbers(self) -> bool:
        return not self.network.missing_numbers()

    def compiled(self) -> Compiled:
        """A fresh numeric engine at the spec's parameters (training mutates it)."""
        self.network.require_numbers("computing numbers")
        return Compiled(self.network)

    @cached_property
    def _engine(self) -> Compiled:
        """The numeric engine at the spec's parameters, for reading (never trained)."""
        return Compiled(self.network)

    @property
    def samples(self) -> int:
        """How many samples the spec holds (1 for a single sample)."""
        return self.spec.samples

    @property
    def is_batch(self) -> bool:
        """More than one sample: E is the mean (or sum) of the samples' losses, its gradients likewise."""
        return self.spec.is_batch

    def sample(self, n: int) -> Model:
        """Sample ``n`` alone (numbered from 1, as the lecture and ``check``'s ``[n]`` number them)."""
        if not 1 <= n <= self.samples:
            raise DeriveError(f"sample {n} does not exist: the spec holds {self.samples}", where=self.spec.source)
        return Model(self.spec.sample(n - 1)) if self.is_batch else self

    @cached_property
    def points(self) -> tuple[Point, ...] | None:
        """Every symbol's value for each sample (its own nets, outs, δs and loss E[n]); None without numbers."""
        if not self.has_numbers:
            return None
        points = tuple(self._engine.points())
        for n, point in enumerate(points, start=1):
            arrays = point.arrays
            if all(np.isfinite(a).all() for a in (*arrays.nets[1:], *arrays.outs[1:])):
                self._check_bce_outputs(point)
                continue  # the usual case, seen at once; else the first bad number is named below
            for layer in self.network.layers[1:]:
                for neuron in layer.neurons:
                    for symbol in (neuron.net, neuron.out):
                        if symbol is not None and not math.isfinite(point[symbol]):
                            exact = exact_point(self.network, point).get(symbol)
                            if exact is not None and math.isfinite(float(exact)):
                                problem = f"is {float(exact):.6g}, but an intermediate of it leaves float64's range"
                            else:
                                problem = "is not finite there"
                            at = f" for sample {n}" if self.is_batch else ""
                            raise DeriveError(
                                f"the forward pass gives {symbol.name} = {point[symbol]}{at}: "
                                f"layer {layer.number}'s activation {layer.spec.activation!r} {problem}",
                                where=self.spec.source,
                                hint="check the activation's domain and the spec's numbers",
                            )
            self._check_bce_outputs(point)
        return points

    @property
    def point(self) -> Point | None:
        """Every symbol's value at the spec's numbers (the first sample's for a batch), or None without numbers."""
        points = self.points
        return points[0] if points is not None else None

    @property
    def loss(self) -> Number | None:
        """E at the spec's numbers: for a batch, the mean or sum of the samples' losses; None without numbers."""
        points = self.points
        if points is None:
            return None
        if not self.is_batch:
            return points[0][LOSS_SYMBOL]
        return reduce_exact([p[LOSS_SYMBOL] for p in points], self.spec.loss.reduction)

    def _check_bce_outputs(self, point: Point) -> None:
        """bce over a formula activation: refuse an output outside (0, 1) at the spec's numbers.

        A float of exactly 0 or 1 may be a rounded σ(±40): its exact value decides.
        """
        if self.spec.loss.kind != "bce" or self.spec.layers[-1].activation in BUILTIN_ACTIVATIONS:
            return
        from ..core.rules import Activation, folded_loss

        rule = self.network.output_layer.rule
        if isinstance(rule, Activation) and folded_loss(self.network.loss_rule, rule) is not None:
            return  # bce folds into the activation (1/(1 + exp(-x)) is σ): E is computed from z, never log(0)
        outs = self.network.output_layer.outs
        values: dict[str, float] = {}
        exact: Mapping[sp.Symbol, Number] | None = None
        for symbol in outs:
            value = point[symbol]
            if value in (0.0, 1.0):
                if exact is None:
                    exact = exact_point(self.network, point)
                precise = exact.get(symbol)
                if precise is not None and 0 < precise < 1:
                    continue
            values[symbol.name] = value
        problem = bce_outputs_problem(self.spec, values)
        if problem is not None:
            raise problem

    def symbol(self, name: str) -> sp.Symbol:
        return self.network.lookup(name)

    def derivation(self, name: str, digits: int = 0) -> Shown | MatrixGradient:
        """∂E/∂name for a weight, bias, input, net or out, with its printed forms (see :class:`Shown`):
        ``derive grad SPEC NAME``.

        For a batch, each sample's ∂E[n]/∂name and their mean or sum; ``name[n]`` is sample n's alone.
        A whole layer named as an exported module names it (``W3``, ``b3``) gives the layer's
        :class:`~derive.present.matrix.MatrixGradient` (∂E/∂W3 = δ3 (a2)ᵀ with its entries by spec name), as
        ``derive grad SPEC W3`` prints it; a spec's own names come first (Mazur's ``b2`` is its bias).
        ``digits`` beyond a float's (up to 50): every number is computed from the spec's decimals to that many
        digits and more, so each one printed is correctly rounded (``derive grad --digits 50``).
        """
        if name not in self.network.symbols:
            from ..present.matrix import is_matrix_key

            if is_matrix_key(name):
                return self.layer_gradient(name)
        _, n = sample_suffix(name)
        return Shown(self.derived(name, digits), (n, self.samples) if n is not None and self.is_batch else None)

    def derived(self, name: str, digits: int = 0) -> Derivation | BatchDerivation:
        """∂E/∂name for a weight, bias, input, net or out.

        For a batch, a :class:`BatchDerivation`: each sample's ∂E[n]/∂name, and their mean or sum.
        An input, net or out belongs to one sample: ask :meth:`sample` for it.
        """
        from ..spec.sequences import require_workable

        require_workable(self.spec, "derive grad")
        base, n = sample_suffix(name)
        if n is not None:
            if n > self.samples or n < 1:
                raise DeriveError(
                    f"{name}: there is no sample {n}; the spec holds {self.samples}",
                    where=self.spec.source,
                    hint=f"samples are numbered 1 to {self.samples}",
                )
            return self.sample(n).derived(base, digits)
        symbol = self.symbol(name)
        points = self.points
        if digits > FLOAT_DIGITS and points is not None and self.is_batch:
            raise DeriveError(
                f"--digits {digits}: more digits than a float holds are worked for one sample, not a batch",
                where=self.spec.source,
                hint=f"ask for one sample's, {name}[1], or at most {FLOAT_DIGITS} digits",
            )
        if points is not None and self.is_batch:
            kind = self.network.info[name].kind
            if kind not in (SymbolKind.WEIGHT, SymbolKind.BIAS):
                article = "an" if kind.value[0] in "aeiou" else "a"
                raise DeriveError(
                    f"{name} is {article} {kind.value} of one sample, and the spec holds {self.samples}",
                    where=self.spec.source,
                    hint=f"ask for one sample's: {name}[1] … {name}[{self.samples}] (derive grad SPEC {name}[1])",
                )
            return derive_batch(
                self.network,
                symbol,
                points,
                self.spec.loss.reduction,
                worked=self.spec.worked,
                networks=self._sample_networks(),
            )
        point = self.point
        if digits > FLOAT_DIGITS and point is not None:
            # every digit shown from the spec's decimals, with 20 more to round from
            precise = ExactPoint(self.network, point, digits + POLICY.exact_digits, keep=True)
            return derive(self.network, symbol, point, exact=precise)
        return derive(self.network, symbol, point)

    def derivations(self) -> dict[str, Shown]:
        """A derivation for every weight and bias (for a batch, each over the batch)."""
        points = self.points
        if points is not None and self.is_batch:
            reduction = self.spec.loss.reduction
            networks = self._sample_networks()
            return {
                p.name: Shown(
                    derive_batch(self.network, p, points, reduction, worked=self.spec.worked, networks=networks)
                )
                for p in self.network.parameters
            }
        return {name: Shown(d) for name, d in derive_all(self.network, self.point).items()}

    def update(self, name: str, gradient: Number | None = None) -> Update | None:
        """``name``'s update by the spec's optimiser: the rule, then two steps with their numbers and why each line
        is there, as ``derive grad`` prints it after the derivation; None for plain gradient descent, for a
        quantity the optimiser does not move, and for one sample's gradient of a batch (``w5[2]``).

        ``gradient`` is ∂E/∂name at the spec's numbers when it is already derived (else it is derived here).
        """
        from ..present.update import update_of

        if sample_suffix(name)[1] is not None or name not in self.network.symbols:
            return None
        first = as_float(gradient) if gradient is not None else None
        return update_of(self, name, first)

    def layer_gradient(self, key: str) -> MatrixGradient:
        """∂E/∂W{l} or ∂E/∂b{l} for a whole layer, keyed as the exported module's params (``derive grad SPEC W3``)."""
        from ..present.matrix import is_matrix_key, matrix_gradient

        if not is_matrix_key(key):
            raise DeriveError(f"{key!r} is not a layer's key", hint="W{l} or b{l}, e.g. W2 (the input layer is 1)")
        return matrix_gradient(self, key)

    def gradients(self) -> tuple[float, dict[str, float]]:
        """(E, ∂E/∂p for every weight and bias), from the compiled passes."""
        return self.compiled().named_gradients()

    def gradient_values(self) -> tuple[float, dict[str, Number | None]]:
        """(E, ∂E/∂p for every weight and bias by name) at the spec's numbers, as derivations give them.

        The numbers are the compiled passes' (a derivation's value is the same δ form); only where one is
        not a float is that parameter derived, for its exactly evaluated value.
        """
        loss = self.loss
        assert loss is not None, "needs the spec's numbers (Network.require_numbers)"
        _, grads = self._engine.named_gradients()
        values: dict[str, Number | None] = dict(grads)
        # a 0 of a small network with a path to E may be a saturated σ's 1 − 1 in floats: derived exactly, as
        # `derive grad PARAM` gives it (1.99e-33, not 0); a big network keeps the compiled passes' numbers
        zeros = len(grads) <= EXACT_ZEROS_UP_TO and any(v == 0 for v in grads.values())
        paths = self.path_counts() if zeros else {}
        for name, value in grads.items():
            if not math.isfinite(value) or (value == 0 and paths.get(name, 0) > 0):
                values[name] = self.derived(name).value
        return loss, values

    def parameter_values(self) -> dict[str, float]:
        """Every weight and bias by name: the spec's, or drawn from its seed."""
        return self._engine.parameter_values()

    def path_counts(self) -> dict[str, int]:
        """How many chain-rule paths lead from each weight and bias to E."""
        return self.network.path_counts()

    # -- what the other commands do ---------------------------------------------------

    def show(self, digits: int = 8, *, full: bool = False, width: int | None = 100) -> str:
        """What ``derive show`` prints: layers, symbols, the forward pass with numbers, the loss.

        A big network is summarised per layer unless ``full``; no line is wider than ``width`` (None: unfolded).
        """
        from ..present.overview import overview_text

        return overview_text(self, digits, full, width)

    def overview(self, full: bool = False) -> dict[str, Any]:
        """The data of ``derive show --format json`` (big networks summarised unless ``full``)."""
        from ..present.overview import overview

        return overview(self, full)

    def lecture(
        self,
        path: str | Path,
        format: LectureFormat | None = None,
        *,
        lang: str = "en",
        steps: int | None = None,
        exercises: bool = False,
        digits: int = 8,
        keep_tex: bool = False,
        progress: Callable[[str], None] | None = None,
        mazur_steps: bool = False,
    ) -> list[Path]:
        """Write the lecture to ``path`` (its suffix picks the format unless ``format`` is given); the files written.

        ``mazur_steps`` adds Mazur's intermediate step ∂E/∂out_h = Σ_o ∂E_o/∂out_h in the hidden layer.

        pdf needs TeX (when it is missing, the LaTeX source is written and a DeriveError says how to
        install it); tex is the source alone; html is one self-contained page and needs nothing.
        ``progress`` is told each stage of the work as it starts.
        """
        say = progress or (lambda stage: None)
        from ..files import check_target, write_atomic
        from ..lecture import Options, html_source, tex_source
        from ..lecture.texbuild import TexMissing, check_tools, compile_pdf, write_tex

        target = Path(path)
        check_target(target)  # first: the spec itself is refused as an input, whatever its suffix
        fmt = lecture_format(target, format)
        if fmt == "html" and keep_tex:
            raise DeriveError("keep_tex keeps the LaTeX source next to a PDF; an HTML lecture has none")
        if exercises and self.is_batch:
            raise DeriveError(
                f"the lecture's exercises are worked on one sample, and this spec holds {self.samples}",
                where=self.spec.source,
                hint="leave out --exercises for a batch, or give the input layer one sample",
            )
        check_steps(self.spec.training.steps if steps is None else steps, len(self.spec.parameter_names), "steps")
        options = Options(lang=lang, digits=digits, steps=steps, exercises=exercises, mazur_steps=mazur_steps)
        say("deriving the gradients and planning the lecture")
        if fmt == "html":
            return [write_atomic(target, html_source(self, options))]
        source = tex_source(self, options)
        if fmt == "tex":
            write_tex(target, source)
            return [target]
        tex_path = target.with_suffix(".tex")
        try:
            check_tools(lang)
        except TexMissing as exc:
            write_tex(tex_path, source)
            raise TexMissing(exc.message + f"; wrote the LaTeX source to {tex_path}", hint=exc.hint) from None
        say(f"compiling with {'xelatex' if lang == 'zh' else 'pdflatex'}")
        compile_pdf(source, target, lang, keep_tex=tex_path if keep_tex else None)
        return [target, tex_path] if keep_tex else [target]

    def export(
        self,
        path: str | Path | None = None,
        *,
        style: Literal["vector", "scalar"] = "vector",
        backend: Literal["numpy", "array-api"] = "numpy",
    ) -> str:
        """The generated module's source (written to ``path`` too when given): ``derive export``."""
        from ..codegen.modules import scalar_module, vector_module
        from ..files import write_atomic

        if style == "scalar" and backend != "numpy":
            raise DeriveError("the scalar style is NumPy only", hint="use --style vector with --backend array-api")
        if style not in ("vector", "scalar"):
            raise DeriveError(f"unknown style {style!r}", hint="vector or scalar")
        source = vector_module(self, backend) if style == "vector" else scalar_module(self)
        if path is not None:
            write_atomic(path, source)
        return source

    def train(
        self,
        steps: int | None = None,
        lr: float | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Training:
        """Gradient descent from the spec's parameters (the model itself is unchanged): ``derive train``.

        ``steps`` and ``lr`` default to the spec's [training]; ``progress(n)`` is called after each
        chunk of n steps.
        """
        self.network.require_numbers("derive train")
        assert self.point is not None  # checks that the forward pass is finite at the start
        training = self.spec.training
        n = training.steps if steps is None else steps
        rate = training.learning_rate if lr is None else lr
        if n < 0 or not rate > 0:
            raise DeriveError("steps must be ≥ 0 and the learning rate > 0")
        check_steps(n, len(self.spec.parameter_names), "steps")
        engine = self.compiled()
        if progress is None:
            history = engine.train(n, rate)
        else:
            history = []
            done = 0
            part = [engine.current_loss()]
            while done < n:
                chunk = min(TRAIN_CHUNK, n - done)
                part = engine.train(chunk, rate)
                history.extend(part[:-1])
                done += chunk
                progress(chunk)
            history.append(part[-1])
        return Training(
            steps=n,
            learning_rate=rate,
            update_biases=training.update_biases,
            history=history,
            outputs=engine.outputs(),
            parameters=engine.parameter_values(),
            breakdown=engine.breakdown(history),
        )

    def check(self, claims: Mapping[str, float | str] | Sequence[str], min_digits: int | None = None) -> Report:
        """Check published numbers, ``{"out_o1": 0.75136507, "dE/dw5": "0.082167041"}`` or ``["E=0.298"]``: ``derive check``
        (``min_digits``: ``--min-digits``; None takes the spec's ``[grading] digits``)."""
        from ..check.claims import argument_claims, check

        pairs = claims.items() if isinstance(claims, Mapping) else None
        texts = [f"{name}={value}" for name, value in pairs] if pairs is not None else list(claims)
        return check(self, argument_claims(texts), min_digits)

    def fit(
        self,
        data: str | Path,
        *,
        epochs: int = 30,
        batch_size: int = 32,
        lr: float | None = None,
        test_fraction: float = 0.25,
        seed: int = 0,
        scale: Literal["none", "standard", "minmax"] = "standard",
        one_hot: bool | None = None,
        path: str | Path | None = None,
        progress: Callable[[int, float, float], None] | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> FitResult:
        """Train on a data set with the generated module: ``derive fit`` (the same defaults).

        ``data`` is ``"digits"``, a ``.npz`` or a ``.csv`` file; the trained parameters are written to
        ``path`` (``.npz``) when it is given; ``progress(epoch, loss, accuracy)`` after each epoch;
        ``training`` overrides the spec's optimiser settings (:meth:`with_training`: ``{"optimizer": "adam"}``).
        """
        if training:
            return self.with_training(training).fit(
                data,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                test_fraction=test_fraction,
                seed=seed,
                scale=scale,
                one_hot=one_hot,
                path=path,
                progress=progress,
            )
        from ..files import check_target
        from ..fit.data import load_data
        from ..fit.training import FitOptions, save_fit, scaling_path, target_range
        from ..fit.training import fit as run_fit

        if path is not None:
            check_target(path)  # before training, not after
            if Path(path).parent.is_dir():
                check_target(scaling_path(path))
        sizes = [layer.size for layer in self.spec.layers]
        dataset = load_data(str(data), sizes[0], sizes[-1], one_hot, target_range(self))
        result = run_fit(self, dataset, FitOptions(epochs, batch_size, lr, test_fraction, seed, scale), progress)
        if path is not None:
            save_fit(result, path)  # with path's .scaling.npz beside it when the params expect scaled inputs
        return result

    def exercises(
        self,
        students: int,
        seed: int,
        directory: str | Path | None = None,
        *,
        lang: str = "en",
        format: Literal["pdf", "html"] = "pdf",
        weights: bool = False,
        lectures: bool = False,
        jobs: int = 1,
        digits: int = 8,
        progress: Callable[[str], None] | None = None,
    ) -> Path:
        """Write one exercise sheet, answer key and answers file per student: ``derive exercises``; the folder.

        The variants are drawn from the spec's file (its comments are kept in each student's copy), so the
        model must be one loaded from a file or a built-in example, unchanged.
        """
        from ..grading.moodle import question_bank
        from ..sheets.classes import build_class, check_format, write_class

        check_format(format)
        ref = self._file_ref()
        class_set = build_class(ref, students, seed, weights, digits, load=Model)
        target = Path(directory) if directory is not None else Path("output") / f"{class_set.name}-exercises"
        write_class(
            class_set, target, lang, digits, jobs, progress or (lambda message: None), lectures, format, question_bank
        )
        return target

    def _file_ref(self) -> str:
        """The file or built-in name this model's spec was read from, when it is unchanged since."""
        from ..spec.reading import BUILTIN_SUFFIX

        source = self.spec.source
        ref = source.removesuffix(BUILTIN_SUFFIX)
        if source.startswith("<") or (ref == source and not Path(ref).is_file()) or load_spec(ref) != self.spec:
            raise DeriveError(
                "exercise sheets are drawn from a spec file, and this model is not one loaded from a file unchanged",
                where=source,
                hint="write the spec to a .toml file and load that, e.g. derive.load('net.toml').exercises(…)",
            )
        return ref


def sample_suffix(name: str) -> tuple[str, int | None]:
    """``out_y[2]`` → ("out_y", 2): a quantity of one sample, numbered from 1; ``w1`` → ("w1", None)."""
    if name.endswith("]") and "[" in name:
        base, _, index = name[:-1].rpartition("[")
        if index.isdigit() and len(index) <= 6 and base:
            return base, int(index)
    return name, None


def _option_name(key: str) -> str:
    """How ``derive fit`` and ``derive train`` spell a [training] key as an option: weight_decay is --weight-decay."""
    return "--lr" if key == "learning_rate" else "--" + key.replace("_", "-")


def _plain(value: Any) -> Any:
    """NumPy arrays and scalars, tuples: the lists and floats a TOML file would give."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
