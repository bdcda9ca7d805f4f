"""The lecture plan: what a lecture says, in order, with no LaTeX (or any medium) in it.

A plan is a tree of sections holding blocks. Sentences are keys into the word files
(``words/<lang>.toml``) with typed fields; math is sympy expressions and
:class:`~derive.present.equations.EquationChain`; the diagram is geometry; the plot
is data points. A renderer (:mod:`.latex`, later HTML) only formats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import sympy as sp

from ..core.network import Network
from ..present.equations import EquationChain, Quantity
from ..present.numbers import DEFAULT_DIGITS

# -- fields of a sentence ---------------------------------------------------------


@dataclass(frozen=True)
class Math:
    """Inline math: an expression, a quantity (∂E/∂w5) or a whole equation chain."""

    expr: sp.Basic | Quantity | EquationChain


@dataclass(frozen=True)
class Num:
    """A number, written with the lecture's digits (or ``digits`` when a sentence needs more)."""

    value: float
    digits: int | None = None
    bracket: bool = False  # inside a product: a negative number in brackets, a positive one bare
    near: tuple[int, float] | None = None  # a saturated out: ±1 and its exact distance (1 − 3.2e-27, not 1)


@dataclass(frozen=True)
class Count:
    """A whole number, with thousands separated."""

    n: int


@dataclass(frozen=True)
class Text:
    """Free text from the spec (untrusted: escaped by the renderer)."""

    text: str


@dataclass(frozen=True)
class Code:
    """A command or identifier, set in typewriter."""

    text: str


@dataclass(frozen=True)
class Say:
    """A sentence of the word files: ``key`` with its fields filled in."""

    key: str
    fields: tuple[tuple[str, Field], ...] = ()


Field: TypeAlias = Math | Num | Count | Text | Code | Say


def say(key: str, **fields: Field | int | str) -> Say:
    """A sentence; ints become :class:`Count`, strs :class:`Text`."""
    typed: list[tuple[str, Field]] = []
    for name, value in fields.items():
        if isinstance(value, bool):
            raise TypeError(name)
        if isinstance(value, int):
            value = Count(value)
        elif isinstance(value, str):
            value = Text(value)
        typed.append((name, value))
    return Say(key, tuple(typed))


# -- blocks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    """Sentences run together; ``note`` marks a short "why" aside."""

    sentences: tuple[Say, ...]
    note: bool = False
    math: tuple[Line, ...] = ()  # a note's own derivation, set inside its box


@dataclass(frozen=True)
class Line:
    """One row of an equation block; ``colour`` ties it to a highlighted path in a diagram."""

    chain: EquationChain
    tag: Say | None = None
    colour: int | None = None


@dataclass(frozen=True)
class Equations:
    """Aligned display equations (kept together on one page)."""

    lines: tuple[Line, ...]
    caption: Say | None = None


@dataclass(frozen=True)
class Standard:
    """A fixed formula of the subject, by name: chain_one, chain_many, bp (BP1–BP4)."""

    name: str


@dataclass(frozen=True)
class MatrixForm:
    """∂E/∂W^l = δ^l (a^{l−1})ᵀ for a small layer, with its symbols."""

    layer: int  # Nielsen's number
    gradients: tuple[tuple[Quantity, ...], ...]
    deltas: tuple[sp.Symbol, ...]
    outs: tuple[sp.Symbol, ...]


@dataclass(frozen=True)
class Table:
    """A table; ``header`` one sentence per column, each cell a field."""

    header: tuple[Say, ...]
    rows: tuple[tuple[Field, ...], ...]
    numeric: tuple[bool, ...]  # right-align this column
    note: Say | None = None
    wrap: int | None = None  # the column whose text wraps (the rest keep their width)
    caption: Say | None = None  # the sentence that introduces it, kept on its page


@dataclass(frozen=True)
class Node:
    id: str
    x: float  # cm
    y: float
    label: sp.Symbol | None
    kind: str  # input, hidden, output, bias
    value: float | None = None  # a bias node shows its value
    tag: str | None = None  # a short name for a small drawing's label (the spec's h1 for out_h1)


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: sp.Symbol | None = None
    value: float | None = None
    pos: float = 0.5  # where along the edge the label sits
    colour: int | None = None  # highlighted as part of a path


