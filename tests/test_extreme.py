"""Numbers at extreme scales: weights, biases and inputs up to ±1000, every activation and loss.

The oracle is PyTorch in float64 written with its numerically stable functional
forms (``binary_cross_entropy_with_logits``, ``log_softmax``, ``logaddexp`` for
softplus), here in the test and never importing derive. Each surface of derive
— ``grad --all``, ``train --steps 1``, the vector and scalar exported modules
and the Python API — must give the loss and every gradient within 1e-9
relative or 1e-12 absolute, without a warning, a NaN or an inf where torch has
a finite number.
"""

from __future__ import annotations

import json
import math
import types
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require, require_torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derive.app.api import Model
from derive.app.cli import main
from derive.codegen.modules import scalar_module, vector_module
from derive.spec.reading import parse_spec

SETTINGS = settings(max_examples=36, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REL, ABS = 1e-9, 1e-12

HIDDEN = [
    *("sigmoid", "tanh", "relu", "linear", "softplus", "elu", "leaky_relu", "gelu"),  # every built-in but softmax
    *("x/(1 + exp(-x))", "x*tanh(log(1 + exp(x)))"),
]
OUTPUT = [*HIDDEN, "1/(1 + exp(-x))", "x**2/(1 + x**2) + 0.5*x"]
BCE_FORMULA = "-(t*log(o) + (1 - t)*log(1 - o))"  # bce written out: derive must see that it folds like bce
LOGCOSH = "log(cosh(o - t))"


@dataclass
class Case:
    """A network as plain data, with its TOML for derive."""

    sizes: list[int]
    activations: list[str]
    weights: list[np.ndarray]
    biases: list[np.ndarray | None]
    x: np.ndarray
    t: np.ndarray
    loss: str  # a built-in kind, or "expr:<formula>"
    learning_rate: float = 0.5

    def toml(self) -> str:
        lines = ['name = "extreme"', "[loss]"]
        if self.loss.startswith("expr:"):
            lines.append(f'expr = "{self.loss[5:]}"')
        else:
            lines.append(f'kind = "{self.loss}"')
        lines += ["[[layers]]", f"size = {self.sizes[0]}", f"values = {_list(self.x)}"]
        for i, act in enumerate(self.activations):
            lines += ["[[layers]]", f"size = {self.sizes[i + 1]}", f'activation = "{act}"']
            lines.append("weights = [" + ", ".join(_list(r) for r in self.weights[i]) + "]")
            if self.biases[i] is not None:
                lines.append(f"bias = {_list(self.biases[i])}")
        lines.append(f"targets = {_list(self.t)}")
        lines += ["[training]", f"learning_rate = {self.learning_rate!r}", "update_biases = true"]
        return "\n".join(lines) + "\n"

    def names(self) -> list[str]:
        """Nielsen's default names in derive's order: each layer's weights row by row, then its biases."""
        names = []
        for i, w in enumerate(self.weights):
            n, m = w.shape
            names += [f"w{i + 2}_{j}_{k}" for j in range(1, n + 1) for k in range(1, m + 1)]
            if self.biases[i] is not None:
                names += [f"b{i + 2}_{j}" for j in range(1, n + 1)]
        return names


def _list(values) -> str:
    return "[" + ", ".join(repr(float(v)) for v in np.ravel(values)) + "]"


# --------------------------------------------------------------------------
# the oracle: torch float64, stable functional forms


def _activation(torch, name: str, z):
    F = torch.nn.functional
    softplus = torch.logaddexp(z, torch.zeros_like(z))  # F.softplus returns z itself above 20
    return {
        "sigmoid": lambda: torch.sigmoid(z),
        "1/(1 + exp(-x))": lambda: torch.sigmoid(z),
        "tanh": lambda: torch.tanh(z),
        "relu": lambda: F.relu(z),
        "elu": lambda: F.elu(z),
        "leaky_relu": lambda: F.leaky_relu(z, 0.01),
        "gelu": lambda: F.gelu(z),
        "linear": lambda: z,
        "softplus": lambda: softplus,
        "x/(1 + exp(-x))": lambda: z * torch.sigmoid(z),
        "x*tanh(log(1 + exp(x)))": lambda: z * torch.tanh(softplus),
        "x**2/(1 + x**2) + 0.5*x": lambda: z**2 / (1 + z**2) + 0.5 * z,
        "softmax": lambda: torch.softmax(z, dim=0),
    }[name]()


def torch_oracle(case: Case) -> tuple[float, dict[str, float]]:
    """(E, ∂E/∂p by name) from torch autograd in float64."""
    torch = require_torch()
    F = torch.nn.functional
    params, order = [], []
    a = torch.tensor(case.x, dtype=torch.float64)
    z = a
    for i, name in enumerate(case.activations):
        w = torch.tensor(case.weights[i], dtype=torch.float64, requires_grad=True)
        params.append(w)
        z = w @ a
        if case.biases[i] is not None:
            b = torch.tensor(case.biases[i], dtype=torch.float64, requires_grad=True)
            params.append(b)
            z = z + b
        a = _activation(torch, name, z)
        order.append(w)
    t = torch.tensor(case.t, dtype=torch.float64)
    out = case.activations[-1]
    if case.loss in ("bce", f"expr:{BCE_FORMULA}") and out == "softmax":
        # log o = log_softmax(z); log(1 − o_k) = logsumexp of the other nets − logsumexp of all
        others = [torch.logsumexp(torch.cat([z[:k], z[k + 1 :]]), dim=0) for k in range(len(z))]
        log_rest = torch.stack(others) - torch.logsumexp(z, dim=0)
        e = -(t * F.log_softmax(z, dim=0) + (1 - t) * log_rest).sum()
    elif case.loss in ("bce", f"expr:{BCE_FORMULA}"):
        assert out in ("sigmoid", "1/(1 + exp(-x))")
        e = F.binary_cross_entropy_with_logits(z, t, reduction="sum")
    elif case.loss == "cross_entropy":
        e = -(t * F.log_softmax(z, dim=0)).sum()
    elif case.loss == f"expr:{LOGCOSH}":
        u = a - t
        e = (torch.logaddexp(u, -u) - math.log(2)).sum()
    else:
        e = {"half_sse": lambda: 0.5 * ((t - a) ** 2).sum(), "sse": lambda: ((t - a) ** 2).sum()}.get(
            case.loss, lambda: ((t - a) ** 2).mean()
        )()
    e.backward()
    grads = []
    for p in params:
        assert p.grad is not None
        grads += [float(v) for v in p.grad.numpy().ravel()]
    return float(e.detach()), dict(zip(case.names(), grads))


# --------------------------------------------------------------------------
# networks at extreme scales


def _magnitudes(draw, shape):
    """Entries ±10^u with u in [−2, 3]: up to ±1000, with zeros now and then."""
    size = int(np.prod(shape)) if shape else 1
    values = draw(
        st.lists(
            st.one_of(
                st.just(0.0),
                st.builds(
                    lambda s, e, m: s * round(m, 3) * 10.0**e,
                    st.sampled_from([-1.0, 1.0]),
                    st.integers(-2, 2),
                    st.floats(1.0, 10.0),
                ),
            ),
            min_size=size,
            max_size=size,
        )
    )
    return np.clip(np.array(values, dtype=float), -1000, 1000).reshape(shape)


@st.composite
def cases(draw, losses=("half_sse", "sse", "mse", "bce", "cross_entropy", "bce_formula", "logcosh"), softmax=False):
    """A random network; ``softmax``: bce over a softmax output, the pair with a log(1 − o) of a layer map."""
    loss = draw(st.sampled_from(losses))
    hidden = draw(st.integers(0, 1))
    sizes = [draw(st.integers(1, 2))] + [draw(st.integers(1, 2)) for _ in range(hidden)]
    n_out = draw(st.integers(2 if loss == "cross_entropy" or softmax else 1, 3 if softmax else 2))
    sizes.append(n_out)
    activations = [draw(st.sampled_from(HIDDEN)) for _ in range(hidden)]
    if loss == "cross_entropy" or softmax:
        activations.append("softmax")
    elif loss in ("bce", "bce_formula"):
        activations.append(draw(st.sampled_from(["sigmoid", "1/(1 + exp(-x))"] + (["softmax"] if n_out > 1 else []))))
    else:
        choices = OUTPUT + (["softmax"] if n_out > 1 and loss != "logcosh" else [])
        activations.append(draw(st.sampled_from(choices)))
    weights = [_magnitudes(draw, (sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    biases = [_magnitudes(draw, (n,)) if draw(st.booleans()) else None for n in sizes[1:]]
    x = _magnitudes(draw, (sizes[0],))
    if loss == "cross_entropy":
        t = np.zeros(n_out)
        t[draw(st.integers(0, n_out - 1))] = 1.0
    elif loss in ("bce", "bce_formula"):
        t = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 0.25, 0.7]), min_size=n_out, max_size=n_out)))
    else:
        t = np.array(draw(st.lists(st.floats(-1, 1).map(lambda v: round(v, 3)), min_size=n_out, max_size=n_out)))
    name = {"bce_formula": f"expr:{BCE_FORMULA}", "logcosh": f"expr:{LOGCOSH}"}.get(loss, loss)
    return Case(sizes, activations, weights, biases, x, t, name)


