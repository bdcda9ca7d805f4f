"""How to install derive and its extras: the one place an install hint is spelled.

The distribution is ``derive-backprop``: the package index's ``derive`` is an unrelated
project. The import name and the command stay ``derive``.
"""

from __future__ import annotations

DISTRIBUTION = "derive-backprop"


def install_hint(extra: str) -> str:
    """The command that installs an optional extra, for a message's hint."""
    return f"pip install '{DISTRIBUTION}[{extra}]' (in a clone of derive: .venv/bin/pip install -e '.[{extra}]')"
