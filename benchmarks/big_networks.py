"""Time derive's commands on big networks, as ratios to ``import sympy`` measured in the same run.

Each command runs as its own process (what a user waits for, spec parsing and
imports included), a few times, interleaved with the unit; the table gives the
median time, its ratio to the median of ``python -c "import sympy"`` and the
peak memory. The answers are checked too: ∂E/∂w2_1_1 and the whole gradient of
784-30-10 against a NumPy backprop written here, and `derive train`'s step
against the exported module's ``train_step``.

    python benchmarks/big_networks.py [--repeat 3] [-o table.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np
from big_specs import write

PYTHON = sys.executable


def measure(args: list[str]) -> tuple[float, float, str]:
    """(seconds, the process's peak resident MB, its standard output)."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    chunks = []
    while chunk := process.stdout.read(1 << 16):
        chunks.append(chunk)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {process.returncode}")
    return seconds, usage.ru_maxrss / 1024, b"".join(chunks).decode()


def derive(*args: str) -> list[str]:
    return [PYTHON, "-m", "derive", *args]


def backprop(spec_path: Path) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """(E, ∂E/∂W per layer, ∂E/∂b per layer) of a relu/sigmoid…/softmax-CE spec, by BP1–BP4 written here."""
    import tomllib

    data = tomllib.loads(spec_path.read_text())
    layers = data["layers"]
    a = [np.array(layers[0]["values"], dtype=float)]
    zs = [a[0]]
    for layer in layers[1:]:
        z = np.array(layer["weights"]) @ a[-1] + np.array(layer["bias"])
        zs.append(z)
        act = layer["activation"]
        if act == "softmax":
            e = np.exp(z - z.max())
            a.append(e / e.sum())
        elif act == "relu":
            a.append(np.maximum(z, 0))
        else:
            a.append(1 / (1 + np.exp(-z)))
    t = np.array(layers[-1]["targets"], dtype=float)
    loss = float(-(t * np.log(a[-1])).sum())
    delta = a[-1] - t
    grads_w, grads_b = [], []
    for index in range(len(layers) - 1, 0, -1):
        grads_w.insert(0, np.outer(delta, a[index - 1]))
        grads_b.insert(0, delta)
        if index > 1:
            back = np.array(layers[index]["weights"]).T @ delta
            act = layers[index - 1]["activation"]
            f = (zs[index - 1] > 0).astype(float) if act == "relu" else a[index - 1] * (1 - a[index - 1])
            delta = back * f
    return loss, grads_w, grads_b


def train_ratio(spec: str, steps: int) -> tuple[float, float]:
    """(µs per `derive train` step, µs per exported train_step) in this process, same arrays."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from derive.app.api import Model
    from derive.codegen.modules import compile_module, vector_module

    model = Model.load(spec)
    engine = model.compiled()
    engine.train(5)
    module = compile_module(vector_module(model))
    params = module.init_params()
    X, T = engine.x[None, :], engine.t[None, :]
    ours = min(timeit.repeat(lambda: engine.train(steps), number=1, repeat=5)) / (steps + 1)
    theirs = min(timeit.repeat(lambda: [module.train_step(params, X, T) for _ in range(steps)], number=1, repeat=5))
    return ours * 1e6, theirs / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-o", "--output", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="derive-bench-"))
    big, small = write(folder)
    cases = [
        ("`derive grad` w2_1_1 (a weight), 784-256-256-10", derive("grad", str(big), "w2_1_1", "--format", "json")),
        ("`derive grad` b2_3 (a bias), 784-256-256-10", derive("grad", str(big), "b2_3")),
        ("`derive grad` z3_5 (a net: its δ), 784-256-256-10", derive("grad", str(big), "z3_5")),
        ("`derive grad` a3_5 (an out), 784-256-256-10", derive("grad", str(big), "a3_5")),
        ("`derive grad --all --format json`, 784-30-10", derive("grad", str(small), "--all", "--format", "json")),
        ("`derive show`, 784-256-256-10", derive("show", str(big))),
        ("`derive show --format json`, 784-256-256-10", derive("show", str(big), "--format", "json")),
    ]
    unit_args = [PYTHON, "-c", "import sympy"]
    units: list[float] = []
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    peaks: dict[str, float] = {}
    outputs: dict[str, str] = {}
    for _ in range(args.repeat):
        for name, command in cases:
            units.append(measure(unit_args)[0])
            seconds, peak, out = measure(command)
            times[name].append(seconds)
            peaks[name] = max(peaks.get(name, 0.0), peak)
            outputs[name] = out
    unit = statistics.median(units)

    # the answers: one gradient and a whole one, against the backprop above
    _loss, gw, _gb = backprop(big)
    w211 = json.loads(outputs[cases[0][0]])["value"]
    assert abs(w211 - gw[0][0, 0]) <= 1e-12 * max(1.0, abs(gw[0][0, 0])), (w211, gw[0][0, 0])
    every = json.loads(outputs[cases[4][0]])
    loss30, gw30, gb30 = backprop(small)
    expected = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(gw30, gb30)])
    got = np.array(list(every["gradients"].values()))
    assert np.max(np.abs(got - expected)) <= 1e-12 * max(1.0, np.max(np.abs(expected)))
    assert abs(every["loss"] - loss30) <= 1e-12 * max(1.0, loss30)

    rows = [
        "| command | median s | × import sympy | peak MB |",
        "|---|---:|---:|---:|",
        f"| `python -c 'import sympy'` (the unit) | {unit:.2f} | 1.0 | |",
    ]
    for name, _ in cases:
        median = statistics.median(times[name])
        rows.append(f"| {name} | {median:.2f} | {median / unit:.1f} | {peaks[name]:.0f} |")
    for spec, steps in (("mazur", 3000), (str(small), 300)):
        ours, theirs = train_ratio(spec, steps)
        label = "Mazur 2-2-2" if spec == "mazur" else "784-30-10"
        rows.append(
            f"| `derive train` step, {label}: {ours:.0f} µs vs exported `train_step` {theirs:.0f} µs | | "
            f"{ours / theirs:.2f} (of train_step) | |"
        )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    text = "\n".join(
        [
            f"derive on big networks ({machine}); medians of {args.repeat} runs, each a fresh process.",
            "Answers checked: ∂E/∂w2_1_1 and every gradient of 784-30-10 agree with a NumPy backprop to 1e-12.",
            "",
            *rows,
        ]
    )
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