# every surface draws from both: the general cases, and bce over a softmax output (one of three draws)
ANY = st.one_of(cases(), cases(), cases(losses=("bce", "bce_formula"), softmax=True))


def assert_close(ours: float | None, ref: float, what: str) -> None:
    assert ours is not None and math.isfinite(ours), f"{what}: {ours} where torch gives {ref}"
    assert abs(ours - ref) <= max(REL * abs(ref), ABS), f"{what}: {ours!r} vs torch {ref!r}"


def check(case: Case, loss: float | None, grads: dict[str, float | None], surface: str) -> None:
    ref_loss, ref_grads = torch_oracle(case)
    if not math.isfinite(ref_loss) or not all(math.isfinite(g) for g in ref_grads.values()):
        return  # torch has no finite number to compare with (the mathematics overflows float64)
    assert_close(loss, ref_loss, f"{surface}: E")
    for name, ref in ref_grads.items():
        assert_close(grads[name], ref, f"{surface}: ∂E/∂{name}")


def strict():
    """Warnings are errors; NumPy overflow, division by zero and invalid operations raise (underflow to 0 is rounding)."""
    stack = warnings.catch_warnings()
    stack.__enter__()
    warnings.simplefilter("error")
    state = np.errstate(over="raise", divide="raise", invalid="raise")
    state.__enter__()
    return stack, state


