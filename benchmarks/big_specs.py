"""Generate the big specs the benchmarks time: every weight written out.

``784-256-256-10`` (relu hidden layers, softmax output, cross-entropy) with
every weight and bias given in the TOML (≈ 2.3 MB), and ``784-30-10``. The
numbers are drawn from a fixed seed, so every run reads the same file.

    python benchmarks/big_specs.py OUT_DIR      # writes big.toml and mnist30.toml
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np


def _row(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def spec_text(sizes: tuple[int, ...], hidden: str = "relu", seed: int = 7) -> str:
    """A spec of these layer sizes with every weight, bias, input and target written out."""
    rng = np.random.default_rng(seed)
    lines = [f"name = 'mnist_{'_'.join(map(str, sizes))}'", "[loss]", "kind = 'cross_entropy'", ""]
    x = np.round(rng.uniform(0, 1, sizes[0]), 3)
    lines += ["[[layers]]", f"size = {sizes[0]}", f"values = {_row(x)}", ""]
    for number, (m, n) in enumerate(itertools.pairwise(sizes), start=2):
        last = number == len(sizes)
        w = rng.normal(0, np.sqrt(2.0 / m), (n, m))
        b = rng.normal(0, 0.1, n)
        lines += ["[[layers]]", f"size = {n}", f"activation = '{'softmax' if last else hidden}'"]
        lines.append("weights = [\n" + ",\n".join(_row(r) for r in w) + "\n]")
        lines.append(f"bias = {_row(b)}")
        if last:
            t = np.zeros(n)
            t[int(rng.integers(n))] = 1.0
            lines.append(f"targets = {_row(t)}")
        lines.append("")
    return "\n".join(lines)


BIG = (784, 256, 256, 10)
MNIST30 = (784, 30, 10)


def write(folder: Path) -> tuple[Path, Path]:
    """(big.toml, mnist30.toml) written into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    big, small = folder / "big.toml", folder / "mnist30.toml"
    big.write_text(spec_text(BIG), encoding="utf-8")
    small.write_text(spec_text(MNIST30, hidden="sigmoid"), encoding="utf-8")
    return big, small


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "output/bench")):
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
