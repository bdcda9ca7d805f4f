"""docs/derive.ipynb runs headless, and what its cells show holds the oracle's numbers."""

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from oracles import backprop, mazur, train

NOTEBOOK = Path(__file__).parent.parent / "docs" / "derive.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nbformat = require("nbformat", "test")
    nbclient = require("nbclient", "test")
    require("ipykernel", "test")
    work = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel is this interpreter, with derive importable as the tests import it
    root = str(Path(__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    from jupyter_client.kernelspec import KernelSpec

    spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], env=env)
    manager_class = _manager_with(spec)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_manager_class=manager_class, resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    return notebook, work


def _manager_with(spec):
    from jupyter_client.manager import KernelManager

    class Manager(KernelManager):
        @property
        def kernel_spec(self):
            return spec

    return Manager


def outputs(notebook, source_start: str) -> list[dict]:
    cell = next(c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source_start))
    return cell.outputs


def data(notebook, source_start: str, mime: str) -> str:
    for out in outputs(notebook, source_start):
        if mime in out.get("data", {}):
            return out["data"][mime]
        if mime == "text/plain" and out.get("name") == "stdout":
            return out["text"]
    raise AssertionError(f"no {mime} output in the cell {source_start!r}")


def test_the_notebook_is_committed_without_outputs():
    import json

    cells = json.loads(NOTEBOOK.read_text())["cells"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")


def test_every_cell_runs_without_an_error(executed):
    notebook, _ = executed
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out


def test_one_cell_shows_dE_dw1s_chain_with_numbers(executed):
    notebook, _ = executed
    _, grad, inner = backprop(mazur())
    html = data(notebook, 'model.derivation("w1")', "text/html")
    assert f"<mn>{grad[0]:.8g}</mn>" in html  # the sum
    assert f"<mn>{inner['a'][1][0]:.8g}</mn>" in html  # out_h1, in a factor
    assert html.count("<mfrac>") >= 10


def test_the_model_cell_draws_the_network(executed):
    notebook, _ = executed
    html = data(notebook, "import derive", "text/html")
    assert "<svg" in html and html.count("<circle") == 6
    assert data(notebook, "import derive", "text/plain").startswith("<Model 'mazur' 2-2-2")


def test_printed_text_is_the_cli_text(executed):
    from click.testing import CliRunner

    from derive.app.cli import main

    notebook, _ = executed
    printed = data(notebook, 'print(model.derivation("w5")', "text/plain")
    assert printed == CliRunner().invoke(main, ["grad", "mazur", "w5"]).stdout + "\n"


def test_changed_values_follow_the_oracle(executed):
    notebook, _ = executed
    net = mazur()
    net.weights[1][0, 0] = 0.3
    net.t = np.array([0.05, 0.95])
    _, grad, _ = backprop(net)
    assert math.isclose(float(data(notebook, "changed =", "text/plain")), grad[5], rel_tol=1e-12)


def test_a_dict_spec_follows_the_oracle(executed):
    notebook, _ = executed
    # E = ½(t − tanh(w x + b))², by hand
    x, w, b, t = 1.5, 0.4, 0.1, 0.2
    out = math.tanh(w * x + b)
    expected = (out - t) * (1 - out**2) * x
    assert f"<mn>{expected:.8g}</mn>" in data(notebook, "spec = {", "text/html")


def test_training_and_the_lecture(executed):
    notebook, work = executed
    _, history = train(mazur(), 1000)
    before, after = (float(v) for v in data(notebook, "run =", "text/plain").strip("()").split(", "))
    assert math.isclose(before, history[0], rel_tol=1e-12) and math.isclose(after, history[-1], rel_tol=1e-9)
    assert (work / "mazur.html").read_text().startswith("<!DOCTYPE html>")
    assert "def gradients" in data(notebook, "source = model.export", "text/plain")
