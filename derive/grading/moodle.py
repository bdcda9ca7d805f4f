"""A class set as a Moodle XML question bank (``derive exercises … --format moodle``).

Moodle's XML import format (docs.moodle.org/en/Moodle_XML_format): a ``<quiz>`` of ``<question>``
elements. Each student gets a ``category`` question (``$course$/NAME exercises/student-07``), then one
``numerical`` question per sheet question:

- ``questiontext``: the sheet's network, the student's given numbers and the question, as HTML; a
  drawing is an SVG file inside it (``<file name="network.svg" path="/" encoding="base64">``), shown by
  ``<img src="@@PLUGINFILE@@/network.svg">``: the HTML renderer's drawing with its labels as SVG text
  (an ``<img>`` shows no MathML);
- ``answer``: the key's value (as the answers file writes it) with ``fraction="100"`` and an absolute
  ``tolerance`` of half a unit in the last required digit (a truncated last digit falls outside);
- ``generalfeedback``: the key's worked answer.

Maths is TeX between ``\\( … \\)`` and ``\\[ … \\]``, which Moodle's MathJax filter renders (Moodle strips
MathML). The sheet is the same plan the PDF and HTML sheets are rendered from; the TeX of each formula
is the LaTeX renderer's.
"""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import TYPE_CHECKING

from ..lecture.plan import (
    Block,
    Count,
    Diagram,
    Equations,
    Exercises,
    Field,
    Math,
    MatrixForm,
    Num,
    Paragraph,
    Plot,
    Say,
    Standard,
    Table,
    Text,
    say,
)
from ..lecture.plan import Code as CodeField

if TYPE_CHECKING:
    from ..lecture.html import HtmlRenderer
    from ..lecture.latex import LatexRenderer
    from ..lecture.plan import LecturePlan
    from ..sheets.classes import ClassSet, Sheet

QUESTION_FILE = "moodle-questions.xml"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def tolerance(value: float, digits: int) -> Decimal:
    """Half a unit in the ``digits``-th significant digit of ``value`` (absolute): 0.0000005 for 0.780004, 6."""
    if value == 0:
        return Decimal(0)
    exponent = Decimal(repr(abs(value))).adjusted() - digits + 1
    return Decimal(5).scaleb(exponent - 1)


