"""The CLI behaves like other Unix and click tools: where output goes, what -o means, pipes, versions, completion."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.shell_completion import BashComplete
from click.testing import CliRunner
from oracles import backprop, mazur

import derive
from derive.cli import main
from derive.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=None, input=None):
    """The CLI as a user runs it: a real process, stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=cwd, input=input, timeout=600
    )


# -- where output goes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["grad", "mazur", "w5"], "g.txt"),
        (["grad", "mazur", "--all", "--format", "json"], "g.json"),
        (["show", "mazur"], "s.txt"),
        (["train", "mazur", "--steps", "3"], "t.txt"),
        (["export", "mazur"], "m.py"),
        (["new", "2-2-1"], "n.toml"),
        (["lecture", "mazur", "--format", "tex"], "l.tex"),
    ],
)
def test_every_command_that_writes_says_so_on_stderr_and_keeps_stdout_clean(tmp_path, args, name):
    proc = run(*args, "-o", name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == f"wrote {name}"
    assert (tmp_path / name).stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_dash_means_standard_output(tmp_path):
    proc = run("grad", "mazur", "--all", "--format", "json", "-o", "-", cwd=tmp_path)
    assert proc.returncode == 0
    assert not (tmp_path / "-").exists()
    e, _, _ = backprop(mazur())
    data = json.loads(proc.stdout)
    assert data["loss"] == pytest.approx(e, rel=1e-12)
    assert "wrote" not in proc.stderr
    tex = run("lecture", "mazur", "--format", "tex", "-o", "-", cwd=tmp_path)
    assert tex.returncode == 0 and tex.stdout.startswith("\\documentclass")


def test_a_missing_folder_is_an_error_naming_it_and_nothing_is_created(tmp_path):
    missing = tmp_path / "no" / "such"
    for args in (["grad", "mazur", "w5"], ["export", "mazur"], ["lecture", "mazur"], ["show", "mazur"]):
        target = missing / ("x.pdf" if args[0] == "lecture" else "x.txt")
        proc = run(*args, "-o", str(target))
        assert proc.returncode == 2, proc.stderr
        assert f"error: {missing}: cannot write x." in proc.stderr and "no such folder" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "no").exists()


def test_lecture_picks_the_format_from_the_suffix_and_refuses_unknown_ones(tmp_path):
    bad = run("lecture", "mazur", "-o", "notes.txt", cwd=tmp_path)
    assert bad.returncode == 2 and "cannot tell the format from the suffix '.txt'" in bad.stderr
    clash = run("lecture", "mazur", "--format", "pdf", "-o", "notes.tex", cwd=tmp_path)
    assert clash.returncode == 2 and "does not match" in clash.stderr
    ok = run("lecture", "mazur", "-o", "notes.tex", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "notes.tex").read_text().startswith("\\documentclass")
    assert not list(tmp_path.glob("*.pdf")) and not list(tmp_path.glob("*.txt"))


def test_the_default_lecture_is_named_after_the_spec_file(tmp_path):
    spec = tmp_path / "my-course.toml"
    spec.write_text(derive.spec.builtin_example_text("mazur"))
    proc = run("lecture", str(spec), "--format", "tex", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "output" / "my-course.tex").is_file()  # not the spec's name = "mazur"


