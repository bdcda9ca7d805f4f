"""`derive train` with --optimizer and its settings, against torch.optim run here on Mazur's network.

The oracle is the article's network (tests/oracles.py's numbers, not derive's) written as torch operations:
two sigmoid layers, one shared bias per layer kept out of the optimiser (the example's update_biases =
false), half the summed squared error, and torch.optim's SGD or Adam stepping the weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require_torch
from oracles import mazur

from derive.app.cli import main

STEPS = 7
WEIGHTS = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"]  # Mazur's names, row by row of W2 then W3


def torch_mazur(torch, settings, rate, steps):
    """(loss before, loss after, {weight: value}) after ``steps`` of torch.optim on Mazur's network."""
    net = mazur()
    x = torch.tensor(net.x, dtype=torch.float64)
    t = torch.tensor(net.t, dtype=torch.float64)
    weights = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in net.weights]
    biases = [float(b) for b in net.biases]  # shared and not updated: constants here

    def loss():
        a = x
        for w, b in zip(weights, biases):
            a = torch.sigmoid(w @ a + b)
        return 0.5 * ((t - a) ** 2).sum()

    s = dict(settings)
    name = s.pop("optimizer")
    if name in ("adam", "adamw"):
        s["betas"] = (s.pop("beta1", 0.9), s.pop("beta2", 0.999))
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name](weights, lr=rate, **s)
    with torch.no_grad():
        before = float(loss())
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        after = float(loss())
    values = np.concatenate([w.detach().numpy().ravel() for w in weights])
    return before, after, dict(zip(WEIGHTS, values))