class MoodleRenderer:
    """A sheet plan's blocks as HTML with TeX maths (the LaTeX renderer's TeX)."""

    def __init__(self, plan: LecturePlan) -> None:
        from ..lecture.latex import LatexRenderer, words

        self.tex: LatexRenderer = LatexRenderer(plan)
        self.words = words(plan.lang)
        self.files: dict[str, bytes] = {}  # the images the HTML shows, by name (``@@PLUGINFILE@@/name``)

    def sentence(self, s: Say) -> str:
        template = self.words[s.key]
        fields = dict(s.fields)
        out = []
        for i, segment in enumerate(template.split("$")):
            if i % 2 == 1:  # TeX: the LaTeX renderer's fields, inside \( … \)
                body = _PLACEHOLDER.sub(lambda m: self.tex.field(fields[m.group(1)], True), segment)
                out.append(_math(body))
                continue
            pos = 0
            for m in _PLACEHOLDER.finditer(segment):
                out.append(html.escape(segment[pos : m.start()], quote=False))
                out.append(self.field(fields[m.group(1)]))
                pos = m.end()
            out.append(html.escape(segment[pos:], quote=False))
        return "".join(out)

    def field(self, f: Field) -> str:
        if isinstance(f, Say):
            return self.sentence(f)
        if isinstance(f, Count):
            return str(f.n)
        if isinstance(f, Text):
            return html.escape(f.text, quote=False)
        if isinstance(f, CodeField):
            return f"<code>{html.escape(f.text, quote=False)}</code>"
        if isinstance(f, Num | Math):
            return _math(self.tex.field(f, True))
        raise TypeError(type(f).__name__)

    def block(self, b: Block) -> str:
        if isinstance(b, Paragraph):
            return "<p>" + " ".join(self.sentence(s) for s in b.sentences) + "</p>"
        if isinstance(b, Equations):
            rows = [r for line in b.lines for r in self.tex.rows(line)]
            caption = f"<p>{self.sentence(b.caption)}</p>" if b.caption else ""
            body = r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"
            return caption + "<p>" + html.escape(rf"\[ {body} \]", quote=False) + "</p>"
        if isinstance(b, Table):
            head = "".join(f"<th>{self.sentence(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{self.field(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if isinstance(b, Standard):
            return _display(self.tex.standard(b.name))
        if isinstance(b, MatrixForm):
            return _display(self.tex.matrix(b))
        if isinstance(b, Diagram):
            return self.image("network", self.svg().diagram(b), self.diagram_text(b))
        if isinstance(b, Plot):
            return self.image("loss", self.svg().plot(b), self.sentence(b.y_label))
        # the exercises' questions and worked answers are questions and feedback of their own
        assert isinstance(b, Exercises), type(b).__name__
        return ""

    def svg(self) -> HtmlRenderer:
        """The HTML renderer's drawings, with plain SVG text for labels (an <img> shows no MathML)."""
        from ..lecture.html import HtmlRenderer

        return HtmlRenderer(self.tex.plan, text_labels=True)

    def image(self, stem: str, svg: str, alt: str) -> str:
        """An <img> of ``svg``, kept in :attr:`files` as ``stem``.svg (``stem``-2.svg for a second drawing)."""
        data = svg.encode("utf-8")
        name, k = f"{stem}.svg", 1
        while self.files.get(name, data) != data:
            k += 1
            name = f"{stem}-{k}.svg"
        self.files[name] = data
        return f'<p><img src="@@PLUGINFILE@@/{name}" alt="{html.escape(_plain_text(alt))}"></p>'

    def diagram_text(self, d: Diagram) -> str:
        """The drawing in words, for the <img>'s alt: each layer's neurons (i1, i2; h1, h2; o1, o2)."""
        layers: dict[float, list[str]] = {}
        for n in d.nodes:
            if n.kind in ("input", "hidden", "output"):
                name = n.tag or (n.label.name if n.label is not None else n.id)
                layers.setdefault(n.x, []).append(name)
        words = "; ".join(", ".join(names) for _, names in sorted(layers.items()))
        return html.escape(self.words["network"], quote=False) + (f": {words}" if words else "")


def _math(tex_text: str) -> str:
    return html.escape(rf"\( {tex_text} \)", quote=False)


def _display(tex_text: str) -> str:
    return "<p>" + html.escape(rf"\[ {tex_text} \]", quote=False) + "</p>"


def _plain_text(html_text: str) -> str:
    """HTML as the text it shows (an alt text): tags dropped, entities read."""
    return html.unescape(re.sub(r"<[^>]*>", "", html_text))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _text_element(
    parent: ET.Element, tag: str, text: str, fmt: str = "html", files: dict[str, bytes] | None = None
) -> None:
    """``<tag format=…><text>…</text>`` with a ``<file>`` for each of ``files`` that the text shows."""
    holder = _sub(parent, tag, format=fmt)
    _sub(holder, "text", text)
    for name, data in (files or {}).items():
        if f"@@PLUGINFILE@@/{name}" in text:
            _sub(holder, "file", base64.b64encode(data).decode("ascii"), name=name, path="/", encoding="base64")


def sheet_questions(quiz: ET.Element, sheet: Sheet, category: str, lang: str, digits: int) -> None:
    """Student's category and one numerical question per sheet question, appended to ``quiz``."""
    from ..lecture.sheet import HAND_IN_DIGITS, KEY, SHEET
    from ..present.numbers import format_number
    from ..sheets.classes import ANSWER_DIGITS

    label = sheet.variant.label
    required = sheet.variant.spec.required_digits or HAND_IN_DIGITS
    head = _sub(quiz, "question", type="category")
    category_element = _sub(head, "category")
    _sub(category_element, "text", f"{category}/student-{label}")
    info = _sub(head, "info", format="html")
    _sub(info, "text", f"Student {label}'s variant (student-{label}.toml)")

    questions = MoodleRenderer(sheet.plan(SHEET, lang, digits))
    answers = MoodleRenderer(sheet.plan(KEY, lang, digits))
    plan = questions.tex.plan
    network, givens = plan.sections[0], plan.sections[1]
    context = (
        f"<h4>{questions.sentence(network.title)}</h4>"
        + "".join(questions.block(b) for b in network.blocks)
        + f"<h4>{questions.sentence(givens.title)}</h4>"
        + "".join(questions.block(b) for b in givens.blocks)
    )
    for number, exercise in enumerate(sheet.exercises, start=1):
        for claim in exercise.claims:
            q = _sub(quiz, "question", type="numerical")
            _sub(_sub(q, "name"), "text", f"student-{label} Q{number}: {claim.name}")
            asked = "".join(questions.block(b) for b in exercise.question)
            hand_in = questions.sentence(say("moodle_hand_in", name=CodeField(claim.name), digits=required))
            text = f"{context}<h4>Q{number}</h4>{asked}<p>{hand_in}</p>"
            _text_element(q, "questiontext", text, files=questions.files)
            worked = "".join(answers.block(b) for b in exercise.answer)
            _text_element(q, "generalfeedback", worked, files=answers.files)
            _sub(q, "defaultgrade", "1")
            _sub(q, "penalty", "0.3333333")
            _sub(q, "hidden", "0")
            _sub(q, "idnumber", f"student-{label}-{claim.name}")
            answer = _sub(q, "answer", fraction="100", format="moodle_auto_format")
            value = format_number(claim.value, ANSWER_DIGITS)
            _sub(answer, "text", value)
            _sub(answer, "tolerance", format(tolerance(float(value), required), "f"))
            _text_element(answer, "feedback", "")
            _sub(q, "unitgradingtype", "0")
            _sub(q, "unitpenalty", "0.1000000")
            _sub(q, "showunits", "3")
            _sub(q, "unitsleft", "0")


def moodle_xml(class_set: ClassSet, lang: str = "en", digits: int = 8) -> str:
    """The class set's question bank as Moodle XML (see the module's docstring)."""
    quiz = ET.Element("quiz")
    category = f"$course$/{class_set.name} exercises"
    for sheet in class_set.sheets:
        sheet_questions(quiz, sheet, category, lang, digits)
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"


def question_bank(class_set: ClassSet, lang: str, digits: int) -> tuple[str, str]:
    """The class set's question bank as ``derive exercises --format moodle`` writes it: (file name, XML)."""
    return QUESTION_FILE, moodle_xml(class_set, lang, digits)
