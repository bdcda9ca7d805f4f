"""What a new user tripped over: each item of the issue, checked the way the user met it.

Numbers are compared with values computed here by other means (math, NumPy, a hand-written
backprop), never with derive's own output.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from derive.app.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=None, input=None):
    """The CLI as a user runs it: a real process, stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=cwd, input=input, timeout=600
    )


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def refused(result, *words):
    """Exit status 2, one message naming what the user must know, never a traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # click's runner: sys.exit(2), not an uncaught exception
    for word in words:
        assert word in result.output, result.output


# -- 1. bce needs outputs in (0, 1) ---------------------------------------------------------------

ONE_OUTPUT = """
name = "one"
loss = "bce"
[[layers]]
names = ["x1"]
values = [0.5]
[[layers]]
names = ["o1"]
activation = "{activation}"
weights = [[{weight}]]
targets = [1.0]
"""


def spec_file(tmp_path, activation, weight=-0.5, name="net.toml"):
    path = tmp_path / name
    path.write_text(ONE_OUTPUT.format(activation=activation, weight=weight))
    return path


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear", "softplus", "elu", "leaky_relu", "gelu"])
@pytest.mark.parametrize("command", [["show"], ["grad", "--all"], ["train"], ["grad", "w_o1_x1"]])
def test_bce_over_an_output_that_can_leave_0_1_is_refused_when_the_spec_is_read(tmp_path, activation, command):
    path = spec_file(tmp_path, activation)
    result = invoke(command[0], str(path), *command[1:])
    refused(result, f"{path}: loss.kind", "bce needs outputs in (0, 1)", repr(activation), '"sigmoid"', "softmax")


def test_bce_refusal_is_one_message_from_a_real_process(tmp_path):
    proc = run("train", str(spec_file(tmp_path, "tanh")))
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {tmp_path / 'net.toml'}: loss.kind: bce needs outputs in (0, 1)")


def test_bce_over_sigmoid_and_softmax_stays_supported(tmp_path):
    sigmoid = invoke("grad", str(spec_file(tmp_path, "sigmoid")), "--all")
    assert sigmoid.exit_code == 0, sigmoid.output
    # E = −log σ(−0.25) by hand
    assert f"E = {-math.log(1 / (1 + math.exp(0.25))):.8g}" in sigmoid.output
    softmax = (ROOT / "tests" / "test_lecture_plan.py").read_text()  # its BCE_SOFTMAX spec: bce over a softmax
    start = softmax.index('BCE_SOFTMAX = """') + len('BCE_SOFTMAX = """')
    path = tmp_path / "bce_softmax.toml"
    path.write_text(softmax[start : softmax.index('"""', start)])
    assert invoke("grad", str(path), "--all").exit_code == 0


def test_bce_over_a_formula_is_refused_where_an_output_at_the_spec_s_numbers_leaves_0_1(tmp_path):
    path = spec_file(tmp_path, "x*tanh(x) - 0.3")
    out = -0.25 * math.tanh(-0.25) - 0.3  # net = −0.5 · 0.5
    for command in (["show"], ["grad", "--all"], ["train"], ["grad", "w_o1_x1"]):
        result = invoke(command[0], str(path), *command[1:])
        refused(result, f"{path}: layers[1].activation", "bce needs outputs in (0, 1)", f"out_o1 = {out:.8g}")


def test_bce_over_a_formula_inside_0_1_is_accepted_even_where_floats_round_to_1(tmp_path):
    inside = invoke("grad", str(spec_file(tmp_path, "1/(1 + exp(-x))", weight=0.8)), "--all")
    assert inside.exit_code == 0, inside.output
    assert f"E = {-math.log(1 / (1 + math.exp(-0.4))):.8g}" in inside.output
    # σ(50) is 1.0 in float64 but inside (0, 1): accepted, and its loss is e^−50 to first order
    saturated = invoke("grad", str(spec_file(tmp_path, "1/(1 + exp(-x))", weight=100)), "--all")
    assert saturated.exit_code == 0, saturated.output
    loss = float(saturated.output.split("E = ")[1].split()[0])
    assert loss == pytest.approx(math.log1p(math.exp(-50)), abs=1e-15)  # finite, not the nan the user saw


