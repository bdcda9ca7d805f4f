"""`derive new --conv` and `derive new --rnn`: convolutional and recurrent specs to start from.

Each spec written must load and work: `show`, `grad` of a kernel or recurrent weight and `export` through the
CLI, and the exported module's gradients against central finite differences of its own loss, computed here
with the inputs and targets read from the written TOML by tomllib (nothing of derive computes the oracle).
"""

from __future__ import annotations

import importlib.util
import json
import math
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner
from oracles import agrees_with_finite_differences

from derive.app.cli import main

REQUESTS = {  # options → (a weight shared over positions or steps, its kinds of layers)
    "conv2d": (["--conv", "1x6x6", "--kernel", "3"], "w2_1_1_2_2", ["conv2d", "maxpool2d", "dense"]),
    "conv2d-padded-avg": (
        ["--conv", "2x5x5", "--channels", "3", "--kernel", "3", "--padding", "1", "--stride", "2", "--pool", "avg"],
        "w2_3_2_1_3",
        ["conv2d", "avgpool2d", "dense"],
    ),
    "conv2d-no-pool-softmax": (
        ["--conv", "1x4x4", "--pool", "none", "--outputs", "3", "--loss", "cross_entropy", "--hidden", "tanh"],
        "w2_2_1_1_2",
        ["conv2d", "dense"],
    ),
    "conv1d": (
        ["--conv", "2x12", "--kernel", "3", "--pool-kernel", "3", "--seed", "4"],
        "w2_1_2_3",
        ["conv1d", "maxpool1d", "dense"],
    ),
    "rnn": (["--rnn", "5x3", "--units", "4"], "u2_1_2", ["rnn", "dense"]),
    "rnn-sigmoid-bce": (
        ["--rnn", "4x2", "--hidden", "sigmoid", "--outputs", "2", "--loss", "bce", "--seed", "7"],
        "u2_2_1",
        ["rnn", "dense"],
    ),
}


