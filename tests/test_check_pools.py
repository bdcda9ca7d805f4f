"""derive check X@N through max pools: each window's winner checked at every step of float64's run.

The expected numbers are the test's own PyTorch run (conv2d, relu, max_pool2d, a sigmoid dense layer, half
squared error, plain gradient-descent steps written here), never derive's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

from conftest import require_torch

from derive.app.api import Model

TINY = {  # tinyconv's numbers (derive/examples/tinyconv.toml)
    "x": [[[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 0.1, 0.2], [0.3, 0.4, 0.5, 0.6]]],
    "W2": [[[[0.1, -0.2], [0.3, 0.4]]], [[[-0.5, 0.6], [0.7, -0.1]]]],
    "b2": [0.1, -0.1],
    "W4": [[0.5, -0.4, 0.3, 0.2, -0.1, 0.6, 0.4, -0.3], [-0.3, 0.2, 0.5, -0.4, 0.1, 0.3, -0.2, 0.6]],
    "t": [0.0, 1.0],
    "rate": 0.5,
    "pool": (2, 1),
}

# every input 0.5 and every kernel weight 0.25: all four entries of the one 2×2 pool window are equal at every step
TIE = {
    "x": [[[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]],
    "W2": [[[[0.25, 0.25], [0.25, 0.25]]]],
    "b2": [0.1],
    "W4": [[0.7], [-0.4]],
    "t": [0.0, 1.0],
    "rate": 0.5,
    "pool": (2, 2),
}


def _toml(net: dict) -> str:
    kernel, stride = net["pool"]
    channels = len(net["W2"])
    return "\n".join(
        [
            'name = "pooltrust"',
            "[loss]",
            'kind = "half_sse"',
            "[training]",
            f"learning_rate = {net['rate']!r}",
            "[[layers]]",
            f"shape = [1, {len(net['x'][0])}, {len(net['x'][0][0])}]",
            f"values = {json.dumps(net['x'])}",
            "[[layers]]",
            'kind = "conv2d"',
            f"channels = {channels}",
            "kernel = 2",
            'activation = "relu"',
            f"weights = {json.dumps(net['W2'])}",
            f"bias = {json.dumps(net['b2'])}",
            "[[layers]]",
            'kind = "maxpool2d"',
            f"kernel = {kernel}",
            f"stride = {stride}",
            "[[layers]]",
            f"size = {len(net['W4'])}",
            'activation = "sigmoid"',
            f"weights = {json.dumps(net['W4'])}",
            f"targets = {json.dumps(net['t'])}",
            "",
        ]
    )


def _torch_run(torch, net: dict, steps: int) -> tuple[float, float]:
    """(E, ∂E/∂w2_1_1_1_1) after ``steps`` gradient-descent updates, by torch in float64."""
    F = torch.nn.functional
    x = torch.tensor([net["x"]], dtype=torch.float64)
    t = torch.tensor(net["t"], dtype=torch.float64)
    W2 = torch.tensor(net["W2"], dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor(net["b2"], dtype=torch.float64, requires_grad=True)
    W4 = torch.tensor(net["W4"], dtype=torch.float64, requires_grad=True)
    kernel, stride = net["pool"]

    def loss():
        a = F.max_pool2d(torch.relu(F.conv2d(x, W2, b2)), kernel, stride=stride).reshape(-1)
        out = torch.sigmoid(W4 @ a)
        return (0.5 * (t - out) ** 2).sum()

    for _ in range(steps + 1):
        E = loss()
        E.backward()
        with torch.no_grad():
            grad = float(W2.grad[0, 0, 0, 0])
            if _ < steps:
                for p in (W2, b2, W4):
                    p -= net["rate"] * p.grad
            for p in (W2, b2, W4):
                p.grad = None
    return float(E.detach()), grad


def _check(tmp_path, net: dict, claims: list[str]):
    path = tmp_path / "pooltrust.toml"
    path.write_text(_toml(net))
    return Model.load(str(path)).check(claims), path


def _shifted(value: float, digits: int, units: int) -> str:
    """``value`` to ``digits`` significant digits, moved by ``units`` in the last digit shown."""
    text = f"{value:.{digits}g}"
    claimed = Decimal(text)
    return str(claimed + units * Decimal(1).scaleb(claimed.as_tuple().exponent))


def test_a_claim_after_updates_through_a_clear_max_pool_is_judged_exactly(tmp_path):
    """E and a kernel weight's gradient after 4 updates of tinyconv, from torch to 10 digits, are ok with no pool
    note (every window is clear at every step); moved by 2 in the last digit they are wrong."""
    torch = require_torch()
    E, grad = _torch_run(torch, TINY, 4)
    report, _ = _check(
        tmp_path,
        TINY,
        [
            f"E@4={E:.10g}",
            f"dE/dw2_1_1_1_1@4={grad:.10g}",
            f"E@4={_shifted(E, 10, 2)}",
            f"dE/dw2_1_1_1_1@4={_shifted(grad, 10, -2)}",
        ],
    )
    assert [r.ok for r in report.results] == [True, True, False, False], [r.computed for r in report.results]
    assert all(r.pool is None for r in report.results)
    # judged exactly at float64's parameters (as a dense net's): the verdict's value has more than float64's digits
    assert all(r.exact is not None and len(r.exact.as_tuple().digits) > 17 for r in report.results)


def test_a_tied_pool_window_is_too_close_to_call_and_says_so(tmp_path):
    """Four equal entries of a pool window: the claim after 3 updates is judged from float64 at the stated wider
    trust, and the verdict names the step, the window, the gap and the bound, in text and JSON."""
    torch = require_torch()
    E, _ = _torch_run(torch, TIE, 3)
    report, path = _check(tmp_path, TIE, [f"E@3={E:.6g}", f"E@3={_shifted(E, 6, 3)}"])
    assert [r.ok for r in report.results] == [True, False]
    window = report.results[0].pool
    assert window is not None
    assert (window.step, window.layer, window.channel, window.position) == (0, 2, 1, 1)
    assert window.gap == 0 and window.bound > 0
    from derive.check.claims import report_json, report_text

    text = report_text(report)
    assert "too close to call" in text and "after 0 updates" in text and "gap 0" in text and "1e-06" in text
    pool = report_json(report)["claims"][0]["pool"]
    assert pool["step"] == 0 and pool["gap"] == 0 and pool["bound"] == window.bound and pool["trust"] == 1e-6
    cli = subprocess.run(
        [sys.executable, "-m", "derive", "check", str(path), f"E@3={E:.6g}"], capture_output=True, text=True
    )
    assert "too close to call" in cli.stdout, cli.stdout + cli.stderr


def test_a_claim_at_the_spec_s_own_numbers_has_no_pool_note(tmp_path):
    """The tie matters only after updates: E itself is judged exactly, as before."""
    torch = require_torch()
    E, _ = _torch_run(torch, TIE, 0)
    report, _ = _check(tmp_path, TIE, [f"E={E:.12g}"])
    assert report.results[0].ok and report.results[0].pool is None
