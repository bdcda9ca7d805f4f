"""Bad input: a clear message naming file and key, exit status 2, never a traceback."""

import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.app.cli import main
from derive.spec.reading import builtin_example_text

MAZUR = builtin_example_text("mazur")


def run(tmp_path, text, *args):
    spec = tmp_path / "net.toml"
    spec.write_text(text)
    result = CliRunner().invoke(main, [*args[:1], str(spec), *args[1:]] if args else ["show", str(spec)])
    return result


def check(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (
            ("weights = [[0.15, 0.20], [0.25, 0.30]]", "wieghts = [[0.15, 0.20], [0.25, 0.30]]"),
            ["layers[1].wieghts", "unknown key", "'weights'"],
        ),
        (
            ("weights = [[0.15, 0.20], [0.25, 0.30]]", "weights = [[0.15, 0.20, 0.1], [0.25, 0.30, 0.2]]"),
            ["layers[1].weights", "2×2", "got 2×3"],
        ),
        (
            ("weights = [[0.15, 0.20], [0.25, 0.30]]", "weights = [[0.15], [0.25, 0.30]]"),
            ["layers[1].weights", "rows of lengths"],
        ),
        (
            ('weight_names = [["w5", "w6"]', 'weight_names = [["w1", "w6"]'),
            ["duplicate name 'w1'", "layers[2].weight_names[0][0]", "layers[1].weight_names[0][0]"],
        ),
        (('names = ["h1", "h2"]', 'names = ["h 1", "h2"]'), ["layers[1].names[0]", "not a valid name"]),
        (('names = ["h1", "h2"]', 'names = ["class", "h2"]'), ["Python keyword"]),
        (('names = ["h1", "h2"]', 'names = ["h1", "h1"]'), ["duplicate name"]),
        (
            ('activation = "sigmoid"\nweights = [[0.15', 'activation = "softmax"\nweights = [[0.15'),
            ["softmax is allowed on the output layer only", "layers[1].activation"],
        ),
        (('kind = "half_sse"', 'kind = "cross_entropy"'), ["cross_entropy needs a softmax output layer", "loss.kind"]),
        (('kind = "half_sse"', 'kind = "half_sqe"'), ["unknown loss", "'half_sse'"]),
        (
            ('activation = "sigmoid"\nweights = [[0.15', 'activation = "sigmoud"\nweights = [[0.15'),
            ["unknown activation 'sigmoud'", "'sigmoid'"],
        ),
        (("values = [0.05, 0.10]", "values = [0.05, nan]"), ["layers[0].values[1]", "finite"]),
        (("values = [0.05, 0.10]", "values = [0.05, inf]"), ["finite"]),
        (("values = [0.05, 0.10]", 'values = [0.05, "a"]'), ["expected a number"]),
        (("values = [0.05, 0.10]", "values = [0.05]"), ["expected 2 numbers, got 1"]),
        (('kind = "half_sse"', 'kind = "half_sse"\nexpr = "o"'), ["give exactly one of kind or expr"]),
        (("learning_rate = 0.5", "learning_rate = -1"), ["training.learning_rate", "positive"]),
        (("update_biases = false", "update_biases = 0"), ["training.update_biases", "true or false"]),
        (('name = "mazur"', 'name = "mazur"\nauthor = "me"'), ["author", "unknown key"]),
        (
            ('activation = "sigmoid"\nweights = [[0.15', "activation = \"__import__('os')\"\nweights = [[0.15"),
            ["layers[1].activation", "unknown name '__import__'"],
        ),
        (('activation = "sigmoid"\nweights = [[0.15', 'activation = "x**(9**9**9)"\nweights = [[0.15'), ["too large"]),
        (
            ('activation = "sigmoid"\nweights = [[0.15', 'activation = "x.real"\nweights = [[0.15'),
            ["unexpected character '.'"],
        ),
        (('kind = "half_sse"', 'expr = "(t - o)^2"'), ["loss.expr", "'^'", "use ** for powers"]),
        (('kind = "half_sse"', 'expr = "t*2"'), ["does not depend on the output o"]),
        (('bias = 0.60\nbias_names = "b2"', 'bias = 0.60\nbias_names = ["b2"]'), ["layers[2].bias_names", "one name"]),
        (('bias = 0.60\nbias_names = "b2"', 'bias = "sharde"\nbias_names = "b2"'), ["layers[2].bias", "'shared'"]),
        (('name = "mazur"', 'name = "my net"'), ["name", "not a valid name"]),
        (('title = "A step-by-step backpropagation example"', 'title = "a\\u0007b"'), ["title", "control characters"]),
    ],
)
def test_bad_specs_give_clear_errors(tmp_path, edit, fragments):
    old, new = edit
    assert old in MAZUR
    result = run(tmp_path, MAZUR.replace(old, new, 1))
    check(result, "net.toml", *fragments)