@dataclass(frozen=True)
class Diagram:
    """The network drawn as nodes and edges in cm; ``small`` copies highlight paths only."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    dots: tuple[tuple[float, float], ...] = ()  # where a layer's elided neurons are
    small: bool = False


@dataclass(frozen=True)
class Plot:
    """A loss curve: (step, loss) points, already thinned."""

    points: tuple[tuple[int, float], ...]
    log: bool
    xmax: int
    x_label: Say
    y_label: Say


@dataclass(frozen=True)
class Claim:
    """A gradable number of an answer, named as ``derive check`` accepts it (``dE/dw5``, ``w5'``, ``E``)."""

    name: str
    value: float


@dataclass(frozen=True)
class Exercise:
    question: tuple[Block, ...]
    answer: tuple[Block, ...]
    claims: tuple[Claim, ...] = ()  # what a student hands in; empty for a question answered in words


@dataclass(frozen=True)
class Exercises:
    """Questions, then (on a page of their own) worked answers.

    ``part`` picks what is shown: "both" (a lecture's exercises), "questions" alone (an
    exercise sheet, ending with a line to fill in for each claim, after ``hand_in``) or
    "answers" alone (an answer key: each question followed by its worked answer).
    """

    items: tuple[Exercise, ...]
    intro: Say
    part: str = "both"
    hand_in: Say | None = None


@dataclass(frozen=True)
class Panel:
    """One map drawn as a grid of cells: a number per cell (None: a blank cell), and a mark per cell.

    A mark picks the cell's colour: 0 none, 1 :data:`MARK_USE` (what a kernel weight multiplies), 2
    :data:`MARK_STRONG` (a use whose product is not 0, the weight's own kernel entry), 3 :data:`MARK_WIN`
    (a max pool's winner), 4 :data:`MARK_PAD` (the zero padding around an input). Rows and columns are numbered from ``row_start`` and ``col_start``
    (1-based, as the names are: a crop of a large map keeps the map's numbers).
    """

    cells: tuple[tuple[float | None, ...], ...]
    marks: tuple[tuple[int, ...], ...]
    label: Field
    row_start: int = 1
    col_start: int = 1


MARK_USE, MARK_STRONG, MARK_WIN, MARK_PAD = 1, 2, 3, 4


@dataclass(frozen=True)
class Grid:
    """Maps side by side (a kernel over its input, a δ map, a pooled map), with a caption above and a note
    below (what a crop leaves out); the numbers to ``digits`` significant digits."""

    panels: tuple[Panel, ...]
    caption: Say | None = None
    note: Say | None = None
    digits: int = 4
    numbers: bool = True  # False: coloured cells only (the kernel's positions as it slides)


Block: TypeAlias = Paragraph | Equations | Standard | MatrixForm | Table | Diagram | Plot | Exercises | Grid


@dataclass(frozen=True)
class Section:
    title: Say
    blocks: tuple[Block, ...] = ()
    subsections: tuple[Section, ...] = ()
    key: str = ""  # a stable name for tests: network, notation, forward, loss, layer3, …
    numbered: bool = True
    new_page: bool = False


@dataclass(frozen=True)
class LecturePlan:
    """A whole lecture; ``network`` spells symbols, ``point`` gives the numbers substituted."""

    lang: str
    title: str
    description: str
    source: str  # the spec's file name, shown on the title page
    sections: tuple[Section, ...]
    network: Network = field(repr=False)
    point: Mapping[sp.Symbol, float] = field(repr=False)
    digits: int = 8
    subtitle: Say | None = None  # a line under the title (an exercise sheet's "Student 07")

    def section(self, key: str) -> Section:
        """The section (or subsection) with this key."""
        for s in self.walk():
            if s.key == key:
                return s
        raise KeyError(key)

    def walk(self) -> list[Section]:
        """Every section and subsection, in reading order."""
        out: list[Section] = []

        def visit(s: Section) -> None:
            out.append(s)
            for sub in s.subsections:
                visit(sub)

        for s in self.sections:
            visit(s)
        return out


@dataclass(frozen=True)
class Options:
    """What a lecture is asked for: its language, digits, training steps, exercises, Mazur's extra step."""

    lang: str = "en"
    digits: int = DEFAULT_DIGITS
    steps: int | None = None
    exercises: bool = False
    mazur_steps: bool = False  # Mazur's intermediate step ∂E/∂out_h = Σ_o ∂E_o/∂out_h in the hidden layer
