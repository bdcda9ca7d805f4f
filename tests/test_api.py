"""derive from Python: what the CLI prints, the library returns; loading, changing numbers, notebook displays."""

import copy
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from oracles import backprop, mazur, train

import derive
from derive.app.api import Model
from derive.app.cli import main
from derive.errors import DeriveError, SpecError
from derive.spec.reading import builtin_example_text

FIXTURES = Path(__file__).parent / "fixtures"


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


# -- a derivation prints what `derive grad` prints ------------------------------------------


@pytest.mark.parametrize("param", ["w1", "w5", "b1", "out_h1"])
def test_text_latex_and_json_are_what_grad_prints(param):
    d = derive.load("mazur").derivation(param)
    assert d.text() == cli("grad", "mazur", param)
    assert d.text(digits=5) == cli("grad", "mazur", param, "--digits", "5")
    assert d.text(closed_form=False) == cli("grad", "mazur", param, "--no-closed-form")
    assert d.to_json() == cli("grad", "mazur", param, "--format", "json")
    assert d.latex() == cli("grad", "mazur", param, "--format", "latex")


def test_a_symbolic_derivation_says_so_in_both():
    text = builtin_example_text("mazur").replace("values = [0.05, 0.10]\n", "")
    d = derive.load(text).derivation("w5")
    assert d.text().startswith("(symbolic only: layers[0].values (the inputs) not given)\n\n")
    result = CliRunner().invoke(main, ["grad", "-", "w5"], input=text)
    assert result.stdout == d.text()


def test_latex_holds_every_factor_and_the_oracles_value():
    _, grad, _ = backprop(mazur())
    latex = derive.load("mazur").derivation("w1").latex()
    assert latex.startswith("\\begin{align*}") and latex.rstrip().endswith("\\end{align*}")
    assert f"{grad[0]:.8g}" in latex
    # two paths of five factors; ∂net_h1/∂w1 and ∂out_h1/∂net_h1 are shared, written once
    assert latex.count("&=") == 8 + 2 + 1


def test_latex_format_is_for_one_derivation():
    result = CliRunner().invoke(main, ["grad", "mazur", "--all", "--format", "latex"])
    assert result.exit_code == 2 and "--format latex writes one derivation" in result.output


# -- notebook displays --------------------------------------------------------------------------


def test_a_derivation_in_a_notebook_shows_its_chain_with_numbers():
    _, grad, _ = backprop(mazur())
    d = derive.load("mazur").derivation("w1")
    html = d._repr_html_()
    assert f"<mn>{grad[0]:.8g}</mn>" in html
    assert html.count("<math") >= 2 * 11  # a row per factor, path and the sum: lhs and rhs
    assert "<script" not in html
    assert f"{grad[0]:.8g}" in d._repr_latex_() and d._repr_latex_().startswith("$$")
    assert d.text() in d._repr_markdown_()
    assert repr(d) == f"<Derivation ∂E/∂w1 = {grad[0]:.8g}: 2 path(s), paths form>"


def test_a_models_repr_is_short_at_any_size():
    big = Model.load(FIXTURES / "mnist_784_30_10.toml")
    text = repr(big)
    assert len(text) < 500
    assert "784-30-10" in text and "sigmoid/sigmoid" in text and "half_sse" in text and "23,860 parameters" in text
    assert "network" not in big.__dict__  # the repr built no symbols
    assert repr(derive.load("mazur")).startswith("<Model 'mazur' 2-2-2: sigmoid/sigmoid, loss half_sse")


def test_a_models_rich_display_draws_a_small_network_only():
    small = derive.load("mazur")._repr_html_()
    assert "<svg" in small and small.count("<circle") == 6 and "<td>sigmoid</td>" in small
    big = Model.load(FIXTURES / "mnist_784_30_10.toml")._repr_html_()
    assert "<svg" not in big and "784" in big and len(big) < 2000


# -- loading from anything ---------------------------------------------------------------------


def test_a_path_a_name_toml_text_and_a_dict_load_the_same_network(tmp_path):
    text = builtin_example_text("mazur")
    path = tmp_path / "m.toml"
    path.write_text(text)
    data = tomllib.loads(text)
    expected = backprop(mazur())[1]
    for ref in ("mazur", path, str(path), text, data):
        _, grads = derive.load(ref).gradients()
        assert np.allclose(list(grads.values()), expected, rtol=1e-12), ref
    assert derive.load(data).spec.source == "<dict>" and derive.load(text).spec.source == "<string>"


def test_a_dict_is_validated_like_a_file():
    data = tomllib.loads(builtin_example_text("mazur"))
    data["layers"][1]["activaton"] = "tanh"
    with pytest.raises(SpecError) as from_dict:
        derive.load(data)
    with pytest.raises(SpecError) as from_text:
        Model.from_toml(builtin_example_text("mazur").replace('activation = "sigmoid"', 'activaton = "tanh"', 1))
    assert str(from_dict.value) == str(from_text.value).replace("<string>", "<dict>")
    assert "layers[1].activaton" in str(from_dict.value) and "activation" in from_dict.value.hint