def test_new_refuses_bce_over_an_output_outside_0_1():
    refused(invoke("new", "2-2-1", "--out", "tanh", "--loss", "bce"), "--out", "bce needs outputs in (0, 1)", "sigmoid")


# -- 3. the API is a complete face of the CLI ----------------------------------------------------

# every command and its counterpart: a Model method, or (no model) a function of the package
API_OF_COMMAND = {
    "grad": "Model.derivation",
    "show": "Model.show",
    "train": "Model.train",
    "lecture": "Model.lecture",
    "export": "Model.export",
    "fit": "Model.fit",
    "check": "Model.check",
    "exercises": "Model.exercises",
    "examples": "derive.examples",
    "new": "derive.new",
    "bench": "derive.benchmark",
    "grade": "derive.gradebook",
}


def test_every_command_has_its_method_or_function():
    import derive

    assert set(main.commands) == set(API_OF_COMMAND), "a command without an API counterpart (or a stale entry)"
    for command, name in API_OF_COMMAND.items():
        owner, attribute = name.split(".")
        target = derive.Model if owner == "Model" else derive
        assert callable(getattr(target, attribute, None)), f"`derive {command}` has no {name}"
        assert attribute in derive.__all__ or owner == "Model"
    assert callable(derive.grade) and "grade" in derive.__all__  # `derive check SPEC --claims FILE`


def test_a_layer_key_gives_the_layer_s_matrix_as_grad_prints_it():
    import numpy as np
    from oracles import backprop, mazur

    import derive

    model = derive.load("mazur")
    w3 = model.derivation("W3")
    _, _, parts = backprop(mazur())
    expected = np.outer(parts["delta"][2], parts["a"][1])  # BP4: δ3 (a2)ᵀ
    np.testing.assert_allclose(np.array(w3.value), expected, rtol=1e-12)
    assert w3.names == (("w5", "w6"), ("w7", "w8"))
    assert w3.text() == invoke("grad", "mazur", "W3").stdout
    assert w3.to_json() == invoke("grad", "mazur", "W3", "--format", "json").stdout
    assert "∂E/∂W3" in repr(w3) and "2×2" in repr(w3)
    b3 = model.derivation("W2")  # the hidden layer: δ2 (x)ᵀ
    np.testing.assert_allclose(np.array(b3.value), np.outer(parts["delta"][1], parts["a"][0]), rtol=1e-12)
    # a spec's own names come first: Mazur's b2 is its output bias, a number, not the layer-2 bias vector
    assert model.derivation("b2").value == pytest.approx(parts["delta"][2].sum(), rel=1e-12)


def test_training_s_repr_shows_the_loss():
    from oracles import mazur, train

    import derive

    run_ = derive.load("mazur").train(10)
    _, history = train(mazur(), 10)
    assert run_.loss == pytest.approx(history[-1], rel=1e-12)
    assert f"loss={run_.loss!r}" in repr(run_) and f"loss_before={run_.loss_before!r}" in repr(run_)


def test_examples_and_new_are_functions_that_give_what_the_commands_print(tmp_path):
    import derive

    listed = derive.examples()
    assert set(listed) == {p.stem for p in (ROOT / "derive" / "examples").glob("*.toml")}
    assert listed["mazur"] == "A step-by-step backpropagation example"
    assert derive.example_text("mazur") == invoke("examples", "mazur").stdout
    text = derive.new("4-5-3", hidden="tanh", seed=3, path=tmp_path / "n.toml")
    assert text == invoke("new", "4-5-3", "--hidden", "tanh", "--seed", "3").stdout
    assert (tmp_path / "n.toml").read_text() == text
    assert derive.new((4, 5, 3), hidden="tanh", seed=3) == text


