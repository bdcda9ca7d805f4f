"""Map layers that pass the neuron and parameter estimates but would take unbounded memory or time.

A 300×300 kernel over a 310×310 input has 90,000 weights and 121 positions, well inside the spec's limits, but its
nets hold 10.9 million products: `grad` of one kernel weight took 3.1 GB and 15 s, `show --full` 3.7 GB and
2 min. The commands that work every net's products refuse it up front (exit 2, one line naming the file and key);
those that compute maps with NumPy take it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import derive
from derive.core.layers import _conv_tables
from derive.errors import DeriveError
from derive.spec.maps import MAX_MAP_PRODUCTS, map_products

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD = 180  # seconds: only a hang guard, never a measure

BIG_KERNEL = """
name = "k300"
loss = "half_sse"
[[layers]]
shape = [1, 310, 310]
values = "random"
[[layers]]
kind = "conv2d"
channels = 1
kernel = 300
activation = "relu"
[[layers]]
size = 1
activation = "sigmoid"
targets = [1.0]
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "derive", *args],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        stdin=subprocess.DEVNULL,
    )


def _refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: k300.toml: layers[1].kernel: ") and len(first) < 400, first
    for word in words:
        assert word in first, (word, first)


@pytest.mark.parametrize(
    "args",
    [
        ("grad", "k300.toml", "w2_1_1_1_1"),
        ("show", "k300.toml", "--full"),
        ("show", "k300.toml", "--format", "json", "--full"),
        ("lecture", "k300.toml", "-o", "k300.html"),
        ("check", "k300.toml", "a2_1_1_1=0.5"),
    ],
)
def test_a_300x300_kernel_is_refused_by_the_commands_that_work_every_product(tmp_path, args):
    (tmp_path / "k300.toml").write_text(BIG_KERNEL)
    proc = _run(*args, cwd=tmp_path)
    _refused(proc, "10,890,000 products", f"limit is {MAX_MAP_PRODUCTS:,}", "map work limit")
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k300.toml"]  # nothing written, half or whole


def test_a_300x300_kernel_still_shows_and_exports(tmp_path):
    (tmp_path / "k300.toml").write_text(BIG_KERNEL)
    shown = _run("show", "k300.toml", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "conv2d 300×300 → 1 map of 11×11" in shown.stdout
    exported = _run("export", "k300.toml", "-o", "k300.py", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "def gradients" in (tmp_path / "k300.py").read_text()


def test_the_products_counted_are_the_nets_products():
    """The estimate is the count the derivations build: LeNet's 240,000 window products plus its pools'."""
    lenet = derive.load("lenet")
    layers = lenet.spec.layers
    assert [map_products(layer) for layer in layers] == [0, 3456 * 25, 864 * 4, 1024 * 150, 256 * 4, 0]
    net = lenet.network
    conv = net.layers[1]
    assert sum(len(conv.kind.links_into(conv, j)) for j in range(conv.size)) == map_products(layers[1])
    assert sum(map_products(layer) for layer in layers) < MAX_MAP_PRODUCTS  # LeNet stays workable


def test_the_api_refuses_before_building_anything():
    model = derive.load(BIG_KERNEL)
    tables = _conv_tables.cache_info().currsize
    with pytest.raises(
        DeriveError, match=r"layers\[1\]\.kernel: derive grad works every net.s products.*map work limit"
    ):
        model.derived("w2_1_1_1_1")
    assert _conv_tables.cache_info().currsize == tables  # the 10.9 million (input, kernel entry) pairs never made


def test_a_kernel_whose_float_windows_do_not_fit_is_refused_when_read(tmp_path):
    """140×140 over 280×280: 98,281 neurons and 19,601 parameters pass, but im2col's columns are 3.1 GB (show took
    3.3 GB, train died of a NumPy MemoryError): every command refuses it when the spec is read."""
    spec = BIG_KERNEL.replace("[1, 310, 310]", "[1, 280, 280]").replace("kernel = 300", "kernel = 140")
    (tmp_path / "k300.toml").write_text(spec)
    for args in (("show", "k300.toml"), ("train", "k300.toml", "--steps", "1"), ("export", "k300.toml", "-o", "m.py")):
        proc = _run(*args, cwd=tmp_path)
        _refused(proc, "its windows would take about 20.3 GiB", "19,881 positions × 19,600 window inputs", "1 GiB")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["k300.toml"]
