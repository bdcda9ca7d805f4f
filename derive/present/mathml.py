"""MathML for browsers and notebooks: derive's own LaTeX, converted by ``latex2mathml``.

Only LaTeX that derive's printers wrote reaches the converter (names are
identifiers by validation, numbers are numbers); a spec's free text is escaped
for HTML by the caller and never set as math.

Two things the converter gets wrong are done here: an ``aligned`` environment
(the converter has none: it leaves every ``&`` as a raw ``<mi>&</mi>`` and
every ``\\`` as a space) becomes an ``<mtable>`` with the PDF's columns, and a
prime (``f'``) is set after its base, not as a superscript of it.
"""

from __future__ import annotations

import re

from latex2mathml.converter import convert as _latex_to_mathml

# operators the converter leaves to the browser's default spacing, which sets ∂E / ∂w too loosely
_TIGHT = {
    "<mo>&#x0002F;</mo>": '<mo lspace="0" rspace="0">/</mo>',
    "<mo>&#x02202;</mo>": "<mi>&#x02202;</mi>",  # TeX's \partial is an ordinary symbol, not an operator
    "<mo>&#x02026;</mo>": "<mi>&#x02026;</mi>",  # \dots between arrows: an ordinary symbol, not a third operator
}
_MATH_WRAPPER = re.compile(
    r'^<math xmlns="http://www.w3.org/1998/Math/MathML" display="(?:inline|block)">(.*)</math>$', re.S
)
_ALIGNED_BEGIN, _ALIGNED_END = r"\begin{aligned}", r"\end{aligned}"
_ENVIRONMENT = re.compile(r"\\(begin|end)\{[^}]*\}")
# the converter's prime: a superscript ′ (or ″) ending an msup or msubsup; in TeX the glyph is made for that
# position, in a browser's math font it shrinks to a detached tick
_PRIME_SCRIPT = re.compile(r"(?:<mrow>)?<mi>(&#x0203[23];)</mi>(?:</mrow>)?</(msup|msubsup)>")
# a minus after these is binary (a − b); after any other operator, or first in a row, it is a sign (= −0.2)
_BEFORE_BINARY = {"&#x00029;", "&#x0005D;", "&#x0007D;", "|", "&#x02032;", "&#x02033;", "!"}
_MINUS_AFTER = re.compile(r"(<mo(?P<attrs>\s[^>]*)?>(?P<op>[^<]*)</mo>|<mrow>)<mo>&#x02212;</mo>")
_SIGN = '<mo form="prefix" lspace="0" rspace="0">&#x02212;</mo>'
_FENCE = re.compile(r'<mo stretchy="true" fence="true" form="(prefix|postfix)">([^<]*)</mo>')
_TALL = re.compile(r"<(mfrac|mtable|munderover|munder|mover|msqrt|mroot)\b")
# \Bigr)_{out}: a sized bracket as the base of a script, which Chromium leaves unstretched unless in a row
_SCRIPTED_FENCE = re.compile(r'<(msub|msup|msubsup)>(<mo [^>]*maxsize="[^"]*"[^>]*>[^<]*</mo>)')
_COLUMN_GAP = "2em"  # between the column pairs of an aligned environment (a tag after &&), as amsmath sets it


def split_top(latex: str, separator: str) -> list[str]:
    """``latex`` split at ``separator`` (``&`` or ``\\\\``) where it is outside braces and environments.

    A matrix's own ``&`` and ``\\\\`` (``\\begin{pmatrix} a & b \\end{pmatrix}``) stay in their part; an
    escaped ``\\&`` is text, never a separator.
    """
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    i = 0
    while i < len(latex):
        if depth == 0 and latex.startswith(separator, i):
            parts.append("".join(current))
            current = []
            i += len(separator)
            continue
        env = _ENVIRONMENT.match(latex, i)
        if env:
            depth += 1 if env.group(1) == "begin" else -1
            current.append(env.group())
            i = env.end()
            continue
        ch = latex[i]
        if ch == "\\" and i + 1 < len(latex):  # a command or an escaped character: never a separator
            current.append(latex[i : i + 2])
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def mathml(latex: str, display: bool = False, displaystyle: bool = False) -> str:
    """``latex`` as a <math> element: a block of its own with ``display``, full-size fractions with either."""
    mode = ' display="block"' if display else (' displaystyle="true"' if displaystyle else "")
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML"{mode}>{_content(latex, display or displaystyle)}</math>'