def test_the_api_says_spec_error_where_the_readme_does():
    import derive

    with pytest.raises(derive.SpecError) as caught:
        derive.load("mazur").with_values(weights={"w55": 0.1})
    readme = (ROOT / "README.md").read_text()
    shown = f"SpecError: {caught.value.where}: {caught.value.message}"
    assert shown in readme, shown


def test_exercises_and_grade_from_python(tmp_path):
    from oracles import Net, backprop

    import derive
    from derive.spec.reading import load_spec

    folder = derive.load("mazur").exercises(2, seed=7, directory=tmp_path / "class", format="html")
    assert sorted(p.name for p in folder.glob("student-01*")) == [
        "student-01-answers.txt",
        "student-01-key.html",
        "student-01-sheet.html",
        "student-01.toml",
    ]
    report = derive.grade(folder / "student-01.toml", folder / "student-01-answers.txt")
    assert report.wrong == 0 and len(report.results) >= 6
    # the answers file's E, against the oracle's E of the student's own numbers
    spec = load_spec(folder / "student-01.toml")
    hidden, out = spec.layers[1], spec.layers[2]
    import numpy as np

    net = Net(
        sizes=[2, 2, 2],
        activations=["sigmoid", "sigmoid"],
        weights=[np.array(hidden.weights), np.array(out.weights)],
        bias_kinds=["shared", "shared"],
        biases=[np.array(hidden.bias.values[0]), np.array(out.bias.values[0])],
        x=np.array(spec.layers[0].values),
        t=np.array(out.targets),
        loss="half_sse",
    )
    answers = dict(
        line.split("=", 1) for line in (folder / "student-01-answers.txt").read_text().splitlines() if "=" in line
    )
    claimed = {k.strip(): v.split("#")[0].strip() for k, v in answers.items() if not k.lstrip().startswith("#")}
    assert float(claimed["E"]) == pytest.approx(backprop(net)[0], rel=1e-7)


def test_exercises_refuses_a_model_that_is_not_its_file_any_more():
    import derive

    changed = derive.load("mazur").with_values(targets=[0.1, 0.9])
    with pytest.raises(derive.DeriveError, match="not one loaded from a file unchanged"):
        changed.exercises(1, seed=1, format="html")


# -- 5. derive fit's defaults give a good model ----------------------------------------------------


def _digits_accuracy(params, X, y):
    """The 64-30-10 network's accuracy on raw pixels, computed here: sigmoid, then the largest output net."""
    import numpy as np

    hidden = 1 / (1 + np.exp(-(X @ params["W2"].T + params["b2"])))
    return float(np.mean(np.argmax(hidden @ params["W3"].T + params["b3"], axis=1) == y))


def test_fit_s_defaults_scale_the_inputs_and_reach_96_percent_on_digits(tmp_path):
    import json

    import numpy as np
    from conftest import require

    require("sklearn", "data")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    results = {}
    for name, extra in (("default", []), ("none", ["--scale", "none"])):
        out = tmp_path / f"{name}.npz"
        done = invoke("fit", "digits", "--data", "digits", "-o", str(out), "--format", "json", *extra)
        assert done.exit_code == 0, done.output
        data = json.loads(done.stdout)
        saved = np.load(out)
        overall = _digits_accuracy({k: saved[k] for k in saved.files}, X, y)  # raw pixels: the scaling is folded in
        assert overall == pytest.approx((1347 * data["train_accuracy"] + 450 * data["test_accuracy"]) / 1797, abs=1e-9)
        results[name] = data["test_accuracy"]
    assert results["default"] >= 0.96 and results["default"] > results["none"]
    assert "[default: standard]" in " ".join(invoke("fit", "--help").output.split())


def test_model_fit_is_derive_fit(tmp_path):
    import json

    import numpy as np
    from conftest import require

    import derive

    require("sklearn", "data")
    result = derive.load("digits").fit("digits", epochs=3, path=tmp_path / "api.npz")
    done = invoke(
        "fit", "digits", "--data", "digits", "--epochs", "3", "-o", str(tmp_path / "cli.npz"), "--format", "json"
    )
    data = json.loads(done.stdout)
    assert result.test_accuracy == data["test_accuracy"] and result.train_loss == data["train_loss"]
    api, cli_ = np.load(tmp_path / "api.npz"), np.load(tmp_path / "cli.npz")
    assert all(np.array_equal(api[k], cli_[k]) for k in cli_.files)