def test_a_closed_pipe_ends_quietly_with_status_zero():
    proc = subprocess.Popen(
        [sys.executable, "-m", "derive", "show", "nielsen_tanh"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # the reader goes away before derive writes, as `| head` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0
    assert err == ""


def test_version():
    for flag in ("-V", "--version"):
        out = CliRunner().invoke(main, [flag]).output
        assert out == f"derive {derive.__version__}\n"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert derive.__version__ == version


# -- progress and quiet -------------------------------------------------------------------


def test_train_summary_leaves_out_the_parameters_and_big_nets_summarise_by_themselves(tmp_path):
    full = CliRunner().invoke(main, ["train", "mazur", "--steps", "2"]).output
    assert "parameters:" in full and "w8" in full
    short = CliRunner().invoke(main, ["train", "mazur", "--steps", "2", "--summary"]).output
    assert "parameters:" not in short and "loss after:" in short and "outputs:" in short
    spec = tmp_path / "big.toml"
    spec.write_text(CliRunner().invoke(main, ["new", "30-20-10"]).output)
    big = CliRunner().invoke(main, ["train", str(spec), "--steps", "2"])
    assert big.exit_code == 0, big.output
    assert "830 parameters (list them with --parameters" in big.output
    assert "w2_1_1" not in big.output
    listed = CliRunner().invoke(main, ["train", str(spec), "--steps", "2", "--parameters"]).output
    assert "w2_1_1" in listed


def test_progress_is_shown_only_on_a_terminal_and_quiet_silences_it():
    # stderr is not a terminal here: no progress bar, whatever the length of the run
    proc = run("train", "mazur", "--steps", "5000")
    assert proc.returncode == 0 and proc.stderr == ""
    from derive import cli

    assert cli._progress_wanted(quiet=True) is False


def test_train_with_progress_gives_the_same_history_as_one_run():
    from derive import cli
    from derive.api import Model

    one = Model.load("mazur").compiled().train(4500, 0.5)
    engine = Model.load("mazur").compiled()
    chunked = cli._train_with_progress(engine, 4500, 0.5, progress=True)
    assert len(chunked) == len(one) == 4501
    assert np.allclose(chunked, one, rtol=1e-14, atol=0)


# -- hints ----------------------------------------------------------------------------------


def test_the_symbolic_hint_appears_only_where_there_is_a_symbolic_option(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text("[loss]\nkind = 'sse'\n[[layers]]\nsize = 2\n[[layers]]\nsize = 1\nactivation = 'tanh'\n")
    grad_all = run("grad", str(spec), "--all")
    assert grad_all.returncode == 2 and "derive grad SPEC PARAM" in grad_all.stderr
    for args in (["train", str(spec)], ["lecture", str(spec), "--format", "tex", "-o", str(tmp_path / "x.tex")]):
        proc = run(*args)
        assert proc.returncode == 2
        assert "symbolic output" not in proc.stderr and "PARAM" not in proc.stderr
        assert '"random"' in proc.stderr


# -- completion -----------------------------------------------------------------------------


def _complete(words, incomplete):
    return [
        (c.type, c.value)
        for c in BashComplete(main, {}, "derive", "_DERIVE_COMPLETE").get_completions(words, incomplete)
    ]


def test_completion_offers_examples_files_and_the_specs_parameter_names(tmp_path):
    assert ("plain", "mazur") in _complete(["grad"], "ma")
    assert ("file", "ma") in _complete(["grad"], "ma")
    params = [v for _, v in _complete(["grad", "mazur"], "w")]
    assert params == ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"]
    assert ("plain", "W3") in _complete(["grad", "mazur"], "W")
    assert _complete(["grad", str(tmp_path / "missing.toml")], "w") == []


def test_readme_documents_completion():
    readme = (ROOT / "README.md").read_text()
    assert "_DERIVE_COMPLETE=bash_source derive" in readme


# -- new specs and where numbers come from ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "loss", "out"),
    [
        (["4-5-3", "--hidden", "tanh", "--out", "softmax", "--loss", "cross_entropy"], "cross_entropy", "softmax"),
        (["2-3-1", "--loss", "bce"], "bce", "sigmoid"),
        (["3-4-4-2", "--hidden", "relu", "--out", "linear"], "half_sse", "linear"),
        (["40-5-20"], "half_sse", "sigmoid"),
    ],
)
def test_new_writes_a_spec_every_command_works_on(tmp_path, args, loss, out):
    spec = tmp_path / "net.toml"
    proc = run("new", *args, "--seed", "3", "-o", str(spec))
    assert proc.returncode == 0, proc.stderr
    text = spec.read_text()
    assert text.startswith("# A ") and text.count("#") > 8  # commented for the reader
    parsed = parse_spec(text)
    assert parsed.loss.kind == loss and parsed.layers[-1].activation == out
    assert [layer.size for layer in parsed.layers] == [int(s) for s in args[0].split("-")]
    assert parsed.layers[0].values is not None and parsed.layers[-1].targets is not None
    if loss == "cross_entropy":
        assert sorted(parsed.layers[-1].targets) == [0.0, 0.0, 1.0]
    if loss == "bce":
        assert set(parsed.layers[-1].targets) <= {0.0, 1.0}
    for command in (
        ["grad", str(spec), "--all", "--format", "json"],
        ["train", str(spec), "--steps", "2", "--summary"],
    ):
        done = CliRunner().invoke(main, command)
        assert done.exit_code == 0, done.output
    tex = CliRunner().invoke(main, ["lecture", str(spec), "--format", "tex", "-o", str(tmp_path / "l.tex")])
    assert tex.exit_code == 0, tex.output
    again = run("new", *args, "--seed", "3")
    assert again.stdout == text  # reproducible from the seed


def test_new_refuses_bad_requests_with_suggestions():
    for args, words in (
        (["4-x-3"], "cannot read the layer sizes"),
        (["4"], "at least an input and an output layer"),
        (["2-2", "--hidden", "tahn"], "did you mean 'tanh'"),
        (["2-2", "--loss", "crossentropy"], "did you mean 'cross_entropy'"),
    ):
        proc = run("new", *args)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


def test_random_values_and_values_files(tmp_path):
    np.save(tmp_path / "x.npy", np.array([0.25, -0.5, 1.0]))
    (tmp_path / "t.csv").write_text("0.1, 0.9\n")
    spec = tmp_path / "f.toml"
    spec.write_text(
        "[loss]\nkind = 'half_sse'\n[[layers]]\nsize = 3\nvalues_file = 'x.npy'\n"
        "[[layers]]\nsize = 2\nactivation = 'sigmoid'\ntargets_file = 't.csv'\n"
    )
    parsed = derive.load_spec(spec)
    assert parsed.layers[0].values == (0.25, -0.5, 1.0)
    assert parsed.layers[-1].targets == (0.1, 0.9)
    drawn = parse_spec(
        "[init]\nseed = 5\n[loss]\nkind = 'mse'\n[[layers]]\nsize = 784\nvalues = 'random'\n"
        "[[layers]]\nsize = 10\nactivation = 'linear'\ntargets = 'random'\n"
    )
    values = np.array(drawn.layers[0].values)
    assert values.shape == (784,) and values.min() >= 0 and values.max() < 1
    assert np.array_equal(values, np.round(values, 4))
    # independent of derive: the documented stream default_rng([seed, 0, 1]), rounded to 4 decimals
    expected = np.round(np.random.default_rng([5, 0, 1]).uniform(0.0, 1.0, 784), 4)
    assert np.array_equal(values, expected)


@pytest.mark.parametrize(
    ("layer0", "words"),
    [
        ("values_file = 'nothere.npy'", "no such file"),
        ("values_file = 'x.npy'\nvalues = [1, 2, 3]", "give values or values_file, not both"),
        ("values_file = 'wrong.npy'", "expected 3 numbers"),
        ("values_file = 'x.json'", "cannot read .json"),
        ("values = 'randon'", "did you mean 'random'"),
        ("values_file = 'bad.txt'", "cannot read"),
    ],
)
def test_bad_number_files_are_clear_errors(tmp_path, layer0, words):
    np.save(tmp_path / "x.npy", np.zeros(3))
    np.save(tmp_path / "wrong.npy", np.zeros(4))
    (tmp_path / "bad.txt").write_text("1 2 three\n")
    spec = tmp_path / "s.toml"
    spec.write_text(
        f"[loss]\nkind = 'sse'\n[[layers]]\nsize = 3\n{layer0}\n[[layers]]\nsize = 1\nactivation = 'tanh'\n"
    )
    proc = run("show", str(spec))
    assert proc.returncode == 2, proc.stdout
    assert words in proc.stderr and "layers[0].values" in proc.stderr and "Traceback" not in proc.stderr


def test_a_spec_on_standard_input():
    text = derive.spec.builtin_example_text("mazur")
    proc = run("grad", "-", "w5", "--format", "json", input=text)
    assert proc.returncode == 0, proc.stderr
    _, grad, _ = backprop(mazur())
    assert json.loads(proc.stdout)["value"] == pytest.approx(grad[5], rel=1e-12)  # w1 … w4, b1, w5


# -- names and messages -------------------------------------------------------------------------


def test_named_neurons_name_their_weights_and_biases():
    spec = derive.load_spec("softmax")
    hidden, out = spec.layers[1], spec.layers[2]
    assert hidden.weight_names[0] == ("w_h1_x1", "w_h1_x2", "w_h1_x3")
    assert out.weight_names[2][3] == "w_c3_h4"
    assert hidden.bias.names == ("b_h1", "b_h2", "b_h3", "b_h4")
    nielsen = derive.load_spec("nielsen_tanh")  # layers given by size keep Nielsen's numbers
    assert nielsen.layers[1].weight_names[0][0] == "w2_1_1" and nielsen.layers[1].by_size
    from derive.naming import latex_name

    assert latex_name("w_h1_x1") == "w_{h1,x1}"


def test_readme_explains_the_weight_names():
    assert "w_h1_x1" in (ROOT / "README.md").read_text()


def test_grad_of_a_whole_weight_matrix_is_delta_times_a_transposed():
    _, grad, inner = backprop(mazur())
    data = json.loads(CliRunner().invoke(main, ["grad", "mazur", "W3", "--format", "json"]).output)
    assert data["kind"] == "weight_matrix" and data["shape"] == [2, 2]
    expected = np.outer(inner["delta"][2], inner["a"][1])  # δ3 a2ᵀ from the oracle's backprop
    assert np.allclose(data["value"], expected, rtol=1e-12, atol=0)
    assert data["names"] == [["w5", "w6"], ["w7", "w8"]]
    assert np.allclose(np.array(data["value"]).ravel(), grad[5:9], rtol=1e-12)
    assert "\\begin{bmatrix}" in data["latex"]
    text = CliRunner().invoke(main, ["grad", "mazur", "W2"]).output
    assert "∂E/∂W2 = δ2 (a1)ᵀ" in text and "w1  w2" in text
    bias = json.loads(CliRunner().invoke(main, ["grad", "mazur", "b3", "--format", "json"]).output)
    assert bias["value"] == [[pytest.approx(sum(inner["delta"][2]), rel=1e-12)]]  # one bias shared: Σ δ
    spec_name_first = json.loads(CliRunner().invoke(main, ["grad", "mazur", "b2", "--format", "json"]).output)
    assert spec_name_first["parameter"] == "b2" and "steps" in spec_name_first  # Mazur's own b2 wins
    missing = CliRunner().invoke(main, ["grad", "mazur", "W9"])
    assert missing.exit_code == 2 and "no layer 9" in missing.output


def _error(tmp_path, text):
    spec = tmp_path / "s.toml"
    spec.write_text(text)
    proc = run("show", str(spec))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_single_bracket_layers_are_explained(tmp_path):
    twice = _error(tmp_path, "[loss]\nkind='sse'\n[layers]\nsize=2\n[layers]\nsize=1\nactivation='tanh'\n")
    assert "line 5" in twice and "write [[layers]] (two brackets)" in twice and "Cannot declare" not in twice
    once = _error(tmp_path, "[loss]\nkind='sse'\n[layers]\nsize=2\n")
    assert "layers: [layers] is a single table" in once and "[[layers]]" in once


def test_loss_may_be_written_as_a_bare_kind(tmp_path):
    spec = parse_spec("loss = 'cross_entropy'\n[[layers]]\nsize = 2\n[[layers]]\nsize = 2\nactivation = 'softmax'\n")
    assert spec.loss.kind == "cross_entropy"
    err = _error(
        tmp_path, "loss = 'cross_entropie'\n[[layers]]\nsize = 2\n[[layers]]\nsize = 2\nactivation = 'softmax'\n"
    )
    assert "loss: unknown loss 'cross_entropie'" in err and "did you mean 'cross_entropy'" in err


def test_a_transposed_weight_matrix_is_named_as_such(tmp_path):
    err = _error(
        tmp_path,
        "[loss]\nkind='sse'\n[[layers]]\nsize=3\n[[layers]]\nsize=2\nactivation='tanh'\nweights=[[1,2],[3,4],[5,6]]\n",
    )
    assert "layers[1].weights: expected a 2×3" in err and "got 3×2: transposed?" in err


def test_a_duplicate_is_reported_at_the_key_the_user_wrote(tmp_path):
    err = _error(
        tmp_path, "[loss]\nkind='sse'\n[[layers]]\nnames=['a','b']\n[[layers]]\nnames=['h1','h1']\nactivation='tanh'\n"
    )
    assert "layers[1].names[1] (net name 'net_h1'): duplicate name 'net_h1'" in err
    clash = _error(
        tmp_path,
        "[loss]\nkind='sse'\n[[layers]]\nnames=['a','b']\n[[layers]]\nnames=['h']\nactivation='tanh'\nout_names=['a']\n",
    )
    assert "layers[1].out_names[0]: duplicate name 'a' (also used at layers[0].names[0])" in clash


# -- the README's command table ------------------------------------------------------------------


def test_the_readme_lists_every_command_and_option():
    readme = (ROOT / "README.md").read_text()
    missing = []
    for name, command in main.commands.items():
        if f"derive {name}" not in readme:
            missing.append(f"derive {name}")
        for param in command.params:
            if isinstance(param, __import__("click").Option):
                for opt in param.opts + param.secondary_opts:
                    if opt.startswith("--") and opt not in readme and opt != "--help":
                        missing.append(f"derive {name} {opt}")
    assert not missing, f"README.md does not mention: {missing}"


def test_the_readme_points_to_no_document_the_user_does_not_have():
    readme = (ROOT / "README.md").read_text()
    for word in ("NOTES.md", "../shared", "seed article", "seeds/"):
        assert word not in readme, word
    assert not re.search(r"(?<![\d.,_])00[0-4](?![\d,])", readme), (
        "the source articles' numbers (000 … 004) mean nothing to a user"
    )
