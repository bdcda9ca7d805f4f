"""Layer kinds: each owns its maths in one place, as micrograd keeps an op's forward rule beside its derivative.

A kind says how a layer's nets are made from the previous layer's outs and its parameters:

- its symbolic net definitions (what :class:`derive.core.network.Network` writes and differentiates);
- its edges in the graph, a parameter's *uses*: a weight used once, a shared bias once per neuron;
- what flows back to the previous layer's outs (the Σ δ·w of BP2);
- its exact evaluation, for the displayed digits (:class:`derive.core.chain.ExactPoint`);
- its lines of generated code (:class:`derive.codegen.modules.VectorModule`), as templates of real code.

The activation is not part of the kind: every kind's nets go through the layer's activation rule.
Dense is the first kind; a convolution or a recurrence is another class here, not branches elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import sympy as sp

from ..spec.reading import BiasKind, LayerSpec

Dyadic = tuple[int, int]  # m · 2**e, exactly


@dataclass(frozen=True)
class Use:
    """One use of a parameter or an out: it feeds net ``row`` of the layer, with local derivative ``factor``."""

    row: int
    factor: sp.Expr


class Dense:
    """A fully connected layer: net_j = Σ_k w_jk · out_k + b_j (Nielsen's z = W a + b)."""

    name = "dense"

    # -- the maths -----------------------------------------------------------------

    @staticmethod
    def net(weights: Sequence[sp.Expr], outs: Sequence[sp.Expr], bias: sp.Expr | None) -> sp.Expr:
        """net_j from row j of the weights, the previous layer's outs and the neuron's bias."""
        total = sp.Add(*(w * o for w, o in zip(weights, outs)))
        return total + bias if bias is not None else total

    @staticmethod
    def weight_uses(row: int, col: int, outs: Sequence[sp.Expr]) -> list[Use]:
        """w_jk is used once: in net_j, where ∂net_j/∂w_jk = out_k."""
        return [Use(row, outs[col])]

    @staticmethod
    def bias_uses(row: int | None, size: int) -> list[Use]:
        """A neuron's bias feeds its own net; a shared bias feeds every net of the layer (one use each)."""
        rows = range(size) if row is None else (row,)
        return [Use(j, sp.S.One) for j in rows]

    @staticmethod
    def out_uses(col: int, weight_column: Sequence[sp.Expr]) -> list[Use]:
        """out_k of the previous layer feeds every net j, with ∂net_j/∂out_k = w_jk."""
        return [Use(j, w) for j, w in enumerate(weight_column)]

    @staticmethod
    def back(deltas: Sequence[sp.Expr], weight_column: Sequence[sp.Expr]) -> sp.Expr:
        """∂E/∂out_k of the previous layer: Σ_j δ_j w_jk (BP2 before the activation's derivative)."""
        return sp.Add(*(d * w for d, w in zip(deltas, weight_column)))

    @staticmethod
    def net_size(prev_size: int, prev_out_size: int, biased: bool) -> int:
        """Nodes of net_j's closed form when each previous out has ``prev_out_size`` nodes, without building it."""
        return (prev_size + biased > 1) + 2 * prev_size + prev_size * prev_out_size + biased

    # -- floats and exact numbers -------------------------------------------------------

    @staticmethod
    def net_terms(weights: Sequence[float], outs: Sequence[float], bias: float | None) -> list[float]:
        """The terms of net_j's sum as floats (their size tells rounding noise from a true 0)."""
        terms = [w * o for w, o in zip(weights, outs)]
        return [*terms, bias] if bias is not None else terms

    @staticmethod
    def exact_net(
        weights: Sequence[float], outs: Sequence[Dyadic], bias: sp.Float | float | None, digits: int
    ) -> sp.Float:
        """net_j exactly (Σ w·o + b in integers), rounded once to ``digits``."""
        return exact_dot(weights, outs, bias, digits)

    @staticmethod
    def exact_back(weight_column: Sequence[float], deltas: Sequence[Dyadic], digits: int) -> sp.Float:
        """Σ_j δ_j w_jk exactly, rounded once to ``digits``."""
        return exact_dot(weight_column, deltas, None, digits)

    # -- generated lines (the exported module) ---------------------------------------------

    @staticmethod
    def forward_lines(layer: LayerSpec, prev: str, prev_size: int = 0) -> list[str]:
        """z = a Wᵀ + b for a batch (rows are samples); for a narrow layer on a wide input, as (W aᵀ)ᵀ in float64."""
        l = layer.number
        biased = layer.bias.kind is not BiasKind.NONE
        lines = [f"# z{l} = a{l - 1} W{l}ᵀ + b{l}" if biased else f"# z{l} = a{l - 1} W{l}ᵀ"]
        if transposed_forward(layer.size, prev_size):
            lines += [
                f"# in float64 as (W{l} a{l - 1}ᵀ)ᵀ, a transposed view: faster for a narrow layer on a wide input (measured)",
                f"z{l} = (W{l} @ {prev}.T).T if {prev}.dtype == np.float64 else {prev}.dot(W{l}.T)",
            ]
        else:
            lines.append(f"z{l} = {prev}.dot(W{l}.T)")  # .dot: the same BLAS call as @, less overhead on small arrays
        return [*lines, *([f"z{l} += b{l}"] if biased else [])]

    @staticmethod
    def back_lines(layer: LayerSpec) -> list[str]:
        """δ of the previous layer before its activation's derivative: δ{l} W{l} (BP2)."""
        l = layer.number
        return [f"d{l - 1} = d{l}.dot(W{l})"]

    @staticmethod
    def gradient_lines(layer: LayerSpec, prev: str, prev_size: int) -> list[str]:
        """∂E/∂W = δᵀ a (BP4) and ∂E/∂b = Σ δ (BP3) for a batch, in the grads dict."""
        l = layer.number
        kind = layer.bias.kind
        lines = [f"# ∂E/∂W{l} = δ{l}ᵀ a{l - 1}   (BP4)"]
        if kind is BiasKind.SHARED:
            lines.append(f"# ∂E/∂b{l} = Σ_j δ{l}_j   (BP3; the shared bias feeds every neuron of the layer)")
        elif kind is BiasKind.PER_NEURON:
            lines.append(f"# ∂E/∂b{l} = δ{l} summed over the batch   (BP3)")
        # one sample: δᵀa is an outer product, which .dot does 3× faster than @ (k = 1); a batch: δᵀa as written,
        # never (aᵀδ)ᵀ, which is slower at one thread (72 against 97 µs for 784→30 at batch 64) and not C-contiguous
        lines += ["if single:", f'    grads["W{l}"] = d{l}.T.dot({prev})']
        if kind is BiasKind.PER_NEURON:
            lines.append(f'    grads["b{l}"] = d{l}[0]')
        lines += ["else:", f'    grads["W{l}"] = d{l}.T @ {prev}']
        if kind is BiasKind.PER_NEURON:
            lines.append(f'    grads["b{l}"] = d{l}.sum(axis=0)')
        if kind is BiasKind.SHARED:
            lines.append(f'grads["b{l}"] = d{l}.sum()')
        return lines


def transposed_forward(size: int, prev_size: int) -> bool:
    """Whether a dense layer's z = a Wᵀ is computed as (W aᵀ)ᵀ (in float64; float32 keeps a Wᵀ).

    Measured at one thread with OpenBLAS 0.3.31 (SkylakeX kernel, a 2-vCPU Intel Xeon), batches of 64 and 256:
    from 256 or more inputs into a layer whose size is not a multiple of 16, (W aᵀ)ᵀ took 0.65–0.8× the
    time of a Wᵀ for 30 neurons and 0.85–1.0× for 10, 20, 48 and 100; for 16, 32 and 64 neurons 0.93–1.22×,
    for 1024 neurons 1.2×, and in float32 slower at every size tried (1.2× for 784→30 at batch 256).
    """
    return prev_size >= 256 and size <= 128 and size % 16 != 0


KINDS = {Dense.name: Dense()}


def kind_of(layer: LayerSpec) -> Dense:
    """The kind of a (non-input) layer."""
    return KINDS[layer.kind]


# --------------------------------------------------------------------------
# exact sums


def dyadic(value: float | sp.Float) -> Dyadic:
    """(m, e) with value = m · 2**e exactly (a float, or a finite sympy Float)."""
    if isinstance(value, float):
        numerator, denominator = value.as_integer_ratio()
        return numerator, 1 - denominator.bit_length()
    sign, mantissa, exponent, _ = sp.Float(value)._mpf_
    return (-mantissa if sign else mantissa), exponent


def exact_dot(weights: Sequence[float], outs: Sequence[Dyadic], bias: sp.Float | float | None, digits: int) -> sp.Float:
    """Σ w·o (+ b) computed exactly in integers, then rounded to ``digits``: a net, or the sum of a hidden δ.

    ``outs`` are (m, e) pairs (see :func:`dyadic`); weights and bias are the given floats.
    """
    ws = [dyadic(w) for w in weights]
    terms = [(mw * mo, ew + eo) for (mw, ew), (mo, eo) in zip(ws, outs)]
    if bias is not None:
        terms.append(dyadic(bias))
    low = min(e for _, e in terms)
    total = sum(m << (e - low) for m, e in terms)
    with mpmath.workdps(digits):
        return sp.Float(mpmath.mpf((total, low)), digits)