# -- 4. default output fits the terminal ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "param"), [("mazur", "w1"), ("mazur", "b1"), ("digits", "w2_1_1"), ("digits", "b3_4")]
)
def test_grad_lines_fit_100_columns_off_a_terminal_and_the_closed_form_only_when_it_fits(spec, param):
    proc = run("grad", spec, param)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    closed = [line for line in lines if line.startswith("closed form")]
    assert closed and closed[0] != "closed form:"  # too long for a line: its size and how to see it, or why not
    assert "--closed-form" in closed[0] or "not shown" in closed[0]
    full = run("grad", spec, param, "--closed-form").stdout
    if "not shown" not in closed[0]:
        assert "closed form:" in full.splitlines() and max(len(line) for line in full.splitlines()) <= 100


def test_a_short_closed_form_is_still_printed(tmp_path):
    path = tmp_path / "line.toml"
    path.write_text(ONE_OUTPUT.format(activation="linear", weight=0.3).replace('loss = "bce"', 'loss = "half_sse"'))
    lines = run("grad", str(path), "w_o1_x1").stdout.splitlines()
    assert lines[-2] == "closed form:" and lines[-1].startswith("  ∂E/∂w_o1_x1 = ")
    import sympy as sp

    w, x, t = sp.symbols("w_o1_x1 x1 target_o1")
    assert sp.simplify(sp.sympify(lines[-1].split(" = ")[1], locals={"w_o1_x1": w, "x1": x}) - x * (w * x - t)) == 0


def test_show_digits_fits_the_width_and_keeps_the_numbers():
    import derive

    model = derive.load("digits")
    text = run("show", "digits").stdout
    assert max(len(line) for line in text.splitlines()) <= 100
    assert len(text.splitlines()) < 200
    narrow = model.show(width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert model.show(width=None).count("\n") <= text.count("\n")  # folding only adds lines


def test_sums_are_in_numeric_order():
    import numpy as np

    import derive

    rng = np.random.default_rng(4)
    x, w = rng.uniform(0, 1, 12).round(3), rng.uniform(-1, 1, 12).round(3)
    model = derive.load(
        {
            "loss": "half_sse",
            "layers": [
                {"names": [f"x{j}" for j in range(1, 13)], "values": x},
                {
                    "names": ["o"],
                    "activation": "linear",
                    "weights": [w],
                    "weight_names": [[f"w{j}" for j in range(1, 13)]],
                    "targets": [0.5],
                },
            ],
        }
    )
    line = next(line for line in model.show(6, width=None).splitlines() if line.startswith("  net_o ="))
    _, formula, numbers, value = line.split(" = ")
    assert formula == " + ".join(f"w{j}*x{j}" for j in range(1, 13))  # not x1, x10, x11, x12, x2, …
    assert numbers.replace("(", "").replace(")", "") == " + ".join(f"{a:g}*{b:g}" for a, b in zip(w, x))
    assert float(value) == pytest.approx(float(w @ x), rel=1e-5)  # the net's value, by NumPy


def test_the_width_is_the_terminal_s_on_a_terminal(monkeypatch):
    import io

    from derive.present.width import output_width

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "72")
    assert output_width(Terminal()) == 72
    assert output_width(io.StringIO()) == 100


