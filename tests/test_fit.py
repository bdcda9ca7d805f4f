"""Training with the exported module (init_params, predict, accuracy, fit) and `derive fit`.

The oracle for fit is a mini-batch SGD loop written here in PyTorch (autograd,
float64) that visits the rows in the same order; the digits split and metrics
come from scikit-learn.
"""

import json
import types

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require, require_torch

from derive.app.api import Model
from derive.app.cli import main
from derive.codegen.modules import vector_module
from derive.errors import DeriveError
from derive.fit.data import load_data
from derive.spec.reading import builtin_example_text, parse_spec


def load(source, name="generated"):
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def classification(rows, inputs, classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, inputs))
    y = rng.integers(0, classes, rows)
    return X, np.eye(classes)[y], y


def torch_sgd(params, X, T, epochs, batch_size, lr, shuffle, seed):
    """Mini-batch SGD on the softmax example's network (sigmoid, softmax, cross-entropy), in PyTorch."""
    torch = require_torch()
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    tX, tT = torch.tensor(X), torch.tensor(T)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.tensor(rng.permutation(len(X))) if shuffle else torch.arange(len(X))
        for start in range(0, len(X), batch_size):
            rows = order[start : start + batch_size]
            a = torch.sigmoid(tX[rows] @ p["W2"].T + p["b2"])
            z = a @ p["W3"].T + p["b3"]
            loss = -(tT[rows] * torch.log_softmax(z, dim=1)).sum(dim=1).mean()
            loss.backward()
            with torch.no_grad():
                for value in p.values():
                    value -= lr * value.grad
                    value.grad = None
    return {k: v.detach().numpy() for k, v in p.items()}


@pytest.mark.parametrize(("shuffle", "batch_size"), [(True, 8), (False, 7), (True, 1), (True, 100)])
def test_fit_is_mini_batch_sgd_as_pytorch_does_it(shuffle, batch_size):
    module = load(vector_module(Model.load("softmax")))
    X, T, _ = classification(50, 3, 3, seed=1)  # 50 rows: the last batch is partial (except for 1)
    start = module.init_params()
    before = {k: v.copy() for k, v in start.items()}
    seen = []
    params = module.fit(
        start,
        X,
        T,
        epochs=3,
        batch_size=batch_size,
        lr=0.3,
        shuffle=shuffle,
        seed=4,
        callback=lambda e, p: seen.append(e),
    )
    expected = torch_sgd(before, X, T, 3, batch_size, 0.3, shuffle, 4)
    for key in expected:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-10, atol=1e-13)
        assert np.array_equal(start[key], before[key])  # the given params are not changed
    assert seen == [1, 2, 3]


