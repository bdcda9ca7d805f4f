"""Optimisers as torch.optim has them: derive's parameters after N steps, and its buffers, against torch's.

The oracle is torch.optim itself (SGD with momentum and Nesterov, RMSprop, Adam, AdamW, weight decay) on the
network tests/batch_oracle.py writes, for a single sample and for a batch.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from batch_oracle import ACTIVATIONS, toml
from conftest import require_torch
from test_batches import flat, tanh_softmax, xor

SETTINGS = {
    "sgd": {"optimizer": "sgd"},
    "sgd-momentum": {"optimizer": "sgd", "momentum": 0.9},
    "sgd-nesterov-decay": {"optimizer": "sgd", "momentum": 0.8, "nesterov": True, "weight_decay": 0.01},
    "rmsprop": {"optimizer": "rmsprop"},
    "rmsprop-momentum-decay": {"optimizer": "rmsprop", "momentum": 0.5, "alpha": 0.9, "weight_decay": 0.02},
    "adam": {"optimizer": "adam"},
    "adam-decay": {"optimizer": "adam", "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05},
    "adamw": {"optimizer": "adamw"},
    "adamw-decay": {"optimizer": "adamw", "weight_decay": 0.1},
}
STEPS = 5


def torch_optimizer(torch, params, rate, settings):
    s = dict(settings)
    name = s.pop("optimizer")
    if name in ("adam", "adamw"):
        s["betas"] = (s.pop("beta1", 0.9), s.pop("beta2", 0.999))
    return {
        "sgd": torch.optim.SGD,
        "rmsprop": torch.optim.RMSprop,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
    }[name](params, lr=rate, **s)


def torch_run(torch, net, settings, steps):
    """(every parameter after the steps, the optimiser's state per parameter tensor) by torch.optim."""
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    tensors = []
    for layer in net["layers"]:
        tensors.append(torch.tensor(layer["W"], dtype=torch.float64, requires_grad=True))
        tensors.append(torch.tensor(layer["b"], dtype=torch.float64, requires_grad=True))
    opt = torch_optimizer(torch, tensors, net["rate"], settings)
    for _ in range(steps):
        opt.zero_grad()
        a = x
        for i, layer in enumerate(net["layers"]):
            z = a @ tensors[2 * i].T + tensors[2 * i + 1]
            kind = layer["activation"]
            a = torch.softmax(z, dim=1) if kind == "softmax" else ACTIVATIONS[kind](torch, z)
        per = (0.5 * (t - a) ** 2).sum(dim=1) if net["loss"] == "half_sse" else -(t * torch.log(a)).sum(dim=1)
        (per.mean() if net["reduction"] == "mean" else per.sum()).backward()
        opt.step()
    state = [opt.state[p] for p in tensors]
    return [p.detach().numpy().copy() for p in tensors], state


def single(net):
    """The first sample alone."""
    one = copy.deepcopy(net)
    one["X"], one["T"] = net["X"][:1], net["T"][:1]
    return one


def derive_cli(*args):
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("shape", ["xor-batch", "softmax-single", "softmax-batch-sum"])
def test_train_steps_as_torch_optim_does(tmp_path, setting, shape):
    torch = require_torch()
    net = {
        "xor-batch": xor("mean"),
        "softmax-single": single(tanh_softmax("mean")),
        "softmax-batch-sum": tanh_softmax("sum"),
    }[shape]
    for layer in net["layers"]:  # torch's tensors: a bias per neuron
        if not isinstance(layer["b"], list):
            layer["b"] = [float(layer["b"])] * len(layer["W"])
    net["rate"] = 0.05
    net["training"] = SETTINGS[setting]
    path = tmp_path / "net.toml"
    path.write_text(toml(net, names=shape.startswith("xor")))
    expected, _ = torch_run(torch, net, SETTINGS[setting], STEPS)
    result = derive_cli("train", str(path), "--steps", str(STEPS), "--format", "json")
    assert result.returncode == 0, result.stderr
    ours = np.array(list(json.loads(result.stdout)["parameters"].values()))
    assert np.allclose(ours, flat(expected), rtol=1e-10, atol=1e-13), np.abs(ours - flat(expected)).max()


@pytest.mark.parametrize("setting", ["sgd-momentum", "rmsprop-momentum-decay", "adam", "adamw-decay"])
def test_check_replays_the_optimiser_and_reads_its_buffers(tmp_path, setting):
    torch = require_torch()
    net = xor("mean")
    net["rate"] = 0.05
    net["training"] = SETTINGS[setting]
    path = tmp_path / "net.toml"
    path.write_text(toml(net, names=True))
    params, state = torch_run(torch, net, SETTINGS[setting], 3)
    w = "w_h1_1_x1"  # the first weight: row 0, column 0 of the first layer
    claims = [f"{w}@3={params[0][0][0]:.12g}"]
    for name, value in state[0].items():
        if name != "step":
            claims.append(f"{name}({w})@3={value.numpy()[0][0]:.12g}")
    assert len(claims) >= 2  # every setting here keeps a buffer
    result = derive_cli("check", str(path), *claims, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = derive_cli(
        "check", str(path), f"exp_avg_sq({w})@3=0.5" if "adam" in setting else f"momentum_buffer({w})@3=9"
    )
    assert wrong.returncode == 1


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ('optimizer = "adamm"', "did you mean 'adam'"),
        ("learning_rate = -0.1", "must be positive"),
        ('optimizer = "adam"\nbeta1 = 1.0', "[0, 1)"),
        ('optimizer = "rmsprop"\nalpha = -0.5', "[0, 1)"),
        ('optimizer = "adam"\neps = -1e-8', "≥ 0"),
        ('optimizer = "sgd"\nnesterov = true', "needs a momentum"),
        ('optimizer = "sgd"\nbeta1 = 0.9', "sgd takes no beta1"),
    ],
)
def test_bad_settings_are_refused_with_their_key(tmp_path, training, message):
    path = tmp_path / "net.toml"
    path.write_text(
        'name = "n"\nloss = "half_sse"\n[training]\n'
        + training
        + '\n[[layers]]\nsize = 1\n[[layers]]\nsize = 1\nactivation = "sigmoid"\n'
    )
    result = derive_cli("show", str(path))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def student_net(path, base):
    """A student's network from their spec file (tomllib, not derive): the base with the drawn inputs and targets."""
    import tomllib

    data = tomllib.loads(path.read_text())
    net = copy.deepcopy(base)
    net["X"], net["T"] = [data["layers"][0]["values"]], [data["layers"][-1]["targets"]]
    for layer, table in zip(net["layers"], data["layers"][1:]):
        layer["W"], layer["b"] = table["weights"], table["bias"]
    return net