def test_digits_has_numbers_grad_and_train_work():
    import json

    import numpy as np
    from conftest import require
    from oracles import Net, backprop

    import derive

    model = derive.load("digits")
    assert model.has_numbers
    require("sklearn", "data")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    np.testing.assert_array_equal(np.array(model.spec.layers[0].values), X[0] / 16)  # the data set's first image
    assert model.spec.layers[-1].targets == tuple(float(k == y[0]) for k in range(10))
    values = model.parameter_values()  # the spec's seeded weights: inputs to the oracle, not results
    weights = [
        np.array([[values[f"w{l}_{j}_{k}"] for k in range(1, m + 1)] for j in range(1, n + 1)])
        for l, m, n in ((2, 64, 30), (3, 30, 10))
    ]
    biases = [np.array([values[f"b{l}_{j}"] for j in range(1, n + 1)]) for l, n in ((2, 30), (3, 10))]
    net = Net(
        sizes=[64, 30, 10],
        activations=["sigmoid", "softmax"],
        weights=weights,
        bias_kinds=["per_neuron", "per_neuron"],
        biases=biases,
        x=X[0] / 16,
        t=np.eye(10)[y[0]],
        loss="cross_entropy",
    )
    e, grads, _ = backprop(net)
    data = json.loads(run("grad", "digits", "--all", "--format", "json").stdout)
    assert data["loss"] == pytest.approx(e, rel=1e-12)
    ours = np.array([data["gradients"][name] for name in net.parameter_names()])
    np.testing.assert_allclose(ours, grads, rtol=1e-9, atol=1e-14)
    trained = run("train", "digits", "--steps", "20", "--format", "json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["loss"] < e


# -- 6. derive bench says what it leaves out ---------------------------------------------------------


def test_bench_without_pytorch_says_so_and_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    result = CliRunner().invoke(main, ["bench", "--quick", "--budget", "0.05", "--no-torch-compile"])
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stderr.splitlines() if "PyTorch" in line)
    assert warning.startswith("warning: PyTorch is not installed") and "pip install torch==2.13.0" in warning
    assert "torch autograd" in warning and "left out" in warning
    assert "| torch autograd |" not in result.stdout and "array API (torch)" not in result.stdout.split("Left out")[0]
    assert "Left out: PyTorch is not installed" in result.stdout
    assert "| generated |" in result.stdout  # the rest is still measured


# -- 7. smaller things ------------------------------------------------------------------------------


def test_new_takes_a_formula_as_a_spec_file_does(tmp_path):
    import numpy as np
    from oracles import backprop

    import derive

    mish = "x*tanh(log(1 + exp(x)))"
    path = tmp_path / "mish.toml"
    done = invoke("new", "2-3-1", "--hidden", mish, "--seed", "2", "-o", str(path))
    assert done.exit_code == 0, done.output
    model = derive.load(path)
    assert model.spec.layers[1].activation == mish
    from oracles import Net  # the oracle's own NumPy mish and backprop (complex-step derivative)

    values = model.parameter_values()
    spec = model.spec
    net = Net(
        sizes=[2, 3, 1],
        activations=[mish, "sigmoid"],
        weights=[
            np.array([[values[f"w2_{j}_{k}"] for k in (1, 2)] for j in (1, 2, 3)]),
            np.array([[values[f"w3_1_{k}"] for k in (1, 2, 3)]]),
        ],
        bias_kinds=["per_neuron", "per_neuron"],
        biases=[np.array([values[f"b2_{j}"] for j in (1, 2, 3)]), np.array([values["b3_1"]])],
        x=np.array(spec.layers[0].values),
        t=np.array(spec.layers[-1].targets),
        loss="half_sse",
    )
    e, grads, _ = backprop(net)
    loss, ours = model.gradients()
    assert loss == pytest.approx(e, rel=1e-12)
    np.testing.assert_allclose([ours[name] for name in net.parameter_names()], grads, rtol=1e-9, atol=1e-15)
    refused(invoke("new", "2-3-1", "--hidden", "x*tanh((x"), "--hidden", "expected ')'")
    refused(invoke("new", "2-3-1", "--hidden", "tanhh"), "--hidden", "did you mean 'tanh'?")


def test_a_file_like_spec_name_is_refused_with_the_identifier_to_write(tmp_path):
    path = tmp_path / "my-net.toml"
    path.write_text(
        'name = "my-net"\nloss = "half_sse"\n[[layers]]\nsize = 1\n[[layers]]\nsize = 1\nactivation = "tanh"\n'
    )
    refused(invoke("show", str(path)), f"{path}: name", "identifier", 'write name = "my_net"')
    refused(invoke("new", "2-2", "--name", "my-net"), "--name", "identifier", "--name my_net")


