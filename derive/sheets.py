"""Exercise sheets: one sheet and one answer key per student variant.

A :class:`Sheet` is the content: the network's definitions, the given numbers
and the questions. Each question is asked as a *claim name* (``out_o2``,
``dE/dw8``, ``delta_h2``, ``w1'``), so a student's answers, written one
``NAME = VALUE`` a line, are graded by ``derive check student-07.toml --claims
FILE``. The answer key adds each answer and its working: equation chains
"quantity = formula = numbers = value" from the derivation (report.Reporter,
the one place such chains are made today).

:func:`sheet_tex` lays a sheet out as LaTeX through templates/exercise_sheet.tex.j2;
:func:`build_class` and :func:`write_class` make a whole class set.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sympy as sp

from . import printing as pr
from .api import Model
from .chain import Derivation
from .check import compute
from .errors import DeriveError
from .network import LOSS_SYMBOL, Network, Neuron
from .render import render
from .report import Reporter
from .rules import Activation
from .texsafe import Tex, escape, tex
from .variants import Variant, draw_variants, dump_toml

MAX_FORWARD_LINES = 12  # neurons whose forward pass is worked out in the key
MAX_DEFINITIONS = 12  # neurons whose net and out are defined on the sheet
ROW_WIDTH = 75  # characters on one row of the working before its numbers go to the next
ANSWER_DIGITS = 10  # significant digits in the answers file: enough for derive check at any shown precision

_COMMAND = re.compile(r"\\[A-Za-z]+|\\,")  # commands (mathrm, frac, cdot) and thin spaces take no room

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "sheet": "Exercise sheet",
        "key": "Answer key",
        "student": "Student {label}",
        "network": "The network",
        "network_intro": "A fully connected network with {sizes} neurons per layer. Each neuron's net input is the weighted sum of the previous layer's outputs plus its bias; its output is the activation of the net input:",
        "activation": "Layer {layer}: $f(x) = {formula}$.",
        "softmax": "Layer {layer}: softmax, $\\mathrm{{out}}_j = e^{{\\mathrm{{net}}_j}} / \\sum_k e^{{\\mathrm{{net}}_k}}$.",
        "loss": "The loss:",
        "more": "The other neurons are defined the same way.",
        "givens": "Given numbers",
        "symbol": "symbol",
        "value": "value",
        "rate": "learning rate",
        "questions": "Questions",
        "answers": "Answers and working",
        "forward": "Compute ${symbol}$ by the forward pass.",
        "loss_q": "Compute the loss $E$.",
        "gradient": "Compute ${partial}$ by the chain rule.",
        "delta": "Compute ${symbol}$, the $\\delta$ of a hidden neuron.",
        "update": "Compute ${symbol}$ after one step of gradient descent ($\\eta = {rate}$).",
        "hand_in": "Hand in your answers one per line, exactly as below, to at least {digits} significant digits (rounded or truncated):",
        "answer": "Answer",
        "check": "Graded with",
    },
    "zh": {
        "sheet": "练习",
        "key": "答案",
        "student": "学生 {label}",
        "network": "网络",
        "network_intro": "一个全连接网络，各层神经元数为 {sizes}。每个神经元的净输入是上一层输出的加权和加上偏置；输出是净输入经过激活函数的值：",
        "activation": "第 {layer} 层：$f(x) = {formula}$。",
        "softmax": "第 {layer} 层：softmax，$\\mathrm{{out}}_j = e^{{\\mathrm{{net}}_j}} / \\sum_k e^{{\\mathrm{{net}}_k}}$。",
        "loss": "损失函数：",
        "more": "其余神经元的定义相同。",
        "givens": "已知数值",
        "symbol": "符号",
        "value": "数值",
        "rate": "学习率",
        "questions": "题目",
        "answers": "答案与过程",
        "forward": "用前向传播计算 ${symbol}$。",
        "loss_q": "计算损失 $E$。",
        "gradient": "用链式法则计算 ${partial}$。",
        "delta": "计算隐藏神经元的 $\\delta$：${symbol}$。",
        "update": "做一步梯度下降（$\\eta = {rate}$）后，计算 ${symbol}$。",
        "hand_in": "每行写一个答案，格式如下，至少保留 {digits} 位有效数字（四舍五入或截断均可）：",
        "answer": "答案",
        "check": "评分命令",
    },
}


Sides = tuple[str, ...]  # one line of working in LaTeX: lhs = formula = numbers = value


@dataclass(frozen=True)
class Question:
    """One question: what it asks, the claim name it is answered under, the answer and its working."""

    kind: str  # forward, loss, gradient, delta, update
    name: str  # the claim name (derive check grades it)
    symbol: sp.Symbol  # the quantity, or the parameter for a gradient or an update
    value: float
    working: tuple[Sides, ...]


@dataclass(frozen=True)
class Sheet:
    """One student's exercises: the variant, its given numbers and its questions."""

    variant: Variant
    model: Model
    questions: tuple[Question, ...]

    @property
    def network(self) -> Network:
        return self.model.network

    def givens(self) -> list[tuple[sp.Symbol, float]]:
        """Inputs, weights, biases and targets with their numbers, in the spec's order."""
        net = self.network
        point = self.model.point
        assert point is not None
        symbols = [*net.input_layer.outs, *net.parameters]
        symbols += [n.target for n in net.output_layer.neurons if n.target is not None]
        return [(s, point[s]) for s in symbols]