def answers(path):
    lines = [line.split(" = ") for line in path.read_text().splitlines() if " = " in line and not line.startswith("#")]
    return {name: float(value) for name, value in lines}


@pytest.mark.parametrize("setting", ["adam", "sgd-nesterov-decay", "rmsprop-momentum-decay", "adamw-decay"])
def test_exercises_ask_for_the_optimiser_s_first_step_and_their_answers_are_torch_optim_s(tmp_path, setting):
    from conftest import need_tex

    need_tex()
    torch = require_torch()
    base = {**xor("mean"), "rate": RATE, "training": SETTINGS[setting]}
    base["X"], base["T"] = base["X"][1:2], base["T"][1:2]
    path = tmp_path / "base.toml"
    path.write_text(toml(base, names=True))
    folder = tmp_path / "class"
    made = derive_cli("exercises", str(path), "--students", "2", "--seed", "3", "-o", str(folder))
    assert made.returncode == 0, made.stderr
    for label in ("01", "02"):
        net = student_net(folder / f"student-{label}.toml", base)
        (step,) = torch_steps(torch, net, SETTINGS[setting], 1, (0, 0, 0))  # the sheet's weight: the first
        given = answers(folder / f"student-{label}-answers.txt")
        w = "w_h1_1_x1"
        expected = {f"{w}@1": step["after"], f"dE/d{w}": step["gradient"]}
        expected.update({f"{k}({w})@1": v for k, v in step.items() if k not in ("gradient", "before", "after")})
        assert set(expected) <= set(given), given
        for name, value in expected.items():
            assert given[name] == pytest.approx(value, rel=1e-9), name
        graded = derive_cli(
            "check", str(folder / f"student-{label}.toml"), "--claims", str(folder / f"student-{label}-answers.txt")
        )
        assert graded.returncode == 0, graded.stdout
        key = subprocess.run(
            ["pdftotext", str(folder / f"student-{label}-key.pdf"), "-"], capture_output=True, text=True, check=True
        ).stdout
        worked = numbers_in(key[key.index("first step of") :])
        for name, value in expected_lines(SETTINGS[setting], step, 1).items():
            assert any(abs(n - value) <= 1e-7 * abs(value) + 1e-15 for n in worked), (label, name, value)