def test_cross_entropy_targets_must_sum_to_one(tmp_path):
    text = builtin_example_text("softmax").replace("targets = [0.0, 1.0, 0.0]", "targets = [0.5, 1.0, 0.0]")
    check(run(tmp_path, text), "layers[2].targets", "sum to 1")


def test_softmax_over_one_neuron_is_refused(tmp_path):
    text = MAZUR.replace('names = ["o1", "o2"]\nactivation = "sigmoid"', 'names = ["o1"]\nactivation = "softmax"')
    text = text.replace("weights = [[0.40, 0.45], [0.50, 0.55]]", "weights = [[0.40, 0.45]]")
    text = text.replace('weight_names = [["w5", "w6"], ["w7", "w8"]]', 'weight_names = [["w5", "w6"]]')
    text = text.replace("targets = [0.01, 0.99]", "targets = [1.0]")
    check(run(tmp_path, text), "single neuron")


def test_malformed_toml(tmp_path):
    check(run(tmp_path, 'name = "x"\n[loss\nkind = 1'), "net.toml", "malformed TOML")


def test_missing_spec_file_suggests_an_example():
    result = CliRunner().invoke(main, ["show", "mazurr"])
    check(result, "no such file", "'mazur'")


def test_missing_layers(tmp_path):
    check(run(tmp_path, 'name = "x"\n[loss]\nkind = "sse"\n'), "layers", "missing")


def test_unknown_parameter_lists_valid_ones():
    result = CliRunner().invoke(main, ["grad", "mazur", "w9"])
    check(result, "unknown parameter 'w9'", "w1, w2, w3, w4, b1, w5, w6, w7, w8, b2")


def test_misspelled_parameter_gets_a_suggestion():
    check(CliRunner().invoke(main, ["grad", "mazur", "out_o3"]), "did you mean", "'out_o1'")


def test_missing_numbers_are_named(tmp_path):
    text = MAZUR.replace("values = [0.05, 0.10]\n", "")
    check(run(tmp_path, text, "train"), "needs numbers", "layers[0].values")
    check(run(tmp_path, text, "grad", "--all"), "layers[0].values")
    symbolic = run(tmp_path, text, "grad", "w5")
    assert symbolic.exit_code == 0
    assert "symbolic only" in symbolic.output
    assert "out_o1 - target_o1" in symbolic.output
    assert " ? " not in symbolic.output and "= ?" not in symbolic.output
    hidden = run(tmp_path, text, "grad", "w1")
    assert "this path's term = " in hidden.output and "the sum of the 2 terms above" in hidden.output