def test_fit_defaults_and_argument_checks():
    module = load(vector_module(Model.load("softmax")))
    X, T, _ = classification(40, 3, 3, seed=2)
    params = module.fit(module.init_params(), X, T, epochs=2)  # batch 32, the spec's lr, shuffled with seed 0
    expected = torch_sgd(module.init_params(), X, T, 2, 32, module.LEARNING_RATE, True, 0)
    for key in expected:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="rows"):
        module.fit(module.init_params(), X, T[:-1], epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        module.fit(module.init_params(), X, T, epochs=1, batch_size=0)
    with pytest.raises(TypeError):
        module.fit(module.init_params(), X, T)  # epochs has no default


def test_init_params_draws_from_the_seed_given_or_the_spec():
    text = builtin_example_text("nielsen_tanh")  # seed 7, Xavier uniform, layers given by size
    module = load(vector_module(Model(parse_spec(text))))

    def xavier(seed, layer, n, m):  # the documented scheme, computed here
        limit = np.sqrt(6.0 / (m + n))
        return np.round(np.random.default_rng([seed, layer]).uniform(-limit, limit, (n, m)), 4)

    assert np.array_equal(module.init_params()["W2"], xavier(7, 2, 4, 3))
    assert np.array_equal(module.init_params(None)["W4"], xavier(7, 4, 2, 3))
    assert np.array_equal(module.init_params(3)["W3"], xavier(3, 3, 3, 4))
    fixed = load(vector_module(Model.load("softmax")))  # every weight given: the seed changes nothing
    assert np.array_equal(fixed.init_params(5)["W2"], fixed.init_params()["W2"])


def test_predict_and_accuracy_for_several_outputs_and_for_one():
    module = load(vector_module(Model.load("softmax")))
    X, T, y = classification(30, 3, 3, seed=3)
    params = module.init_params()
    outputs = module.forward(params, X)
    predicted = module.predict(params, X)
    assert np.array_equal(predicted, [max(range(3), key=lambda k: row[k]) for row in outputs])
    share = sum(p == c for p, c in zip(predicted, y)) / len(y)
    assert module.accuracy(params, X, T) == pytest.approx(share)
    assert module.accuracy(params, X, y) == pytest.approx(share)  # labels work as well as one-hot rows
    single = load(vector_module(Model.load("swish")))  # one sigmoid output
    X1 = np.random.default_rng(0).uniform(-3, 3, (25, 2))
    p1 = single.init_params()
    out = single.forward(p1, X1)[:, 0]
    assert np.array_equal(single.predict(p1, X1), [1 if o > 0.5 else 0 for o in out])
    T1 = (np.arange(25) % 2).reshape(25, 1).astype(float)
    expected = sum((o > 0.5) == (t > 0.5) for o, t in zip(out, T1[:, 0])) / 25
    assert single.accuracy(p1, X1, T1) == pytest.approx(expected)


def test_digits_reach_95_percent_on_a_held_out_stratified_quarter():
    sklearn = require("sklearn", "data")
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    assert sklearn
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1
    module = load(vector_module(Model.load("digits")))
    params = module.fit(module.init_params(), (X_train - mean) / std, np.eye(10)[y_train], epochs=30, batch_size=32)
    assert module.SIZES == (64, 30, 10) and module.ACTIVATIONS == ("sigmoid", "softmax")
    assert accuracy_score(y_test, module.predict(params, (X_test - mean) / std)) >= 0.95


# -- derive fit ---------------------------------------------------------------------


def test_derive_fit_digits_reports_json_and_writes_parameters_for_raw_inputs(tmp_path):
    require("sklearn", "data")
    from sklearn.datasets import load_digits

    out = tmp_path / "digits.npz"
    result = CliRunner().invoke(
        main, ["fit", "digits", "--data", "digits", "--scale", "standard", "-o", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"epochs", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"}
    assert data["epochs"] == 30 and data["test_accuracy"] >= 0.95 and data["seconds"] > 0
    saved = np.load(out)
    module = load(vector_module(Model.load("digits")))
    assert sorted(saved.files) == sorted(module.init_params())
    # the scaling is folded into W2 and b2: the saved parameters classify raw pixels; on all
    # 1797 digits their accuracy is the weighted mean of the reported train and test accuracy
    X, y = load_digits(return_X_y=True)
    params = {k: saved[k] for k in saved.files}
    overall = np.mean(module.predict(params, X) == y)
    assert overall == pytest.approx(0.75 * data["train_accuracy"] + 0.25 * data["test_accuracy"], abs=1e-3)


def write_csv(path, rows):
    path.write_text("\n".join(",".join(str(v) for v in row) for row in rows) + "\n")


def test_derive_fit_on_a_csv_with_a_header_prints_a_table(tmp_path):
    X, _, y = classification(60, 3, 3, seed=5)
    data = tmp_path / "points.csv"
    write_csv(data, [["a", "b", "c", "label"], *[[*x, label] for x, label in zip(X, y)]])
    out = tmp_path / "params.npz"
    result = CliRunner().invoke(main, ["fit", "softmax", "--data", str(data), "--epochs", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 epochs of mini-batch gradient descent (batch 32, η = 0.5) on 45 rows" in result.stdout
    assert "15 held out" in result.stdout
    assert result.stdout.splitlines()[2].split()[0] == "train" and "%" in result.stdout
    assert out.exists() and "training" not in result.stderr  # no progress bar when stderr is not a terminal


def test_derive_fit_matches_the_module_trained_by_hand(tmp_path):
    """What derive fit saves is the module's fit on the split it describes (npz input with T, no scaling)."""
    X, T, _ = classification(40, 3, 3, seed=6)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, T=T)
    out = tmp_path / "p.npz"
    args = [
        "fit",
        "softmax",
        "--data",
        str(data),
        "--epochs",
        "4",
        "--batch-size",
        "5",
        "--lr",
        "0.2",
        "--scale",
        "none",
    ]
    result = CliRunner().invoke(main, [*args, "--test-fraction", "0", "-o", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test_loss"] is None
    expected = torch_sgd(load(vector_module(Model.load("softmax"))).init_params(), X, T, 4, 5, 0.2, True, 0)
    saved = np.load(out)
    for key in expected:
        np.testing.assert_allclose(saved[key], expected[key], rtol=1e-10, atol=1e-13)


BAD = {
    "columns.csv": ("1,2,0\n3,4,1\n", "2 input columns, but the network has 3 inputs"),
    "label.csv": ("1,2,3,0\n4,5,6,3\n", "label 3 in row 2 is not a class 0…2"),
    "nan.csv": ("1,2,3,0\nnan,5,6,1\n", "not a finite number in row 2"),
    "empty.csv": ("", "no rows of data"),
    "header-only.csv": ("a,b,c,y\n", "no rows of data"),
    "word.csv": ("1,2,3,0\n4,five,6,1\n", "line 2: column 2 is not a number"),
    "ragged.csv": ("1,2,3,0\n4,5,1\n", "line 2: 3 columns, but the first row has 4"),
    "data.txt": ("1,2,3,0\n", "unknown kind of data"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_data_is_a_clear_error_and_nothing_is_written(tmp_path, name):
    text, message = BAD[name]
    data = tmp_path / name
    data.write_text(text)
    out = tmp_path / "params.npz"
    result = CliRunner().invoke(main, ["fit", "softmax", "--data", str(data), "-o", str(out)])
    assert result.exit_code == 2
    assert str(data) in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.ones((4, 3))}, "needs the arrays X and T (targets) or y (labels); found X"),
        ({"inputs": np.ones((4, 3)), "y": np.zeros(4)}, "found inputs, y"),
        ({"X": np.ones((4, 3)), "T": np.ones((4, 2))}, "T has shape (4, 2); the network needs (4, 3)"),
        ({"X": np.ones((4, 3)), "T": np.full((4, 3), 2.0)}, "outside [0, 1]"),
        ({"X": np.ones((4, 3)), "y": np.array([0, 1, 2, -1])}, "label -1 in row 4"),
        ({"X": np.ones((4, 3)), "y": np.array([0, 1.5, 2, 1])}, "label 1.5 in row 2"),
        ({"X": np.ones((4, 3)), "y": np.zeros(3)}, "3 labels for 4 rows"),
        ({"X": np.zeros((0, 3)), "y": np.zeros(0)}, "no rows of data"),
        ({"X": np.array([["a"] * 3] * 2), "y": np.zeros(2)}, "X holds <U1 values, not numbers"),
    ],
)
def test_bad_npz_archives(tmp_path, arrays, message):
    data = tmp_path / "d.npz"
    np.savez(data, **arrays)
    out = tmp_path / "params.npz"
    result = CliRunner().invoke(main, ["fit", "softmax", "--data", str(data), "-o", str(out)])
    assert result.exit_code == 2
    assert str(data) in result.stderr and message in result.stderr, result.stderr
    assert not out.exists()


def test_a_missing_file_and_a_broken_archive(tmp_path):
    for path, message in ((tmp_path / "nope.npz", "no such file"), (tmp_path / "broken.npz", "not a readable .npz")):
        if "broken" in path.name:
            path.write_bytes(b"not a zip")
        result = CliRunner().invoke(main, ["fit", "softmax", "--data", str(path)])
        assert result.exit_code == 2 and message in result.stderr


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "sklearn.datasets", None)
    with pytest.raises(DeriveError, match=r"scikit-learn.*\n.*derive-backprop\[data\]"):
        load_data("digits", 64, 10)


def test_labels_become_one_hot_rows_only_when_the_network_has_several_outputs(tmp_path):
    data = tmp_path / "d.csv"
    write_csv(data, [[0.1, 0.2, 1], [0.3, 0.4, 0]])
    single = load_data(str(data), 2, 1)
    assert single.T.tolist() == [[1.0], [0.0]]
    several = load_data(str(data), 2, 2)
    assert several.T.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(DeriveError, match="--one-hot"):
        load_data(str(data), 2, 2, one_hot=False)
