"""Derived NumPy lines rewritten for the Python array API standard.

The vectorized module's lines are written once, for NumPy (the fast path);
this pass rewrites them for any array library: ``np.f`` becomes ``xp.f`` (with
the standard's name where it differs: arctan → atan), ``a.dot(b)`` becomes
``a @ b``, reductions written as methods (``a.sum(axis=0)``) become functions
(``xp.sum(a, axis=0)``), as does ``a.reshape(n, -1)`` (``xp.reshape(a, (n, -1))``),
and ``out=`` buffers are dropped (the standard has none). It works on the
syntax tree of each line and splices only the nodes it rewrites, so everything
else keeps the NumPy line's spelling. Anything it does not know is refused,
never passed through. A conv or pool layer's lines call helper functions the
module defines, in the standard, for this backend
(:data:`derive.core.layers.MAP_SOURCE_ARRAY_API`).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from ..errors import DeriveError

NAMESPACE = "xp"

# NumPy's name → the standard's; every function and constant a derived line may call
_FUNCTIONS = {
    name: name
    for name in [
        "abs",
        "exp",
        "expm1",
        "log",
        "log1p",
        "log2",
        "log10",
        "logaddexp",
        "sqrt",
        "square",
        "sign",
        "sin",
        "cos",
        "tan",
        "sinh",
        "cosh",
        "tanh",
        "maximum",
        "minimum",
        "where",
        "full_like",
        "zeros_like",
        "stack",
        "clip",
        "sum",
        "max",
        "min",
        "mean",
        "e",
        "pi",
        "inf",
        "float64",
    ]
} | {"arctan": "atan", "arcsin": "asin", "arccos": "acos", "arcsinh": "asinh", "arctanh": "atanh", "power": "pow"}

# array methods NumPy code uses for reductions; the standard has them as functions only
_REDUCTIONS = ("sum", "max", "min", "mean")


def array_api_lines(lines: list[str]) -> list[str]:
    """The lines rewritten for the array API, after ``xp = array_namespace(X)`` when they need it."""
    rewritten = [_line(line) for line in lines]
    uses_namespace = any(
        isinstance(node, ast.Name) and node.id == NAMESPACE
        for line in rewritten
        if not _is_comment(line)
        for node in ast.walk(_parse(_code_and_comment(line)[0].strip()))
    )
    return [f"{NAMESPACE} = array_namespace(X)", *rewritten] if uses_namespace else rewritten


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _code_and_comment(line: str) -> tuple[str, str]:
    """The code of a line and its trailing comment (with the spaces before it), split by the tokenizer."""
    for token in tokenize.generate_tokens(io.StringIO(line).readline):
        if token.type == tokenize.COMMENT:
            start = token.start[1]
            code = line[:start].rstrip()
            return code, line[len(code) :]
    return line, ""


def _parse(code: str) -> ast.AST:
    """One statement; a block header (if …: / else:) is parsed with an empty body."""
    if code.endswith(":"):
        code += " pass"
    if code == "else: pass":
        return ast.parse("if 1: pass\nelse: pass")
    return ast.parse(code)


def _line(line: str) -> str:
    if _is_comment(line):
        return line
    code, comment = _code_and_comment(line)
    indent = code[: len(code) - len(code.lstrip())]
    code = code.strip()
    if code.endswith(":"):
        loop = code.startswith("for ") and re.fullmatch(r"for \w+ in range\([-\d, ]+\):", code)
        if not loop and any(isinstance(n, (ast.Call, ast.Attribute)) for n in ast.walk(_parse(code))):
            raise DeriveError(f"cannot write for the array API: {code}")  # headers are plain tests in derive's code
        return indent + code + comment
    (statement,) = ast.parse(code).body
    return indent + _Splicer(code, statement).text() + comment


def _is_step(node: ast.AST) -> bool:
    """``(u > 0)`` or ``(u >= 0)``: how the NumPy printer writes a Heaviside step of an array."""
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (ast.Gt, ast.GtE))
        and isinstance(node.comparators[0], ast.Constant)
        and node.comparators[0].value == 0
    )


class _Splicer:
    """Rebuilds one statement's text, rewriting NumPy-only nodes and copying the rest verbatim."""

    def __init__(self, code: str, statement: ast.stmt) -> None:
        self.code = code
        self.statement = statement
        # a matrix product that is a whole right-hand side needs no brackets
        self.whole = getattr(statement, "value", None)
        self.bare: set[int] = set()  # nodes printed as a whole argument of a call: no brackets needed
        self.in_arithmetic = {
            id(child)
            for node in ast.walk(statement)
            if isinstance(node, ast.BinOp)
            for child in (node.left, node.right)
        }

    def text(self) -> str:
        return self.emit(self.statement)

    def segment(self, node: ast.AST) -> str:
        return self.code[node.col_offset : node.end_col_offset]  # type: ignore[attr-defined]

    def emit(self, node: ast.AST) -> str:
        rewritten = self.rewrite(node)
        if rewritten is not None:
            return rewritten
        return "".join(self._children_text(node))

    def _children_text(self, node: ast.AST) -> list[str]:
        """The node's text with each child emitted (rewritten where needed)."""
        start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
        children = sorted(
            (c for c in ast.iter_child_nodes(node) if getattr(c, "end_col_offset", None) is not None),
            key=lambda c: c.col_offset,  # type: ignore[attr-defined]
        )
        pieces, position = [], start
        for child in children:
            pieces += [self.code[position : child.col_offset], self.emit(child)]  # type: ignore[attr-defined]
            position = child.end_col_offset  # type: ignore[attr-defined]
        pieces.append(self.code[position:end])
        return pieces

    def arguments(self, call: ast.Call, skip_out: bool = True) -> list[str]:
        args = [self.emit(a) for a in call.args]
        for keyword in call.keywords:
            if keyword.arg is None:
                raise DeriveError(f"cannot write for the array API: {self.code}")
            if keyword.arg == "out" and skip_out:
                continue  # the standard has no output buffers: the result is a new array
            args.append(f"{keyword.arg}={self.emit(keyword.value)}")
        return args

    def rewrite(self, node: ast.AST) -> str | None:
        """The node's array-API text when it differs from NumPy's, else None."""
        if _is_step(node):
            # a step (Heaviside) is a comparison: NumPy's bool/100 is float64, PyTorch's the default float32
            return f"{NAMESPACE}.astype({''.join(self._children_text(node))}, X.dtype)"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "np":
            if node.attr not in _FUNCTIONS:
                # np.vectorize: a function NumPy lacks, computed number by number (erf, from math.erf)
                what = "erf" if node.attr == "vectorize" else f"np.{node.attr}"
                raise DeriveError(f"{what} has no counterpart in the array API standard", hint="use --backend numpy")
            return f"{NAMESPACE}.{_FUNCTIONS[node.attr]}"
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            return None
        receiver, method = node.func.value, node.func.attr
        if isinstance(receiver, ast.Name) and receiver.id == "np":
            if any(k.arg == "out" for k in node.keywords):
                return f"{self.emit(node.func)}({', '.join(self.arguments(node))})"
            return None
        if method == "dot" and len(node.args) == 1 and not node.keywords:
            product = f"{self.operand(receiver)} @ {self.operand(node.args[0])}"
            return product if node is self.whole or id(node) in self.bare else f"({product})"
        if method == "reshape" and node.args and not node.keywords:
            # the standard's reshape takes the shape as one tuple: a.reshape(n, -1) → xp.reshape(a, (n, -1))
            args = self.arguments(node)
            shape = args[0] if len(args) == 1 else f"({', '.join(args)})"
            self.bare.add(id(receiver))
            return f"{NAMESPACE}.reshape({self.emit(receiver)}, {shape})"
        if method in _REDUCTIONS:
            return f"{NAMESPACE}.{method}({', '.join([self.emit(receiver), *self.arguments(node, skip_out=False)])})"
        if method == "reshape" and node.args and not node.keywords:
            shape = ", ".join(self.emit(a) for a in node.args)
            return f"{NAMESPACE}.reshape({self.emit(receiver)}, ({shape}{',' if len(node.args) == 1 else ''}))"
        if method == "append" and isinstance(receiver, ast.Name) and len(node.args) == 1:
            return None  # a Python list of arrays (one a time step), stacked afterwards

        raise DeriveError(f"cannot write for the array API: the method .{method}() in {self.code}")

    def operand(self, node: ast.AST) -> str:
        """An operand of @, bracketed unless it binds tighter."""
        text = self.emit(node)
        simple = isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.Constant))
        return text if simple else f"({text})"