# --------------------------------------------------------------------------
# the questions


def questions(model: Model, digits: int = pr.DEFAULT_DIGITS) -> tuple[Question, ...]:
    """The questions of a sheet: an output, the loss, an output weight's gradient, a hidden δ, a first-layer
    weight's gradient (several paths) and its update."""
    net = model.network
    point = model.point
    assert point is not None
    asked: list[Question] = []
    output = net.output_layer.neurons[-1]
    asked.append(Question("forward", output.out.name, output.out, point[output.out], _forward_working(model, digits)))
    asked.append(Question("loss", "E", LOSS_SYMBOL, point[LOSS_SYMBOL], _loss_working(model, digits)))
    last_weight = net.output_layer.weights[-1][-1]
    asked.append(_gradient(model, last_weight, digits))
    if len(net.layers) > 2:
        hidden = net.layers[-2].neurons[-1]
        assert hidden.delta is not None
        name = f"delta_{hidden.label}"
        working = _delta_working(model, hidden, digits)
        asked.append(Question("delta", name, hidden.delta, point[hidden.delta], working))
    first = net.parameters[0]
    if first != last_weight:
        asked.append(_gradient(model, first, digits))
    asked.append(_update(model, first, digits))
    return tuple(asked)


def _line(
    names: Mapping[sp.Symbol, str],
    point: Mapping[sp.Symbol, float],
    symbol: sp.Symbol,
    expr: sp.Expr,
    value: float,
    digits: int,
) -> Sides:
    """``symbol = expr = expr with numbers = value``, repeats dropped: report.Reporter's layout of a line."""
    sides = [names.get(symbol, symbol.name), pr.latex(expr, names)]
    if not isinstance(expr, sp.Number):
        sides.append(pr.latex_values(expr, point, names, digits))
    sides.append(pr.latex_number(value, digits))
    return tuple(dict.fromkeys(sides))


def _forward_working(model: Model, digits: int) -> tuple[Sides, ...]:
    net = model.network
    point = model.point
    assert point is not None
    lines: list[Sides] = []
    for layer in net.layers[1:]:
        for n in layer.neurons:
            assert n.net is not None
            if len(lines) < 2 * MAX_FORWARD_LINES or layer is net.output_layer:
                lines.append(_line(net.latex, point, n.net, net.net_definitions[n.net], point[n.net], digits))
                lines.append(_line(net.latex, point, n.out, net.out_definitions[n.out], point[n.out], digits))
    return tuple(lines)