def test_the_lecture_s_exercise_is_the_optimiser_s_first_step(tmp_path):
    from conftest import need_tex

    need_tex()
    torch = require_torch()
    net = {**xor("mean"), "rate": RATE, "training": SETTINGS["adam"]}
    net["X"], net["T"] = net["X"][1:2], net["T"][1:2]
    path = tmp_path / "adam.toml"
    path.write_text(toml(net, names=True))
    pdf = tmp_path / "lecture.pdf"
    result = derive_cli("lecture", str(path), "--exercises", "-o", str(pdf))
    assert result.returncode == 0, result.stderr
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    exercises = text[text.rindex("Carry out the first step of adam") :]
    assert "exp_avg(w_y1_h1_1)@1" in exercises
    (step,) = torch_steps(torch, net, SETTINGS["adam"], 1, (1, 0, 0))  # the output layer's first weight
    shown = numbers_in(exercises)
    for name, value in expected_lines(SETTINGS["adam"], step, 1).items():
        assert any(abs(n - value) <= 1e-7 * abs(value) + 1e-15 for n in shown), (name, value)
    plain = tmp_path / "plain.toml"
    plain.write_text(toml({**net, "training": {}}, names=True))
    tex = tmp_path / "plain.tex"
    assert derive_cli("lecture", str(plain), "--exercises", "--format", "tex", "-o", str(tex)).returncode == 0
    assert "first step of" not in tex.read_text()  # plain gradient descent keeps its one-line update


def test_adam_learns_the_digits_in_ten_epochs(tmp_path):
    from conftest import require

    require("sklearn", "data")
    spec = derive_cli("examples", "digits").stdout.replace(
        "learning_rate = 0.5\n", 'learning_rate = 0.01\noptimizer = "adam"\n'
    )
    assert 'optimizer = "adam"' in spec
    path = tmp_path / "digits.toml"
    path.write_text(spec)
    result = derive_cli("fit", str(path), "--data", "digits", "--epochs", "10", "-q", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["test_accuracy"] >= 0.95  # held out, the bar


@pytest.mark.parametrize(
    "options",
    [
        ["--optimizer", "adam", "--beta1", "0.8", "--weight-decay", "0.01"],
        ["--optimizer", "sgd", "--momentum", "0.9", "--nesterov"],
        ["--optimizer", "rmsprop", "--alpha", "0.9", "--eps", "1e-6", "--momentum", "0.5"],
        ["--optimizer", "adamw", "--beta2", "0.99"],
    ],
)
def test_fit_takes_the_optimiser_from_its_options_as_torch_optim_runs_it(tmp_path, options):
    """Whole-batch epochs (batch size = rows, nothing held out, no scaling): each epoch is one torch step."""
    torch = require_torch()
    net = xor("mean")
    net["rate"] = 0.5  # the spec says plain gradient descent at 0.5; the options override both
    path = tmp_path / "net.toml"
    path.write_text(toml(net, names=True))
    np.savez(tmp_path / "data.npz", X=np.array(net["X"]), T=np.array(net["T"]))
    out = tmp_path / "trained.npz"
    args = ["--data", str(tmp_path / "data.npz"), "--epochs", "4", "--batch-size", "4", "--test-fraction", "0"]
    result = derive_cli("fit", str(path), *args, "--scale", "none", "--lr", "0.05", *options, "-q", "-o", str(out))
    assert result.returncode == 0, result.stderr
    settings: dict = {}
    words = list(options)
    while words:
        key = words.pop(0).removeprefix("--").replace("-", "_")
        settings[key] = True if key == "nesterov" else (words.pop(0) if key == "optimizer" else float(words.pop(0)))
    net["rate"] = 0.05
    expected, _ = torch_run(torch, net, settings, 4)
    trained = np.load(out)
    ours = flat([trained["W2"], trained["b2"], trained["W3"], trained["b3"]])
    assert np.allclose(ours, flat(expected), rtol=1e-10, atol=1e-13), np.abs(ours - flat(expected)).max()
    text = derive_cli("fit", str(path), *args, *options, "-o", str(tmp_path / "again.npz")).stdout
    assert settings["optimizer"] in text or "gradient descent: momentum 0.9, Nesterov" in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--optimizer", "adamm"], "--optimizer: unknown optimizer 'adamm'"),
        (["--optimizer", "adam", "--beta1", "1.0"], "--beta1: must lie in [0, 1), got 1.0"),
        (["--optimizer", "rmsprop", "--alpha", "-0.5"], "--alpha: must lie in [0, 1)"),
        (["--optimizer", "adam", "--eps", "-1e-8"], "--eps: must be ≥ 0"),
        (["--optimizer", "adam", "--eps", "nan"], "--eps: expected a finite number"),
        (["--nesterov"], "--nesterov: Nesterov momentum needs a momentum"),
        (["--optimizer", "adam", "--momentum", "0.9"], "--momentum: adam takes no momentum"),
        (["--beta1", "0.9"], "--beta1: sgd takes no beta1"),  # the spec's optimiser: plain sgd
        (["--weight-decay", "-1"], "--weight-decay: must be ≥ 0"),
    ],
)
def test_fit_refuses_bad_optimiser_options_with_the_spec_s_messages(tmp_path, options, message):
    np.savez(tmp_path / "data.npz", X=np.zeros((4, 2)), T=np.zeros((4, 1)))
    out = tmp_path / "never.npz"
    result = derive_cli("fit", "xor", "--data", str(tmp_path / "data.npz"), *options, "-q", "-o", str(out))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") <= 2  # the message, and a hint