def _content(latex: str, full: bool) -> str:
    """The MathML inside <math>: an aligned environment as a table, anything else by the converter.

    ``full`` (display style): a sum's or product's limits go under it, as in TeX's displays.
    """
    body = latex.strip()
    if body.startswith(_ALIGNED_BEGIN) and body.endswith(_ALIGNED_END):
        inner = body[len(_ALIGNED_BEGIN) : -len(_ALIGNED_END)]
        if len(split_top(inner, _ALIGNED_END)) == 1:  # one environment around the whole formula
            return _aligned(inner)
    if len(split_top(latex, "&")) > 1 or len(split_top(latex, "\\\\")) > 1:
        # a bug in derive: the converter would leave the & in the maths and drop the line break
        raise ValueError(f"an alignment outside an aligned environment: {latex!r}")
    converted = _latex_to_mathml(latex, display="block" if full else "inline")
    m = _MATH_WRAPPER.match(converted)
    inner = m.group(1) if m else converted
    for loose, tight in _TIGHT.items():
        inner = inner.replace(loose, tight)
    if "<mi>&</mi>" in inner:  # an aligned environment inside a formula: not written by derive so far
        raise ValueError(f"an alignment the converter cannot set: {latex!r}")
    inner = _SCRIPTED_FENCE.sub(r"<\1><mrow>\2</mrow>", inner)
    return _fences(_signs(_primes(inner)))


def _aligned(body: str) -> str:
    """An aligned environment's rows as an <mtable>: columns right, left, right, left… as in amsmath."""
    rows = [split_top(row, "&") for row in split_top(body, "\\\\")]
    rows = [row for row in rows if "".join(row).strip()]  # a trailing \\ ends no row
    columns = max(len(row) for row in rows)
    align = " ".join("right" if j % 2 == 0 else "left" for j in range(columns))
    trs = []
    for row in rows:
        tds = []
        for j in range(columns):
            cell = row[j].strip() if j < len(row) else ""
            gap = _COLUMN_GAP if j > 0 and j % 2 == 0 else "0"
            # inline style as well as columnalign: Chromium's MathML Core ignores the attribute
            style = f"text-align:{'right' if j % 2 == 0 else 'left'};padding:0.25em 0 0.25em {gap}"
            tds.append(f'<mtd style="{style}">{_content(cell, True) if cell else ""}</mtd>')
        trs.append(f"<mtr>{''.join(tds)}</mtr>")
    return f'<mtable displaystyle="true" columnalign="{align}">{"".join(trs)}</mtable>'


def _primes(inner: str) -> str:
    """Each superscript prime as a prime after its base: ``f'`` as f′, ``w_5'`` as w₅′."""
    while m := _PRIME_SCRIPT.search(inner):
        name = m.group(2)
        tags = list(re.finditer(rf"<(/?){name}(?:\s[^>]*)?>", inner[: m.start()]))
        depth = 0
        for tag in reversed(tags):  # the element this script closes
            if tag.group(1):
                depth += 1
            elif depth:
                depth -= 1
            else:
                break
        else:  # pragma: no cover - the converter's output is balanced
            raise ValueError(f"unbalanced <{name}> in {inner!r}")
        base = inner[tag.end() : m.start()]
        if name == "msubsup":
            base = f"<msub>{base}</msub>"
        prime = f'<mo lspace="0" rspace="0">{m.group(1)}</mo>'
        inner = f"{inner[: tag.start()]}<mrow>{base}{prime}</mrow>{inner[m.end() :]}"
    return inner


def _signs(inner: str) -> str:
    """A minus that is a sign (after =, an opening bracket or another operator) set tight, as TeX sets it.

    The browser infers a binary minus from its place in the row and spaces it: "= − 0.2".
    """

    def sign(m: re.Match[str]) -> str:
        binary = m.group("op") in _BEFORE_BINARY or 'form="postfix"' in (m.group("attrs") or "")
        return m.group(0) if binary else m.group(1) + _SIGN

    return _MINUS_AFTER.sub(sign, inner)


def _fences(inner: str) -> str:
    """``\\left( … \\right)`` around nothing taller than a line: plain brackets, as TeX's are.

    A browser stretches such a fence to the row's height and depth, which picks a bigger glyph with wide
    bearings: "( 1 − out )". Around a fraction, a matrix or a big operator the fence stretches.
    """
    fences = list(_FENCE.finditer(inner))
    plain: set[int] = set()
    opened: list[re.Match[str]] = []
    for f in fences:
        if f.group(1) == "prefix":
            opened.append(f)
            continue
        if not opened:  # pragma: no cover - \\left and \\right come in pairs
            continue
        start = opened.pop()
        if not _TALL.search(inner, start.end(), f.start()):
            plain.update((start.start(), f.start()))
    out, pos = [], 0
    for f in fences:
        if f.start() in plain:
            out.append(inner[pos : f.start()])
            out.append(f'<mo stretchy="false">{f.group(2)}</mo>')
            pos = f.end()
    out.append(inner[pos:])
    return "".join(out)