def run(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def load_module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def central_differences(module, params, X, T, h=1e-6):
    """∂E/∂p for every entry of every parameter array, from the module's loss alone."""
    fd = {}
    for key, value in params.items():
        grad = np.zeros_like(np.asarray(value, dtype=float))
        for index in np.ndindex(grad.shape):
            plus = {k: np.array(v, dtype=float, copy=True) for k, v in params.items()}
            minus = {k: np.array(v, dtype=float, copy=True) for k, v in params.items()}
            plus[key][index] += h
            minus[key][index] -= h
            grad[index] = (float(module.loss(plus, X, T)) - float(module.loss(minus, X, T))) / (2 * h)
        fd[key] = grad
    return fd


@pytest.mark.parametrize("request_name", list(REQUESTS))
def test_a_new_conv_or_rnn_spec_loads_shows_derives_exports_and_its_gradients_are_right(tmp_path, request_name):
    options, weight, kinds = REQUESTS[request_name]
    path = tmp_path / "new.toml"
    written = run("new", *options, "-o", str(path))
    assert written.stderr.strip() == f"wrote {path}" and written.stdout == ""
    table = tomllib.loads(path.read_text())
    shape = tuple(table["layers"][0]["shape"])
    asked = options[options.index("--conv" if "--conv" in options else "--rnn") + 1]
    assert shape == tuple(int(n) for n in asked.split("x"))

    shown = json.loads(run("show", str(path), "--format", "json").stdout)
    assert [layer["kind"] for layer in shown["layers"][1:]] == kinds
    assert not shown["missing"]  # inputs and targets are there: every command has numbers

    derived = json.loads(run("grad", str(path), weight, "--format", "json").stdout)
    assert derived["parameter"] == weight and math.isfinite(derived["value"])
    assert derived["value"] != 0  # centred inputs: the weight's map or state is alive, its gradient teaches
    run("train", str(path), "--steps", "3", "--format", "json")

    module_path = tmp_path / f"new_{request_name.replace('-', '_')}.py"
    run("export", str(path), "-o", str(module_path))
    module = load_module(module_path)
    X = np.array(table["layers"][0]["values"], dtype=float)[None]  # one sample: (1, *shape)
    T = np.array(table["layers"][-1]["targets"], dtype=float)[None]
    params = module.init_params()
    loss, grads = module.loss_and_gradients(params, X, T)
    assert math.isfinite(float(loss))
    fd = central_differences(module, params, X, T)
    assert set(grads) == set(fd)
    for key in fd:
        assert agrees_with_finite_differences(np.asarray(grads[key]), fd[key]), (key, grads[key], fd[key])
    key, at = module.PARAMETER_INDEX[weight]  # the CLI's derivation is the module's number, and the differences'
    assert derived["value"] == pytest.approx(float(fd[key][at]), rel=1e-5, abs=1e-8)
    assert derived["value"] == pytest.approx(float(grads[key][at]), rel=1e-9, abs=1e-12)


def test_small_inputs_are_written_out_nested_like_the_shape_and_large_ones_drawn():
    small = tomllib.loads(run("new", "--conv", "2x3x4").stdout)["layers"][0]["values"]
    assert np.array(small).shape == (2, 3, 4) and np.all(np.abs(small) <= 1)
    sequence = tomllib.loads(run("new", "--rnn", "6x2").stdout)["layers"][0]["values"]
    assert np.array(sequence).shape == (6, 2)
    assert tomllib.loads(run("new", "--conv", "1x28x28", "--kernel", "5").stdout)["layers"][0]["values"] == "random"


def test_the_dense_default_is_unchanged_by_the_new_kinds():
    """SIZES alone still gives the dense spec: no map keys, sigmoid hidden layers, inputs in [0, 1)."""
    table = tomllib.loads(run("new", "4-5-3").stdout)
    assert [layer.get("kind", "dense") for layer in table["layers"]] == ["dense"] * 3
    assert table["layers"][1]["activation"] == "sigmoid" and all(0 <= v < 1 for v in table["layers"][0]["values"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "SIZES: missing: the layer sizes, or --conv or --rnn"),
        (["4-5-3", "--conv", "1x6x6"], "give one of SIZES, --conv and --rnn, not SIZES and --conv"),
        (["--conv", "1x6x6", "--rnn", "5x3"], "not --conv and --rnn"),
        (["--conv", "6"], "--conv: cannot read the input shape '6'"),
        (["--rnn", "1x2x3"], "--rnn: cannot read the input shape '1x2x3'"),
        (["--conv", "1x6x6", "--units", "3"], "--units: --units is an option of --rnn, not of --conv"),
        (["--rnn", "5x3", "--kernel", "3"], "--kernel: --kernel is an option of --conv, not of --rnn"),
        (["4-5-3", "--pool", "max"], "--pool: --pool is an option of --conv"),
        (["4-5-3", "--outputs", "3"], "--outputs: --outputs is for --conv and --rnn"),
        (["--conv", "1x4x4", "--kernel", "5"], "--kernel: kernel 5 is larger than the input's side (4)"),
        (
            ["--conv", "1x4x4", "--kernel", "3", "--pool-kernel", "3"],
            "pool kernel 3 is larger than the convolution's maps (2×2)",
        ),
        (["--conv", "1x6x6", "--pool", "maxx"], "--pool: unknown pool 'maxx'"),
        (["--conv", "1x6x6", "--pool", "none", "--pool-kernel", "2"], "--pool-kernel: --pool none has no pool kernel"),
        (["--conv", "1x6x6", "--channels", "0"], "--channels: must be at least 1, got 0"),
        (["--conv", "1x6x6", "--padding", "-1"], "--padding: must be ≥ 0, got -1"),
        (["--rnn", "5x3", "--units", "0"], "--units: must be at least 1, got 0"),
        (["--rnn", "5x3", "--hidden", "softmax"], "--hidden: unknown hidden 'softmax'"),
        (["--rnn", "1000x3", "--units", "8"], "(rnn state limit)"),
    ],
)
def test_bad_new_requests_exit_2_with_a_message_in_the_options_words(tmp_path, options, message):
    out = tmp_path / "never.toml"
    result = CliRunner().invoke(main, ["new", *options, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert result.stderr.count("\n") <= 2 and isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_a_misspelled_pool_gets_a_suggestion():
    result = CliRunner().invoke(main, ["new", "--conv", "1x6x6", "--pool", "avrg"])
    assert result.exit_code == 2 and "did you mean 'avg'?" in result.stderr, result.stderr


def test_the_python_function_gives_what_the_command_prints(tmp_path):
    import derive

    assert derive.new(conv=(1, 6, 6), kernel=3) == run("new", "--conv", "1x6x6", "--kernel", "3").stdout
    text = derive.new(rnn="5x3", units=4, seed=2, path=tmp_path / "r.toml")
    assert text == run("new", "--rnn", "5x3", "--units", "4", "--seed", "2").stdout == (tmp_path / "r.toml").read_text()