XW = """
name = "xw"
loss = "half_sse"
[[layers]]
names = ["x1", "x2", "x3"]
values = [0.2, -0.4, 0.9]
[[layers]]
names = ["h1", "h2"]
activation = "tanh"
{layout}weights = {weights}
bias = [0.1, -0.2]
[[layers]]
names = ["o1"]
activation = "sigmoid"
weights = [[0.7, -0.3]]
targets = [0.25]
"""


def test_weights_may_be_written_from_to_as_in_x_times_w(tmp_path):
    import numpy as np

    import derive

    W = np.array([[0.5, -0.1], [0.3, 0.8], [-0.6, 0.2]])  # 3 inputs × 2 neurons: z = x·W + b
    from_to = derive.load(XW.format(layout='weights_layout = "from_to"\n', weights=W.tolist()))
    to_from = derive.load(XW.format(layout="", weights=W.T.tolist()))
    assert from_to.spec.layers[1].weights == to_from.spec.layers[1].weights
    # by hand, in the x·W convention
    x, b = np.array([0.2, -0.4, 0.9]), np.array([0.1, -0.2])
    out = 1 / (1 + np.exp(-(np.tanh(x @ W + b) @ np.array([0.7, -0.3]))))
    assert from_to.point[from_to.symbol("out_o1")] == pytest.approx(out, rel=1e-12)
    assert from_to.derivation("w_h2_x1").value == pytest.approx(float(to_from.derivation("w_h2_x1").value), rel=1e-15)
    path = tmp_path / "xw.toml"
    path.write_text(XW.format(layout='weights_layout = "from_to"\n', weights=W.T.tolist()))
    refused(invoke("show", str(path)), f"{path}: layers[1].weights", "expected a 3×2 matrix", "from_to")
    path.write_text(XW.format(layout="", weights=W.tolist()))
    refused(invoke("show", str(path)), "transposed?", 'weights_layout = "from_to"')
    path.write_text(XW.format(layout='weights_layout = "x_w"\n', weights=W.tolist()))
    refused(invoke("show", str(path)), "layers[1].weights_layout", "unknown layout")


def test_an_exercise_variant_with_new_weights_drops_the_layout_it_no_longer_uses(tmp_path):
    import numpy as np

    from derive.sheets.variants import draw_variants
    from derive.spec.reading import load_spec

    W = np.array([[0.5, -0.1], [0.3, 0.8], [-0.6, 0.2]])
    path = tmp_path / "xw.toml"
    path.write_text(XW.format(layout='weights_layout = "from_to"\n', weights=W.tolist()))
    (variant,) = draw_variants(path, 1, seed=3, weights=True)
    assert "weights_layout" not in variant.toml
    same_numbers = draw_variants(path, 1, seed=3, weights=False)[0]
    assert "weights_layout" in same_numbers.toml
    assert same_numbers.spec.layers[1].weights == load_spec(path).layers[1].weights


def test_the_readme_reads_right():
    import re

    readme = (ROOT / "README.md").read_text()
    headings = [line.lstrip("#").strip() for line in readme.splitlines() if re.match(r"#{2,4} ", line)]
    for found in re.findall(r'see "([^"]+)"', readme):
        target = " ".join(found.split())  # a reference may be folded over two lines
        assert any(heading.startswith(target) for heading in headings), f'"see {target}" names no heading'
    assert "NumPy only" in readme and "--style scalar" in readme
    assert "DeriveError:" not in readme.split("## From Python and Jupyter")[1].split("##")[0].replace(
        "derive.DeriveError", ""
    )


def test_the_examples_carry_no_internal_notes():
    for path in (ROOT / "derive" / "examples").glob("*.toml"):
        text = invoke("examples", path.stem).stdout
        assert "seed article" not in text, path.name