def torch_steps(torch, net, settings, steps, at):
    """Per step, for the weight at ``at`` = (layer, row, column): its gradient, value before and after the step
    and the optimiser's buffers after it, by torch.optim (the step's number is t, from 1)."""
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    tensors = []
    for layer in net["layers"]:
        tensors.append(torch.tensor(layer["W"], dtype=torch.float64, requires_grad=True))
        tensors.append(torch.tensor(layer["b"], dtype=torch.float64, requires_grad=True))
    opt = torch_optimizer(torch, tensors, net["rate"], settings)
    layer, row, col = at
    weight = tensors[2 * layer]
    found = []
    for _ in range(steps):
        opt.zero_grad()
        a = x
        for i, spec in enumerate(net["layers"]):
            z = a @ tensors[2 * i].T + tensors[2 * i + 1]
            kind = spec["activation"]
            a = torch.softmax(z, dim=1) if kind == "softmax" else ACTIVATIONS[kind](torch, z)
        per = (0.5 * (t - a) ** 2).sum(dim=1) if net["loss"] == "half_sse" else -(t * torch.log(a)).sum(dim=1)
        (per.mean() if net["reduction"] == "mean" else per.sum()).backward()
        before = float(weight.detach()[row, col])
        gradient = float(weight.grad[row, col])
        opt.step()
        state = {k: float(v[row, col]) for k, v in opt.state[weight].items() if k != "step"}
        found.append({"gradient": gradient, "before": before, "after": float(weight.detach()[row, col]), **state})
    return found


def expected_lines(settings, step, t):
    """Every quantity the update shows at step t, by its text name, from torch's numbers (w stands for the weight)."""
    s = {"momentum": 0.0, "weight_decay": 0.0, "alpha": 0.99, "beta1": 0.9, "beta2": 0.999, **settings}
    if s["optimizer"] == "adamw" and "weight_decay" not in settings:
        s["weight_decay"] = 0.01
    rate = RATE
    name = s["optimizer"]
    lines = {f"g_{t}": step["gradient"], f"w@{t}": step["after"]}
    if s["weight_decay"] and name != "adamw":
        lines[f"g̃_{t}"] = step["gradient"] + s["weight_decay"] * step["before"]
    if name == "adamw" and s["weight_decay"]:
        lines[f"w~@{t}"] = step["before"] * (1 - rate * s["weight_decay"])
    if "exp_avg" in step:
        lines[f"m_{t}"], lines[f"v_{t}"] = step["exp_avg"], step["exp_avg_sq"]
        lines[f"m̂_{t}"] = step["exp_avg"] / (1 - s["beta1"] ** t)
        lines[f"v̂_{t}"] = step["exp_avg_sq"] / (1 - s["beta2"] ** t)
    if "square_avg" in step:
        lines[f"v_{t}"] = step["square_avg"]
    if "momentum_buffer" in step:
        lines[f"m_{t}"] = step["momentum_buffer"]
    return lines