def test_exit_status_and_stderr_through_a_real_process(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(MAZUR.replace("weights =", "wieghts =", 1))
    proc = subprocess.run([sys.executable, "-m", "derive", "grad", str(spec), "w1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "bad.toml: layers[1].wieghts: unknown key" in proc.stderr
    assert "did you mean 'weights'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_errors_exit_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "derive", "grad"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_an_unwritable_output_is_a_clear_error(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    target = blocked / "mazur.json"  # a path below a regular file cannot be created
    result = CliRunner().invoke(main, ["grad", "mazur", "--all", "--format", "json", "-o", str(target)])
    assert result.exit_code == 2
    assert "cannot write" in result.output and "Traceback" not in result.output
    assert blocked.read_text() == "not a directory"


def test_a_non_finite_forward_pass_is_a_clear_error(tmp_path):
    spec = (
        "[loss]\nkind = 'sse'\n[[layers]]\nsize = 1\nvalues = [1.0]\n"
        "[[layers]]\nsize = 1\nactivation = 'sqrt(x)'\nweights = [[-1.0]]\n"
        "[[layers]]\nsize = 1\nactivation = 'linear'\nweights = [[1.0]]\ntargets = [0.0]\n"
    )
    for command in (["grad", "w2_1_1"], ["grad", "--all", "--format", "json"], ["train"], ["show"]):
        result = run(tmp_path, spec, *command)
        check(result, "the forward pass gives a2_1 = nan", "sqrt(x)")


def test_a_diverging_run_is_reported_and_its_json_stays_valid(tmp_path):
    spec = (
        "[loss]\nkind = 'sse'\n[[layers]]\nsize = 1\nvalues = [1.0]\n"
        "[[layers]]\nsize = 1\nactivation = 'linear'\nweights = [[1.0]]\n"
        "[[layers]]\nsize = 1\nactivation = 'linear'\nweights = [[1.0]]\ntargets = [0.0]\n[training]\nlearning_rate = 5.0\n"
    )
    path = tmp_path / "div.toml"
    path.write_text(spec)
    proc = subprocess.run(
        [sys.executable, "-m", "derive", "train", str(path), "--steps", "2000", "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0
    assert "training diverged" in proc.stderr and "Traceback" not in proc.stderr
    data = __import__("json").loads(proc.stdout)
    assert data["loss"] is None and data["loss_before"] == 1.0


JUNK = [
    '"x"',
    "true",
    "-1",
    "0",
    "[]",
    "[[1]]",
    "nan",
    "inf",
    "{ a = 1 }",
    '"sigmoid"',
    '"softmax"',
    "[0.1, 0.2, 0.3]",
    '"x**(9**9)"',
    '["a", "a"]',
    "1e308",
]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_specs_either_work_or_fail_with_a_derive_error(data):
    from derive.app.api import Model
    from derive.errors import DeriveError
    from derive.spec.reading import parse_spec

    lines = MAZUR.splitlines()
    assignments = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.sampled_from(assignments))
        key = lines[i].split(" = ")[0]
        lines[i] = f"{key} = {data.draw(st.sampled_from(JUNK))}"
    text = "\n".join(lines) + "\n"
    try:
        model = Model(parse_spec(text, "mutated.toml"))
        model.gradients()
        assert model.point is not None
        model.derivation(model.spec.parameter_names[0])
    except DeriveError as exc:
        assert str(exc)


@pytest.mark.parametrize(
    "args",
    [
        ["new", "2-1", "--seed", "-1"],
        ["exercises", "mazur", "--students", "1", "--seed", "-1", "--format", "html"],
        ["fit", "mazur", "--data", "digits", "--seed", "-1"],
    ],
)
def test_a_negative_seed_is_a_usage_error(tmp_path, args):
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    check(result, "--seed", "-1")
    assert list(tmp_path.iterdir()) == []


def test_a_negative_seed_in_a_spec_names_the_key(tmp_path):
    text = "[loss]\nkind = 'mse'\n[init]\nseed = -1\n[[layers]]\nsize = 2\nvalues = [1.0, 2.0]\n"
    text += "[[layers]]\nsize = 1\ntargets = [0.5]\n"
    check(run(tmp_path, text), "net.toml: init.seed", "from 0 up")


def test_a_network_too_big_to_name_is_refused_before_anything_is_allocated(tmp_path):
    """10¹⁰ weights would be 10¹⁰ names: the spec is refused at the layer that passes the limit."""
    text = "[loss]\nkind = 'mse'\n[[layers]]\nsize = 100000\n[[layers]]\nsize = 100000\nactivation = 'relu'\n"
    check(run(tmp_path, text), "net.toml: layers[1]", "10,000,100,000 weights and biases", "memory limit")
    check(CliRunner().invoke(main, ["new", "100000-100000", "-o", str(tmp_path / "x.toml")]), "limit")
    assert not (tmp_path / "x.toml").exists()


def test_fit_refuses_standard_output_for_its_binary_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check(CliRunner().invoke(main, ["fit", "digits", "--data", "digits", "--epochs", "1", "-o", "-"]), "-o", ".npz")
    assert list(tmp_path.iterdir()) == []
    missing = tmp_path / "nowhere" / "p.npz"
    check(CliRunner().invoke(main, ["fit", "digits", "--data", "digits", "--epochs", "1", "-o", str(missing)]))
    assert list(tmp_path.iterdir()) == []


def test_a_neuron_named_like_an_input_is_a_duplicate(tmp_path):
    """w_a_a would not say which a is which."""
    text = "[loss]\nkind = 'half_sse'\n[[layers]]\nnames = ['a', 'b']\nvalues = [1.0, 2.0]\n"
    text += "[[layers]]\nnames = ['a']\nactivation = 'sigmoid'\nweights = [[0.1, 0.2]]\ntargets = [0.5]\n"
    check(run(tmp_path, text), "net.toml: layers[1].names[0]", "duplicate name 'a'", "layers[0].names[0]")


@pytest.mark.parametrize("code", [0x202E, 0x200B, 0x07])
def test_invisible_or_reordering_characters_in_a_title_are_refused(tmp_path, code):
    """A bidirectional override or a zero-width space would reorder or hide text in a terminal or a page."""
    escaped = f"\\u{code:04x}"  # a TOML escape: the title holds the character itself
    text = MAZUR.replace("A step-by-step backpropagation example", f"A step{escaped}by step", 1)
    check(run(tmp_path, text), "net.toml: title", "control characters or invisible")


def test_layer_sizes_are_digits_only():
    check(CliRunner().invoke(main, ["new", "4_3"]), "SIZES", "4_3")


def test_new_speaks_in_its_options():
    check(CliRunner().invoke(main, ["new", "2-2", "--loss", "cross_entropy", "--out", "sigmoid"]), "--out softmax")
