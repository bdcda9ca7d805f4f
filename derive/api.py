"""The library entry point: a spec, its network, its numbers and its derivations.

Everything the command line does is a method here (the CLI is a thin skin over it):
``derive grad`` is :meth:`Model.derivation` (and :meth:`Derivation.text`), ``derive show``
:meth:`Model.show`,
``derive lecture`` :meth:`Model.lecture`, ``derive export`` :meth:`Model.export`,
``derive train`` :meth:`Model.train`, ``derive check`` :meth:`Model.check`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sympy as sp

from .chain import Derivation, Number, derive, derive_all, exact_point
from .errors import DeriveError
from .files import LectureFormat, lecture_format
from .network import LOSS_SYMBOL, Network
from .numeric import Breakdown, Compiled
from .point import Point
from .spec import Spec, check_steps, load_spec, parse_spec, validate_spec, with_values

if TYPE_CHECKING:
    from .check import Report

SpecRef = str | Path | Mapping[str, Any]
TRAIN_CHUNK = 2000  # steps between progress reports


@dataclass(frozen=True)
class Training:
    """What :meth:`Model.train` gives back: the losses, the outputs and parameters after the run."""

    steps: int
    learning_rate: float
    update_biases: bool
    history: list[float] = field(repr=False)  # the loss before each update and after the last
    outputs: list[float]
    parameters: dict[str, float] = field(repr=False)
    breakdown: Breakdown | None = None  # why the loss stopped being a float, if it did

    @property
    def loss_before(self) -> float:
        return self.history[0]

    @property
    def loss(self) -> float:
        return self.history[-1]


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
        """The symbolic network, built on first use (a big network has many symbols)."""
        return Network(self.spec)

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
        from .init import weights as seeded

        spec = with_values(
            self.spec,
            inputs=_plain(inputs) if inputs is not None else None,
            targets=_plain(targets) if targets is not None else None,
            parameters=_plain(dict(weights)) if weights is not None else None,
            seeded=lambda index: seeded(self.spec, index).tolist(),
        )
        return Model(spec)

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

    @cached_property
    def point(self) -> Point | None:
        """Every symbol's value at the spec's numbers, or None when inputs or targets are missing."""
        if not self.has_numbers:
            return None
        point = self._engine.point()
        for layer in self.network.layers[1:]:
            for n in layer.neurons:
                for symbol in (n.net, n.out):
                    if symbol is not None and not math.isfinite(point[symbol]):
                        exact = exact_point(self.network, point).get(symbol)
                        if exact is not None and math.isfinite(float(exact)):
                            problem = f"is {float(exact):.6g}, but an intermediate of it leaves float64's range"
                        else:
                            problem = "is not finite there"
                        raise DeriveError(
                            f"the forward pass gives {symbol.name} = {point[symbol]}: "
                            f"layer {layer.number}'s activation {layer.spec.activation!r} {problem}",
                            where=self.spec.source,
                            hint="check the activation's domain and the spec's numbers",
                        )
        return point

    def symbol(self, name: str) -> sp.Symbol:
        return self.network.lookup(name)

    def derivation(self, name: str) -> Derivation:
        """∂E/∂name for a weight, bias, input, net or out."""
        return derive(self.network, self.symbol(name), self.point)

    def derivations(self) -> dict[str, Derivation]:
        """A derivation for every weight and bias."""
        return derive_all(self.network, self.point)

    def gradients(self) -> tuple[float, dict[str, float]]:
        """(E, ∂E/∂p for every weight and bias), from the compiled passes."""
        return self.compiled().named_gradients()

    def gradient_values(self) -> tuple[float, dict[str, Number | None]]:
        """(E, ∂E/∂p for every weight and bias by name) at the spec's numbers, as derivations give them.

        The numbers are the compiled passes' (a derivation's value is the same δ form); only where one is
        not a float is that parameter derived, for its exactly evaluated value.
        """
        point = self.point
        assert point is not None, "needs the spec's numbers (Network.require_numbers)"
        _, grads = self._engine.named_gradients()
        values: dict[str, Number | None] = dict(grads)
        for name, value in grads.items():
            if not math.isfinite(value):
                values[name] = derive(self.network, self.symbol(name), point).value
        return point[LOSS_SYMBOL], values

    def parameter_values(self) -> dict[str, float]:
        """Every weight and bias by name: the spec's, or drawn from its seed."""
        return self._engine.parameter_values()

    def path_counts(self) -> dict[str, int]:
        """How many chain-rule paths lead from each weight and bias to E."""
        return self.network.path_counts()

    # -- what the other commands do ---------------------------------------------------

    def show(self, digits: int = 8, *, full: bool = False) -> str:
        """What ``derive show`` prints: layers, symbols, the forward pass with numbers, the loss.

        A big network is summarised per layer unless ``full``.
        """
        from .overview import overview_text

        return overview_text(self, digits, full)

    def overview(self, full: bool = False) -> dict[str, Any]:
        """The data of ``derive show --format json`` (big networks summarised unless ``full``)."""
        from .overview import overview

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
    ) -> list[Path]:
        """Write the lecture to ``path`` (its suffix picks the format unless ``format`` is given); the files written.

        pdf needs TeX (when it is missing, the LaTeX source is written and a DeriveError says how to
        install it); tex is the source alone; html is one self-contained page and needs nothing.
        ``progress`` is told each stage of the work as it starts.
        """
        say = progress or (lambda stage: None)
        from .files import check_target, write_atomic
        from .lecture import Options, html_source, tex_source
        from .texbuild import TexMissing, check_tools, compile_pdf, write_tex

        target = Path(path)
        fmt = lecture_format(target, format)
        if fmt == "html" and keep_tex:
            raise DeriveError("keep_tex keeps the LaTeX source next to a PDF; an HTML lecture has none")
        check_target(target)
        check_steps(self.spec.training.steps if steps is None else steps, len(self.spec.parameter_names), "steps")
        options = Options(lang=lang, digits=digits, steps=steps, exercises=exercises)
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
        from .codegen import scalar_module, vector_module
        from .files import write_atomic

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

    def check(self, claims: Mapping[str, float | str] | Sequence[str]) -> Report:
        """Check published numbers, ``{"out_o1": 0.75136507, "dE/dw5": "0.082167041"}`` or ``["E=0.298"]``: ``derive check``."""
        from .check import argument_claims, check

        pairs = claims.items() if isinstance(claims, Mapping) else None
        texts = [f"{name}={value}" for name, value in pairs] if pairs is not None else list(claims)
        return check(self, argument_claims(texts))


def _plain(value: Any) -> Any:
    """NumPy arrays and scalars, tuples: the lists and floats a TOML file would give."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