def train(*args):
    result = CliRunner().invoke(main, ["train", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def settings_of(options):
    """--optimizer adam --beta1 0.8 --nesterov → {"optimizer": "adam", "beta1": 0.8, "nesterov": True}."""
    settings: dict = {}
    words = list(options)
    while words:
        key = words.pop(0).removeprefix("--").replace("-", "_")
        settings[key] = True if key == "nesterov" else (words.pop(0) if key == "optimizer" else float(words.pop(0)))
    return settings


@pytest.mark.parametrize(
    ("options", "rate"),
    [
        (["--optimizer", "adam"], 0.01),
        (["--optimizer", "sgd", "--momentum", "0.9"], 0.5),
        (["--optimizer", "sgd", "--momentum", "0.8", "--nesterov", "--weight-decay", "0.01"], 0.5),
        (["--optimizer", "adamw", "--beta1", "0.8", "--weight-decay", "0.1"], 0.02),
    ],
)
def test_train_steps_mazur_with_the_optimiser_of_its_options_as_torch_optim_does(options, rate):
    torch = require_torch()
    before, after, weights = torch_mazur(torch, settings_of(options), rate, STEPS)
    out = json.loads(train("mazur", "--steps", str(STEPS), "--lr", str(rate), *options, "--format", "json"))
    assert out["optimizer"] == options[1] and out["steps"] == STEPS and out["learning_rate"] == rate
    assert out["loss_before"] == pytest.approx(before, rel=1e-12)
    assert out["loss"] == pytest.approx(after, rel=1e-10)
    ours = np.array([out["parameters"][w] for w in WEIGHTS])
    expected = np.array([weights[w] for w in WEIGHTS])
    assert np.allclose(ours, expected, rtol=1e-10, atol=1e-13), np.abs(ours - expected).max()
    assert out["parameters"]["b1"] == 0.35 and out["parameters"]["b2"] == 0.6  # update_biases = false still holds
    # the text names the optimiser it ran and prints the same numbers
    text = train("mazur", "--steps", str(STEPS), "--lr", str(rate), *options, "--digits", "12")
    first = text.splitlines()[0]
    assert first.startswith(f"mazur: {STEPS} steps of ")
    assert ("gradient descent: momentum" in first) if options[1] == "sgd" else (f"of {options[1]}:" in first)
    printed = dict(line.strip().split(" = ") for line in text.splitlines() if line.startswith("  w"))
    assert set(printed) == set(WEIGHTS)
    for w in WEIGHTS:  # 12 significant digits, correctly rounded
        assert float(printed[w]) == pytest.approx(weights[w], rel=1e-11, abs=1e-13), w


def test_the_options_override_the_spec_s_training_table(tmp_path):
    """A spec that says adam: --optimizer sgd starts sgd from its own defaults (no beta carried over), and a
    setting without --optimizer goes to the spec's own optimiser."""
    torch = require_torch()
    text = CliRunner().invoke(main, ["examples", "mazur"]).stdout
    spec = text.replace("learning_rate = 0.5\n", 'learning_rate = 0.01\noptimizer = "adam"\nbeta1 = 0.7\n')
    assert 'optimizer = "adam"' in spec
    path = tmp_path / "mazur_adam.toml"
    path.write_text(spec)

    def run(*options):
        return json.loads(train(str(path), "--steps", str(STEPS), *options, "--format", "json"))

    as_written = run()
    _, _, weights = torch_mazur(torch, {"optimizer": "adam", "beta1": 0.7}, 0.01, STEPS)
    assert np.allclose([as_written["parameters"][w] for w in WEIGHTS], [weights[w] for w in WEIGHTS], rtol=1e-10)
    sgd = run("--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.5")
    _, _, weights = torch_mazur(torch, {"optimizer": "sgd", "momentum": 0.9}, 0.5, STEPS)
    assert sgd["optimizer"] == "sgd"
    assert np.allclose([sgd["parameters"][w] for w in WEIGHTS], [weights[w] for w in WEIGHTS], rtol=1e-10)
    beta2 = run("--beta2", "0.9")  # the spec's adam, its beta1 kept, beta2 from the option
    _, _, weights = torch_mazur(torch, {"optimizer": "adam", "beta1": 0.7, "beta2": 0.9}, 0.01, STEPS)
    assert np.allclose([beta2["parameters"][w] for w in WEIGHTS], [weights[w] for w in WEIGHTS], rtol=1e-10)


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        (["--optimizer", "adamm"], "error: --optimizer: unknown optimizer 'adamm'", "did you mean 'adam'"),
        (["--momentum", "-1"], "error: --momentum: must be ≥ 0, got -1.0", ""),
        (["--nesterov"], "error: --nesterov: Nesterov momentum needs a momentum", ""),
        (["--optimizer", "sgd", "--nesterov", "--momentum", "0"], "error: --nesterov: Nesterov momentum needs", ""),
        (["--optimizer", "adam", "--momentum", "0.9"], "error: --momentum: adam takes no momentum", ""),
        (["--optimizer", "adam", "--beta1", "1"], "error: --beta1: must lie in [0, 1), got 1.0", ""),
        (["--eps", "1e-8"], "error: --eps: sgd takes no eps", ""),  # mazur's own optimiser: plain sgd
        (["--weight-decay", "inf"], "error: --weight-decay: expected a finite number", ""),
    ],
)
def test_train_refuses_bad_optimiser_options_with_the_spec_s_messages(tmp_path, options, message, hint):
    out = tmp_path / "never.txt"
    result = CliRunner().invoke(main, ["train", "mazur", "--steps", "2", *options, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr
    assert hint in result.stderr
    assert result.stderr.count("\n") <= 2  # the message, and at most a hint
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert result.stdout == "" and not out.exists()


def test_train_and_fit_share_one_definition_of_the_options():
    """The same options, in the same order and with the same help, on both commands."""

    def options(command):
        return [(p.opts, p.secondary_opts, p.help) for p in main.commands[command].params if p.name in KEYS]

    KEYS = {"optimizer", "momentum", "nesterov", "weight_decay", "alpha", "beta1", "beta2", "eps"}
    assert len(options("train")) == len(KEYS)
    assert options("train") == options("fit")
