"""The Jinja2 environments: templates lay out what Python decided.

LaTeX templates use LaTeX-friendly delimiters (``\\VAR{…}``, ``\\BLOCK{…}``,
``\\#{…}``) so braces stay plain LaTeX. Every value printed goes through
``finalize``: a :class:`~derive.present.texsafe.Tex` passes unchanged, anything else is
escaped.

HTML templates (``*.html.j2``) use Jinja's usual delimiters; an :class:`Html`
string passes unchanged and anything else is escaped for HTML.

Python templates (generated modules, ``*.py.j2``) use Jinja's usual delimiters;
a :class:`Code` string passes unchanged and anything else is printed as a
Python literal (``repr``), so spec text can only ever become a string constant.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from typing import Any

import jinja2

from .texsafe import Tex, escape


def _finalize(value: Any) -> str:
    if isinstance(value, Tex):
        return value
    if value is None:
        return ""
    return escape(str(value))


class _ResourceLoader(jinja2.BaseLoader):
    """Loads templates from the installed package (derive/templates) via importlib.resources."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        path = resources.files("derive") / "templates" / template
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        return path.read_text(encoding="utf-8"), None, lambda: True


def _laid_out(text: str) -> Tex:
    """A macro's output: built from values that already went through ``finalize``."""
    return Tex(text)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_ResourceLoader(),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_statement_prefix=None,
        line_comment_prefix=None,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["laid_out"] = _laid_out
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


class Code(str):
    """Python source that derive wrote: printed into a module template as it is."""


def _python_finalize(value: Any) -> str:
    if isinstance(value, Code):
        return value
    if isinstance(value, (str, int, float, bool, tuple, type(None))):
        return repr(value)
    raise TypeError(f"no Python literal for {type(value).__name__}")  # a bug in derive, not in a spec


@cache
def python_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=_ResourceLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=_python_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_python(template: str, **context: Any) -> str:
    """A module's source from a ``*.py.j2`` template: Code as written, other values as literals."""
    return python_environment().get_template(template).render(**context)


class Html(str):
    """HTML that derive wrote (its escaping already done): printed into an HTML template as it is."""

    __slots__ = ()


def html_escape(text: str) -> Html:
    """Text as HTML: ``<script>`` shows those characters and runs nothing."""
    return Html(html.escape(text, quote=True))


def _html_finalize(value: Any) -> str:
    if isinstance(value, Html):
        return value
    if value is None:
        return ""
    return html_escape(str(value))


def _laid_out_html(text: str) -> Html:
    """A macro's output: built from values that already went through ``finalize``."""
    return Html(text)


@cache
def html_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_ResourceLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # finalize escapes every value that is not Html, macros' output included
        finalize=_html_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["laid_out"] = _laid_out_html
    return env


def render_html(template: str, **context: Any) -> str:
    """An HTML page from a ``*.html.j2`` template: Html as written, everything else escaped."""
    return html_environment().get_template(template).render(**context)
