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