def test_numpy_arrays_are_numbers_in_a_dict():
    data = tomllib.loads(builtin_example_text("mazur"))
    data["layers"][0]["values"] = np.array([0.05, 0.10])
    data["layers"][1]["weights"] = np.array([[0.15, 0.20], [0.25, 0.30]])
    assert derive.load(data).gradients()[1] == derive.load("mazur").gradients()[1]


def test_a_missing_file_is_not_mistaken_for_toml():
    with pytest.raises(SpecError, match="no such file"):
        derive.load("nets/missing.toml")


# -- changing numbers without a file ---------------------------------------------------------


def test_with_values_changes_numbers_like_an_edited_spec():
    net = mazur()
    net.weights[1][0, 0] = 0.3
    net.x = np.array([0.2, 0.4])
    net.t = np.array([0.5, 0.6])
    _, expected, _ = backprop(net)
    original = derive.load("mazur")
    changed = original.with_values(inputs=[0.2, 0.4], targets=(0.5, 0.6), weights={"w5": 0.3})
    assert np.allclose(list(changed.gradients()[1].values()), expected, rtol=1e-12)
    assert original.spec.layers[2].weights[0][0] == 0.4  # a new model; the old one is as it was
    assert changed.spec.published is None  # the article's numbers are not this network's


SEEDED = """
[loss]
kind = "half_sse"
[[layers]]
size = 2
values = [0.5, -0.25]
[[layers]]
size = 3
activation = "tanh"
bias = [0.1, 0.2, 0.3]
[[layers]]
size = 1
activation = "sigmoid"
targets = [0.7]
"""


def test_with_values_sets_a_bias_and_keeps_the_seeded_weights():
    base = derive.load(SEEDED)  # weights drawn from the seed
    changed = base.with_values(weights={"b2_2": 0.25, "w3_1_2": -0.5})
    before, after = base.compiled().parameter_values(), changed.compiled().parameter_values()
    assert after["b2_2"] == 0.25 and after["w3_1_2"] == -0.5
    unchanged = set(before) - {"b2_2", "w3_1_2"}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}


def test_with_values_rejects_what_a_spec_file_would():
    model = derive.load("mazur")
    with pytest.raises(SpecError, match="no weight or bias by that name") as bad:
        model.with_values(weights={"w55": 0.1})
    assert "w5" in bad.value.hint
    with pytest.raises(SpecError, match="expected 2 numbers, got 3"):
        model.with_values(inputs=[1, 2, 3])
    with pytest.raises(SpecError, match="finite"):
        model.with_values(weights={"w1": float("nan")})
    with pytest.raises(SpecError, match="bce targets must lie in"):
        derive.load(builtin_example_text("mazur").replace('kind = "half_sse"', 'kind = "bce"')).with_values(
            targets=[0.5, 1.5]
        )


# -- every command, from Python ---------------------------------------------------------------


def test_lecture_html_from_python(tmp_path):
    written = derive.load("mazur").lecture(tmp_path / "m.html")
    assert written == [tmp_path / "m.html"]
    assert written[0].read_text() == cli("lecture", "mazur", "--format", "html", "-o", "-")
    with pytest.raises(DeriveError, match="does not match the suffix"):
        derive.load("mazur").lecture(tmp_path / "m.pdf", format="html")
    assert not (tmp_path / "m.pdf").exists()


def test_export_from_python_is_the_cli_module(tmp_path):
    model = derive.load("mazur")
    assert model.export() == cli("export", "mazur")
    assert model.export(style="scalar") == cli("export", "mazur", "--style", "scalar")
    model.export(tmp_path / "g.py", backend="array-api")
    assert (tmp_path / "g.py").read_text() == cli("export", "mazur", "--backend", "array-api")
    with pytest.raises(DeriveError, match="NumPy only"):
        model.export(style="scalar", backend="array-api")


def test_train_from_python_follows_the_oracle():
    _, history = train(mazur(), 25)
    run = derive.load("mazur").train(25, lr=0.5)
    assert np.allclose(run.history, history, rtol=1e-12)
    assert run.loss == run.history[-1] and run.steps == 25 and run.breakdown is None
    fast = derive.load("mazur").train(25, lr=1.0)
    assert fast.learning_rate == 1.0 and fast.loss < run.loss


def test_show_from_python():
    model = derive.load("mazur")
    assert model.show() == cli("show", "mazur")
    assert model.show(5) == cli("show", "mazur", "--digits", "5")


def test_check_from_python():
    e, grad, _ = backprop(mazur())
    report = derive.load("mazur").check({"E": f"{e:.9f}", "dE/dw5": f"{grad[5]:.6f}", "w1": "0.25"})
    assert report.wrong == 1
    assert [r.ok for r in report.results] == [True, True, False]


def test_everything_is_typed():
    import inspect

    for name, fn in inspect.getmembers(Model, inspect.isfunction):
        if name.startswith("__") and name != "__repr__":
            continue
        hints = fn.__annotations__
        assert "return" in hints, name
    copy.copy(derive.load("mazur"))  # a plain dataclass: copies and pickles like one
