import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_torch():
    """torch, or a skip outside CI; in CI a missing torch is a failure."""
    try:
        import torch
    except ImportError:
        if IN_CI:
            pytest.fail("torch is not installed, and CI must run the PyTorch oracle (make installs torch==2.13.0)")
        pytest.skip("torch is not installed (pip install torch==2.13.0)")
    return torch


def require(module: str, extra: str):
    """An optional dependency (derive[extra]), or a skip outside CI; in CI a missing one is a failure."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{module} is not installed, and CI must run its tests (make installs the test extra)")
        pytest.skip(f"{module} is not installed (.venv/bin/pip install -e '.[{extra}]')")


def need_tex(lang="en"):
    """latexmk, pdftotext and the engine, or a skip outside CI; in CI missing TeX is a failure."""
    import shutil

    tools = ["latexmk", "pdftotext", "xelatex" if lang == "zh" else "pdflatex"]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if IN_CI:
            pytest.fail(f"{missing} not installed; CI must build the PDFs (make installs TeX)")
        pytest.skip(f"{missing} not installed")
