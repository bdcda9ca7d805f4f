"""The safe formula parser accepts arithmetic and whitelisted functions, nothing else."""

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.core.formula import parse_formula
from derive.errors import FormulaError

x = sp.Symbol("x", real=True)
V = {"x": x}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1/(1 + exp(-x))", 1 / (1 + sp.exp(-x))),
        ("-x**2", -(x**2)),
        ("x**-1", 1 / x),
        ("2**3**2", sp.Integer(512)),
        ("max(x, 0)", sp.Max(x, 0)),
        ("abs(x) + sqrt(x**2 + 1)", sp.Abs(x) + sp.sqrt(x**2 + 1)),
        ("0.5*x", x / 2),
        ("1e-3*x", x / 1000),
        ("ln(e*x)", sp.log(sp.E * x)),
    ],
)
def test_accepted(text, expected):
    assert sp.simplify(parse_formula(text, V) - expected) == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os').system('ls')", "unknown name '__import__'"),
        ("x.__class__", "unexpected character '.'"),
        ("lambda: 1", "unknown name 'lambda'"),
        ("x if x else 1", "unexpected 'if'"),
        ("x**(9**9**9)", "too large"),
        ("x**1000", "too large"),
        ("10**10**10", "too large"),
        ("exp(x", "expected ')'"),
        ("x +", "expected a number"),
        ("", "empty formula"),
        ("y*x", "unknown name 'y'"),
        ("sigmoud(x)", "unknown name 'sigmoud'"),
        ("x; import os", "unexpected character ';'"),
        ("x^2", "use ** for powers"),
        ("max(x)", "takes 2 arguments"),
        ("1/0", "division by zero"),
        ("(" * 60 + "x" + ")" * 60, "nested more than"),
        ("x" + "+x" * 300, "longer than"),
        ("123456789012345678901234567890*x", "too many digits"),
        ("S('x')", "unknown name 'S'"),
        ("\\input{/etc/passwd}", "unexpected character '\\\\'"),
    ],
)
def test_refused(text, fragment):
    with pytest.raises(FormulaError) as info:
        parse_formula(text, V, "layers[1].activation")
    assert fragment in str(info.value)
    assert "layers[1].activation" in str(info.value)


TOKENS = [
    "x",
    "1",
    "2.5",
    "1e3",
    "9",
    "+",
    "-",
    "*",
    "/",
    "**",
    "(",
    ")",
    ",",
    "exp",
    "log",
    "max",
    "tanh",
    "abs",
    "sqrt",
    " ",
    "^",
    "y",
    "_",
    ".",
    "e",
    "pi",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30))
def test_any_token_soup_parses_or_fails_cleanly(tokens):
    text = "".join(tokens)
    try:
        result = parse_formula(text, V, "layers[1].activation")
    except FormulaError as exc:
        assert "layers[1].activation" in str(exc)
    else:
        assert isinstance(result, sp.Basic)
        assert result.free_symbols <= {x}
