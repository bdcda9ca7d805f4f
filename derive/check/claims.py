"""Checking published numbers: claims such as ``out_o1 = 0.75136079`` against computed values.

A claim names a quantity and gives a number with the digits its author printed.
Names: any symbol of the spec (``net_h1``, ``out_o1``, an input, a weight, a
target), ``E``, an output's own error ``E_o1``, a neuron's ``delta_h1``,
``dE/dX`` (anything ``derive grad`` accepts as X), ``dE_o2/dX`` (output o2's
error differentiated by X, through every path), one chain-rule factor such as
``dout_o1/dnet_o1``, and any of these after N updates of gradient descent with
the spec's learning rate: ``X@N``, where ``X'`` is ``X@1``.

A claim is judged exactly (:mod:`derive.check.exact`): it is ok when it is the
value itself, or the value correctly rounded to the digits it shows, or — when
no digits are required (``--min-digits``, a variant's ``[grading] digits``) —
its truncation, with the diagnosis ``truncated``. A wrong claim gets a named
mistake when one reproduces it (:mod:`derive.check.mistakes`); otherwise the
quantity is recomputed from its inputs as the *other claims* give them: a claim
that follows from a wrong input carries a mistake made upstream; one that does
not is where the working goes wrong.

Everything here returns data; :func:`report_text` and :func:`report_json` only
format it. Values come from the library (the spec's point, the compiled
training engine, derivations), never from formulas written here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.policy import POLICY
from ..errors import DeriveError, suggest
from ..spec.naming import delta_name
from ..spec.reading import MAX_STEPS, check_steps
from .quantities import Kind, Quantity, significant_digits

if TYPE_CHECKING:  # sympy is imported only once numbers are computed: claims are read and checked first
    import sympy as sp

    from ..core.network import Network, Neuron
    from ..core.worked import Worked
    from .pools import Window


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_IDENT = r"[A-Za-z][A-Za-z0-9_]*"
_RATIO = re.compile(rf"d(?P<num>{_IDENT})/d(?P<den>{_IDENT})\Z")
_SAMPLE_LOSS = re.compile(
    rf"d(?P<loss>E(?:_[A-Za-z0-9_]+)?)\[(?P<n>\d{{1,6}})\]/d(?P<rest>{_IDENT})(?P<after>(?:'|@\d+)?)\Z"
)
_BUFFER = re.compile(rf"(?P<state>[a-z_]+)\((?P<param>{_IDENT})\)\Z")
_STEP = re.compile(r"(?P<base>.+?)(?:\[(?P<sample>\d{1,6})\])?(?:(?P<prime>')|@(?P<step>\d+))?\Z")
MAX_CLAIM_DIGITS = 50  # significant digits a claim may show; longer ones are refused
MAX_CLAIM_EXPONENT = 400  # a claim's decimal exponent, beyond float64's range either side (1e-400 … 1e400)
_PRECISION = 2 * MAX_CLAIM_DIGITS + 20  # decimal digits of every verdict's arithmetic: a claim's digits and more
# what a claims file's name may look like before it is quoted (with the lecture's spellings: w_{5}, \delta^{2}_{1})
_CLAIM_NAME = re.compile(r"[\w'’′∂/@\[\]()δ{}^,\\]{1,200}\Z")
_LATEX_WORD = re.compile(r"\\(?:mathrm|text|mathit|operatorname)\{([^{}]*)\}")
_SUBSCRIPT_DIGITS = "₀₁₂₃₄₅₆₇₈₉"
_SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_SPELLED_TOKEN = re.compile(r"[^\W\d_][\w^,]*")  # a name as spelled(): letters first, then _ ^ , and digits
LOSS_NAMES = ("E", "E_total")  # Mazur writes E_total for the loss
NAME_HELP = (
    "names: a symbol of the spec (an input, weight, bias, net, out or target), E, E_o1 (one output's error), "
    "delta_h1, dE/dX, dE_o1/dX, one chain-rule factor such as dout_o1/dnet_o1, and X' or X@N after updates; "
    "with a batch, X[n] is sample n's (out_o1[2], E[2], delta_h1[3])"
)
# quantities that belong to one sample of a batch: the others (E, E_o1, dE/dX, dE_o1/dX) are the batch's, and a
# weight or bias is every sample's
PER_SAMPLE_SYMBOLS = ("input", "net", "out", "target")


# --------------------------------------------------------------------------
# claims


@dataclass(frozen=True)
class Claim:
    """A number someone printed: ``name = number`` as written, and where."""

    name: str
    number: str
    value: Decimal
    where: str  # "file:line" or "argument N"
    line: int | None = None

    @property
    def shown(self) -> int:
        """How many significant digits the number shows."""
        return significant_digits(self.value)


def parse_number(text: str, where: str, quote: bool = True) -> Decimal:
    """The claimed number, exactly as written (0.0000351085, -0.019049119, 3.51085e-5).

    ``quote`` False (a file's line) keeps the text out of messages: they say what is wrong, not what is there.
    """
    cleaned = text.strip().replace("−", "-")  # a typographic minus, as articles print it
    shown = f"{text.strip()!r}" if quote else "the value"
    if not _NUMBER.match(cleaned):
        raise DeriveError(
            f"{shown} is not a number", where=where, hint="write numbers as in 0.75136507, -0.019 or 3.51e-5"
        )
    mantissa = re.sub(r"[eE].*", "", cleaned)
    digits = len(re.sub(r"\D", "", mantissa).lstrip("0"))  # an upper bound of the significant digits
    if digits > MAX_CLAIM_DIGITS:
        raise DeriveError(
            f"{shown} shows {digits} significant digits; the limit is {MAX_CLAIM_DIGITS} (claim digit limit)",
            where=where,
        )
    exponent = cleaned[len(mantissa) + 1 :]
    if len(exponent.lstrip("+-").lstrip("0")) > 6:
        raise DeriveError(f"the exponent of {shown} is beyond ±{MAX_CLAIM_EXPONENT} (claim exponent limit)", where)
    value = Decimal(cleaned)
    if value and abs(value.adjusted()) > MAX_CLAIM_EXPONENT:
        raise DeriveError(f"the exponent of {shown} is beyond ±{MAX_CLAIM_EXPONENT} (claim exponent limit)", where)
    return value


def parse_claim(text: str, where: str, line: int | None = None, quote: bool = True) -> Claim:
    """One ``NAME = VALUE`` (``quote`` False: a file's line, never quoted in messages)."""
    name, sep, number = text.partition("=")
    name = "".join(name.split())
    if not sep or not name or not number.strip():
        raise DeriveError(
            f"expected NAME = VALUE, got {text.strip()!r}" if quote else "expected NAME = VALUE (no '=' or no value)",
            where=where,
            hint="e.g. out_o1 = 0.75136507 or dE/dw5 = 0.0822",
        )
    if not quote and not _CLAIM_NAME.match(name):
        raise DeriveError("the name is not a claim name", where=where, hint=NAME_HELP)
    return Claim(name, number.strip(), parse_number(number, where, quote), where, line)


def read_claims(text: str, source: str) -> list[Claim]:
    """The claims of a claims file: one ``NAME = VALUE`` a line; ``#`` comments and blank lines skipped.

    Only a newline ends a line: a form feed or U+2028 inside a comment does not start a claim.
    """
    claims = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            claims.append(parse_claim(line, f"{source}:{number}", number, quote=False))
    if not claims:
        raise DeriveError("no claims in the file", where=source, hint="write one NAME = VALUE a line")
    return claims


def load_claims(path: str | Path) -> list[Claim]:
    """The claims of a file, read as every untrusted file is (:func:`derive.files.read_input`)."""
    from ..files import MAX_CLAIMS_BYTES, read_text_input, shown_path

    return read_claims(read_text_input(path, "claims file", MAX_CLAIMS_BYTES), shown_path(path))


def argument_claims(arguments: Sequence[str]) -> list[Claim]:
    """Claims given on the command line as NAME=VALUE."""
    return [
        parse_claim(a, f"argument {i} ({a if len(a) <= 60 else a[:57] + '…'!r})") for i, a in enumerate(arguments, 1)
    ]


# --------------------------------------------------------------------------
# verdicts


def required_digits_shown(number: Decimal) -> int:
    """Significant digits a claim shows, for a required count: a 0 (0.0, 0.000) shows none."""
    return 0 if number == 0 else significant_digits(number)


def _unit(number: Decimal) -> Decimal:
    """One unit in the last digit shown: 1e-8 for 0.75136079, 1e-10 for 3.51085e-5."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # parse_number admits no NaN or infinity
    return Decimal(1).scaleb(exponent)


def is_ok(claimed: Decimal, computed: float) -> bool:
    """True when ``claimed`` is ``computed`` rounded or truncated to the digits it shows.

    A value within rounding noise of a digit boundary counts as on it: the
    float 0.37749999999999995 is 0.15·0.05 + 0.20·0.10 + 0.35 = 0.3775, so
    0.3775 is right and 0.3774 is not a truncation of it.
    """
    with localcontext(prec=_PRECISION):
        return _is_ok(claimed, computed)


def _is_ok(claimed: Decimal, computed: float) -> bool:
    v = Decimal(computed) if isinstance(computed, float | int) else Decimal(str(computed))  # a sympy Float too
    # a computed float differs from the exact value by rounding noise (the number policy says how far)
    unit, noise = _unit(claimed), POLICY.slack(v)
    if abs(v - claimed) <= unit / 2 + noise:  # rounded
        return True
    if claimed == 0:  # a 0 shows no significant digit: it is never a truncation
        return False
    if claimed.is_signed():
        return claimed - unit + noise < v <= claimed + noise
    return claimed - noise <= v < claimed + unit - noise


def agreeing_digits(claimed: Decimal, computed: float | Decimal) -> int:
    """How many leading significant digits of the claim are right (rounded or truncated there).

    A Decimal ``computed`` is a value from the exact pass: compared without float64's noise.
    """
    if isinstance(computed, Decimal):
        from .exact import Match, match

        if claimed == 0:  # no significant digit: a 0 agrees only when the value rounds to it, never truncated
            return 1 if match(claimed, computed) in (Match.EXACT, Match.ROUNDED) else 0
        with localcontext(prec=_PRECISION):
            for k in range(significant_digits(claimed), 0, -1):
                quantum = Decimal(1).scaleb(claimed.adjusted() - k + 1)
                for r in (ROUND_HALF_UP, ROUND_DOWN):
                    if match(claimed.quantize(quantum, rounding=r), computed) is not Match.NONE:
                        return k
        return 0
    if computed == 0 or claimed == 0:
        return significant_digits(claimed) if is_ok(claimed, computed) else 0
    with localcontext(prec=_PRECISION):
        for k in range(significant_digits(claimed), 0, -1):
            quantum = Decimal(1).scaleb(claimed.adjusted() - k + 1)
            if any(is_ok(claimed.quantize(quantum, rounding=r), computed) for r in (ROUND_HALF_UP, ROUND_DOWN)):
                return k
    return 0


# --------------------------------------------------------------------------
# quantities


@dataclass(frozen=True)
class Note:
    """Why a wrong claim is wrong, from the claims it was recomputed from.

    ``cause``: "upstream" (it follows from a wrong claim in ``wrong``), "rounding"
    (it follows from the claimed inputs, all right but rounded) or "here" (it
    does not follow from the claimed inputs: this step is where it goes wrong).
    """

    cause: str
    inputs: tuple[Claim, ...]
    wrong: tuple[Claim, ...]
    recomputed: float


@dataclass(frozen=True)
class Diagnosis:
    """A named mistake (see :mod:`derive.check.mistakes`): its code, and what reproduces the claim."""

    code: str
    value: float | None = None  # the value the mistake gives (None for too_few_digits)
    detail: str = ""


@dataclass(frozen=True)
class Checked:
    """One claim with its computed value and verdict."""

    claim: Claim
    quantity: Quantity
    computed: float
    ok: bool
    digits: int  # significant digits that agree
    note: Note | None = None
    match: str = "rounded"  # exact, rounded, truncated or none (see derive.check.exact)
    exact: Decimal | None = None  # the value to the digits that decided the verdict
    diagnosis: Diagnosis | None = None
    required: int = 0  # significant digits required (0: lenient)
    pool: Window | None = None  # after N updates: the first max-pool window too close to call (derive.check.pools)

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else "wrong"


@dataclass(frozen=True)
class Report:
    spec: str
    results: tuple[Checked, ...]
    required: int = 0  # significant digits every claim must show (0: lenient, truncations pass)

    @property
    def wrong(self) -> int:
        return sum(not r.ok for r in self.results)


# --------------------------------------------------------------------------
# resolving names


def spelled(text: str) -> str:
    """A name as the lecture typesets it, in plain characters: ``\\mathrm{out}_{o1}`` → ``out_o1``,
    ``\\delta^{2}_{1}`` → ``δ^2_1``, ``w_{1,2}`` → ``w_1,2``, ``w₅`` → ``w_5``, ``a²₁`` → ``a^2_1``."""
    text = _LATEX_WORD.sub(r"\1", text).replace("\\delta", "δ").replace("\\partial", "∂")
    text = re.sub(
        f"[{_SUBSCRIPT_DIGITS}]+", lambda m: "_" + "".join(str(_SUBSCRIPT_DIGITS.index(c)) for c in m[0]), text
    )
    text = re.sub(
        f"[{_SUPERSCRIPT_DIGITS}]+", lambda m: "^" + "".join(str(_SUPERSCRIPT_DIGITS.index(c)) for c in m[0]), text
    )
    return re.sub(r"[{}\s]", "", text)


class _Names:
    """Claim names → quantities, for one network."""

    def __init__(self, network: Network, samples: int = 1) -> None:
        self.network = network
        self.samples = samples
        info = network.info
        self.symbols = [n for n, i in info.items() if i.kind != "delta"]
        self.outputs = {n.label: n for n in network.output_layer.neurons}
        self.neurons = {n.label: n for layer in network.layers[1:] for n in layer.neurons}
        # a net named n (net_names = ["n"]): its δ is delta_n, as the lecture writes δ_n
        self.by_net = {
            n.net.name.removeprefix("net_"): n.label
            for layer in network.layers[1:]
            for n in layer.neurons
            if n.net is not None
        }
        self.known = {
            *self.symbols,
            *LOSS_NAMES,
            *(f"E_{k}" for k in self.outputs),
            *(f"delta_{k}" for k in self.neurons),
            *(f"delta_{k}" for k in self.by_net),
        }
        self._aliases: dict[str, str] | None = None  # the lecture's spellings, read when a name needs them

    def _lecture_spellings(self) -> dict[str, str]:
        """Each symbol's name as the lecture typesets it (``w_5`` for w5, ``δ_1`` for δ of neuron n1, ``z^2_1``,
        ``w^2_1,1``, ``delta2_1``) → its name here; a spelling that is already a name, or names two symbols, is
        left out."""
        net = self.network
        known = self.known
        found: dict[str, set[str]] = {}
        for symbol, latex in net.latex.items():
            info = net.info.get(symbol.name)
            if info is None:
                continue
            name = f"delta_{net.neuron_of(symbol).label}" if info.kind == "delta" else symbol.name
            key = spelled(latex)
            variants = {key, key.replace("δ", "delta_"), key.replace("δ", "delta")}
            for v in list(variants):
                variants |= {
                    v.replace("^", ""),
                    v.replace(",", "_"),
                    v.replace(",", ""),
                    v.replace("^", "").replace(",", "_"),
                }
            for v in variants:
                if v and v not in known:
                    found.setdefault(v, set()).add(name)
        return {k: next(iter(names)) for k, names in found.items() if len(names) == 1}

    def _plain(self, text: str) -> str:
        """The claim's name with each symbol as the lecture spells it replaced by its name (``dE/dw_{5}`` →
        ``dE/dw5``)."""
        plain = spelled(text)
        tokens = _SPELLED_TOKEN.findall(plain)
        if plain == text and all(t in self.known or t[1:] in self.known for t in tokens):
            return text  # names as check spells them (the lecture's spellings are read only when needed)
        if self._aliases is None:
            self._aliases = self._lecture_spellings()
        aliases = self._aliases

        def name(m: re.Match[str]) -> str:
            token = m[0]
            if token in aliases:
                return aliases[token]
            if token[0] == "d" and token[1:] in aliases:  # dE/dw_5: the d of a derivative
                return "d" + aliases[token[1:]]
            return token

        return _SPELLED_TOKEN.sub(name, plain)

    def resolve(self, written: str, where: str) -> Quantity:
        text = self._plain(written.replace("∂", "d").replace("’", "'").replace("′", "'"))
        # the lecture's dE[2]/dw (and dE_o1[2]/dw) is check's dE/dw[2]
        text = _SAMPLE_LOSS.sub(lambda r: f"d{r['loss']}/d{r['rest']}[{r['n']}]{r['after']}", text)
        m = _STEP.match(text)
        assert m is not None  # the pattern matches any non-empty text
        if len(m["base"]) > 200:
            raise DeriveError("name too long", where=where)
        digits = (m["step"] or "0").lstrip("0")
        step = 1 if m["prime"] else (int(digits or 0) if len(digits) <= len(str(MAX_STEPS)) else MAX_STEPS + 1)
        if step > MAX_STEPS:
            raise DeriveError(
                f"at most {MAX_STEPS:,} updates (the step limit)",
                where=where,
                hint="a claim after more updates is not checked",
            )
        if len(m["base"]) > 200:
            raise DeriveError("name too long", where=where)
        q = replace(self._base(m["base"], written, where), step=step)
        return self._of_sample(q, int(m["sample"]) if m["sample"] else 0, written, where, m["sample"])

    def per_sample(self, q: Quantity) -> bool:
        """Whether q belongs to one sample: a net, out, input, target, δ or chain-rule factor, or E differentiated
        by one of them (∂E/∂out_y is sample n's ∂E[n]/∂out_y[n]: it has no batch value)."""
        if q.kind is Kind.VALUE:
            return q.of != "E" and self.network.info[q.of].kind in PER_SAMPLE_SYMBOLS
        if q.kind in (Kind.GRAD, Kind.PARTIAL):
            return self.network.info[q.wrt].kind in PER_SAMPLE_SYMBOLS
        return q.kind in (Kind.DELTA, Kind.FACTOR)

    def _of_sample(
        self, q: Quantity, sample: int, written: str, where: str, sample_text: str | None = None
    ) -> Quantity:
        """q of sample ``sample`` (0: none named), checked against the batch."""
        count = self.samples
        if sample_text is not None and sample == 0:
            raise DeriveError(
                f"{written!r}: samples are numbered from 1, there is no sample 0",
                where=where,
                hint=f"samples are numbered 1 to {count}",
            )
        if sample:
            if sample > count:
                raise DeriveError(
                    f"{written!r}: there is no sample {sample}; the spec holds {count}",
                    where=where,
                    hint=f"samples are numbered 1 to {count}",
                )
            if q.kind is Kind.VALUE and q.of != "E" and not self.per_sample(q):
                raise DeriveError(
                    f"{written!r}: {q.of} is shared by every sample, it has no [{sample}]",
                    where=where,
                    hint=f"write {q.of}" + (f"@{q.step}" if q.step else ""),
                )
            # a single sample is sample 1: E[1] and E are one quantity
            return replace(q, sample=sample if count > 1 else 0)
        if count > 1 and self.per_sample(q):
            shown = replace(q, sample=1).name
            raise DeriveError(
                f"{written!r}: the spec holds {count} samples, and {q.name} belongs to one of them",
                where=where,
                hint=f"name the sample, numbered from 1: {shown}",
            )
        return q

    def _base(self, base: str, written: str, where: str) -> Quantity:
        info = self.network.info
        if base in info and info[base].kind != "delta":
            return Quantity(Kind.VALUE, base)
        buffer = _BUFFER.match(base)
        if buffer:
            return self._buffer(buffer["state"], buffer["param"], written, where)
        if base in LOSS_NAMES:
            return Quantity(Kind.VALUE, "E")
        ratio = _RATIO.match(base)
        if ratio:
            return self._ratio(ratio["num"], ratio["den"], where)
        if base.startswith("E_") and base[2:] in self.outputs:
            return Quantity(Kind.ERROR, base[2:])
        if base.startswith("δ"):  # the lecture's δ_h1
            base = "delta_" + base[1:].lstrip("_")
        if base.startswith("delta_") and base[6:] in self.neurons:
            return Quantity(Kind.DELTA, base[6:])
        if base.startswith("delta_") and base[6:] in self.by_net:  # δ spelled like its net, as the lecture prints it
            return Quantity(Kind.DELTA, self.by_net[base[6:]])
        choices = [
            *self.symbols,
            *LOSS_NAMES,
            *(f"E_{k}" for k in self.outputs),
            *(delta_name(n.net.name) for layer in self.network.layers[1:] for n in layer.neurons if n.net is not None),
        ]
        hint = suggest(base, choices)
        raise DeriveError(f"unknown name {written!r}", where=where, hint=(hint + "\n  " if hint else "") + NAME_HELP)

    def _buffer(self, state: str, param: str, written: str, where: str) -> Quantity:
        """exp_avg(w5): the optimiser's buffer for a parameter, under torch's name."""
        from ..core.optimizer import Optimizer

        optimizer = Optimizer.of(self.network.spec)
        if state not in optimizer.state:
            kept = ", ".join(optimizer.state) or "none"
            hint = suggest(state, optimizer.state) or f"{optimizer.name}'s buffers here: {kept}"
            raise DeriveError(f"{written!r}: {optimizer.name} keeps no {state}", where=where, hint=hint)
        info = self.network.info.get(param)
        if info is None or info.kind not in ("weight", "bias"):
            hint = suggest(param, self.network.spec.parameter_names)
            raise DeriveError(f"{written!r}: {param!r} is not a weight or bias", where=where, hint=hint)
        if not optimizer.updates(info.kind == "bias"):
            raise DeriveError(f"{written!r}: the biases are not trained (update_biases = false)", where=where)
        return Quantity(Kind.STATE, state, param)

    def _wrt(self, name: str, where: str) -> str:
        try:
            self.network.lookup(name)
        except DeriveError as exc:
            raise DeriveError(exc.message, where=where, hint=exc.hint) from None
        return name

    def _ratio(self, num: str, den: str, where: str) -> Quantity:
        info = self.network.info
        if num in LOSS_NAMES:
            return Quantity(Kind.GRAD, "", self._wrt(den, where))
        if num not in info and num.startswith("E_") and num[2:] in self.outputs:
            return Quantity(Kind.PARTIAL, num[2:], self._wrt(den, where))
        if num in info and info[num].kind in ("net", "out"):
            from ..core.chain import local_factor

            self._wrt(den, where)
            if local_factor(self.network, self.network.symbols[num], self.network.symbols[den]) is None:
                raise DeriveError(
                    f"d{num}/d{den} is not one factor of the chain rule: {den} does not feed {num} directly",
                    where=where,
                    hint="claim dE/dX or dE_o1/dX for a derivative through several steps",
                )
            return Quantity(Kind.FACTOR, num, den)
        choices = [*LOSS_NAMES, *(f"E_{k}" for k in self.outputs), *(n for n in self.symbols if info[n].kind == "net")]
        choices += [n for n in self.symbols if info[n].kind == "out"]
        hint = suggest(num, choices)
        raise DeriveError(
            f"unknown quantity {num!r} in d{num}/d{den}",
            where=where,
            hint=(hint + "\n  " if hint else "") + "differentiate E, an output's error E_o1, or a net or out",
        )


# --------------------------------------------------------------------------
# values


class _Values:
    """Computed values of quantities, at the spec's numbers and after N updates."""

    def __init__(self, model: Worked) -> None:
        self.model = model
        self.network = model.network
        self.reduction = model.spec.loss.reduction
        self.points: dict[int, tuple[Mapping[sp.Symbol, float], ...]] = {}  # step → a point per sample
        self.buffers: dict[int, dict[str, dict[str, float]]] = {}  # step → the optimiser's buffers by parameter
        self.close: list[Window] = []  # max-pool windows too close to call, in the order of the run's steps
        self.routes: dict[int, list[dict[int, list[int]]]] = {}  # step → each sample's max-pool winners by layer
        self._routed: dict[int, list[Network]] = {}

    @property
    def samples(self) -> int:
        return self.model.samples

    def prepare(self, steps: Iterable[int]) -> None:
        """Every symbol's value at each step asked for and the one before it (one training run to the last).

        The step before is where an update starts from, for explaining a wrong X@N.
        """
        start = self.model.points  # checks that the forward pass is finite
        assert start is not None  # check() required the inputs and targets
        self.points[0] = start
        wanted = {s for step in steps for s in (step, step - 1) if s > 0}
        check_steps(max(wanted, default=0), len(self.model.spec.parameter_names), "claims after updates")
        engine, done = None, 0
        if self.network.has_max_pools and wanted:
            self._prepare_pools(wanted)
            return
        for step in sorted(wanted):
            if engine is None:
                engine = self.model.compiled()
            engine.train(step - done)
            done = step
            self.points[step] = tuple(engine.points())
            self.buffers[step] = {name: engine.state_values(name) for name in engine.state if name != "step"}

    def _prepare_pools(self, wanted: set[int]) -> None:
        """As :meth:`prepare`, one update at a time: every max-pool window is checked at each step (see
        :mod:`derive.check.pools`), and each wanted step's winners are kept for the exact pass."""
        from ..codegen.engine import Compiled
        from .pools import close_windows

        engine = self.model.compiled()
        assert isinstance(engine, Compiled)  # the generated module's passes (a max pool's winners)
        pools = [i for i, layer in enumerate(self.model.spec.layers) if layer.kind.startswith("maxpool")]
        for step in range(max(wanted) + 1):
            if step:
                engine.train(1)
            self.close.extend(close_windows(engine, step))
            if step in wanted:
                self.points[step] = tuple(engine.points())  # also sets the engine's routes to this step's
                self.buffers[step] = {name: engine.state_values(name) for name in engine.state if name != "step"}
                self.routes[step] = [
                    {i: list(engine.routes(i, sample)) for i in pools} for sample in range(self.samples)
                ]

    def first_close(self, step: int) -> Window | None:
        """The first max-pool window too close to call in the run up to ``step`` (its forward pass included)."""
        return next((w for w in self.close if w.step <= step), None)

    def routed(self, step: int) -> list[Network]:
        """Each sample's network routed by float64's winners after ``step`` updates (max pools)."""
        if step not in self._routed:
            from ..core.network import Network

            self._routed[step] = [Network(self.model.spec, routes.__getitem__) for routes in self.routes[step]]
        return self._routed[step]

    def value(self, q: Quantity, point: Mapping[sp.Symbol, float] | None = None) -> float:
        if point is None and q.sample == 0 and self.samples > 1 and self._reduced(q):
            # the batch's: the mean or sum of the samples' own
            per = [self.value(replace(q, sample=n)) for n in range(1, self.samples + 1)]
            total = math.fsum(per)
            return total / len(per) if self.reduction == "mean" else total
        return self._value(q, point)

    def _reduced(self, q: Quantity) -> bool:
        """E, E_k, dE/dX and dE_k/dX of a batch are reduced over its samples."""
        return (q.kind is Kind.VALUE and q.of == "E") or q.kind in (Kind.ERROR, Kind.GRAD, Kind.PARTIAL)

    def _value(self, q: Quantity, point: Mapping[sp.Symbol, float] | None = None) -> float:
        from ..core.chain import derive, evaluate, gradient_at, local_factor
        from ..core.network import LOSS_SYMBOL

        net = self.network
        p = self.points[q.step][max(q.sample, 1) - 1] if point is None else point
        if q.kind is Kind.STATE:  # before the first step every buffer is 0, as torch starts it
            result: float | None = self.buffers[q.step][q.of][q.wrt] if q.step else 0.0
        elif q.kind is Kind.VALUE:
            result = p[LOSS_SYMBOL] if q.of == "E" else p[net.symbols[q.of]]
        elif q.kind is Kind.ERROR:
            result = evaluate(net.output_errors[self._output(q.of).out], p)
        elif q.kind is Kind.DELTA:
            result = p[self._neuron(q.of).delta]
        elif q.kind is Kind.GRAD and net.has_max_pools:
            result = gradient_at(net, net.symbols[q.wrt], p)  # a max pool routes by the point's own numbers
        elif q.kind is Kind.GRAD:
            result = derive(net, net.symbols[q.wrt], p).value
        elif q.kind is Kind.PARTIAL:
            result = self._partial(q.of, q.wrt, p)
        else:
            factor = local_factor(net, net.symbols[q.of], net.symbols[q.wrt])
            assert factor is not None  # checked when the name was resolved
            result = evaluate(factor, p)
        if result is None or result != result or abs(result) == float("inf"):
            raise DeriveError(
                f"{q.name} is not a finite number here ({result})",
                where=self.model.spec.source,
                hint="training diverged" if q.step else "check the spec's numbers",
            )
        return float(result)

    def _output(self, label: str) -> Neuron:
        return next(n for n in self.network.output_layer.neurons if n.label == label)

    def _neuron(self, label: str) -> Neuron:
        return next(n for layer in self.network.layers[1:] for n in layer.neurons if n.label == label)

    def _partial(self, label: str, wrt: str, point: Mapping[sp.Symbol, float]) -> float | None:
        """dE_k/dX: the δs of output k's error alone (BP1 with one term, BP2 below), then Σ δ·∂net/∂X."""
        from ..core.chain import derive, evaluate

        net = self.network
        out_k = self._output(label).out
        dE_k = net.dE_dout[out_k]  # ∂E/∂out_k is ∂E_k/∂out_k: E is the sum of the outputs' terms
        symbol = net.symbols[wrt]
        if net.info[wrt].kind == "out" and net.info[wrt].layer == len(net.layers) - 1:
            return evaluate(dE_k, point) if symbol == out_k else 0.0
        alone = dict(point)
        for n in net.output_layer.neurons:
            alone[n.delta] = evaluate(dE_k * net.dout_dnet(out_k, n.net), point)
        for layer in reversed(net.layers[1:-1]):
            for h in layer.neurons:
                alone[h.delta] = evaluate(net.delta_definitions[h.delta], alone)
        return evaluate(derive(net, symbol).delta_expression, alone)

    # -- local definitions, for recomputing from other claims -------------------

    def definition(self, q: Quantity) -> tuple[sp.Expr, dict[sp.Symbol, Quantity]] | None:
        """(expression, its symbols → the quantities they stand for), or None for a given number."""
        import sympy as sp

        from ..core.chain import derive, local_factor
        from ..core.network import LOSS_SYMBOL

        net = self.network
        if q.sample == 0 and self.samples > 1 and self._reduced(q):
            # the batch's: (1/N)·Σ_n of the samples' own (or the plain sum)
            parts = {sp.Dummy(f"s{n}"): replace(q, sample=n) for n in range(1, self.samples + 1)}
            total = sp.Add(*parts)
            return (total / self.samples if self.reduction == "mean" else total), parts
        if q.kind is Kind.VALUE and q.of == "E":
            expr = net.loss_expression
        elif q.kind is Kind.VALUE:
            symbol, kind = net.symbols[q.of], net.info[q.of].kind
            if kind == "net":
                expr = net.net_definitions[symbol]
            elif kind == "out" and net.info[q.of].layer > 0:
                expr = net.out_definitions[symbol]
            elif kind in ("weight", "bias") and q.step > 0:
                # the optimiser's update from the step before: p@N = p@(N-1) − η·∂E/∂p@(N-1) for SGD
                from ..core.optimizer import Optimizer

                optimizer = Optimizer.of(self.model.spec)
                if not optimizer.updates(kind == "bias"):
                    return symbol, {symbol: replace(q, step=q.step - 1)}
                gradient = sp.Dummy("gradient")
                updated = optimizer.update(symbol, gradient)
                if updated is None:  # an optimiser with state: not one step of the claimed numbers alone
                    return None
                return updated, {
                    symbol: replace(q, step=q.step - 1),
                    gradient: Quantity(Kind.GRAD, "", q.of, q.step - 1),
                }
            else:
                return None
        elif q.kind is Kind.ERROR:
            expr = net.output_errors[self._output(q.of).out]
        elif q.kind is Kind.DELTA:
            expr = net.delta_definitions[self._neuron(q.of).delta]
        elif q.kind is Kind.GRAD:
            expr = derive(net, net.symbols[q.wrt]).expression
        elif q.kind is Kind.FACTOR:
            expr = local_factor(net, net.symbols[q.of], net.symbols[q.wrt])
        else:
            return None  # dE_k/dX has no single local formula in named quantities
        inputs = {}
        for s in expr.free_symbols:
            # the symbols of one sample's quantity are that sample's; weights and biases are every sample's
            if s == LOSS_SYMBOL:
                inputs[s] = Quantity(Kind.VALUE, "E", step=q.step, sample=q.sample)
            elif net.info[s.name].kind == "delta":
                inputs[s] = Quantity(Kind.DELTA, net.neuron_of(s).label, step=q.step, sample=q.sample)
            elif net.info[s.name].kind in PER_SAMPLE_SYMBOLS:
                inputs[s] = Quantity(Kind.VALUE, s.name, step=q.step, sample=q.sample)
            else:
                inputs[s] = Quantity(Kind.VALUE, s.name, step=q.step)
        return expr, inputs


# --------------------------------------------------------------------------
# checking


def check(model: Worked, claims: Sequence[Claim], min_digits: int | None = None) -> Report:
    """Every claim against the value computed from the spec; wrong ones explained where other claims allow.

    ``min_digits``: the significant digits every claim must show, correctly rounded (``--min-digits``);
    None takes the spec's ``[grading] digits`` (a student's variant records what the sheet asks), and
    without it the check is lenient: a truncation passes, with the diagnosis ``truncated``.
    """
    from ..spec.sequences import require_workable

    model.network.require_numbers("derive check")
    require_workable(model.spec, "derive check")
    required = min_digits if min_digits is not None else model.spec.required_digits
    names = _Names(model.network, model.samples)
    quantities = [names.resolve(c.name, c.where) for c in claims]
    values = _Values(model)
    values.prepare(q.step for q in quantities)
    from .exact import Precise

    precise = Precise(model)
    results = []
    for claim, q in zip(claims, quantities):
        computed = values.value(q)
        judged = _judge(claim, q, computed, precise, values, required)
        ok = _passes(claim.value, judged.match.value, required)
        results.append(
            Checked(
                claim,
                q,
                computed,
                ok,
                agreeing_digits(claim.value, judged.value),
                match=judged.match.value,
                exact=judged.value,
                required=required,
                pool=values.first_close(q.step) if q.step and values.network.has_max_pools else None,
            )
        )
    explained = []
    for i, r in enumerate(results):
        if r.ok and r.match in ("exact", "rounded"):
            explained.append(r)
            continue
        note = _explain(i, results, values)
        # rounded inputs: some claim it was recomputed from is not its value exactly
        rounded = note is not None and any(
            other.match != "exact" for other in results if any(other.claim is c for c in note.inputs)
        )
        explained.append(replace(r, note=note, diagnosis=_diagnose(r, note if rounded else None, values)))
    return Report(model.spec.source, tuple(explained), required)


def _judge(claim: Claim, q: Quantity, computed: float, precise: Any, values: _Values, required: int = 0) -> Any:
    """The claim's :class:`~derive.check.exact.Judged` verdict, from the exact pass (or float64 where it decides).

    ``required``: the significant digits required; a claim that shows as many is ok whether the value is it
    exactly or rounds to it, so float64 need not tell those apart.
    """
    from .exact import FLOAT_DIGITS, Judged, decide, digits_needed, judge, match

    given = precise.given(q)
    if given is not None:  # a number the spec gives: its decimal, exactly
        return Judged(match(claim.value, given), given, 0)
    if q.step and significant_digits(claim.value) <= FLOAT_DIGITS:
        # after N updates: the generated module's float64 training decides when no boundary lies within its trust
        close = values.first_close(q.step) if values.network.has_max_pools else None
        if values.network.has_max_pools and close is None:
            # every window clear at every step: the exact run takes float64's winners, routed as a dense net
            precise = precise.rerouted(values.routed(q.step))
        if close is not None:
            # a max-pool window too close to call: the exact run may route δ elsewhere from that step on; the
            # float64 value, at the wider trust the verdict states (see derive.check.pools)
            from .pools import CLOSE_TRUST

            value = Decimal(computed)
            error = abs(value) * Decimal(repr(CLOSE_TRUST))
        elif q.kind is Kind.STATE:
            # an optimiser's buffer is the run's own number, built from float64 gradients: trusted as far as the
            # last gradient it took in is (relative), which cancels near a minimum as E does
            value = Decimal(computed)
            error = abs(value) * max(Decimal(repr(POLICY.noise)), 20 * _gradient_trust(q, precise, values))
        else:  # the quantity exactly at the parameters the training reached, their trust carried to it
            point = values.points[q.step][0]
            parameters = {p: point[p] for p in values.network.parameters}
            digits = digits_needed(claim.value)
            value = precise.at(q, digits, parameters)
            error = precise.drift(q, digits, parameters, value)
        decided = decide(claim.value, value, error, exact=required_digits_shown(claim.value) < required)
        if decided is not None:
            return Judged(decided, value, 0)
        precise.require_replay(q.step, _decided_digits(value, error))
    return judge(claim.value, lambda digits: precise.value(q, digits), digits_needed(claim.value))


def _gradient_trust(q: Quantity, precise: Any, values: _Values) -> Decimal:
    """How far (relative) the float64 gradient of ``q``'s parameter the last update took in may be from the exact one
    after the same updates: its distance from the exact gradient at the same parameters, and their drift."""
    from .exact import FLOAT_DIGITS

    step = q.step - 1
    if step and values.network.has_max_pools:  # routed by float64's winners there (every window was clear)
        precise = precise.rerouted(values.routed(step))
    gradient = Quantity(Kind.GRAD, "", q.wrt, step)
    digits = FLOAT_DIGITS + 10  # as a claim of FLOAT_DIGITS digits is judged
    point = values.points[step][0]
    parameters = {p: point[p] for p in values.network.parameters}
    exact = precise.at(gradient, digits, parameters) if step else precise.value(gradient, digits)
    if exact == 0:
        return Decimal("Infinity")
    with localcontext(prec=_PRECISION):
        error = abs(Decimal(values.value(gradient)) - exact)
        if step:
            error += precise.drift(gradient, digits, parameters, exact)
        return error / abs(exact)


def _decided_digits(value: Decimal, error: Decimal) -> int:
    """Significant digits whose rounding boundaries (half a unit apart from the value at most) lie beyond ``error``
    of ``value`` in most cases: a unit in the last digit of at least 20 errors."""
    from .exact import FLOAT_DIGITS

    if error == 0 or value == 0:
        return FLOAT_DIGITS
    with localcontext(prec=_PRECISION):
        unit = (20 * error).log10().to_integral_value(rounding=ROUND_CEILING)
    return max(1, min(FLOAT_DIGITS, value.adjusted() - int(unit) + 1))


def _rounds_to(claimed: Decimal, value: float) -> bool:
    """The claim is ``value`` rounded (not merely truncated) to its digits, within float64's rounding."""
    from .exact import unit

    v = Decimal(value)
    with localcontext(prec=_PRECISION):
        return abs(v - claimed) <= unit(claimed) / 2 + abs(v) * Decimal(repr(POLICY.noise))


def _passes(claimed: Decimal, how: str, required: int) -> bool:
    """The verdict from how the claim matches: exact always; with required digits, rounded to at least them;
    leniently, rounded or truncated, but never a truncation that shows no significant digit."""
    if how == "exact":
        return True
    if how == "none":
        return False
    if required:
        return how == "rounded" and required_digits_shown(claimed) >= required
    return how == "rounded" or claimed != 0


MISTAKE_DIGITS = 3  # significant digits a wrong claim shows before a named mistake may explain it (0.2 fits many)


def _diagnose(result: Checked, note: Note | None, values: _Values) -> Diagnosis | None:
    """The first named mistake that reproduces the claim (see :mod:`derive.check.mistakes`), rounding codes last."""
    from .exact import FLOAT_DIGITS
    from .mistakes import candidates, reproduces

    claimed = result.claim.value
    if result.match == "none" and significant_digits(claimed) >= MISTAKE_DIGITS:
        for candidate in candidates(result.quantity, values):
            if reproduces(claimed, candidate.value) and not reproduces(claimed, result.computed):
                return Diagnosis(candidate.code, candidate.value, candidate.detail)
        if note is not None and note.cause == "upstream":
            return Diagnosis("wrong_input", note.recomputed)
    # what the other claims' rounded numbers give, where the value itself does not round to the claim
    if (
        result.match != "rounded"
        and note is not None
        and note.cause == "rounding"
        and significant_digits(claimed) <= FLOAT_DIGITS
        and _rounds_to(claimed, note.recomputed)
    ):
        return Diagnosis("rounded_intermediate", note.recomputed)
    if result.match == "truncated" and claimed != 0 and required_digits_shown(claimed) >= result.required:
        return Diagnosis("truncated")
    if result.match in ("rounded", "truncated"):
        return Diagnosis("too_few_digits")
    return None


def compute(model: Worked, names: Sequence[str]) -> list[float]:
    """The computed value of each named quantity (claim names such as ``out_o2``, ``dE/dw1``, ``w1'``)."""
    model.network.require_numbers("computing answers")
    resolver = _Names(model.network, model.samples)
    quantities = [resolver.resolve(name, name) for name in names]
    values = _Values(model)
    values.prepare(q.step for q in quantities)
    return [values.value(q) for q in quantities]


def canonical_names(model: Worked, names: Sequence[str]) -> dict[str, str]:
    """Each name's canonical quantity (``∂E/∂w1`` and ``dE/dw1`` are one) → the name as given."""
    resolver = _Names(model.network, model.samples)
    return {resolver.resolve(name, name).name: name for name in names}


MAX_EXPLAINED_QUANTITIES = 64  # quantities a wrong claim's explanation may recompute (a count, not a clock)


class _TooFar(Exception):
    """An explanation that would recompute more than MAX_EXPLAINED_QUANTITIES quantities."""


def _explain(index: int, results: Sequence[Checked], values: _Values) -> Note | None:
    """Recompute a wrong claim's quantity from its inputs, taking every claimed input as claimed."""

    from ..core.chain import evaluate

    target = results[index]
    if significant_digits(target.claim.value) > 15:  # recomputed in float64: no word on digits beyond it
        return None

    def claimed(q: Quantity) -> Checked | None:
        # the nearest claim of that quantity before this one, else the first after it
        before = [r for r in results[:index] if r.quantity == q]
        after = [r for r in results[index + 1 :] if r.quantity == q]
        return before[-1] if before else (after[0] if after else None)

    position = {id(r): i for i, r in enumerate(results)}
    used: dict[int, Checked] = {}
    memo: dict[Quantity, float] = {}

    def recompute(q: Quantity, definition: tuple[sp.Expr, dict[sp.Symbol, Quantity]]) -> float:
        expr, inputs = definition
        point: dict[sp.Symbol, float] = {}
        for symbol, qi in inputs.items():
            if qi not in memo:
                if len(memo) >= MAX_EXPLAINED_QUANTITIES:
                    raise _TooFar
                given = claimed(qi)
                inner = values.definition(qi) if qi.step == q.step else None
                if given is not None:
                    used[id(given)] = given
                    memo[qi] = float(given.claim.value)
                elif inner is not None:
                    memo[qi] = recompute(qi, inner)
                else:
                    memo[qi] = values.value(qi)
            point[symbol] = memo[qi]
        value = evaluate(expr, point)
        assert value is not None
        return value

    definition = values.definition(target.quantity)
    if definition is None:
        return None
    try:
        recomputed = recompute(target.quantity, definition)
    except _TooFar:  # the explanation would recompute too much of a big or deep network: the verdict stands alone
        return None
    if not used:
        return None
    # claims at the same step first (for E' the updated weights, not the biases that stayed), then in file order
    step = target.quantity.step
    in_order = sorted(used.values(), key=lambda r: (r.quantity.step != step, position[id(r)]))
    inputs = tuple(r.claim for r in in_order)
    wrong = tuple(r.claim for r in in_order if r.match == "none")  # a wrong number (not one too short)
    if not is_ok(target.claim.value, recomputed):
        cause = "here"
    elif wrong:
        cause = "upstream"
    else:
        cause = "rounding"
    return Note(cause, inputs, wrong, recomputed)


# --------------------------------------------------------------------------
# formatting


def _shown(value: float, claim: Claim) -> str:
    from ..present.printing import format_number

    return format_number(value, min(max(claim.shown + 2, 6), 17))


def _listing(claims: Sequence[Claim], limit: int = 4) -> str:
    parts = [f"{c.name} = {c.number}" + (f" (line {c.line})" if c.line else "") for c in claims[:limit]]
    if len(claims) > limit:
        parts.append(f"… ({len(claims) - limit} more)")
    return ", ".join(parts)


def note_text(result: Checked) -> str:
    """One sentence on why a wrong claim is wrong, or an empty string."""
    note = result.note
    if note is None:
        return ""
    if note.cause == "upstream":
        return f"follows from the wrong {_listing(note.wrong)}: the mistake is made there"
    recomputed = _shown(note.recomputed, result.claim)
    if note.cause == "rounding":
        return f"follows from the rounded {_listing(note.inputs)} ({recomputed}): rounding carried forward"
    return f"goes wrong at this step: from {_listing(note.inputs)} it is {recomputed}"


def _close_trust() -> float:
    from .pools import CLOSE_TRUST

    return CLOSE_TRUST


def pool_text(result: Checked) -> str:
    """The max-pool window too close to call on the way to a claim after N updates, or an empty string."""
    if result.pool is None:
        return ""
    return (
        f"{result.pool.text()}: the exact run may route δ to the other entry, so this is judged from float64's "
        f"own value, trusted to {_close_trust():.0e} relative (not a bound)"
    )


def diagnosis_text(result: Checked) -> str:
    """The named mistake as a sentence, or an empty string."""
    d = result.diagnosis
    if d is None:
        return ""
    claim = result.claim
    value = "" if d.value is None else _shown(d.value, claim)
    q = result.quantity
    if d.code == "one_path":
        return f"one path's contribution only: {d.detail} gives {value}; ∂E/∂{q.wrt} sums every path"
    if d.code == "missing_activation_derivative":
        return f"a chain product missing an activation's derivative: {d.detail} it is {value}"
    if d.code == "sign":
        return f"the sign is wrong: {d.detail} gives {value}"
    if d.code == "loss_factor":
        return f"off by a factor of 2, as from the loss's ½: {d.detail} is {value}"
    if d.code == "updated_weights_too_early":
        return f"computed with weights already updated ({d.detail}): that gives {value}"
    if d.code == "wrong_sample":
        return f"another sample's value: {d.detail} is {value}"
    if d.code == "transposed_weight":
        return f"a transposed weight: {d.detail} gradient is {value}"
    if d.code == "no_learning_rate":
        return f"the learning rate left out: {d.detail} is {value}"
    if d.code == "wrong_input":
        return note_text(result)
    if d.code == "rounded_intermediate":
        return note_text(result)
    exact = result.exact if result.exact is not None else Decimal(result.computed)
    if d.code == "truncated":
        rounded = _rounded_text(exact, significant_digits(claim.value))
        k = significant_digits(claim.value)
        return f"matches only when truncated: rounded to {k} digit{'s' if k != 1 else ''} it is {rounded}"
    shown = required_digits_shown(claim.value)
    if result.required:
        return f"shows {shown} significant digit{'s' if shown != 1 else ''}; at least {result.required} are required"
    return "shows no significant digit: a 0 passes only when the value rounds to it"


def _rounded_text(value: Decimal, digits: int) -> str:
    """``value`` rounded half-up to ``digits`` significant digits, as a plain decimal."""
    if value == 0:
        return "0"
    with localcontext(prec=_PRECISION):
        quantum = Decimal(1).scaleb(value.adjusted() - digits + 1)
        return format(value.quantize(quantum, rounding=ROUND_HALF_UP), "f")


def report_text(report: Report, source: str = "") -> str:
    """The report as a table: claimed, computed, agreeing digits, verdict, and a note under each wrong claim."""
    rows = report.results
    ok = len(rows) - report.wrong
    lines = [
        f"{report.spec}: {len(rows)} claim{'s' if len(rows) != 1 else ''}"
        + (f" from {source}" if source else "")
        + f", {ok} ok, {report.wrong} wrong"
        + (
            f" (at least {report.required} significant digits, correctly rounded)"
            if report.required
            else " (lenient: a truncation passes)"
        ),
        "",
    ]
    width = max(4, *(len(r.claim.name) for r in rows))
    claimed_width = max(7, *(len(r.claim.number) for r in rows))
    computed = [_computed_column(r) for r in rows]
    computed_width = max(8, *(len(c) for c in computed))
    lines.append(
        f"{'line':>5}  {'name':<{width}}  {'claimed':<{claimed_width}}  {'computed':<{computed_width}}  digits  verdict"
    )
    for r, shown in zip(rows, computed):
        line = str(r.claim.line) if r.claim.line else "-"
        digits = f"{r.digits}/{r.claim.shown}"
        verdict = "ok" if r.ok else "WRONG"
        lines.append(
            f"{line:>5}  {r.claim.name:<{width}}  {r.claim.number:<{claimed_width}}  "
            f"{shown:<{computed_width}}  {digits:<6}  {verdict}"
        )
        explanation = diagnosis_text(r)
        note = note_text(r)
        if explanation:
            lines.append(f"{'':>5}  ↳ {r.diagnosis.code if r.diagnosis else ''}: {explanation}")
        elif note and not r.ok:
            lines.append(f"{'':>5}  ↳ {note}")
        if r.pool is not None:
            lines.append(f"{'':>5}  ↳ {pool_text(r)}")
    return "\n".join(lines) + "\n"


def report_json(report: Report) -> dict[str, Any]:
    """{"claims": [{"name", "claimed", "computed", "verdict", "digits", …}], "wrong": N}."""
    claims = []
    for r in report.results:
        note = None
        if r.note is not None:
            note = {
                "cause": r.note.cause,
                "inputs": [c.name for c in r.note.inputs],
                "wrong": [c.name for c in r.note.wrong],
                "recomputed": r.note.recomputed,
                "text": note_text(r),
            }
        claims.append(
            {
                "name": r.claim.name,
                "claimed": float(r.claim.value),
                "claimed_text": r.claim.number,
                "computed": r.computed,
                "computed_text": _computed_text(r),
                "verdict": r.verdict,
                "match": r.match,
                "digits": r.digits,
                "shown": r.claim.shown,
                "required": r.required,
                "line": r.claim.line,
                "quantity": r.quantity.name,
                "diagnosis": r.diagnosis.code if r.diagnosis else None,
                "diagnosis_text": diagnosis_text(r) or None,
                "note": note,
                "pool": None
                if r.pool is None
                else {
                    "step": r.pool.step,
                    "sample": r.pool.sample,
                    "layer": r.pool.layer,
                    "channel": r.pool.channel,
                    "window": r.pool.position,
                    "gap": r.pool.gap,
                    "bound": r.pool.bound,
                    "trust": _close_trust(),
                    "text": pool_text(r),
                },
            }
        )
    return {"spec": report.spec, "required_digits": report.required, "claims": claims, "wrong": report.wrong}


def _computed_column(result: Checked) -> str:
    """The computed value for the table: two digits more than the claim (the exact pass's digits for a long one)."""
    if result.exact is not None and result.claim.shown > 15:
        return _rounded_text(result.exact, result.claim.shown + 2)
    return _shown(result.computed, result.claim)


def _computed_text(result: Checked) -> str:
    """The value to two digits more than the claim shows (from the exact pass), as a plain decimal."""
    exact = result.exact if result.exact is not None else Decimal(result.computed)
    return _rounded_text(exact, max(significant_digits(result.claim.value) + 2, 6))
