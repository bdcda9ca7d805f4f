"""Every symbol's LaTeX spelling, decided in one place.

Names are validated identifiers (letters, digits, underscores), so the LaTeX
built here is safe by construction: letters and digits pass through, and
underscores become subscripts or are escaped.
"""

from __future__ import annotations

import re

_NIELSEN = re.compile(r"(?P<stem>[a-z])(?P<layer>\d+)_(?P<j>\d+)(?:_(?P<k>\d+))?\Z")
_SEQUENCE = re.compile(r"(?P<stem>[a-z])(?P<layer>\d+)_(?P<j>\d+)_t(?P<t>\d+)\Z")  # an rnn's z2_1_t3, a2_1_t3
_INPUT_STEP = re.compile(r"x(?P<k>\d+)_t(?P<t>\d+)\Z")  # a sequence's input x1_t2
_MAP = re.compile(r"(?P<stem>[a-z])(?P<layer>\d+)(?P<index>(?:_\d+){3,5})\Z")  # a map's a3_1_2_2, a kernel's w2_1_1_3_3
_INPUT_MAP = re.compile(r"x(?P<index>\d+(?:_\d+){1,2})\Z")  # an input map's x1_2_3: channel, row, column
_NIELSEN_SHARED = re.compile(r"(?P<stem>b)(?P<layer>\d+)\Z")
_PREFIXED = re.compile(r"(?P<stem>[A-Za-z]+)_(?P<rest>[A-Za-z0-9_]+)\Z")
_STEM_DIGITS = re.compile(r"(?P<stem>[A-Za-z]+?)(?P<digits>\d+)\Z")
_STEM_LETTERS_DIGITS = re.compile(r"(?P<stem>[A-Za-z])(?P<rest>[a-z]+\d+)\Z")


def delta_name(net: str) -> str:
    """The name a δ goes by in claims, answer files and sheets: ``delta_`` and the name of the net input it is
    ∂E/∂ of, without a ``net_`` prefix (Mazur's ``net_h1`` → ``delta_h1``; Nielsen's ``z3_2`` → ``delta_z3_2``; a
    map's ``z2_1_2_2`` → ``delta_z2_1_2_2``; an rnn state's ``z2_1_t3`` → ``delta_z2_1_t3``). ``derive check``
    also reads a δ by its neuron's label (``delta_2_1_2_2``), as answer files before this scheme wrote it."""
    return "delta_" + net.removeprefix("net_")


def _stem(stem: str) -> str:
    """A single letter is a math italic; a word is upright so it reads as a word."""
    return stem if len(stem) == 1 else rf"\mathrm{{{stem}}}"


def _escape(text: str) -> str:
    return text.replace("_", r"\_")


def latex_name(name: str, nielsen: bool = False) -> str:
    """The LaTeX spelling of a symbol name.

    ``nielsen`` names (generated from ``size``) read ``w2_1_11`` as
    :math:`w^{2}_{1,11}`, ``z3_2`` as :math:`z^{3}_{2}` and ``b2`` as
    :math:`b^{(2)}` (a bare superscript would read as a power). Other names read Mazur's way: ``net_h1`` →
    :math:`\\mathrm{net}_{h1}`, ``w5`` → :math:`w_{5}`, ``w11`` → :math:`w_{11}`.
    """
    if nielsen:
        m = _SEQUENCE.match(name)
        if m:  # unit j at step t: a^{2}_{1,t3}
            return f"{m['stem']}^{{{m['layer']}}}_{{{m['j']},t{m['t']}}}"
        m = _INPUT_STEP.match(name)
        if m:  # feature k at step t: x_{1,t2}
            return f"x_{{{m['k']},t{m['t']}}}"
        m = _INPUT_MAP.match(name)
        if m:  # channel, row, column of the input: x_{1,2,3} (an input has no layer number)
            return "x_{" + m["index"].replace("_", ",") + "}"
        m = _MAP.match(name)
        if m:  # channel, row, column of a map, or a kernel's out, in, row, column: a^{3}_{1,2,2}
            return f"{m['stem']}^{{{m['layer']}}}_{{{m['index'][1:].replace('_', ',')}}}"
        m = _NIELSEN.match(name)
        if m:
            sub = m["j"] if m["k"] is None else f"{m['j']},{m['k']}"
            return f"{m['stem']}^{{{m['layer']}}}_{{{sub}}}"
        m = _NIELSEN_SHARED.match(name)
        if m:
            return f"{m['stem']}^{{({m['layer']})}}"  # b^{(4)}: a bare b^{4} reads as a fourth power
    m = _PREFIXED.match(name)
    if m:  # net_h1 → net_{h1}; w_h1_x1 → w_{h1,x1} (into h1, from x1)
        parts = [p for p in m["rest"].split("_") if p]
        sub = ",".join(parts) if len(parts) > 1 and all(p.isalnum() for p in parts) else _escape(m["rest"])
        return f"{_stem(m['stem'])}_{{{sub}}}"
    m = _STEM_DIGITS.match(name)
    if m:
        return f"{_stem(m['stem'])}_{{{m['digits']}}}"
    m = _STEM_LETTERS_DIGITS.match(name)
    if m and len(name) <= 4:  # h1 is caught above; "out1"-like short names stay whole
        return _stem(name)
    return _stem(_escape(name)) if "_" not in name else rf"\mathrm{{{_escape(name)}}}"