def _loss_working(model: Model, digits: int) -> tuple[Sides, ...]:
    net = model.network
    point = model.point
    assert point is not None
    return (_line(net.latex, point, LOSS_SYMBOL, net.loss_expression, point[LOSS_SYMBOL], digits),)


def _delta_working(model: Model, hidden: Neuron, digits: int) -> tuple[Sides, ...]:
    """The δs of every layer above the hidden neuron (BP1, BP2), then its own."""
    net = model.network
    point = model.point
    assert point is not None and hidden.delta is not None
    lines = []
    for layer in net.layers[hidden.layer + 1 :]:
        for n in layer.neurons:
            assert n.delta is not None
            lines.append(_line(net.latex, point, n.delta, net.delta_definitions[n.delta], point[n.delta], digits))
    definition = net.delta_definitions[hidden.delta]
    lines.append(_line(net.latex, point, hidden.delta, definition, point[hidden.delta], digits))
    return tuple(lines)


def _gradient(model: Model, parameter: sp.Symbol, digits: int) -> Question:
    """The derivation's own steps: each factor (or δ), then each path's product, then their sum."""
    derivation: Derivation = model.derivation(parameter.name)
    assert derivation.value is not None
    lines: list[Sides] = []
    for step in Reporter(derivation, digits).steps():
        lines.extend(p.latex_parts for p in step.parts if p.kind in ("factor", "delta"))
        lines.append(step.latex_parts)
    unique = tuple(dict.fromkeys(lines))  # a factor shared by two paths is worked out once
    return Question("gradient", f"dE/d{parameter.name}", parameter, float(derivation.value), unique)


def _update(model: Model, parameter: sp.Symbol, digits: int) -> Question:
    """p' = p − η·∂E/∂p, with the gradient from the derivation and p' from one training step."""
    net = model.network
    point = model.point
    derivation = model.derivation(parameter.name)
    assert point is not None and derivation.value is not None
    gradient = sp.Symbol(f"dE_d{parameter.name}", real=True)  # stands for ∂E/∂p in the update formula
    after = sp.Symbol(f"{parameter.name}_after", real=True)
    names = {
        **net.latex,
        gradient: pr.partial_latex(LOSS_SYMBOL, parameter, net.latex),
        after: _prime(net.latex[parameter]),
    }
    (value,) = compute(model, [f"{parameter.name}'"])
    expr = parameter - sp.Float(model.spec.training.learning_rate) * gradient
    line = _line(names, {**point, gradient: float(derivation.value)}, after, expr, value, digits)
    return Question("update", f"{parameter.name}'", parameter, value, (line,))


# --------------------------------------------------------------------------
# LaTeX


def _prime(latex: str) -> str:
    """The symbol after an update: braced, so w^{2}_{1,1} takes a prime without a double superscript."""
    return "{" + latex + "}'"


def _visible(latex: str) -> int:
    """About how many characters wide a LaTeX formula prints (commands and braces take no room)."""
    return len(_COMMAND.sub("", latex).replace("{", "").replace("}", ""))