RATE = 0.05
SHOWN = [s for s in SETTINGS if s != "sgd"]


@pytest.mark.parametrize("setting", SHOWN)
@pytest.mark.parametrize("shape", ["xor-batch", "xor-single"])
def test_grad_shows_two_steps_of_the_optimiser_with_torch_optim_s_numbers(tmp_path, setting, shape):
    torch = require_torch()
    net = xor("mean")
    if shape == "xor-single":  # the sample (0, 1): x2 = 1 gives the weight from x2 a gradient
        net["X"], net["T"] = net["X"][1:2], net["T"][1:2]
    net["rate"] = RATE
    net["training"] = SETTINGS[setting]
    path = tmp_path / "net.toml"
    path.write_text(toml(net, names=True))
    weight, at = "w_h1_1_x2", (0, 0, 1)  # layer 0, row 0, column 1
    steps = torch_steps(torch, net, SETTINGS[setting], 2, at)
    result = derive_cli("grad", str(path), weight, "--format", "json")
    assert result.returncode == 0, result.stderr
    update = json.loads(result.stdout)["update"]
    assert update["optimizer"] == SETTINGS[setting]["optimizer"] and [s["step"] for s in update["steps"]] == [1, 2]
    for t, (shown, step) in enumerate(zip(update["steps"], steps), start=1):
        expected = expected_lines(SETTINGS[setting], step, t)
        got = {line["quantity"].replace(weight, "w"): line["value"] for line in shown["lines"]}
        assert set(got) == set(expected), (got, expected)
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-10, abs=1e-15), key
        assert all(line["why"] for line in shown["lines"] if not line["quantity"].startswith("g_"))
        checks = [line["check"] for line in shown["lines"] if "check" in line]
        assert f"{weight}@{t}" in checks
    # the text shows the same numbers to 8 digits, each line ending in its value
    text = derive_cli("grad", str(path), weight).stdout
    for t, step in enumerate(steps, start=1):
        for key, value in expected_lines(SETTINGS[setting], step, t).items():
            name = key.replace("w", weight, 1) if key.startswith("w") else key
            line = next(line for line in text.splitlines() if line.strip().startswith(name + " = "))
            assert float(line.rsplit("= ", 1)[1]) == pytest.approx(value, rel=1e-7, abs=1e-15), line


def test_grad_of_plain_gradient_descent_shows_no_update_and_a_bias_kept_out_shows_none(tmp_path):
    plain = derive_cli("grad", "mazur", "w5", "--format", "json")
    assert "update" not in json.loads(plain.stdout)
    path = tmp_path / "adam.toml"
    net = {**single(xor("mean")), "rate": RATE, "training": {**SETTINGS["adam"], "update_biases": False}}
    path.write_text(toml(net, names=True).replace("update_biases = true\n", ""))
    bias = derive_cli("grad", str(path), "b_h1_1", "--format", "json")
    assert bias.returncode == 0, bias.stderr
    assert "update" not in json.loads(bias.stdout)
    weight = derive_cli("grad", str(path), "w_h1_1_x2")
    assert "m̂_1 = m_1/(1 - β1)" in weight.stdout and "exp_avg(w_h1_1_x2)@1" in weight.stdout


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_the_rule_as_read_is_the_rule_the_module_runs(setting):
    """Optimizer.terms (m̂, v̂ written out, settings as symbols) is the same step as Optimizer.rule (torch's
    grouping, printed as the module's update), at random points: a consistency check, not an oracle."""
    from derive.core.optimizer import GRADIENT, PARAMETER, RATE, STEP, Optimizer
    from derive.spec.reading import TrainingSpec

    s = dict(SETTINGS[setting])
    if s["optimizer"] == "adamw":
        s.setdefault("weight_decay", 0.01)
    opt = Optimizer(s["optimizer"], 0.05, True, TrainingSpec(learning_rate=0.05, **s))
    rng = np.random.default_rng(3)
    for _ in range(5):
        start = {PARAMETER: rng.uniform(-1, 1), GRADIENT: rng.uniform(-1, 1), STEP: int(rng.integers(1, 6))}
        start.update({opt.symbol(name): rng.uniform(0, 1) for name in opt.state})
        ran, read = {**start, RATE: 0.05}, {**start, **opt.setting_values()}
        for a in opt.rule():
            ran[a.target] = float(a.expr.xreplace(ran))
        for term in opt.terms():
            read[term.target] = float(term.expr.xreplace(read))
        for symbol in [PARAMETER, *(opt.symbol(name) for name in opt.state)]:
            assert read[symbol] == pytest.approx(ran[symbol], rel=1e-13, abs=1e-15)


