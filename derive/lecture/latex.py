"""The LaTeX renderer: a :class:`LecturePlan` becomes the context of templates/lecture.tex.j2.

Only formatting happens here: sentences are filled from the word files, equation
chains printed by :class:`~derive.present.equations.LatexChainPrinter`, long lines
broken (never shrunk), the diagram turned into TikZ coordinates. Free text is
escaped; everything produced here is marked :class:`Tex`.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import sympy as sp

from ..present.equations import (
    Elided,
    EquationChain,
    Formula,
    Grouped,
    LatexChainPrinter,
    Numbers,
    Partial,
    Quantity,
    Side,
    Substituted,
    chain_depth,
    chain_ordered,
    plain_fences,
    reading_order,
    tidy,
)
from ..present.numbers import latex_bracket, latex_number
from ..present.render import render
from ..present.texsafe import Tex, escape, tex
from .plan import (
    Block,
    Code,
    Count,
    Diagram,
    Equations,
    Exercises,
    Field,
    Grid,
    LecturePlan,
    Line,
    MatrixForm,
    Num,
    Paragraph,
    Plot,
    Say,
    Section,
    Standard,
    Table,
    Text,
)

LINE_WIDTH = 66  # visible characters of one display row, estimated (the text is 16.6 cm wide)
SIDE_WIDTH = 58  # a side longer than this is broken into rows
PATH_COLOURS = ("pathA", "pathB", "pathC", "pathD")
GRID_MARKS = ("", "markUse", "markStrong", "markWin", "markPad")  # a grid cell's colour by its mark (plan.MARK_*)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
LINE_PT = 13.6  # an English line (11pt type) in pt: the unit a Room's size is compared in


@dataclass(frozen=True, order=False)
class Room:
    """Room kept free below a heading or caption: lines of text, which are taller in Chinese (ctex sets them 1.3
    times apart), and a fixed height in pt for drawings and plots, which are as tall in either language."""

    lines: float = 0
    pt: float = 0

    def __add__(self, other: Room | float) -> Room:
        if isinstance(other, Room):
            return Room(self.lines + other.lines, self.pt + other.pt)
        return Room(self.lines + other, self.pt)

    __radd__ = __add__

    def __bool__(self) -> bool:
        return self.size > 0

    @property
    def size(self) -> float:
        """The room in English lines, for comparing with the limits below (in either language)."""
        return self.lines + self.pt / LINE_PT

    def at_most(self, lines: float) -> Room:
        """This room, or ``lines`` lines of text when it is larger."""
        return self if self.size <= lines else Room(lines)

    def at_least(self, lines: float) -> Room:
        return self if self.size >= lines else Room(lines)

    @property
    def length(self) -> Tex:
        """The length \\keepspace is given."""
        if not self.pt:
            return tex(f"{self.lines:g}\\baselineskip")
        return tex(f"\\dimexpr {self.lines:g}\\baselineskip+{self.pt:.0f}pt\\relax")


@cache
def words(lang: str) -> dict[str, str]:
    """Every sentence of a language, from words/<lang>.toml."""
    path = resources.files("derive.lecture") / "words" / f"{lang}.toml"
    return dict(tomllib.loads(path.read_text(encoding="utf-8")))


def plan_words(plan: LecturePlan) -> dict[str, str]:
    """The words of the plan's language, in the plan's notation: a network named in Nielsen's a and z has its
    sentences say ∂E/∂z, a_j and y where the words write ∂E/∂net, out_j and target."""
    found = words(plan.lang)
    first = plan.network.layers[-1].neurons[0]
    name = plan.network.latex.get(first.net, "") if first.net is not None else ""
    if not name.startswith("z"):
        return found
    nielsen = {r"\mathrm{net}": " z", r"\mathrm{out}": " a", r"\mathrm{target}": " y"}  # \partial z, not \partialz
    for key, text in found.items():
        for ours, his in nielsen.items():
            text = text.replace(ours, his)
        found[key] = text
    return found


def languages() -> tuple[str, ...]:
    folder = resources.files("derive.lecture") / "words"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


# text outside math that pdflatex (T1, utf8) cannot set directly
_UNICODE_TEXT = {"…": r"\dots{}", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "≤": r"$\le$"}


def _text(text: str, unicode_ok: bool) -> str:
    if unicode_ok:
        return escape(text, True)
    return "".join(_UNICODE_TEXT.get(ch) or escape(ch, False) for ch in text)


def visible_width(latex: str) -> float:
    """A rough count of the characters a formula shows (scripts count less, commands one)."""
    width = 0.0
    depth = 0
    script = False
    i = 0
    while i < len(latex):
        ch = latex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", latex[i:])
            name = m.group(1) if m else ""
            i += len(name) + 1
            if name in ("cdot", "partial", "delta", "eta", "sum", "odot", "dots", "sigma", "tanh", "log"):
                width += 1 if name not in ("tanh", "log") else 3
            elif name == "_":  # an escaped underscore of a name (z2_1_1_1) shows as one
                width += 0.7 if script else 1.0
            continue
        if ch in "^_":
            script = True
            depth = 0
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth <= 0:
                script = False
        elif ch != " ":
            width += 0.7 if script else 1.0
        i += 1
    return width


class LatexRenderer:
    def __init__(self, plan: LecturePlan) -> None:
        self.plan = plan
        self.words = plan_words(plan)
        self.unicode_ok = plan.lang != "en"  # pdflatex has no glyphs beyond Latin-1
        self.names = plan.network.latex
        self.printer = LatexChainPrinter(self.names, plan.point, plan.digits, chain_depth(plan.network))

    # -- sentences ------------------------------------------------------------

    def sentence(self, s: Say) -> Tex:
        template = self.words[s.key]
        fields = dict(s.fields)
        out = []
        for i, segment in enumerate(template.split("$")):
            math = i % 2 == 1
            pos = 0
            pieces = []
            for m in _PLACEHOLDER.finditer(segment):
                before = segment[pos : m.start()]
                pieces.append(before if math else _text(before, self.unicode_ok))
                pieces.append(self.field(fields[m.group(1)], math))
                pos = m.end()
            rest = segment[pos:]
            pieces.append(rest if math else _text(rest, self.unicode_ok))
            body = "".join(pieces)
            out.append(f"${body}$" if math else body)
        return tex("".join(out))

    def field(self, f: Field, in_math: bool = False) -> str:
        if isinstance(f, Say):
            inner = self.sentence(f)
            return rf"\text{{{inner}}}" if in_math else inner
        if isinstance(f, Count):
            return f"{f.n:,}" if self.plan.lang == "en" else str(f.n)
        if isinstance(f, Text):
            text = _text(f.text, self.unicode_ok)
            return rf"\text{{{text}}}" if in_math else text
        if isinstance(f, Code):
            text = rf"\texttt{{{_text(f.text, self.unicode_ok).replace('-', '-{}')}}}"  # -- is no dash here
            return rf"\text{{{text}}}" if in_math else text
        if isinstance(f, Num):
            body = latex_number(f.value, f.digits or self.plan.digits)
            body = latex_bracket(body, f.value) if f.bracket else body
            if f.near is not None:
                whole, gap = f.near
                body = f"{whole} {'-' if gap < 0 else '+'} {latex_number(abs(gap), f.digits or self.plan.digits)}"
        else:
            body = self.math(f.expr, inline=True)
        return body if in_math else f"${body}$"

    def math(self, expr: sp.Basic | Quantity | EquationChain, inline: bool = False) -> str:
        """Math for a sentence: a derivative in running text is written ∂E/∂w (a fraction would be set tiny)."""
        if isinstance(expr, EquationChain):
            return " = ".join(self.printer.sides(expr))
        if inline and isinstance(expr, Partial):
            return rf"\partial {self.name(expr.of)}/\partial {self.name(expr.wrt)}"
        if isinstance(expr, sp.Basic) and not isinstance(expr, sp.Symbol):
            return self.printer.formula(expr)
        return self.printer.quantity(expr)

    def name(self, symbol: sp.Symbol) -> str:
        return self.names.get(symbol) or symbol.name

    # -- equations ---------------------------------------------------------------

    def rows(self, line: Line) -> list[str]:
        """One chain as align rows: on one row when it fits, else a side per row, long sides broken.

        A line tied to a path is set in the path's colour, as in the small diagram.
        """
        chain = line.chain
        parts = self.printer.sides(chain)
        colour = PATH_COLOURS[line.colour % len(PATH_COLOURS)] if line.colour is not None else None

        def paint(text: str) -> str:
            return rf"\textcolor{{{colour}}}{{{text}}}" if colour else text

        lhs = paint(parts[0])
        tag = rf" && \text{{{self.sentence(line.tag)}}}" if line.tag is not None else ""
        if len(parts) == 1:
            return [lhs + tag]
        one = f"{lhs} &= " + " = ".join(paint(p) for p in parts[1:])
        if visible_width(one) <= LINE_WIDTH:
            return [one + tag]
        sides = self._shown_sides(chain, parts)
        rows: list[str] = []
        for side, text in sides:
            broken = self.break_side(side, text) if visible_width(text) > SIDE_WIDTH else [text]
            rows.append("&= " + paint(broken[0]))
            rows.extend(r"&\quad " + paint(b) for b in broken[1:])
        rows[0] = f"{lhs} {rows[0]}" + tag
        return rows

    def _shown_sides(self, chain: EquationChain, parts: list[str]) -> list[tuple[Side | None, str]]:
        """The shown sides with the chain side each came from (to break it by its structure)."""
        shown: list[tuple[Side | None, str]] = []
        remaining = list(parts[1:])
        for side in chain.sides:
            if not remaining:
                break
            if isinstance(side, Substituted) and not self.printer.point:
                continue
            text = self.printer.side(side)
            if text == remaining[0]:
                shown.append((side, remaining.pop(0)))
        shown.extend((None, t) for t in remaining)
        return shown

    def break_side(self, side: Side | None, text: str) -> list[str]:
        if isinstance(side, Formula | Substituted) and isinstance(side.expr, sp.Expr):
            show: Callable[[sp.Basic], str] = (
                self.printer.formula if isinstance(side, Formula) else self.printer.substituted
            )
            depth = self.printer.depth
            order = (lambda fs: chain_ordered(fs, depth)) if depth is not None else None
            return [plain_fences(row) for row in _break(tidy(side.expr), show, SIDE_WIDTH, order)]
        if isinstance(side, Grouped):
            # (a·b + c·d + …) · e over rows: the bracket spans them, sized for the fractions inside
            rows, current = [], ""
            for t in self.printer.grouped_terms(side):
                candidate = f"{current} + {t}" if current else t
                if current and visible_width(candidate) > SIDE_WIDTH:
                    rows.append(current)
                    current = "+ " + t
                else:
                    current = candidate
            rows.append(current)
            if side.factor:
                rows[0] = r"\biggl(" + rows[0]
                rows[-1] += r"\biggr)" + "".join(self.printer.times + self.printer.quantity(q) for q in side.factor)
            return rows
        if isinstance(side, Numbers):
            joiner = self.printer.times if side.op == "*" else self.printer.plus
            texts = [self.printer.bracketed(v) for v in side.values]
            lines, current = [], ""
            for t in texts:
                candidate = f"{current}{joiner}{t}" if current else t
                if current and visible_width(candidate) > SIDE_WIDTH:
                    lines.append(current)
                    current = joiner.strip() + " " + t
                else:
                    current = candidate
            lines.append(current)
            return lines
        return [text]

    # -- blocks --------------------------------------------------------------------

    def block(self, b: Block) -> dict[str, Any]:
        if isinstance(b, Paragraph):
            return {
                "kind": "paragraph",
                "text": tex(" ".join(self.sentence(s) for s in b.sentences)),
                "note": b.note,
                "math": [tex(r) for line in b.math for r in self.rows(line)],
                "keep": Room(),  # set where a drawing follows (section)
            }
        if isinstance(b, Equations):
            per_line = [[tex(r) for r in self.rows(line)] for line in b.lines]
            rows = [r for line_rows in per_line for r in line_rows]
            # a page may break between two chains, never inside one (\\* joins a chain's rows)
            ends = [k == len(line_rows) - 1 for line_rows in per_line for k in range(len(line_rows))]
            tagged = any(line.tag is not None for line in b.lines)
            return {
                "kind": "equations",
                "caption": self.sentence(b.caption) if b.caption else None,
                "rows": rows,
                "ends": ends,
                "keep_before": Room(),  # set where a "where" block follows (section)
                "tagged": tagged,
                # lines of height to keep with the caption (fractions are tall); a block of several chains may break
                # between them, so its caption needs only the first few on its page
                "keep": Room(min(2 * len(rows) + 3, 30 if len(per_line) == 1 else 2 * len(per_line[0]) + 9)),
            }
        if isinstance(b, Standard):
            return {"kind": "standard", "body": self.standard(b.name)}
        if isinstance(b, MatrixForm):
            return {"kind": "display", "body": self.matrix(b)}
        if isinstance(b, Table):
            cells: list[list[Tex]] = [[tex(self.field(c)) for c in row] for row in b.rows]
            return {
                "kind": "table",
                "columns": tex(
                    "".join(
                        r"p{0.55\linewidth}" if i == b.wrap else ("r" if n else "l") for i, n in enumerate(b.numeric)
                    )
                ),
                "header": [self.sentence(h) for h in b.header],
                "rows": cells,
                # a cell with a sub- and a superscript (a^l_j above z^l_j) touches the next row at normal spacing
                "stretch": any("^" in c and "_" in c for row in cells for c in row),
                "note": self.sentence(b.note) if b.note else None,
                "long": len(b.rows) > 30,
                "caption": self.sentence(b.caption) if b.caption else None,
                "keep": Room(min(len(b.rows) + 5, 30)),
            }
        if isinstance(b, Diagram):
            ys = [n.y for n in b.nodes] or [0.0]
            # its height, kept with the heading above it: from the top node's top to the bottom node's bottom (the
            # nodes are 11 mm, or 7.5 mm in a small copy), and the space around a centred drawing. In pt, not in
            # lines: a drawing is no taller in Chinese, whose lines are 1.3 times as far apart
            height = (max(ys) - min(ys) + (0.75 if b.small else 1.1)) * PT_PER_CM + DRAWING_SPACE
            return {"kind": "diagram", **self.diagram(b), "keep": Room(pt=min(height, 30 * LINE_PT))}
        if isinstance(b, Plot):
            return {"kind": "plot", **self.plot(b), "keep": Room(pt=PLOT_PT)}
        if isinstance(b, Grid):
            return self.grid(b)
        assert isinstance(b, Exercises)
        return {
            "kind": "exercises",
            "intro": self.sentence(b.intro),
            "questions": [[self.block(q) for q in item.question] for item in b.items],
            "answers": [[self.block(a) for a in item.answer] for item in b.items],
            "answers_title": tex(self.sentence(Say("answers"))),
            "part": b.part,
            "hand_in": self.sentence(b.hand_in) if b.hand_in else None,
            "claims": [tex(self.field(Code(f"{c.name} ="))) for item in b.items for c in item.claims],
        }

    def grid(self, g: Grid) -> dict[str, Any]:
        """Maps as tabulars side by side (a line may break between them), marked cells coloured."""
        panels = []
        tallest = 0
        for p in g.panels:
            n = max((len(row) for row in p.cells), default=0)
            tallest = max(tallest, len(p.cells))
            if g.numbers:
                columns = "r" + "|r" * n + "|"
                head = " & ".join([""] + [rf"\textcolor{{gray}}{{\scriptsize {p.col_start + c}}}" for c in range(n)])
            else:  # coloured squares only
                columns = r"@{}c@{\,}" + "|p{2.4mm}" * n + "|"
                head = ""
            lines = [
                rf"\begin{{tabular}}[t]{{@{{}}c@{{}}}}{self.field(p.label)}\\[2pt]",
                rf"\begin{{tabular}}{{{columns}}}",
            ]
            if head:
                lines.append(head + r" \\")
            lines.append(rf"\cline{{2-{n + 1}}}")
            for r, row in enumerate(p.cells):
                cells = []
                for c, value in enumerate(row):
                    mark = p.marks[r][c] if p.marks else 0
                    colour = rf"\cellcolor{{{GRID_MARKS[mark]}}}" if mark else ""
                    if not g.numbers:
                        text = r"\rule{0pt}{2.4mm}"
                    elif value is None:
                        text = r"$\cdot$"
                    else:
                        text = f"${latex_number(value, g.digits)}$"
                    cells.append(colour + text)
                number = rf"\textcolor{{gray}}{{\scriptsize {p.row_start + r}}}" if g.numbers else ""
                lines.append(" & ".join([number, *cells]) + rf" \\ \cline{{2-{n + 1}}}")
            lines.append(r"\end{tabular}\end{tabular}")
            panels.append("\n".join(lines))
        size = r"\small" if max((len(r) for p in g.panels for r in p.cells), default=0) <= 6 else r"\footnotesize"
        return {
            "kind": "grid",
            "caption": self.sentence(g.caption) if g.caption else None,
            "note": self.sentence(g.note) if g.note else None,
            "body": tex(
                size
                + r"\setlength{\tabcolsep}{3pt}\arrayrulecolor{gray!60}"
                + "\n"
                + "\\hspace{1.5em plus 1em}\n".join(panels)
            ),
            "keep": Room(min(tallest + 5, 30)),
        }

    def standard(self, name: str) -> Tex:
        w = self.sentence
        if name == "chain_one":
            return tex(
                r"\frac{\partial E}{\partial q} = \frac{\partial E}{\partial v}\,\frac{\partial v}{\partial u}\,\frac{\partial u}{\partial q}."
            )
        if name == "chain_many":
            paths, edges = w(Say("paths_word")), w(Say("edges_word"))
            return tex(
                rf"\frac{{\partial E}}{{\partial q}} = \sum_{{\text{{{paths}: }} q \to \dots \to E}} \ "
                rf"\prod_{{\text{{{edges}: }} u \to v}} \frac{{\partial v}}{{\partial u}}."
            )
        assert name == "bp"
        tags = {k: w(Say(k)) for k in ("bp1", "bp2", "bp3", "bp4")}
        return tex(
            r"\begin{aligned}"
            rf"\delta^{{L}} &= \nabla_{{a}} C \odot f'(z^{{L}}) && \text{{BP1: {tags['bp1']}}} \\"
            rf"\delta^{{l}} &= \bigl((w^{{l+1}})^{{\top}} \delta^{{l+1}}\bigr) \odot f'(z^{{l}}) && \text{{BP2: {tags['bp2']}}} \\"
            rf"\frac{{\partial C}}{{\partial b^{{l}}_{{j}}}} &= \delta^{{l}}_{{j}} && \text{{BP3: {tags['bp3']}}} \\"
            rf"\frac{{\partial C}}{{\partial w^{{l}}_{{jk}}}} &= a^{{l-1}}_{{k}}\, \delta^{{l}}_{{j}} && \text{{BP4: {tags['bp4']}}}"
            r"\end{aligned}"
        )

    def matrix(self, m: MatrixForm) -> Tex:
        def column(entries: list[str]) -> str:
            return r"\begin{pmatrix}" + r" \\ ".join(entries) + r"\end{pmatrix}"

        def slashed(q: Quantity) -> str:  # ∂E/∂w: a fraction inside a matrix would be set too small
            assert isinstance(q, Partial)
            return rf"\partial E/\partial {self.names[q.wrt]}"

        grads = (
            r"\begin{pmatrix}"
            + r" \\ ".join(" & ".join(slashed(q) for q in row) for row in m.gradients)
            + r"\end{pmatrix}"
        )
        deltas = column([self.names[d] for d in m.deltas])
        outs = r"\begin{pmatrix}" + " & ".join(self.names[o] for o in m.outs) + r"\end{pmatrix}"
        one = rf"{grads} = {deltas} {outs} \qquad (l = {m.layer})"
        if visible_width(one) <= LINE_WIDTH:
            return tex(one)
        # long weight names: the product goes on a row of its own
        return tex(rf"\begin{{aligned}} &{grads} \qquad (l = {m.layer}) \\ &= {deltas} {outs} \end{{aligned}}")

    def diagram(self, d: Diagram) -> dict[str, Any]:
        nodes = []
        for n in d.nodes:
            if n.kind in ("bias", "biaslabel"):
                label = self.names[n.label] if n.label is not None else "1"
                if n.value is not None:
                    label += " = " + self.printer.number(n.value)
            elif n.tag is not None:  # a small copy: the neuron's short name
                label = rf"\text{{{_text(n.tag, self.unicode_ok)}}}"
            else:
                label = self.names[n.label] if n.label is not None else ""
            style = {
                "input": "inputneuron",
                "hidden": "neuron",
                "output": "outputneuron",
                "bias": "biasnode",
                "biaslabel": "biaslabel",
            }[n.kind]
            if d.small:
                style += ",small"
            nodes.append({"id": n.id, "x": f"{n.x:.2f}", "y": f"{n.y:.2f}", "label": tex(label), "style": style})
        edges = []
        for e in d.edges:
            label = ""
            if e.label is not None:
                label = self.names[e.label] + (" = " + self.printer.number(e.value) if e.value is not None else "")
            colour = None
            if e.colour is not None:
                colour = "black" if e.colour < 0 else PATH_COLOURS[e.colour % len(PATH_COLOURS)]
            edges.append(
                {
                    "src": e.src,
                    "dst": e.dst,
                    "label": tex(label),
                    "pos": f"{e.pos:.2f}",
                    "colour": colour,
                    "bias": e.src.startswith("bias"),
                }
            )
        return {"nodes": nodes, "edges": edges, "dots": [(f"{x:.2f}", f"{y:.2f}") for x, y in d.dots], "small": d.small}

    def plot(self, p: Plot) -> dict[str, Any]:
        return {
            "coordinates": tex(" ".join(f"({i},{v:.6e})" for i, v in p.points)),
            "log": p.log,
            "xmax": p.xmax,
            "y_precision": _tick_precision([v for _, v in p.points]) if not p.log else None,
            "step_axis": self.sentence(p.x_label),
            "loss_axis": self.sentence(p.y_label),
        }

    # -- the document --------------------------------------------------------------------

    def section(self, s: Section, level: int = 1) -> dict[str, Any]:
        blocks = [self.block(b) for b in s.blocks]
        for b, after in itertools.pairwise(blocks):
            if b["kind"] == "equations" and not b["caption"] and after["kind"] == "equations" and after["caption"]:
                # a formula and the "where" block that defines its symbols share a page
                need = Room(len(b["rows"]) * 2) + after["keep"].at_most(EQUATIONS_KEEP)
                b["keep_before"] = need if need.size <= HEADING_KEEP else Room()  # a long formula fills its page
            if b["kind"] == "paragraph" and after["kind"] in ("plot", "diagram"):
                # the sentence that introduces a drawing stays on its page ("Repeating the update 1,000 times:")
                # before a plot: the sentence is one line, and the space around the plot one more; a drawing's
                # sentence may take two
                b["keep"] = (Room(2) if after["kind"] == "plot" else Room(3)) + after["keep"]
        subsections = [self.section(sub, level + 1) for sub in s.subsections]
        keep = _heading_keep(level, blocks, subsections)
        return {
            "title": self.sentence(s.title),
            "numbered": s.numbered,
            "new_page": s.new_page,
            "level": level,
            "blocks": blocks,
            "subsections": subsections,
            "keep": keep,
        }

    def context(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "lang": plan.lang,
            "title": escape(plan.title, unicode_ok=self.unicode_ok),
            "description": escape(plan.description, unicode_ok=self.unicode_ok),
            "generated": self.sentence(Say("generated", (("source", Code(plan.source)),))),
            "sections": [self.section(s) for s in plan.sections],
            "subtitle": self.sentence(plan.subtitle) if plan.subtitle else None,
            # a document with no drawing (an exercise sheet) loads no TikZ, pgfplots or hyperref: it builds faster
            "graphics": any(isinstance(b, Diagram | Plot) for s in plan.walk() for b in s.blocks),
        }


def _break(
    expr: sp.Expr,
    show: Callable[[sp.Basic], str],
    width: int,
    order: Callable[[list[sp.Basic]], list[sp.Basic]] | None = None,
) -> list[str]:
    """Rows for a long expression: sums split into terms, products into factors (in ``order``)."""
    whole = show(expr)
    if visible_width(whole) <= width:
        return [whole]
    if isinstance(expr, sp.Add):
        lines: list[str] = []
        current = ""
        for term in reading_order(expr):
            negative = term.could_extract_minus_sign()
            body = show(-term if negative else term)
            sign = "- " if negative else ("+ " if current or lines else "")
            piece = f"{sign}{body}"
            if current and visible_width(current + " " + piece) > width:
                lines.append(current)
                current = piece
            else:
                current = f"{current} {piece}".strip()
        lines.append(current)
        return lines
    if isinstance(expr, sp.Mul):
        factors = list(sp.Mul.make_args(expr))
        if order is not None and not all(f.is_Symbol for f in factors):
            factors = order(factors)
        lines = []
        current = ""
        paired: set[int] = set()  # f(net)(1 − f(net)): one unit, no · and no break inside
        for i in range(len(factors) - 1):
            a, b = factors[i], factors[i + 1]
            if isinstance(a, sp.Function | sp.Symbol) and isinstance(b, sp.Add) and b.has(a) and i not in paired:
                paired.add(i + 1)
        for i, factor in enumerate(factors):
            if i in paired:
                continue
            body = show(factor)
            if i + 1 in paired:
                # numbers keep their ·: 0.59 · (1 − 0.59); symbols are juxtaposed: f(net)(1 − f(net))
                joiner = r" \cdot " if re.match(r"(\\left)?[-(\d]", body) else ""
                body = rf"{body}{joiner}\left({show(factors[i + 1])}\right)"
            elif isinstance(factor, sp.Add) and visible_width(body) > width:
                # a long bracket gets rows of its own
                if current:
                    lines.append(current)
                inner = _break(factor, show, width - 4, order)
                lead = r"\cdot " if lines else ""
                # the bracket spans rows, so no \left…\right: big enough for the fractions it encloses
                big = ("\\biggl(", "\\biggr)") if any(r"\frac" in row for row in inner) else ("\\Bigl(", "\\Bigr)")
                lines.append(lead + big[0] + inner[0])
                lines.extend(r"\quad " + row for row in inner[1:])
                lines[-1] += big[1]
                current = ""
                continue
            if isinstance(factor, sp.Add) and i + 1 not in paired:
                body = rf"\left({body}\right)"
            piece = body if not current and not lines else rf"\cdot {body}"
            if current and visible_width(current + piece) > width:
                lines.append(current)
                current = piece
            else:
                current = f"{current} {piece}".strip()
        if current:
            lines.append(current)
        return lines
    return [whole]


# a loss plot's height: 5 cm with its tick labels and axis label is about 150 pt (11 English lines, 8.5 Chinese
# ones); more kept a heading and its plot off a page with a third of it left (the tanh example's page 12)
PLOT_PT = 150.0
PT_PER_CM = 28.45
DRAWING_SPACE = 20.0  # pt above and below a centred drawing
EQUATIONS_KEEP = 8  # lines of a block of equations a heading keeps with it
SUBSECTION_START = 6  # lines of a first subsection its section's heading keeps with it
HEADING_KEEP = 20  # lines at most a heading keeps with it: more leaves a third of a page blank before it


def _heading_keep(level: int, blocks: list[dict[str, Any]], subsections: list[dict[str, Any]]) -> Room:
    """Lines of room a heading needs below it: its first block (an intro paragraph and the block after it),
    so that no heading ends a page; at most 30 lines, half a page."""
    base = 12 if level == 1 else 8  # lines: the heading, its first paragraph and a little of what follows
    if not blocks and subsections:
        return (3 + subsections[0]["keep"]).at_least(base).at_most(HEADING_KEEP)
    lines = Room()
    for b in blocks[:2]:
        # of a block of equations only the first chain needs to share the heading's page (it may break after it)
        keep = b.get("keep", Room())
        keep = keep.at_most(EQUATIONS_KEEP) if b["kind"] == "equations" else keep
        # a paragraph that introduces a drawing keeps the drawing too: its own \keepspace is void after a heading
        lines += keep if b["kind"] != "paragraph" else keep or Room(3 if not b["note"] else 5)
        if b["kind"] != "paragraph" or keep:
            break
    else:  # only an intro paragraph: keep it with the first subsection's heading and its first lines
        if len(blocks) <= 2 and subsections:
            lines += subsections[0]["keep"].at_most(SUBSECTION_START)
    return (3 + lines).at_least(base).at_most(HEADING_KEEP)


def latex_context(plan: LecturePlan) -> dict[str, Any]:
    """The template context of a plan."""
    return LatexRenderer(plan).context()


def tex_source(plan: LecturePlan) -> str:
    """The lecture's LaTeX source."""
    return render("lecture.tex.j2", **latex_context(plan))


__all__ = ["Elided", "Partial", "languages", "latex_context", "tex_source", "words"]


def _tick_precision(values: list[float]) -> int | None:
    """Decimals for the y-axis labels of a loss that moves little (0.1253 to 0.1257 would all read 0.13), else None."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    span, size = high - low, max(abs(low), abs(high))
    if span <= 0 or size == 0 or span > 0.2 * size or size >= 1000:
        return None  # pgfplots' own labels differ
    return min(12, max(2, math.ceil(-math.log10(span / 5)) + 1))