def sheet_tex(sheet: Sheet, key: bool, lang: str = "en", digits: int = pr.DEFAULT_DIGITS) -> str:
    """The sheet (``key`` False) or its answer key as a LaTeX document."""
    words = WORDS[lang]
    unicode_ok = lang == "zh"
    net = sheet.network
    names = net.latex
    spec = sheet.model.spec

    def say(key_: str, **fields: object) -> Tex:
        return tex(words[key_].format(**fields))

    def number(value: float) -> str:
        return pr.latex_number(value, digits)

    definitions = []  # (net, its sum, out, its activation): one row a neuron
    shown = 0
    for layer in net.layers[1:]:
        for n in layer.neurons:
            assert n.net is not None
            if shown < MAX_DEFINITIONS:
                definitions.append(
                    (
                        tex(names[n.net]),
                        tex(pr.latex(net.net_definitions[n.net], names)),
                        tex(names[n.out]),
                        tex(pr.latex(net.out_definitions[n.out], names)),
                    )
                )
            shown += 1
    activations = []
    for layer in net.layers[1:]:
        rule = layer.rule
        if isinstance(rule, Activation):
            activations.append(say("activation", layer=layer.number, formula=pr.latex(rule.f, {})))
        else:
            activations.append(say("softmax", layer=layer.number))
    givens = [(tex(names[s]), tex(number(v))) for s, v in sheet.givens()]
    givens.append((tex(r"\eta"), tex(number(spec.training.learning_rate))))
    items = []
    for q in sheet.questions:
        symbol = names.get(q.symbol, q.symbol.name)
        if q.kind == "forward":
            prompt = say("forward", symbol=symbol)
        elif q.kind == "loss":
            prompt = say("loss_q")
        elif q.kind == "gradient":
            prompt = say("gradient", partial=pr.partial_latex(LOSS_SYMBOL, q.symbol, names))
        elif q.kind == "delta":
            prompt = say("delta", symbol=symbol)
        else:
            prompt = say("update", symbol=_prime(symbol), rate=number(spec.training.learning_rate))
        working = []
        for sides in q.working if key else ():
            first, *rest = sides
            if _visible(" = ".join(sides)) <= ROW_WIDTH:
                working.append((tex(first), tex(" = ".join(rest))))
            else:  # the formula on one row, then its numbers and value
                working += [(tex(first), tex(rest[0])), (tex(""), tex(" = ".join(rest[1:])))]
        items.append(
            {
                "prompt": prompt,
                "name": escape(q.name),
                "value": tex(pr.format_number(q.value, digits)),
                "working": working,
            }
        )
    variant = sheet.variant
    return render(
        "exercise_sheet.tex.j2",
        lang=lang,
        key=key,
        title=escape(spec.title, unicode_ok=unicode_ok),
        heading=tex(words["key" if key else "sheet"]),
        student=say("student", label=variant.label),
        w={k: tex(v) for k, v in words.items() if "{" not in v},
        network_intro=say("network_intro", sizes="--".join(str(layer.size) for layer in net.layers)),
        definitions=definitions,
        more=tex(words["more"]) if shown > MAX_DEFINITIONS else None,
        activations=activations,
        loss=tex(pr.latex(net.loss_expression, names)),
        givens=givens,
        items=items,
        hand_in=say("hand_in", digits=min(digits, 6)),
        # "-{}-": two hyphens, not a dash, even in fonts with the ligature
        check_command=tex(
            escape(f"derive check student-{variant.label}.toml --claims answers.txt").replace("--", "-{}-")
        ),
    )


# --------------------------------------------------------------------------
# a class set


@dataclass(frozen=True)
class ClassSet:
    """Every student's sheet, with what `derive exercises` writes for it."""

    base: str  # the spec as given (a file or a built-in example)
    name: str  # the base spec's name
    seed: int
    weights: bool
    sheets: tuple[Sheet, ...]

    @property
    def question_names(self) -> list[str]:
        return [q.name for q in self.sheets[0].questions] if self.sheets else []


def build_class(
    ref: str | Path, students: int, seed: int, weights: bool = False, digits: int = pr.DEFAULT_DIGITS
) -> ClassSet:
    """Draw the variants and set each student's questions (no files written)."""
    from .spec import load_spec

    variants = draw_variants(ref, students, seed, weights)  # refuses networks too wide to work by hand
    base = load_spec(ref)
    sheets = []
    for v in variants:
        model = Model(v.spec)
        sheets.append(Sheet(v, model, questions(model, digits)))
    return ClassSet(str(ref), base.name, seed, weights, tuple(sheets))


