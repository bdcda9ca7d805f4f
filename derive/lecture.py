"""`derive lecture`: a typeset, step-by-step backpropagation lecture for any spec.

Python decides everything a lecture says: which weights get a full derivation,
every equation (from the derivations' own expressions, through the LaTeX
printers), every number. The template (templates/lecture.tex.j2) only lays it
out. Free text from the spec is escaped; LaTeX made here is marked :class:`Tex`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from . import printing as pr
from .api import Model
from .chain import Derivation, count_paths, derive, display_point, evaluate, shown_value
from .errors import TooLargeError
from .network import LOSS_SYMBOL, Layer, Network
from .render import render
from .report import Reporter, Step
from .rules import Activation, LayerMap, Y
from .texsafe import Tex, escape, tex

MAX_LISTED_PARAMETERS = 40  # above this, a representative weight per layer
MAX_DRAWN_NEURONS = 8
MAX_LABELLED_EDGES = 16
MAX_VALUED_EDGES = 12
MAX_FORWARD_NEURONS = 12
MAX_PLOT_POINTS = 400
MAX_TABLE_ROWS = 300  # the update table of a big network lists this many, then says how many more
MAX_PATH_ROWS_PER_LAYER = 120  # above this, one weight of the layer lists its paths, the rest use δ form
LINE_WIDTH = 62  # visible characters per display line, estimated


@dataclass(frozen=True)
class Options:
    lang: str = "en"
    digits: int = pr.DEFAULT_DIGITS
    steps: int | None = None
    exercises: bool = False


# --------------------------------------------------------------------------
# words: every sentence of a lecture, in each language


WORDS: dict[str, dict[str, str]] = {
    "en": {
        "network": "The network",
        "network_intro": "The network has {layers} layers: {sizes} neurons. Each neuron computes a weighted sum of the outputs of the previous layer (its net input) and applies its activation function to get its output.{labels}",
        "edge_labels": " Weights are written on the edges{values}.",
        "with_values": " with their values",
        "notation": "Notation and the chain rule",
        "notation_intro": "Each neuron has a weighted input and an output: for neuron {neuron} they are {net} and {out}. The table lists every symbol with its value; the loss is $E$.",
        "symbol": "symbol",
        "meaning": "meaning",
        "value": "value",
        "chain_one": "If $q$ influences $E$ along a single path $q \\to u \\to v \\to E$, the chain rule multiplies the partial derivatives along it:",
        "chain_many": "If $q$ influences $E$ along several paths, the derivative is the sum over the paths of the product along each:",
        "chain_example": "In this network, for example, {weight} reaches $E$ along {n} {paths}.",
        "path": "path",
        "paths": "paths",
        "forward": "The forward pass",
        "forward_intro": "Layer by layer, each net input is the weighted sum of the previous outputs plus the bias, and each output is the activation of the net input.",
        "activation_is": "Layer {layer} uses {name}: $f(x) = {formula}$, with $f'(x) = {derivative}$.",
        "softmax_is": "Layer {layer} uses softmax: $\\mathrm{{out}}_j = e^{{\\mathrm{{net}}_j}} / \\sum_k e^{{\\mathrm{{net}}_k}}$. It is a map of the whole layer: each output depends on every net input of the layer.",
        "more_neurons": "The other {n} neurons of layer {layer} are computed the same way.",
        "loss": "The loss",
        "loss_intro": "The loss compares each output with its target:",
        "output_weights": "Output-layer weights",
        "output_intro": "An output-layer weight reaches $E$ through its own neuron: the chain has three factors.",
        "output_intro_softmax": "The output layer is a softmax, so a weight's net input reaches $E$ through every output: the chain runs over all of them, and the results add up.",
        "hidden_weights": "Hidden-layer weights",
        "hidden_intro": "A hidden weight reaches $E$ along several paths, one through each neuron of the layers above; we add the contributions of all paths.",
        "biases": "Biases",
        "biases_intro": "A bias enters its neuron's net input with factor 1. A bias shared by a whole layer feeds every neuron of the layer, so its gradient sums over all of them.",
        "factors": "The factors, first as formulas, then with the numbers of the forward pass:",
        "product": "Their product:",
        "sum_of_paths": "Adding the paths:",
        "sum_of_terms": "Adding the terms:",
        "delta_form_intro": "The same result in $\\delta$ form, where $\\delta = \\partial E/\\partial \\mathrm{net}$ of a neuron is computed once and shared by every path through it:",
        "folded": "{weight} reaches $E$ along {n} paths, too many to list: we use the $\\delta$ form.",
        "compact": "{weight} reaches $E$ along {n} paths, like the first weight of its layer above; we write it in $\\delta$ form.",
        "representative": "This network has {n} parameters: we derive one representative weight per layer in full; the update table lists every gradient.",
        "deltas": "The $\\delta$ form and the four equations",
        "deltas_intro": "Write $\\delta_j = \\partial E / \\partial \\mathrm{net}_j$ for each neuron. The chain rule then becomes the four equations of backpropagation (Nielsen, chapter 2), with $\\odot$ the elementwise product:",
        "bp1": "output layer",
        "bp2": "from layer $l+1$ back to layer $l$",
        "bp3": "biases (summed over the layer for a shared bias)",
        "bp4": "weights",
        "bp1_softmax": "For a softmax output layer, BP1 uses the Jacobian of the whole layer: $\\delta^L = J^{\\top} \\nabla_{a} E$.",
        "deltas_here": "For this network:",
        "matrix_form": "In matrix form, layer by layer:",
        "closed_form": "A closed form",
        "closed_intro": "Substituting every definition gives {quantity} in the inputs, weights, biases and targets alone:",
        "closed_too_large": "The closed form of {quantity} is too large to print ({why}); the $\\delta$ form above is how it is computed.",
        "update_step": "One step of gradient descent",
        "update_intro": "Each parameter moves against its gradient, $p \\leftarrow p - \\eta\\, \\partial E/\\partial p$, with learning rate $\\eta = {eta}$.",
        "biases_fixed": "As in the original example, the biases are not updated.",
        "parameter": "parameter",
        "old": "old value",
        "gradient": "gradient",
        "new": "new value",
        "loss_after": "After this step the loss is {after} (it was {before}).",
        "nodes": "about {size} nodes; the limit is {limit}",
        "lines": "{n} lines",
        "table_more": "\\dots\\ and {n} more parameters (all of them: \\texttt{{derive grad --all}}).",
        "training": "Training",
        "training_intro": "Repeating the update {steps} times:",
        "training_result": "After {steps} steps the loss is {loss}.",
        "step_axis": "step",
        "loss_axis": "loss $E$",
        "exercises": "Exercises",
        "exercises_intro": "Use the numbers of this lecture.",
        "answers": "Answers",
        "ex_forward": "Compute {quantity}.",
        "ex_gradient": "Compute {quantity} by the chain rule.",
        "ex_delta": "Compute {quantity}.",
        "ex_update": "Compute the value of {quantity} after one step of gradient descent.",
        "generated": "Generated by derive from the spec {source}.",
        "input": "input",
        "net_of": "net input of neuron {neuron}",
        "out_of": "output of neuron {neuron}",
        "target_of": "target of output {neuron}",
        "weight_from": "weight from {src} into {dst}",
        "bias_of": "bias of {neurons}",
        "shared_by": "bias shared by layer {layer}",
        "and_more": "\\dots\\ ({n} symbols in all)",
    },
    "zh": {
        "network": "网络结构",
        "network_intro": "网络共有 {layers} 层，各层神经元个数为 {sizes}。每个神经元先计算上一层输出的加权和（净输入），再经激活函数得到输出。{labels}",
        "edge_labels": "边上标出了权重{values}。",
        "with_values": "及其数值",
        "notation": "记号与链式法则",
        "notation_intro": "每个神经元有加权输入和输出：神经元 {neuron} 的加权输入为 {net}，输出为 {out}。下表列出所有符号及其数值；损失记为 $E$。",
        "symbol": "符号",
        "meaning": "含义",
        "value": "数值",
        "chain_one": "若 $q$ 只沿一条路径 $q \\to u \\to v \\to E$ 影响 $E$，链式法则把路径上的偏导数相乘：",
        "chain_many": "若 $q$ 沿多条路径影响 $E$，导数等于各条路径上偏导数乘积之和：",
        "chain_example": "例如在本网络中，{weight} 沿 {n} 条{paths}到达 $E$。",
        "path": "路径",
        "paths": "路径",
        "forward": "前向传播",
        "forward_intro": "逐层计算：净输入是上一层输出的加权和加上偏置，输出是净输入经过激活函数的值。",
        "activation_is": "第 {layer} 层使用 {name}：$f(x) = {formula}$，$f'(x) = {derivative}$。",
        "softmax_is": "第 {layer} 层使用 softmax：$\\mathrm{{out}}_j = e^{{\\mathrm{{net}}_j}} / \\sum_k e^{{\\mathrm{{net}}_k}}$。它是整层的映射：每个输出都依赖于该层所有的净输入。",
        "more_neurons": "第 {layer} 层其余 {n} 个神经元的计算方法相同。",
        "loss": "损失函数",
        "loss_intro": "损失函数比较每个输出与其目标值：",
        "output_weights": "输出层权重",
        "output_intro": "输出层权重只通过它所连接的神经元影响 $E$：链上有三个因子。",
        "output_intro_softmax": "输出层是 softmax，权重所在的净输入经由每一个输出影响 $E$：链式法则要遍历所有输出，再把结果相加。",
        "hidden_weights": "隐藏层权重",
        "hidden_intro": "隐藏层权重沿多条路径影响 $E$，每条路径经过上层的一个神经元；把所有路径的贡献相加。",
        "biases": "偏置",
        "biases_intro": "偏置以系数 1 进入其神经元的净输入。整层共享的偏置作用于该层每个神经元，因此它的梯度是对这些神经元求和。",
        "factors": "各个因子，先写公式，再代入前向传播的数值：",
        "product": "相乘：",
        "sum_of_paths": "各路径相加：",
        "sum_of_terms": "各项相加：",
        "delta_form_intro": "用 $\\delta$ 形式表示同一结果：每个神经元的 $\\delta = \\partial E/\\partial \\mathrm{net}$ 只计算一次，由经过它的所有路径共享：",
        "folded": "{weight} 沿 {n} 条路径到达 $E$，路径太多，不逐条列出：使用 $\\delta$ 形式。",
        "compact": "{weight} 与上面同层第一个权重一样沿 {n} 条路径到达 $E$；这里用 $\\delta$ 形式表示。",
        "representative": "本网络共有 {n} 个参数：每层完整推导一个代表性的权重；更新表列出全部梯度。",
        "deltas": "$\\delta$ 形式与四个基本方程",
        "deltas_intro": "记每个神经元的 $\\delta_j = \\partial E / \\partial \\mathrm{net}_j$。链式法则即化为反向传播的四个基本方程（Nielsen 第二章），其中 $\\odot$ 为逐元素乘积：",
        "bp1": "输出层",
        "bp2": "由第 $l+1$ 层反传到第 $l$ 层",
        "bp3": "偏置（共享偏置对整层求和）",
        "bp4": "权重",
        "bp1_softmax": "输出层为 softmax 时，BP1 使用整层的雅可比矩阵：$\\delta^L = J^{\\top} \\nabla_{a} E$。",
        "deltas_here": "本网络中：",
        "matrix_form": "写成矩阵形式，逐层：",
        "closed_form": "闭式表达式",
        "closed_intro": "代入所有定义，{quantity} 只用输入、权重、偏置和目标值表示：",
        "closed_too_large": "{quantity} 的闭式表达式太大，无法打印（{why}）；上面的 $\\delta$ 形式就是它的计算方法。",
        "update_step": "一步梯度下降",
        "update_intro": "每个参数沿梯度的反方向移动：$p \\leftarrow p - \\eta\\, \\partial E/\\partial p$，学习率 $\\eta = {eta}$。",
        "biases_fixed": "与原例相同，偏置不更新。",
        "parameter": "参数",
        "old": "原值",
        "gradient": "梯度",
        "new": "新值",
        "loss_after": "这一步之后损失为 {after}（之前为 {before}）。",
        "nodes": "约 {size} 个节点，上限为 {limit}",
        "lines": "{n} 行",
        "table_more": "\\dots\\ 以及另外 {n} 个参数（全部参数见 \\texttt{{derive grad --all}}）。",
        "training": "训练",
        "training_intro": "重复更新 {steps} 次：",
        "training_result": "{steps} 步之后损失为 {loss}。",
        "step_axis": "步数",
        "loss_axis": "损失 $E$",
        "exercises": "练习",
        "exercises_intro": "使用本讲义中的数值。",
        "answers": "答案",
        "ex_forward": "计算 {quantity}。",
        "ex_gradient": "用链式法则计算 {quantity}。",
        "ex_delta": "计算 {quantity}。",
        "ex_update": "计算一步梯度下降后 {quantity} 的值。",
        "generated": "由 derive 根据 {source} 生成。",
        "input": "输入",
        "net_of": "神经元 {neuron} 的净输入",
        "out_of": "神经元 {neuron} 的输出",
        "target_of": "输出 {neuron} 的目标值",
        "weight_from": "从 {src} 到 {dst} 的权重",
        "bias_of": "{neurons} 的偏置",
        "shared_by": "第 {layer} 层共享的偏置",
        "and_more": "\\dots（共 {n} 个符号）",
    },
}


def _say(words: dict[str, str], key: str, **fields: object) -> Tex:
    """A sentence of ours (trusted LaTeX) with fields that are already Tex or plain numbers."""
    unicode_ok = words is WORDS["zh"]  # pdflatex has no glyphs beyond Latin-1
    safe = {k: v if isinstance(v, Tex) else escape(str(v), unicode_ok) for k, v in fields.items()}
    return tex(words[key].format(**safe))


def _m(latex: str) -> Tex:
    """Inline math."""
    return tex(f"${latex}$")


# --------------------------------------------------------------------------
# width estimates and line breaking for long formulas


def visible_width(latex: str) -> float:
    """A rough count of the characters a formula shows (scripts count less)."""
    width = 0.0
    depth = 0
    script = False
    i = 0
    while i < len(latex):
        ch = latex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", latex[i:])
            name = m.group(1) if m else ""
            i += len(name) + 1
            if name in ("cdot", "partial", "delta", "eta", "sum", "odot", "quad"):
                width += 1
            if name == "frac":
                width -= 0  # numerator and denominator are counted; overestimates, which is safe
            continue
        if ch in "^_":
            script = True
            depth = 0
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth <= 0:
                script = False
        elif ch != " ":
            width += 0.7 if script else 1.0
        i += 1
    return width


def break_lines(expr: sp.Expr, names: Mapping[sp.Symbol, str], width: int = LINE_WIDTH) -> list[str]:
    """LaTeX lines for a long expression: products split into factors, sums into terms."""
    whole = pr.latex(expr, names)
    if visible_width(whole) <= width:
        return [whole]
    if isinstance(expr, sp.Add):
        lines: list[str] = []
        for i, term in enumerate(sp.Add.make_args(expr)):
            negative = term.could_extract_minus_sign()
            body = break_lines(-term if negative else term, names, width - 2)
            sign = "-" if negative else ("+" if i else "")
            lines.extend([f"{sign} {body[0]}".strip(), *body[1:]])
        return lines
    if isinstance(expr, sp.Mul):
        numer, denom = sp.fraction(expr)
        factors = list(sp.Mul.make_args(numer))
        if denom != 1:
            factors.append(sp.Pow(denom, -1, evaluate=False))
        lines = []
        for factor in factors:
            body = _factor_lines(factor, names, width)
            lines.extend([(r"\cdot " if lines else "") + body[0], *body[1:]])
        return lines
    if isinstance(expr, sp.Pow) and expr.exp == -1:
        inner = break_lines(expr.base, names, width - 4)
        return (
            [r"\Bigl(" + inner[0], *inner[1:-1], inner[-1] + r"\Bigr)^{-1}"]
            if len(inner) > 1
            else [rf"\frac{{1}}{{{inner[0]}}}"]
        )
    return [whole]


def _factor_lines(factor: sp.Expr, names: Mapping[sp.Symbol, str], width: int) -> list[str]:
    latex = pr.latex(factor, names)
    if visible_width(latex) <= width:
        return [rf"\left({latex}\right)" if isinstance(factor, sp.Add) else latex]
    if isinstance(factor, sp.Add):
        inner = break_lines(factor, names, width - 4)
        if len(inner) == 1:
            return [rf"\left({inner[0]}\right)"]
        return [r"\Bigl(" + inner[0], *(r"\quad " + line for line in inner[1:-1]), r"\quad " + inner[-1] + r"\Bigr)"]
    return break_lines(factor, names, width)


def fit(latex: str, width: int = LINE_WIDTH // 2, room: str = r"0.8\linewidth") -> Tex:
    """A formula that may be too wide is boxed and shrunk to ``room`` only if TeX finds it wider.

    The estimate only decides whether to box it; TeX measures (graphicx's
    \\width inside \resizebox), so nothing overflows whatever the estimate says.
    """
    if visible_width(latex) <= width:
        return tex(latex)
    size = rf"\ifdim\width>{room}{room}\else\width\fi"
    return tex(rf"\resizebox{{{size}}}{{!}}{{$\displaystyle {latex}$}}")


def rows(parts: tuple[str, ...] | list[str], width: int = LINE_WIDTH) -> Tex:
    """One aligned equation: ``lhs &= a = b`` on one row when it fits, else one side per row."""
    lhs, *rhs = parts
    if not rhs:
        return tex(lhs)
    one = f"{lhs} &= " + " = ".join(rhs)
    if visible_width(one) <= width:
        return tex(one)
    lines = [f"{lhs} &= {fit(rhs[0])}"]
    lines += [f"&= {fit(side)}" for side in rhs[1:]]
    return tex(r" \\ ".join(lines))


# --------------------------------------------------------------------------
# building the lecture


@dataclass
class Block:
    """The derivation of one parameter, laid out."""

    title: Tex
    intro: list[Tex] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)  # {"caption": Tex, "rows": [Tex]}


class LectureBuilder:
    def __init__(self, model: Model, options: Options) -> None:
        self.model = model
        self.net: Network = model.network
        self.options = options
        self.words = WORDS[options.lang]
        self.names = self.net.latex
        self.digits = options.digits
        model.network.require_numbers("derive lecture")
        assert model.point is not None
        self.point = display_point(self.net, model.point)  # exact numbers, rounding noise shown as 0
        self.parameters = list(model.spec.parameter_names)
        self._derivations: dict[str, Derivation] = {}
        self._path_counts: dict[sp.Symbol, int] = {}
        # every gradient of the update table, from the compiled passes (the same numbers, checked by the tests)
        _, self.gradient_values = model.gradients()

    def derivation(self, name: str) -> Derivation:
        """The derivation of one parameter, derived on first use (a big network has thousands)."""
        if name not in self._derivations:
            assert self.model.point is not None
            self._derivations[name] = derive(self.net, self.net.symbols[name], self.model.point, memo=self._path_counts)
        return self._derivations[name]

    def kind_of(self, name: str) -> str:
        """output, hidden or bias."""
        info = self.net.info[name]
        if info.kind == "bias":
            return "bias"
        return "output" if info.layer == len(self.net.layers) - 1 else "hidden"

    # -- helpers ------------------------------------------------------------------

    def say(self, key: str, **fields: object) -> Tex:
        return _say(self.words, key, **fields)

    def num(self, value: float) -> Tex:
        return tex(pr.latex_number(value, self.digits))

    def sym(self, symbol: sp.Symbol) -> Tex:
        return tex(self.names[symbol])

    def partial(self, of: sp.Symbol, wrt: sp.Symbol) -> Tex:
        return tex(pr.partial_latex(of, wrt, self.names))

    # -- sections -----------------------------------------------------------------

    def context(self) -> dict[str, Any]:
        spec = self.model.spec
        training_steps = self.options.steps if self.options.steps is not None else spec.training.steps
        return {
            "lang": self.options.lang,
            "title": escape(spec.title, unicode_ok=self.options.lang == "zh"),
            "description": escape(spec.description, unicode_ok=self.options.lang == "zh"),
            "name": escape(spec.name),
            "w": {k: tex(v) for k, v in self.words.items() if "{" not in v},
            "generated": self.say("generated", source=tex(r"\texttt{" + escape(spec.name + ".toml") + "}")),
            "diagram": self.diagram(),
            "network_intro": self.network_intro(),
            "notation": self.notation(),
            "primer": self.primer(),
            "forward": self.forward(),
            "loss": self.loss(),
            "gradients": self.gradients(),
            "deltas": self.deltas(),
            "closed": self.closed(),
            "update": self.update(),
            "training": self.training(training_steps),
            "exercises": self.exercises() if self.options.exercises else None,
        }

    def network_intro(self) -> Tex:
        sizes = "--".join(str(layer.size) for layer in self.net.layers)
        labels = tex("")
        if self._edge_count() <= MAX_LABELLED_EDGES:
            values = tex(self.words["with_values"] if self._edge_count() <= MAX_VALUED_EDGES else "")
            labels = self.say("edge_labels", values=values)
        return self.say("network_intro", layers=len(self.net.layers), sizes=sizes, labels=labels)

    def _edge_count(self) -> int:
        return sum(layer.size * self.net.layers[layer.index - 1].size for layer in self.net.layers[1:])

    def diagram(self) -> dict[str, Any]:
        """Node positions and labels; the template draws them with TikZ."""
        layers = self.net.layers
        show_labels = self._edge_count() <= MAX_LABELLED_EDGES
        show_values = self._edge_count() <= MAX_VALUED_EDGES
        columns: list[dict[str, Any]] = []
        tops: list[float] = []
        drawn: dict[tuple[int, int], str] = {}
        for layer in layers:
            indices = list(range(layer.size))
            if layer.size > MAX_DRAWN_NEURONS:
                indices = [0, 1, 2, 3, layer.size - 2, layer.size - 1]
            nodes: list[dict[str, Any]] = []
            count = len(indices) + (1 if layer.size > MAX_DRAWN_NEURONS else 0)
            for slot, j in enumerate(indices):
                if layer.size > MAX_DRAWN_NEURONS and slot >= 4:
                    slot += 1
                y = (count - 1) / 2 - slot
                node_id = f"n{layer.index}x{j}"
                drawn[(layer.index, j)] = node_id
                neuron = layer.neurons[j]
                label = self.names[neuron.out] if layer.index == 0 else self._neuron_label(layer, j)
                nodes.append({"id": node_id, "x": 4.2 * layer.index, "y": 1.6 * y, "label": tex(label)})
            dots = None
            if layer.size > MAX_DRAWN_NEURONS:
                dots = {"x": 4.2 * layer.index, "y": 1.6 * ((count - 1) / 2 - 4)}
            style = (
                "inputneuron" if layer.index == 0 else ("outputneuron" if layer.index == len(layers) - 1 else "neuron")
            )
            columns.append({"nodes": nodes, "dots": dots, "style": style})
            tops.append(1.6 * (count - 1) / 2)  # the top neuron's y
        edges = []
        for layer in layers[1:]:
            for j, row in enumerate(layer.weights):
                for k, w in enumerate(row):
                    if (layer.index, j) in drawn and (layer.index - 1, k) in drawn:
                        label = ""
                        if show_labels:
                            label = self.names[w]
                            if show_values:
                                label += "=" + pr.latex_number(self.point[w], 4)
                        # labels of edges into different neurons sit at different places, so crossings stay legible
                        pos = 0.22 + 0.5 * (j / max(1, layer.size - 1)) if layer.size > 1 else 0.5
                        edges.append(
                            {
                                "src": drawn[(layer.index - 1, k)],
                                "dst": drawn[(layer.index, j)],
                                "label": tex(label),
                                "pos": f"{pos:.2f}",
                            }
                        )
        biases = []
        for layer in layers[1:]:
            kind = layer.spec.bias.kind
            if kind == "none":
                continue
            top = tops[layer.index]
            bias_id = f"bias{layer.index}"
            first = layer.biases[0]
            assert first is not None
            if kind == "shared":
                label = self.names[first] + ("=" + pr.latex_number(self.point[first], 4) if show_values else "")
            else:
                label = "1"
            targets = []
            for j, b in enumerate(layer.biases):
                if (layer.index, j) in drawn and b is not None:
                    edge_label = "" if kind == "shared" or not show_labels else self.names[b]
                    targets.append({"dst": drawn[(layer.index, j)], "label": tex(edge_label)})
            biases.append(
                {"id": bias_id, "x": 4.2 * layer.index - 1.8, "y": top + 1.4, "label": tex(label), "targets": targets}
            )
        return {"columns": columns, "edges": edges, "biases": biases}

    def _neuron_label(self, layer: Layer, j: int) -> str:
        neuron = layer.neurons[j]
        if layer.spec.by_size:  # Nielsen's a^l_j
            return self.names[neuron.out]
        from .naming import latex_name

        return latex_name(neuron.label)

    def notation(self) -> dict[str, Any]:
        rows_: list[dict[str, Tex]] = []
        net = self.net
        limit = 24
        for layer in net.layers:
            for n in layer.neurons:
                label = _m(self._neuron_label(layer, n.index) if layer.index else self.names[n.out])
                if layer.index == 0:
                    rows_.append(
                        {
                            "symbol": _m(self.names[n.out]),
                            "meaning": tex(self.words["input"]),
                            "value": _m(self.num(self.point[n.out])),
                        }
                    )
                    continue
                assert n.net is not None
                rows_.append(
                    {
                        "symbol": _m(self.names[n.net]),
                        "meaning": self.say("net_of", neuron=label),
                        "value": _m(self.num(self.point[n.net])),
                    }
                )
                rows_.append(
                    {
                        "symbol": _m(self.names[n.out]),
                        "meaning": self.say("out_of", neuron=label),
                        "value": _m(self.num(self.point[n.out])),
                    }
                )
                if n.target is not None:
                    rows_.append(
                        {
                            "symbol": _m(self.names[n.target]),
                            "meaning": self.say("target_of", neuron=label),
                            "value": _m(self.num(self.point[n.target])),
                        }
                    )
        for layer in net.layers[1:]:
            prev = net.layers[layer.index - 1]
            for j, row in enumerate(layer.weights):
                for k, w in enumerate(row):
                    src = _m(self._neuron_label(prev, k) if prev.index else self.names[prev.neurons[k].out])
                    dst = _m(self._neuron_label(layer, j))
                    rows_.append(
                        {
                            "symbol": _m(self.names[w]),
                            "meaning": self.say("weight_from", src=src, dst=dst),
                            "value": _m(self.num(self.point[w])),
                        }
                    )
            seen = set()
            for j, b in enumerate(layer.biases):
                if b is None or b in seen:
                    continue
                seen.add(b)
                meaning = (
                    self.say("shared_by", layer=layer.number)
                    if layer.spec.bias.kind == "shared"
                    else self.say("bias_of", neurons=_m(self._neuron_label(layer, j)))
                )
                rows_.append({"symbol": _m(self.names[b]), "meaning": meaning, "value": _m(self.num(self.point[b]))})
        total = len(rows_)
        more = self.say("and_more", n=total) if total > limit else None
        first = net.layers[1]
        example = first.neurons[0]
        assert example.net is not None
        intro = self.say(
            "notation_intro",
            neuron=_m(self._neuron_label(first, 0)),
            net=_m(self.names[example.net]),
            out=_m(self.names[example.out]),
        )
        return {"intro": intro, "rows": rows_[:limit], "more": more}

    def primer(self) -> dict[str, Any]:
        several = (n for n in self.parameters if count_paths(self.net, self.net.symbols[n], self._path_counts) > 1)
        name = next(several, None)
        example = self.derivation(name) if name is not None else None
        sentence = None
        if example is not None:
            sentence = self.say(
                "chain_example",
                weight=_m(self.sym(example.quantity)),
                n=example.path_count,
                paths=tex(self.words["paths"] if example.path_count > 1 else self.words["path"]),
            )
        return {"one": tex(self.words["chain_one"]), "many": tex(self.words["chain_many"]), "example": sentence}

    def forward(self) -> dict[str, Any]:
        net = self.net
        blocks = []
        for layer in net.layers[1:]:
            rule = layer.rule
            if isinstance(rule, LayerMap):
                about = self.say("softmax_is", layer=layer.number)
            else:
                assert isinstance(rule, Activation)
                formula = pr.latex(rule.f, {})  # the rule's own variable x
                derivative = pr.latex(
                    rule.fprime_in_out.xreplace({Y: sp.Symbol("f(x)")})
                    if rule.fprime_in_out is not None
                    else rule.fprime,
                    {},
                )
                name = rule.name if rule.name != rule.formula else "f"
                about = self.say(
                    "activation_is",
                    layer=layer.number,
                    name=tex(r"\texttt{" + escape(name) + "}"),
                    formula=tex(formula),
                    derivative=tex(derivative),
                )
            equations = []
            shown = layer.neurons[:MAX_FORWARD_NEURONS]
            wide = net.layers[layer.index - 1].size > 6
            for n in shown:
                assert n.net is not None
                definition = net.net_definitions[n.net]
                if wide:
                    equations.append(
                        rows((self.names[n.net], self._sum_notation(layer, n.index), self.num(self.point[n.net])))
                    )
                else:
                    equations.append(rows(self._parts(n.net, definition)))
                equations.append(rows(self._parts(n.out, net.out_definitions[n.out])))
            more = (
                self.say("more_neurons", n=layer.size - len(shown), layer=layer.number)
                if layer.size > len(shown)
                else None
            )
            blocks.append({"about": about, "equations": equations, "more": more})
        return {"intro": tex(self.words["forward_intro"]), "layers": blocks}

    def _sum_notation(self, layer: Layer, j: int) -> str:
        prev = self.net.layers[layer.index - 1]
        first_w, last_w = layer.weights[j][0], layer.weights[j][-1]
        first_o, last_o = prev.neurons[0].out, prev.neurons[-1].out
        bias = layer.biases[j]
        text = rf"{self.names[first_w]} {self.names[first_o]} + \dots + {self.names[last_w]} {self.names[last_o]}"
        return text + (f" + {self.names[bias]}" if bias is not None else "")

    def _parts(self, symbol: sp.Symbol, definition: sp.Expr) -> tuple[str, ...]:
        parts = [self.names[symbol], pr.latex(definition, self.names)]
        substituted = pr.latex_values(definition, self.point, self.names, self.digits)
        if substituted not in parts:
            parts.append(substituted)
        parts.append(pr.latex_number(shown_value(definition, self.point[symbol], self.point), self.digits))
        return tuple(dict.fromkeys(parts))

    def loss(self) -> dict[str, Any]:
        net = self.net
        expr = net.loss_expression
        parts = ["E", pr.latex(expr, self.names)]
        if len(net.output_layer.neurons) <= 4:
            parts.append(pr.latex_values(expr, self.point, self.names, self.digits))
        parts.append(pr.latex_number(self.point[LOSS_SYMBOL], self.digits))
        return {"intro": tex(self.words["loss_intro"]), "equation": rows(parts)}

    # -- gradients --------------------------------------------------------------------

    def chosen(self) -> tuple[list[str], bool]:
        """The parameters derived in full: all, or a representative weight per layer."""
        names = list(self.parameters)
        if len(names) <= MAX_LISTED_PARAMETERS:
            return names, False
        picked = []
        for layer in self.net.layers[1:]:
            picked.append(layer.weights[0][0].name)
            bias = layer.biases[0]
            if bias is not None and bias.name not in picked:
                picked.append(bias.name)
        return picked, True

    def gradients(self) -> dict[str, Any]:
        names, representative = self.chosen()
        out_index = len(self.net.layers) - 1
        sections: dict[str, list[Block]] = {"output": [], "hidden": [], "bias": []}
        # a layer whose paths would fill pages lists them for its first weight only
        rows_per_layer: dict[tuple[str, int], int] = {}
        for name in names:
            info = self.net.info[name]
            d = self.derivation(name)
            key = (info.kind, info.layer)
            rows_per_layer[key] = rows_per_layer.get(key, 0) + sum(len(p.factors) + 1 for p in d.paths)
        first_of_layer: set[tuple[str, int]] = set()
        for name in names:
            info = self.net.info[name]
            d = self.derivation(name)
            key = (info.kind, info.layer)
            full = rows_per_layer[key] <= MAX_PATH_ROWS_PER_LAYER or key not in first_of_layer
            first_of_layer.add(key)
            block = self.block(d, full)
            if info.kind == "bias":
                sections["bias"].append(block)
            elif info.layer == out_index:
                sections["output"].append(block)
            else:
                sections["hidden"].append(block)
        softmax = isinstance(self.net.output_layer.rule, LayerMap)
        return {
            "representative": self.say("representative", n=len(self.parameters)) if representative else None,
            "output_intro": tex(self.words["output_intro_softmax" if softmax else "output_intro"]),
            "hidden_intro": tex(self.words["hidden_intro"]),
            "bias_intro": tex(self.words["biases_intro"]),
            "output": sections["output"],
            "hidden": sections["hidden"],
            "bias": sections["bias"],
        }

    def block(self, d: Derivation, full: bool = True) -> Block:
        reporter = Reporter(d, self.digits)
        q = d.quantity
        lhs = pr.partial_latex(LOSS_SYMBOL, q, self.names)
        block = Block(title=_m(rf"\partial E / \partial {self.names[q]}"))
        steps = reporter.steps() if full or not d.paths else reporter.delta_steps()
        if d.paths and not full:
            block.intro.append(self.say("compact", weight=_m(self.sym(q)), n=f"{d.path_count:,}"))
            delta_rows = self._delta_rows(steps, lhs)
            if len(d.terms) > 1:
                terms = [_paren(pr.latex_number(t.value, self.digits), t.value) for t in d.terms if t.value is not None]
                delta_rows.append(rows((lhs, " + ".join(terms), pr.latex_number(d.value or 0.0, self.digits))))
            block.groups.append({"caption": tex(self.words["delta_form_intro"]), "rows": delta_rows})
        elif d.paths:
            for i, (path, step) in enumerate(zip(d.paths, steps)):
                route = r" \to ".join(self.names[s] for s in reversed(path.nodes))
                caption = (
                    tex(
                        f"{self.words['path'].capitalize() if self.options.lang == 'en' else self.words['path']} {i + 1}: ${route}$"
                    )
                    if len(d.paths) > 1
                    else tex(self.words["factors"])
                )
                block.groups.append({"caption": caption, "rows": self._path_rows(step, lhs)})
            if len(d.paths) > 1:
                total = steps[-1]
                block.groups.append({"caption": tex(self.words["sum_of_paths"]), "rows": [rows(total.latex_parts)]})
                delta_rows = self._delta_rows(reporter.delta_steps(), lhs)
                if len(d.terms) > 1:
                    terms = [
                        _paren(pr.latex_number(t.value, self.digits), t.value) for t in d.terms if t.value is not None
                    ]
                    value = pr.latex_number(d.value, self.digits) if d.value is not None else "?"
                    delta_rows.append(rows((lhs, " + ".join(terms), value)))
                block.groups.append({"caption": tex(self.words["delta_form_intro"]), "rows": delta_rows})
        else:
            block.intro.append(self.say("folded", weight=_m(self.sym(q)), n=f"{d.path_count:,}"))
            block.groups.append(
                {"caption": tex(self.words["delta_form_intro"]), "rows": self._delta_rows(steps[: len(d.terms)], lhs)}
            )
            if len(steps) > len(d.terms):
                block.groups.append({"caption": tex(self.words["sum_of_terms"]), "rows": [rows(steps[-1].latex_parts)]})
        return block

    def _path_rows(self, step: Step, lhs: str) -> list[Tex]:
        out = [rows(f.latex_parts) for f in step.parts]
        chain = r" \cdot ".join(f.quantity_latex for f in step.parts)
        numbers = r" \cdot ".join(
            _paren(pr.latex_number(f.value, self.digits), f.value) for f in step.parts if f.value is not None
        )
        out.append(
            rows((lhs, chain, numbers, pr.latex_number(step.value, self.digits) if step.value is not None else "?"))
        )
        return out

    def _delta_rows(self, steps: list[Step], lhs: str) -> list[Tex]:
        out = []
        for step in steps:
            if step.kind == "delta":
                out.append(rows(step.latex_parts))
                continue
            delta, local = step.parts
            out.append(rows(delta.latex_parts))
            out.append(rows(local.latex_parts))
            out.append(rows(step.latex_parts))
        return out

    def deltas(self) -> dict[str, Any]:
        net = self.net
        equations = []
        limit = 16
        count = 0
        for layer in reversed(net.layers[1:]):
            for n in layer.neurons:
                if count >= limit:
                    break
                assert n.delta is not None
                definition = net.delta_definitions[n.delta]
                parts = [self.names[n.delta], pr.latex(definition, self.names)]
                value = evaluate(definition, self.point)
                substituted = pr.latex_values(definition, self.point, self.names, self.digits)
                parts.append(substituted)
                if value is not None:
                    parts.append(pr.latex_number(value, self.digits))
                equations.append(rows(tuple(dict.fromkeys(parts))))
                count += 1
        matrices = []
        for layer in reversed(net.layers[1:]):  # from the output back, as δ flows
            if layer.size <= 4 and net.layers[layer.index - 1].size <= 4:
                delta_equation = self._delta_matrix_equation(layer)
                if delta_equation is not None:
                    matrices.append(delta_equation)
                matrices.append(self._matrix_equation(layer))
        softmax = isinstance(net.output_layer.rule, LayerMap)
        return {
            "intro": tex(self.words["deltas_intro"]),
            "labels": {k: tex(self.words[k]) for k in ("bp1", "bp2", "bp3", "bp4")},
            "softmax_note": tex(self.words["bp1_softmax"]) if softmax else None,
            "here": tex(self.words["deltas_here"]),
            "equations": equations,
            "matrix_intro": tex(self.words["matrix_form"]) if matrices else None,
            "matrices": matrices,
        }

    def _delta_matrix_equation(self, layer: Layer) -> Tex | None:
        """BP1 or BP2 written out with this layer's symbols (elementwise activations only)."""
        net = self.net
        if isinstance(layer.rule, LayerMap):
            return None
        l = layer.number

        def column(entries: list[str]) -> str:
            return r"\begin{pmatrix}" + r" \\ ".join(entries) + r"\end{pmatrix}"

        deltas = column([self.names[n.delta] for n in layer.neurons if n.delta is not None])
        fprimes = column(
            [pr.latex(net.dout_dnet(n.out, n.net), self.names) for n in layer.neurons if n.net is not None]
        )
        if layer.index == len(net.layers) - 1:
            grads = column([pr.latex(net.dE_dout[n.out], self.names) for n in layer.neurons])
            equation = rf"\delta^{{{l}}} = \nabla_{{a}} E \odot f'(z^{{{l}}}) = {deltas} = {grads} \odot {fprimes}"
        else:
            nxt = net.layers[layer.index + 1]
            transposed = (
                r"\begin{pmatrix}"
                + r" \\ ".join(" & ".join(self.names[row[i]] for row in nxt.weights) for i in range(layer.size))
                + r"\end{pmatrix}"
            )
            next_deltas = column([self.names[n.delta] for n in nxt.neurons if n.delta is not None])
            equation = (
                rf"\delta^{{{l}}} = \bigl((W^{{{l + 1}}})^{{\top}} \delta^{{{l + 1}}}\bigr) \odot f'(z^{{{l}}}) = "
                rf"{deltas} = \left({transposed} {next_deltas}\right) \odot {fprimes}"
            )
        return fit(equation, width=0, room=r"\linewidth")

    def _matrix_equation(self, layer: Layer) -> Tex:
        net = self.net
        prev = net.layers[layer.index - 1]
        l = layer.number
        W = (
            r"\begin{pmatrix}"
            + r" \\ ".join(" & ".join(self.names[w] for w in row) for row in layer.weights)
            + r"\end{pmatrix}"
        )
        deltas = (
            r"\begin{pmatrix}"
            + r" \\ ".join(self.names[n.delta] for n in layer.neurons if n.delta is not None)
            + r"\end{pmatrix}"
        )
        outs = r"\begin{pmatrix}" + " & ".join(self.names[n.out] for n in prev.neurons) + r"\end{pmatrix}"
        grads = (
            r"\begin{pmatrix}"
            + r" \\ ".join(
                " & ".join(pr.partial_latex(LOSS_SYMBOL, w, self.names) for w in row) for row in layer.weights
            )
            + r"\end{pmatrix}"
        )
        equation = rf"\frac{{\partial E}}{{\partial W^{{{l}}}}} = {grads} = \delta^{{{l}}} (a^{{{l - 1}}})^{{\top}} = {deltas} {outs}, \quad W^{{{l}}} = {W}"
        return fit(equation, width=0, room=r"\linewidth")

    def closed(self) -> dict[str, Any]:
        hidden = [n for n in self.parameters if self.kind_of(n) == "hidden"]
        d = self.derivation((hidden or self.parameters)[0])
        quantity = _m(pr.partial_latex(LOSS_SYMBOL, d.quantity, self.names))
        try:
            expr = d.closed_form()
        except TooLargeError as exc:
            why = self.say("nodes", size=f"{exc.size:,}", limit=f"{exc.limit:,}")
            return {"intro": self.say("closed_too_large", quantity=quantity, why=why), "lines": []}
        lines = break_lines(expr, self.names)
        if len(lines) > 40:
            why = self.say("lines", n=len(lines))
            return {"intro": self.say("closed_too_large", quantity=quantity, why=why), "lines": []}
        lhs = pr.partial_latex(LOSS_SYMBOL, d.quantity, self.names)
        body = [tex(f"{lhs} = {{}}& {fit(lines[0])}")] + [tex(rf"& \quad {fit(line)}") for line in lines[1:]]
        return {"intro": self.say("closed_intro", quantity=quantity), "lines": body}

    def update(self) -> dict[str, Any]:
        spec = self.model.spec
        eta = spec.training.learning_rate
        engine = self.model.compiled()
        before = engine.current_loss()
        old = engine.parameter_values()
        engine.train(1)
        new = engine.parameter_values()
        after = engine.current_loss()
        table = []
        for name in self.parameters[:MAX_TABLE_ROWS]:
            table.append(
                {
                    "name": _m(self.names[self.net.symbols[name]]),
                    "old": _m(self.num(old[name])),
                    "gradient": _m(self.num(self.gradient_values[name])),
                    "new": _m(self.num(new[name])),
                }
            )
        more = len(self.parameters) - len(table)
        return {
            "intro": self.say("update_intro", eta=tex(pr.latex_number(eta, self.digits))),
            "fixed": tex(self.words["biases_fixed"])
            if not spec.training.update_biases
            and any(b for b in spec.parameter_names if self.net.info[b].kind == "bias")
            else None,
            "table": table,
            "more": self.say("table_more", n=more) if more > 0 else None,
            "after": self.say("loss_after", after=_m(self.num(after)), before=_m(self.num(before))),
        }

    def training(self, steps: int) -> dict[str, Any] | None:
        if steps <= 0:
            return None
        engine = self.model.compiled()
        history = engine.train(steps)
        stride = max(1, -(-len(history) // MAX_PLOT_POINTS))
        picked = list(range(0, len(history), stride))
        if picked[-1] != len(history) - 1:
            picked.append(len(history) - 1)
        coordinates = " ".join(f"({i},{history[i]:.6e})" for i in picked)
        positive = all(v > 0 for v in history)
        log = positive and max(history) / max(min(history), 1e-300) > 100
        return {
            "intro": self.say("training_intro", steps=steps),
            "result": self.say("training_result", steps=steps, loss=_m(self.num(history[-1]))),
            "coordinates": tex(coordinates),
            "log": log,
            "xmax": steps,
            "step_axis": tex(self.words["step_axis"]),
            "loss_axis": tex(self.words["loss_axis"]),
        }

    def exercises(self) -> dict[str, Any]:
        net = self.net
        items = []
        # a forward-pass quantity, an output weight, a hidden δ, an update
        last_out = net.output_layer.neurons[-1].out
        items.append(
            (
                self.say("ex_forward", quantity=_m(self.names[last_out])),
                _m(f"{self.names[last_out]} = {self.num(self.point[last_out])}"),
            )
        )
        out_weights = [n for n in self.parameters if self.kind_of(n) == "output"]
        if out_weights:
            d = self.derivation(out_weights[-1])
            q = pr.partial_latex(LOSS_SYMBOL, d.quantity, self.names)
            items.append((self.say("ex_gradient", quantity=_m(q)), _m(f"{q} = {self.num(d.value or 0.0)}")))
        if len(net.layers) > 2:
            n = net.layers[-2].neurons[-1]
            assert n.delta is not None
            items.append(
                (
                    self.say("ex_delta", quantity=_m(self.names[n.delta])),
                    _m(f"{self.names[n.delta]} = {self.num(self.point[n.delta])}"),
                )
            )
        first = self.derivation(self.parameters[0])
        engine = self.model.compiled()
        engine.train(1)
        new = engine.parameter_values()[first.quantity.name]
        items.append(
            (
                self.say("ex_update", quantity=_m(self.sym(first.quantity))),
                _m(f"{self.sym(first.quantity)} = {self.num(new)}"),
            )
        )
        return {"questions": [q for q, _ in items], "answers": [a for _, a in items]}


def _paren(text: str, value: float | None) -> str:
    return rf"\left({text}\right)" if value is not None and value < 0 else text


def tex_source(model: Model, options: Options) -> str:
    """The lecture's LaTeX source."""
    context = LectureBuilder(model, options).context()
    return render("lecture.tex.j2", **context)