class Strict:
    def __enter__(self):
        self.parts = strict()

    def __exit__(self, *exc):
        stack, state = self.parts
        state.__exit__(*exc)
        stack.__exit__(*exc)


def _spec(tmp_path, case: Case):
    path = tmp_path / "extreme.toml"
    path.write_text(case.toml())
    return str(path)


# --------------------------------------------------------------------------
# the surfaces


@SETTINGS
@given(ANY)
def test_grad_all_matches_torch_at_extreme_scales(tmp_path_factory, case):
    spec = _spec(tmp_path_factory.mktemp("grad"), case)
    with Strict():
        result = CliRunner().invoke(main, ["grad", spec, "--all", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and "null" not in result.output, result.output
    data = json.loads(result.output)
    check(case, data["loss"], data["gradients"], "grad --all")


@SETTINGS
@given(ANY)
def test_one_training_step_matches_torch_at_extreme_scales(tmp_path_factory, case):
    spec = _spec(tmp_path_factory.mktemp("train"), case)
    with Strict():
        result = CliRunner().invoke(main, ["train", spec, "--steps", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output, result.output
    data = json.loads(result.output[result.output.index("{") :])
    ref_loss, ref_grads = torch_oracle(case)
    if not math.isfinite(ref_loss) or not all(math.isfinite(g) for g in ref_grads.values()):
        return
    assert_close(data["loss_before"], ref_loss, "train: loss before")
    before = dict(zip(case.names(), _flat(case)))
    for name, ref in ref_grads.items():
        expected = before[name] - case.learning_rate * ref
        got = data["parameters"][name]
        # the step is exact up to the rounding of θ − η·g, on top of the gradient's own tolerance
        tolerance = max(REL * abs(ref) * case.learning_rate, ABS) + 2.3e-16 * max(abs(expected), abs(before[name]))
        assert abs(got - expected) <= tolerance, f"train: {name}: {got!r} vs {expected!r}"


def _flat(case: Case) -> list[float]:
    values: list[float] = []
    for w, b in zip(case.weights, case.biases):
        values += [float(v) for v in w.ravel()]
        if b is not None:
            values += [float(v) for v in b]
    return values


def _load(source: str) -> types.ModuleType:
    module = types.ModuleType("extreme_generated")
    exec(compile(source, "<extreme_generated>", "exec"), module.__dict__)
    return module


@SETTINGS
@given(ANY)
def test_exported_vector_module_matches_torch_at_extreme_scales(case):
    module = _load(vector_module(Model(parse_spec(case.toml()))))
    params = module.init_params()
    X, T = case.x[None, :], case.t[None, :]
    with Strict():
        loss, grads = module.loss_and_gradients(params, X, T)
        alone = module.loss(params, X, T)
        module.forward(params, X)
    named = {name: float(grads[key][index]) for name, (key, index) in module.PARAMETER_INDEX.items()}
    check(case, float(loss), named, "vector module")
    assert_close(float(alone), float(loss), "vector module: loss() against loss_and_gradients()")


@SETTINGS
@given(ANY)
def test_exported_scalar_module_matches_torch_at_extreme_scales(case):
    model = Model(parse_spec(case.toml()))
    module = _load(scalar_module(model))
    values = dict(zip(module.ARGUMENTS, [*case.x, *_flat(case), *case.t]))
    with Strict():
        grads = module.gradients(**values)
    ref_loss, _ = torch_oracle(case)
    check(case, ref_loss, {k: float(v) for k, v in grads.items()}, "scalar module")  # it has no loss()


@SETTINGS
@given(ANY)
def test_python_api_matches_torch_at_extreme_scales(case):
    # derivations() carry exact display values; gelu's erf at nets of −300 and beyond takes sympy minutes there
    assume("gelu" not in case.activations)
    model = Model(parse_spec(case.toml()))
    with Strict():
        loss, grads = model.gradients()
        derivations = model.derivations()
    check(case, loss, grads, "Model.gradients()")
    check(case, loss, {k: d.value for k, d in derivations.items()}, "Model.derivations()")


@pytest.mark.parametrize(
    ("weights", "targets"),
    [([[40.0]], [0.0]), ([[-40.0]], [1.0]), ([[30.0]], [0.0]), ([[1000.0]], [0.25])],
)
def test_bce_on_a_saturated_sigmoid_is_finite_everywhere(weights, targets):
    """The issue's case: E = softplus(±z) and δ = σ(z) − t, as binary_cross_entropy_with_logits."""
    case = Case([1, 1], ["sigmoid"], [np.array(weights)], [None], np.array([1.0]), np.array(targets), "bce")
    z, t = weights[0][0], targets[0]
    expected = max(z, 0) - z * t + math.log1p(math.exp(-abs(z)))
    sigma = math.exp(min(z, 0)) / (1 + math.exp(-abs(z)))
    model = Model(parse_spec(case.toml()))
    loss, grads = model.gradients()
    assert_close(loss, expected, "E")
    assert_close(grads["w2_1_1"], sigma - t, "∂E/∂w")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY)
def test_displayed_chains_have_no_placeholder_or_nan_and_add_up(case):
    """Every factor is shown with its value (an underflowing one too); the terms add up to the total."""
    assume("gelu" not in case.activations)  # see test_python_api_matches_torch_at_extreme_scales
    from derive.present.report import Reporter

    model = Model(parse_spec(case.toml()))
    for name, derivation in model.derivations().items():
        reporter = Reporter(derivation)
        text = reporter.text(show_closed_form=False)
        assert "?" not in text and "nan" not in text and "inf" not in text, f"{name}:\n{text}"
        for step in reporter.steps():
            assert step.value is not None, f"{name}: {step.quantity}"
            if step.kind == "sum":
                parts = [float(p.value) for p in step.parts]
                scale = max(abs(p) for p in parts)
                assert abs(sum(parts) - float(step.value)) <= 1e-9 * scale + 1e-300, f"{name}: {parts} vs {step.value}"


@pytest.mark.parametrize("targets", [[1.0, 0.0], [0.0, 1.0]])
def test_softmax_with_large_logits_shows_every_factor(tmp_path, targets):
    """The issue's second case: logits ±400·(1, 2); E, the gradients and the shown sum are finite and right."""
    case = Case(
        [2, 2],
        ["softmax"],
        [np.array([[400.0, -400.0], [-400.0, 400.0]])],
        [None],
        np.array([1.0, 2.0]),
        np.array(targets),
        "cross_entropy",
    )
    spec = _spec(tmp_path, case)
    ref_loss, ref_grads = torch_oracle(case)
    result = CliRunner().invoke(main, ["grad", spec, "w2_2_1", "--no-closed-form"])
    assert result.exit_code == 0 and "?" not in result.output and "nan" not in result.output, result.output
    total = result.output.split("sum over paths:")[1].splitlines()[2].split(" = ")[1]
    assert_close(float(total), ref_grads["w2_2_1"], "the shown sum")
    train = CliRunner().invoke(main, ["train", spec, "--steps", "1"])
    assert "warning" not in train.output and "nan" not in train.output, train.output
    before = float(train.output.split("loss before:")[1].split()[0])
    assert_close(before, ref_loss, "train: loss before")


def test_train_tells_divergence_from_an_unrepresentable_intermediate():
    """A loss that stops being a float is diverging only if the exact loss at those parameters does too."""
    text = (
        "[loss]\nkind = 'half_sse'\n[[layers]]\nsize = 1\nvalues = [1.0]\n"
        "[[layers]]\nsize = 1\nactivation = 'x**2/(1 + x**2)'\nweights = [[2.0]]\n"
        "[[layers]]\nsize = 1\nactivation = 'linear'\nweights = [[1.0]]\ntargets = [0.5]\n"
    )
    engine = Model(parse_spec(text)).compiled()
    engine.weights[1] = np.array([[1e200]])  # x² overflows; x²/(1 + x²) is 1, and E = (1 − 0.5)²/2
    history = engine.train(0)
    breakdown = engine.breakdown(history)
    assert breakdown is not None and not breakdown.diverged
    assert float(breakdown.exact) == pytest.approx(0.125, rel=1e-12)
    assert "did not diverge" in breakdown.message()

    diverging = text.replace("weights = [[2.0]]", "weights = [[1.0]]").replace("'x**2/(1 + x**2)'", "'linear'")
    engine = Model(parse_spec(diverging + "[training]\nlearning_rate = 5.0\n")).compiled()
    history = engine.train(2000)
    breakdown = engine.breakdown(history)
    assert breakdown is not None and breakdown.diverged and "training diverged" in breakdown.message()


@pytest.mark.parametrize(("weight", "x", "t"), [(1000.0, 1000.0, 0.0), (-1000.0, 1000.0, 1.0), (40.0, 1.0, 0.0)])
def test_a_shown_chain_at_a_net_of_a_million_has_every_factor(weight, x, t):
    """σ(10⁶) is 1 to 434,294 digits: the factors ∂E/∂a = e^(10⁶) and ∂a/∂z = e^(−10⁶) are still shown, and multiply to 1."""
    from derive.present.report import Reporter

    case = Case([1, 1], ["sigmoid"], [np.array([[weight]])], [None], np.array([x]), np.array([t]), "bce")
    derivation = Model(parse_spec(case.toml())).derivation("w2_1_1")
    text = Reporter(derivation).text(show_closed_form=False)
    assert "?" not in text and "nan" not in text and "inf" not in text, text
    z = weight * x
    sigma = math.exp(min(z, 0)) / (1 + math.exp(-abs(z)))
    assert_close(float(derivation.value), (sigma - t) * x, "∂E/∂w")
    de_da, da_dz, dz_dw = (f.value for f in derivation.paths[0].factors)
    assert_close(float(de_da * da_dz), 1.0 if t == 0 else -1.0, "∂E/∂a · ∂a/∂z")
    assert dz_dw == x


@pytest.mark.parametrize(
    ("weights", "x", "targets"),
    [
        ([[400.0, 0.0], [-400.0, 0.0]], [1.0, 2.0], [1.0, 0.0]),
        ([[400.0, 0.0], [-400.0, 0.0]], [1.0, 2.0], [0.0, 1.0]),
        ([[400.0], [-400.0], [0.0]], [1.0], [0.0, 1.0, 0.0]),
        ([[1000.0], [-1000.0], [999.0]], [1000.0], [0.25, 0.7, 1.0]),
    ],
)
def test_bce_over_a_saturated_softmax_is_finite_on_every_surface(tmp_path, weights, x, targets):
    """The issue's last case: log(1 − o) of an o that rounds to 1 is logsumexp of the others − logsumexp."""
    torch = require_torch()
    w = np.array(weights)
    case = Case([w.shape[1], w.shape[0]], ["softmax"], [w], [None], np.array(x), np.array(targets), "bce")
    ref_loss, ref_grads = torch_oracle(case)
    assert math.isfinite(ref_loss) and all(math.isfinite(g) for g in ref_grads.values())
    spec = _spec(tmp_path, case)
    with Strict():
        result = CliRunner().invoke(main, ["grad", spec, "--all", "--format", "json"])
        data = json.loads(result.output)
        check(case, data["loss"], data["gradients"], "grad --all")
        model = Model(parse_spec(case.toml()))
        check(case, *model.gradients(), "Model.gradients()")
        vector = _load(vector_module(model))
        X, T = case.x[None, :], case.t[None, :]
        loss, grads = vector.loss_and_gradients(vector.init_params(), X, T)
        named = {name: float(grads[key][index]) for name, (key, index) in vector.PARAMETER_INDEX.items()}
        check(case, float(loss), named, "vector module")
        scalar = _load(scalar_module(model))
        values = dict(zip(scalar.ARGUMENTS, [*case.x, *_flat(case), *case.t]))
        check(case, ref_loss, {k: float(v) for k, v in scalar.gradients(**values).items()}, "scalar module")
        require("array_api_compat", "array")
        api = _load(vector_module(model, "array-api"))
        tX, tT = torch.tensor(X), torch.tensor(T)
        loss, grads = api.loss_and_gradients(api.init_params(like=tX), tX, tT)
        named = {name: float(grads[key][index]) for name, (key, index) in api.PARAMETER_INDEX.items()}
        check(case, float(loss), named, "array-API module on torch tensors")


def test_a_saturated_sigmoid_keeps_its_gradient_in_grad_and_grad_all(tmp_path):
    """σ(61) is 1 in floats, so out(1 − out) would be 0; the exact value is 3.2e-27 and ∂E/∂w_h1_x1 1.99e-33.
    `grad --all` says what `grad PARAM` says, and no substitution reads 1 − 1 (mpmath is the oracle)."""
    import mpmath
    from test_lecture_review3 import SATURATED  # the reviewer's saturated network (x1 = 30, σ(61) in h1)

    mpmath.mp.dps = 60
    h = 1 / (1 + mpmath.exp(-(2 * 30 + 1)))
    o = 1 / (1 + mpmath.exp(-(20 * h)))
    want = float((o - mpmath.mpf("0.5")) * o * (1 - o) * 20 * h * (1 - h) * 30)
    spec = tmp_path / "saturated.toml"
    spec.write_text(SATURATED)
    runner = CliRunner()
    one = runner.invoke(main, ["grad", str(spec), "w_h1_x1"])
    assert one.exit_code == 0, one.output
    assert "(1 - 1)" not in one.output and "= 1*(" not in one.output
    assert f"(1 - {float(1 - h):.8g})" in one.output
    every = runner.invoke(main, ["grad", str(spec), "--all", "--format", "json"])
    assert every.exit_code == 0, every.output
    value = json.loads(every.output)["gradients"]["w_h1_x1"]
    assert value != 0 and math.isclose(value, want, rel_tol=1e-9)


def test_bce_over_the_sigmoid_written_as_a_formula_is_folded_like_the_built_in(tmp_path_factory):
    """1/(1 + exp(-x)) at a net of 10,000 is 1 in floats (and to the exact pass's precision), but bce folds into
    it as into `sigmoid`: E is computed from z, so the spec is taken and its numbers are torch's (found by
    hypothesis: it was refused as "bce needs outputs in (0, 1)")."""
    case = Case(
        sizes=[2, 2],
        activations=["1/(1 + exp(-x))"],
        weights=[np.array([[0.0, 0.0], [0.0, -100.0]])],
        biases=[None],
        x=np.array([0.0, -100.0]),
        t=np.array([0.0, 0.0]),
        loss="bce",
    )
    spec = _spec(tmp_path_factory.mktemp("folded"), case)
    with Strict():
        result = CliRunner().invoke(main, ["grad", spec, "--all", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    check(case, data["loss"], data["gradients"], "grad --all")