def files_of(label: str, lectures: bool = False) -> dict[str, str]:
    """The files written for a student, by role."""
    stem = f"student-{label}"
    files = {
        "spec": f"{stem}.toml",
        "sheet": f"{stem}-sheet.pdf",
        "key": f"{stem}-key.pdf",
        "answers": f"{stem}-answers.txt",
    }
    if lectures:
        files["lecture"] = f"{stem}-lecture.pdf"
    return files


def answers_text(sheet: Sheet) -> str:
    """The correct answers as a claims file that `derive check` accepts."""
    label = sheet.variant.label
    lines = [
        f"# Student {label}'s answers, computed by derive. A student's own answers file has the same lines;",
        f"# grade it with: derive check {files_of(label)['spec']} --claims FILE",
    ]
    lines += [f"{q.name} = {pr.format_number(q.value, ANSWER_DIGITS)}" for q in sheet.questions]
    return "\n".join(lines) + "\n"


def variants_toml(class_set: ClassSet, lectures: bool = False) -> str:
    """DIR/variants.toml: the class set, with each student's spec and files."""
    data: dict[str, Any] = {
        "base": class_set.base,
        "seed": class_set.seed,
        "students": len(class_set.sheets),
        "weights": class_set.weights,
        "questions": class_set.question_names,
        "variants": [
            {
                "student": s.variant.student,
                **files_of(s.variant.label, lectures),
                "inputs": list(s.variant.inputs),
                "targets": list(s.variant.targets),
            }
            for s in class_set.sheets
        ],
    }
    header = (
        "# A class set written by derive exercises: one spec, sheet, answer key and answers file per student.\n"
        "# Grade a student's numbers with: derive check student-NN.toml --claims THEIR-ANSWERS.txt\n"
    )
    return header + dump_toml(data)


def write_class(
    class_set: ClassSet,
    directory: Path,
    lang: str = "en",
    digits: int = pr.DEFAULT_DIGITS,
    jobs: int = 1,
    log: Callable[[str], None] = lambda message: None,
    lectures: bool = False,
) -> float:
    """Write every file of the class set into ``directory``; returns the seconds it took.

    With ``lectures``, each student also gets the whole lecture of their
    variant with its exercises (derive lecture --exercises): every number worked.
    Everything is built in a staging directory first and moved in at the end,
    so a failure (say, TeX) leaves no half-written class set.
    """
    from .lecture import Options, tex_source
    from .texbuild import check_tools, compile_pdf

    check_tools(lang)
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".derive-exercises-", dir=directory))
    try:
        builds: list[tuple[str, Path]] = []
        for sheet in class_set.sheets:
            files = files_of(sheet.variant.label, lectures)
            (staging / files["spec"]).write_text(sheet.variant.toml, encoding="utf-8")
            (staging / files["answers"]).write_text(answers_text(sheet), encoding="utf-8")
            builds.append((sheet_tex(sheet, key=False, lang=lang, digits=digits), staging / files["sheet"]))
            builds.append((sheet_tex(sheet, key=True, lang=lang, digits=digits), staging / files["key"]))
            if lectures:
                options = Options(lang=lang, digits=digits, exercises=True)
                builds.append((tex_source(sheet.model, options), staging / files["lecture"]))
        (staging / "variants.toml").write_text(variants_toml(class_set, lectures), encoding="utf-8")

        def build(job: tuple[str, Path]) -> None:
            compile_pdf(job[0], job[1], lang)
            log(f"built {job[1].name}")

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(build, builds))  # latexmk runs as a subprocess: threads are enough
        for path in sorted(staging.iterdir()):
            os.replace(path, directory / path.name)
    except BaseException:
        for tex_file in staging.glob("*.tex"):  # a failed build's LaTeX, for the bug report
            shutil.copy(tex_file, directory / tex_file.name)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return time.perf_counter() - started


def check_format(fmt: str) -> None:
    """HTML sheets wait for HTML lectures."""
    if fmt != "pdf":
        raise DeriveError(
            f"--format {fmt}: exercise sheets are PDF only for now (HTML lectures do not exist yet)",
            hint="use --format pdf",
        )