def numbers_in(text):
    """Every number pdftotext reads from a page: 0.0082167041, −0.099999939, 6.7514226 × 10−6."""
    import re

    text = text.replace("−", "-")
    found = []
    for m in re.finditer(r"(-?\d+(?:\.\d+)?)(?:\s*×\s*10\s*(-?\d+))?", text):
        found.append(float(m.group(1)) * (10 ** int(m.group(2)) if m.group(2) else 1))
    return found


@pytest.mark.parametrize(("setting", "lang"), [("adam", "en"), ("sgd-nesterov-decay", "en"), ("adamw-decay", "zh")])
def test_the_lecture_works_two_steps_of_the_optimiser_with_torch_optim_s_numbers(tmp_path, setting, lang):
    """The PDF's update section (read back with pdftotext) shows each line's number as torch.optim computes it."""
    from conftest import need_tex

    need_tex(lang)
    torch = require_torch()
    net = {**xor("mean"), "rate": RATE, "training": SETTINGS[setting]}
    net["X"], net["T"] = net["X"][1:2], net["T"][1:2]  # one sample: the lecture's derivations are its own
    path = tmp_path / "net.toml"
    path.write_text(toml(net, names=True))
    pdf = tmp_path / "lecture.pdf"
    result = derive_cli("lecture", str(path), "--lang", lang, "-o", str(pdf))
    assert result.returncode == 0, result.stderr
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    heading = "优化器的一步" if lang == "zh" else "One step of the optimiser"
    section = text[text.index(heading) :]
    shown = numbers_in(section[: section.index("exp_avg" if "adam" in setting else "momentum_buffer")])
    # the lecture's update is written for the output layer's first weight: layer 1, row 0, column 0
    steps = torch_steps(torch, net, SETTINGS[setting], 2, (1, 0, 0))
    for t, step in enumerate(steps, start=1):
        for key, value in expected_lines(SETTINGS[setting], step, t).items():
            assert any(abs(n - value) <= 1e-7 * abs(value) + 1e-15 for n in shown), (key, value)
    assert ("偏差修正" if lang == "zh" else "Bias correction") in section or "adam" not in setting


def test_an_article_s_numbers_after_an_update_are_not_judged_against_another_optimiser(tmp_path):
    """Mazur's numbers after the update are plain gradient descent's: a copy of the example switched to
    Adam gets no "Careful" note on them, while the forward pass's notes (no update involved) stay."""
    from derive.examples import __file__ as examples

    spec = Path(examples).with_name("mazur.toml").read_text()
    assert "\nlearning_rate = 0.5\n" in spec
    path = tmp_path / "mazur-adam.toml"
    path.write_text(spec.replace("\nlearning_rate = 0.5\n", '\nlearning_rate = 0.5\noptimizer = "adam"\n'))
    tex = tmp_path / "adam.tex"
    result = derive_cli("lecture", str(path), "--format", "tex", "-o", str(tex))
    assert result.returncode == 0, result.stderr
    text = tex.read_text()
    assert "0.75136079" in text  # before any update the article's numbers are still compared
    assert "0.291027924" not in text and "0.35891648" not in text and "0.0000351085" not in text
