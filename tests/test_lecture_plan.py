"""The lecture plan, read without TeX: what is said, in which order, with which numbers (from the oracle)."""

import re
from pathlib import Path

import pytest
import sympy as sp
from oracles import backprop, mazur, train

from derive.app.api import Model
from derive.errors import SpecError
from derive.lecture import Options, build_plan, tex_source
from derive.lecture.latex import languages, words
from derive.lecture.latex import tex_source as render_tex
from derive.lecture.plan import Equations, Exercises, Math, Paragraph, Plot, Say, Table
from derive.present.equations import Contribution, Elided, EquationChain, Formula, Partial, Substituted, Value
from derive.spec.reading import builtin_example_text, parse_spec


@pytest.fixture(scope="module")
def plan():
    return build_plan(Model.load("mazur"), Options(exercises=True))


def blocks_in_order(plan):
    for section in plan.walk():
        for block in section.blocks:
            yield section, block
            if isinstance(block, Exercises):
                for item in block.items:
                    for inner in (*item.question, *item.answer):
                        yield section, inner


def sentences(plan):
    for _, block in blocks_in_order(plan):
        if isinstance(block, Paragraph):
            yield from block.sentences


def test_the_lecture_runs_backwards_from_the_output(plan):
    keys = [s.key for s in plan.sections]
    assert keys == [
        "network",
        "notation",
        "forward",
        "loss",
        "layer3",
        "layer2",
        "bp",
        "fast",
        "closed",
        "update",
        "training",
        "exercises",
    ]


def test_one_weight_per_layer_in_full_the_rest_in_a_table(plan):
    full = [s.key for s in plan.walk() if s.key.startswith("full_")]
    assert full == ["full_w5", "full_w1"]
    for key, names in (("others3", {"w6", "w7", "w8"}), ("others2", {"w2", "w3", "w4"})):
        tables = [b for b in plan.section(key).blocks if isinstance(b, Table)]
        listed = {row[0].expr.name for t in tables for row in t.rows}
        assert listed == names


def test_every_delta_is_defined_before_it_is_used(plan):
    deltas = {n.delta for layer in plan.network.layers[1:] for n in layer.neurons}
    defined = set()
    for _, block in blocks_in_order(plan):
        chains = []
        if isinstance(block, Equations):
            chains = [line.chain for line in block.lines]
        elif isinstance(block, Table):
            chains = [
                c.expr for row in block.rows for c in row if isinstance(c, Math) and isinstance(c.expr, EquationChain)
            ]
        for chain in chains:
            used = set()
            for side in chain.sides:
                if isinstance(side, Formula | Substituted) and isinstance(side.expr, sp.Basic):
                    used |= side.expr.free_symbols & deltas
            if chain.lhs in deltas and not (len(chain.sides) == 1 and isinstance(chain.sides[0], Value)):
                assert used <= defined, (chain.lhs, used - defined)
                defined.add(chain.lhs)
            else:
                assert used | ({chain.lhs} & deltas) <= defined, chain
    assert defined == deltas


def test_a_path_contribution_is_not_labelled_as_the_whole_gradient(plan):
    values = {}
    contributions = []
    for _, block in blocks_in_order(plan):
        if not isinstance(block, Equations):
            continue
        for line in block.lines:
            chain = line.chain
            if chain.value is None:
                continue
            if isinstance(chain.lhs, Contribution):
                contributions.append(chain)
            key = chain.lhs
            assert values.setdefault(key, chain.value) == pytest.approx(chain.value, rel=1e-12), key
    assert len(contributions) == 2
    assert {c.lhs.via for c in contributions} == {(plan.network.symbols["out_o1"],), (plan.network.symbols["out_o2"],)}
    _, grad, _ = backprop(mazur())
    assert sum(c.value for c in contributions) == pytest.approx(grad[0], rel=1e-12)  # ∂E/∂w1


def test_each_factor_is_substituted_once(plan):
    seen = set()
    for _, block in blocks_in_order(plan):
        if isinstance(block, Equations):
            for line in block.lines:
                chain = line.chain
                if isinstance(chain.lhs, Partial) and any(isinstance(s, Substituted) for s in chain.sides):
                    if chain.lhs.wrt.name.startswith(("w", "b")):
                        continue  # a gradient, not a factor
                    assert chain.lhs not in seen, chain.lhs
                    seen.add(chain.lhs)


def test_the_numbers_are_the_oracles(plan):
    e, grad, _ = backprop(mazur())
    stepped, _ = train(mazur(), 1)
    net = plan.network
    found = {}
    for section, block in blocks_in_order(plan):
        if isinstance(block, Equations) and section.key != "exercises":
            for line in block.lines:
                if line.chain.value is not None:
                    found[line.chain.lhs] = line.chain.value
    assert found[sp.Symbol("E", real=True)] == pytest.approx(e, rel=1e-12)
    assert found[Partial(sp.Symbol("E", real=True), net.symbols["w5"])] == pytest.approx(grad[5], rel=1e-12)
    update = next(
        b for _, b in blocks_in_order(plan) if isinstance(b, Table) and len(b.header) == 4 and b.header[1].key == "old"
    )
    new = {row[0].expr.name: row[3].value for row in update.rows}
    names = ["w1", "w2", "w3", "w4", "b1", "w5", "w6", "w7", "w8", "b2"]
    assert [new[n] for n in names] == pytest.approx(list(stepped.flat()), rel=1e-12)


def test_the_published_misprints_are_pointed_out(plan):
    wrong = ("differs", "copy_slip", "written_slip", "updated_weights", "one_fewer")
    differs = [dict(s.fields) for s in sentences(plan) if s.key.startswith("published") and s.key.endswith(wrong)]
    values = {f["printed"].text: f["value"].value for f in differs}
    # exactly the sources' wrong numbers (as `derive check` judges them: rounded or truncated is right)
    assert set(values) == {"0.75136079", "0.291027924", "0.0000351085", "0.015912196", "0.984065734"}
    agree = [dict(s.fields)["printed"].text for s in sentences(plan) if s.key.endswith(("agrees", "agreess"))]
    assert {"0.35891648", "0.298371109", "0.149780716", "0.772928465", "0.75136507"} <= set(agree)
    _, _, inner = backprop(mazur())
    assert values["0.75136079"] == pytest.approx(inner["a"][2][0], rel=1e-12)
    # the copy's typo is the copy's: Mazur's own article prints the right value
    (slip,) = [dict(s.fields) for s in sentences(plan) if s.key == "published_written_slip"]
    assert slip["source"].text.startswith("the Chinese copy")
    _, history = train(mazur(), 10_000)  # the oracle's own loop
    # the article's E "after 10,000 updates" is the loss after 9,999: the lecture says so, with the right number
    (fewer,) = [dict(s.fields) for s in sentences(plan) if s.key == "published_after_one_fewer"]
    assert fewer["printed"].text == "0.0000351085"
    assert fewer["fewer"].n == 9_999 and fewer["steps"].n == 10_000
    assert fewer["value"].value == pytest.approx(history[-1], rel=1e-9)
    assert _rounds_or_truncates_to("0.0000351085", history[9_999])
    assert not _rounds_or_truncates_to("0.0000351085", history[10_000])
    assert values["0.291027924"] == pytest.approx(train(mazur(), 1)[1][-1], rel=1e-12)
    after = [s.key for s in sentences(plan) if s.key.startswith("published_after")]
    # E, two outputs, then that the article's E and outputs come from different runs
    assert len(after) == 4 and after[-1] == "published_after_two_runs"
    assert all(dict(s.fields)["steps"].n == 10_000 for s in sentences(plan) if s.key.startswith("published_after"))


def _rounds_or_truncates_to(printed: str, value: float) -> bool:
    """The printed decimal is ``value`` rounded or truncated to its digits (an oracle kept apart from derive.check.claims)."""
    from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

    quantum = Decimal(printed)
    exact = Decimal(value)
    return any(exact.quantize(quantum, rounding=r) == quantum for r in (ROUND_HALF_EVEN, ROUND_DOWN))


def test_an_off_by_one_is_named_only_when_the_number_matches_one_update_fewer():
    text = builtin_example_text("mazur").replace('"0.0000351085"', '"0.0000352"')
    plan = build_plan(Model(parse_spec(text, "wrong.toml")), Options())
    keys = {s.key for s in sentences(plan)}
    assert "published_after_one_fewer" not in keys
    printed = [dict(s.fields)["printed"].text for s in sentences(plan) if s.key == "published_after_differs"]
    assert "0.0000352" in printed
    _, history = train(mazur(), 10_000)
    assert not _rounds_or_truncates_to("0.0000352", history[9_999])


def test_no_tool_commands_and_no_bp_names_before_their_section(plan):
    """A student reads the lecture: no `derive …` commands in it, no BP1–BP4 before the section that lists them."""
    for lang in languages():
        text = words(lang)
        for key in {s.key for s in sentences(plan)} | {"largest_update", "published_step_differs"}:
            assert "derive" not in text[key], (lang, key)
    for section in plan.walk():
        if section.key == "bp":
            break
        for block in section.blocks:
            captions = [block.caption] if isinstance(block, Equations | Table) and block.caption else []
            said = list(block.sentences) if isinstance(block, Paragraph) else []
            for s in said + captions:
                for lang in languages():
                    assert not re.search(r"BP[1-4]", words(lang)[s.key]), (section.key, s.key)


def test_the_finite_difference_note_names_both_losses_and_the_weight(plan):
    (fd,) = [s for s in sentences(plan) if s.key == "fd_check"]
    assert dict(fd.fields)["weight"].expr.name == "w1"
    for lang in languages():
        assert "E_+ = {{plus}}" in words(lang)["fd_check"] and "E_- = {{minus}}" in words(lang)["fd_check"]
        assert "\\partial {{weight}}" in words(lang)["fd_check"]


def test_the_chinese_title_page_has_no_english_left():
    plan = build_plan(Model.load("mazur"), Options(lang="zh"))
    assert plan.source.startswith("mazur") and not re.search(r"[A-Za-z]", plan.source[len("mazur") :])


def test_why_notes_are_there(plan):
    keys = {s.key for s in sentences(plan)}
    assert {"why_in_out", "why_saturation", "why_old_weights", "fd_check"} <= keys


def test_softmax_with_cross_entropy_explains_out_minus_target():
    keys = {s.key for s in sentences(build_plan(Model.load("softmax"), Options()))}
    assert "why_softmax_ce" in keys


def test_every_sentence_exists_in_every_language(plan):
    used = set()

    def collect(say):
        used.add(say.key)
        for _, f in say.fields:
            if isinstance(f, Say):
                collect(f)

    for s in sentences(plan):
        collect(s)
    for lang in languages():
        assert used <= words(lang).keys(), (lang, used - words(lang).keys())
    assert words("en").keys() == words("zh").keys()


def test_chinese_words_use_full_width_punctuation():
    for key, text in words("zh").items():
        prose = re.sub(r"\$[^$]*\$|\{\{\w+\}\}", "", text)
        assert not re.search(r"[,;:?!]|[(](?!$)", prose), (key, text)


def test_placeholders_match_between_languages():
    en, zh = words("en"), words("zh")
    for key in en:
        assert set(re.findall(r"\{\{(\w+)\}\}", en[key])) == set(re.findall(r"\{\{(\w+)\}\}", zh[key])), key


def test_a_chinese_title_from_the_spec():
    plan = build_plan(Model.load("mazur"), Options(lang="zh"))
    assert plan.title == "一步一步的反向传播示例"
    assert build_plan(Model.load("mazur"), Options()).title == "A step-by-step backpropagation example"


def test_a_big_network_summarises_instead_of_listing():
    text = (
        "name = 'big'\n[loss]\nkind = 'mse'\n[[layers]]\nsize = 30\nvalues = [" + ", ".join(["0.1"] * 30) + "]\n"
        "[[layers]]\nsize = 20\nactivation = 'sigmoid'\nbias = 'per_neuron'\n"
        "[[layers]]\nsize = 3\nactivation = 'sigmoid'\nbias = 'per_neuron'\ntargets = [0, 1, 0]\n[training]\nsteps = 5\n"
    )
    spec = parse_spec(text, "big.toml")
    plan = build_plan(Model(spec), Options())
    for _, block in blocks_in_order(plan):
        if isinstance(block, Table):
            assert len(block.rows) <= 24
    keys = [s.key for s in sentences(plan)]
    notes = [b.note.key for _, b in blocks_in_order(plan) if isinstance(b, Table) and b.note is not None]
    assert "largest_note" in notes and "update_summary_intro" in keys


def test_a_hidden_delta_over_a_wide_layer_is_shown_by_its_ends():
    # 2-3-12-1: each δ of the 3-neuron layer sums over the 12 neurons above it
    text = (
        "name = 'wide'\n[loss]\nkind = 'half_sse'\n[[layers]]\nsize = 2\nvalues = [0.3, 0.7]\n"
        "[[layers]]\nsize = 3\nactivation = 'tanh'\n[[layers]]\nsize = 12\nactivation = 'tanh'\n"
        "[[layers]]\nsize = 1\nactivation = 'sigmoid'\ntargets = [0.2]\n[training]\nsteps = 3\n"
    )
    plan = build_plan(Model(parse_spec(text, "wide.toml")), Options())
    chains = [line.chain for _, b in blocks_in_order(plan) if isinstance(b, Equations) for line in b.lines]
    layer2 = [c for c in chains if isinstance(c.lhs, sp.Symbol) and c.lhs.name.startswith("δ2_")]
    assert layer2, "the δs of layer 2 are derived"
    for chain in layer2:
        (elided, value) = chain.sides
        assert isinstance(elided, Elided) and elided.factor is not None
        assert len(elided.head) + len(elided.tail) == 3  # of the 12 terms, the first two and the last
        assert isinstance(value, Value)
    latex = tex_source(Model(parse_spec(text, "wide.toml")), Options())
    line = next(row for row in latex.splitlines() if row.strip().startswith(r"\delta^{2}_{1} &="))
    # BP2's order, the sum first: the 12 neurons above by the first two terms and the last, then (1 − a²) bracketed
    assert r"&= (w^{3}_{1,1}" in line  # plain brackets: nothing tall inside
    assert r"+ \dots + w^{3}_{12,1}\,\delta^{3}_{12}) \cdot (1 - (a^{2}_{1})^{2})" in line


def test_value_sides_are_the_last(plan):
    for _, block in blocks_in_order(plan):
        if isinstance(block, Equations):
            for line in block.lines:
                values = [i for i, s in enumerate(line.chain.sides) if isinstance(s, Value)]
                assert values in ([], [len(line.chain.sides) - 1])


# -- the spec fields ---------------------------------------------------------------------


def test_published_keys_are_checked_with_a_suggestion():
    text = builtin_example_text("mazur").replace("out_o1 = 0.75136507", "out_o3 = 0.75136507")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "m.toml")
    assert "published.out_o3" in str(info.value) and "out_o1" in str(info.value)
    # in another source's table, the message names that table
    text = builtin_example_text("mazur").replace("out_o1 = 0.75136079", "out_o3 = 0.75136079")
    with pytest.raises(SpecError, match=r"published\.chinese_copy\.out_o3: unknown key"):
        parse_spec(text, "m.toml")


def test_each_source_of_published_numbers_has_its_own_numbers():
    spec = parse_spec(builtin_example_text("mazur"), "m.toml")
    assert spec.published is not None
    assert ("out_o1", "0.75136507") in spec.published.values  # Mazur's own article prints the right value
    (copy,) = spec.published.others
    assert ("out_o1", "0.75136079") in copy.values and copy.source.startswith("the Chinese copy")
    nameless = builtin_example_text("mazur").replace('source = "the Chinese copy"\n', "")
    with pytest.raises(SpecError, match=r"published\.chinese_copy\.source: missing"):
        parse_spec(nameless, "m.toml")
    nested = builtin_example_text("mazur") + "[published.chinese_copy.deeper]\nsource = 'x'\n"
    with pytest.raises(SpecError, match=r"published\.chinese_copy\.deeper"):
        parse_spec(nested, "m.toml")


def test_published_values_must_be_numbers():
    text = builtin_example_text("mazur").replace("out_o1 = 0.75136507", 'out_o1 = "0.75x"')
    with pytest.raises(SpecError, match=r"published\.out_o1"):
        parse_spec(text, "m.toml")
    kept = parse_spec(builtin_example_text("mazur").replace("out_o1 = 0.75136507", 'out_o1 = "0.7510"'), "m.toml")
    assert ("out_o1", "0.7510") in kept.published.values  # a string keeps the digits as printed


def test_published_names_are_derive_checks_names():
    text = builtin_example_text("mazur").replace('"E\'" = 0.291027924', "loss_after_step = 0.291027924")
    with pytest.raises(SpecError, match=r"published\.loss_after_step") as info:
        parse_spec(text, "m.toml")
    assert 'write "E\'"' in str(info.value)
    ok = builtin_example_text("mazur").replace('"w1\'" = 0.149780716', '"w8\'" = 0.5')
    assert ("w8'", "0.5") in parse_spec(ok, "m.toml").published.values


def test_title_zh_must_be_text():
    text = builtin_example_text("mazur").replace('title_zh = "一步一步的反向传播示例"', "title_zh = 3")
    with pytest.raises(SpecError, match="title_zh"):
        parse_spec(text, "m.toml")


def test_a_loss_that_falls_to_rounding_level_stops_the_plot_and_says_so():
    # a linear neuron learns its target exactly: the loss shrinks by a constant factor each step
    text = (
        "name = 'exact'\n[loss]\nkind = 'half_sse'\n[[layers]]\nnames = ['x']\nvalues = [1.0]\n"
        "[[layers]]\nnames = ['y']\nactivation = 'linear'\nweights = [[0.2]]\ntargets = [0.7]\n"
        "[training]\nlearning_rate = 0.5\nsteps = 2000\n"
    )
    plan = build_plan(Model(parse_spec(text, "exact.toml")), Options())
    plot = next(b for _, b in blocks_in_order(plan) if isinstance(b, Plot))
    first = plot.points[0][1]
    assert plot.points[-1][1] <= 1e-14 * first  # it reached rounding level …
    assert all(v > 1e-14 * first for _, v in plot.points[:-1])  # … and stopped there
    assert plot.xmax < 2000
    assert "rounding_stop" in {s.key for s in sentences(plan)}


def test_a_loss_that_stays_above_rounding_level_is_plotted_to_the_end(plan):
    plot = next(b for _, b in blocks_in_order(plan) if isinstance(b, Plot))
    assert plot.xmax == 10_000
    assert "rounding_stop" not in {s.key for s in sentences(plan)}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("example", ["mazur", "chain_221", "nielsen_tanh", "softmax", "swish"])
def test_every_example_renders_to_latex_in_every_language(example, lang):
    source = tex_source(Model.load(example), Options(lang=lang, exercises=True, steps=50))
    assert source.startswith("\\documentclass") or "\\documentclass" in source[:200]
    assert "{{" not in source  # every placeholder was filled


def test_hostile_text_in_the_spec_is_escaped_in_the_latex():
    hostile = r"\\input{/etc/passwd} $x$ \\write18{ls} #&_^~"
    text = (
        builtin_example_text("mazur")
        .replace('source = "Mazur\'s article"', f'source = "{hostile}"')
        .replace('title_zh = "一步一步的反向传播示例"', f'title_zh = "{hostile}"\ndescription_zh = "{hostile}"')
    )
    model = Model(parse_spec(text, "h.toml"))
    for lang in ("en", "zh"):
        source = tex_source(model, Options(lang=lang))
        assert "\\input{/etc/passwd}" not in source and "\\write18{ls}" not in source
        assert "\\textbackslash{}input\\{/etc/passwd\\}" in source


def test_the_training_plot_is_thinned_in_the_latex():
    source = tex_source(Model.load("mazur"), Options(steps=20000))
    coordinates = re.search(r"coordinates \{([^}]*)\}", source).group(1)
    assert 100 <= coordinates.count("(") <= 500
    assert "xmax=20000" in source


def test_digits_option_reaches_every_number_but_the_misprint_note():
    source = tex_source(Model.load("mazur"), Options(digits=5))
    assert "0.75137" in source
    # 8 digits only where the published misprint needs them to be seen
    # (once as Mazur's article prints it, twice in the note on the copy's typo: the value it misses, from which
    # its own next number is computed)
    assert source.count("0.75136507") == 3 and "not $0.75136507$" in source


def _intro(plan, key):
    (paragraph,) = [b for b in plan.section(key).blocks if isinstance(b, Paragraph)]
    return paragraph.sentences[0]


def test_each_layer_intro_counts_the_paths_it_describes(plan):
    # Mazur: a hidden weight reaches E once through each of the 2 sigmoid outputs
    assert _intro(plan, "layer2").key == "hidden_intro"
    softmax = build_plan(Model.load("softmax"), Options())
    intro = _intro(softmax, "layer2")
    assert intro.key == "hidden_intro_softmax"
    fields = dict(intro.fields)
    n = len(softmax.network.output_layer.neurons)
    # each hidden out feeds n softmax nets, each of which feeds all n outputs: n·n paths (the softmax couples them)
    assert fields["n"].n == n and fields["paths"].n == n * n == 9
    (folded,) = [s for s in sentences(softmax) if s.key == "folded"]
    assert dict(folded.fields)["n"].n == n * n
    deep = build_plan(Model.load(str(Path(__file__).parent / "fixtures" / "tanh_2321.toml")), Options())
    sizes = [len(layer.neurons) for layer in deep.network.layers]
    assert sizes == [2, 3, 2, 1]
    assert _intro(deep, "layer3").key == "hidden_intro_one"  # one output neuron: one path
    assert _intro(deep, "layer2").key == "hidden_intro_deep"  # branches at layer 3, not one path per neuron above


def test_a_delta_caption_refers_only_to_what_stands_above_it():
    for name in ("mazur", "softmax"):
        plan = build_plan(Model.load(name), Options())
        for section in plan.walk():
            if not section.key.startswith("full_"):
                continue
            said = {s.key for b in section.blocks if isinstance(b, Paragraph) for s in b.sentences}
            captions = {b.caption.key for b in section.blocks if isinstance(b, Equations) and b.caption}
            delta = captions & {k for k in words("en") if k.startswith("delta_form")}
            assert len(delta) == 1, section.key
            (caption,) = delta
            if said & {"folded", "folded_output"}:  # no factors listed: nothing to be "the same" as
                assert caption.endswith("_folded"), section.key
            layer = plan.network.layers[plan.network.info[section.key[len("full_") :]].layer]
            if layer is plan.network.output_layer and len(layer.neurons) > 1 and name == "softmax":
                assert caption.startswith("delta_form_output_"), caption  # δ is a sum over the softmax's outputs
    assert "sum over the outputs of the softmax" in words("en")["delta_form_output_softmax"]


BCE_SOFTMAX = """
name = "bce_softmax"
[loss]
kind = "bce"
[[layers]]
names = ["x1", "x2"]
values = [0.5, -0.2]
[[layers]]
names = ["h1", "h2", "h3"]
activation = "tanh"
weights = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]]
bias = [0.1, -0.1, 0.05]
[[layers]]
names = ["o1", "o2"]
activation = "softmax"
weights = [[0.2, -0.3, 0.1], [-0.1, 0.4, 0.2]]
bias = [0.0, 0.1]
targets = [1.0, 0.0]
[training]
learning_rate = 0.5
steps = 5
"""


def test_bce_over_softmax_drops_every_zero_coefficient_and_says_so():
    import numpy as np

    plan = build_plan(Model(parse_spec(BCE_SOFTMAX, "bce_softmax.toml")), Options())
    section = plan.section("loss")
    (equations,) = [b for b in section.blocks if isinstance(b, Equations)]
    sides = equations.lines[0].chain.sides
    (numbers,) = [s for s in sides if isinstance(s, Substituted)]
    targets = {n.target for n in plan.network.output_layer.neurons}
    # no target left in the numbers: each became 0 or 1, and a term times 0 is gone (no −(1 − 1)·log(…))
    assert not numbers.expr.free_symbols & targets
    assert len(sp.Add.make_args(numbers.expr)) == 2  # −log(1 − out_o2) − log(out_o1)
    # the numbers still add up to the loss, computed here independently with NumPy
    x = np.array([0.5, -0.2])
    h = np.tanh(np.array([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]]) @ x + np.array([0.1, -0.1, 0.05]))
    z = np.array([[0.2, -0.3, 0.1], [-0.1, 0.4, 0.2]]) @ h + np.array([0.0, 0.1])
    o = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    t = np.array([1.0, 0.0])
    expected = float(-(t * np.log(o) + (1 - t) * np.log(1 - o)).sum())
    outs = {n.out: float(v) for n, v in zip(plan.network.output_layer.neurons, o)}
    assert float(numbers.expr.xreplace(outs)) == pytest.approx(expected, rel=1e-12)
    assert sides[-1].value == pytest.approx(expected, rel=1e-9)
    keys = [s.key for b in section.blocks if isinstance(b, Paragraph) for s in b.sentences]
    intro = section.blocks[0].sentences[0]
    assert intro.key == "loss_intro" and dict(intro.fields)["name"].key == "loss_bce"
    assert "zero_coefficients" in keys and "zero_targets" not in keys
    assert "bce_softmax" in keys
    assert "binary cross-entropy" in words("en")["loss_bce"]


@pytest.mark.parametrize("kind", ["half_sse", "sse", "mse", "bce", "cross_entropy"])
def test_the_loss_is_named_where_it_is_introduced(kind):
    text = BCE_SOFTMAX.replace('kind = "bce"', f'kind = "{kind}"')
    if kind != "cross_entropy":  # cross-entropy needs its softmax; the others get a sigmoid output
        text = text.replace('"softmax"', '"sigmoid"')
    text = text.replace("targets = [1.0, 0.0]", "targets = [0.3, 0.7]")
    plan = build_plan(Model(parse_spec(text, "loss.toml")), Options())
    intro = plan.section("loss").blocks[0].sentences[0]
    assert intro.key == "loss_intro" and dict(intro.fields)["name"].key == f"loss_{kind}"
    keys = {s.key for s in sentences(plan)}
    assert not keys & {"zero_targets", "zero_coefficients", "bce_softmax"}  # no target is 0 or 1: nothing vanishes
    for lang in languages():
        assert words(lang)[f"loss_{kind}"]


def test_a_zero_target_of_a_squared_error_keeps_its_term(plan):
    text = builtin_example_text("mazur").replace("0.01", "0.0", 1)
    changed = build_plan(Model(parse_spec(text, "zero.toml")), Options())
    assert changed.network.output_layer.neurons[0].target is not None
    keys = {s.key for s in sentences(changed)}
    assert "zero_targets" not in keys  # (out − 0)² is not 0: no term vanished, so no note says one did


def _closed(plan):
    blocks = plan.section("closed").blocks
    equations = [b for b in blocks if isinstance(b, Equations)]
    closed, where = equations[0].lines[0].chain, equations[1]
    return blocks[0], closed, [line.chain for line in where.lines]


def test_every_net_of_the_closed_form_is_defined_in_its_where_list(plan):
    intro, closed, where = _closed(plan)
    nets = {n.net for layer in plan.network.layers[1:] for n in layer.neurons}
    defined = [c.lhs for c in where]
    used = set()
    for chain in (closed, *where):
        for side in chain.sides:
            if isinstance(side, Formula):
                used |= side.expr.free_symbols & nets
    assert used <= set(defined)
    assert {s.name for s in defined} == {"net_h1", "net_h2", "net_o1", "net_o2"}  # net_h2 is in net_o1's definition
    # the activation is named as the forward pass names it (f, sigmoid), never a σ met nowhere else
    functions = {
        type(a).__name__
        for c in (closed, *where)
        for s in c.sides
        if isinstance(s, Formula)
        for a in s.expr.atoms(sp.Function)
    }
    assert functions == {"f"}
    (named,) = [s for s in intro.sentences if s.key.startswith("closed_f_")]
    assert dict(named.fields)["name"].text == "sigmoid"


def test_two_activations_get_two_names_in_the_closed_form():
    text = BCE_SOFTMAX.replace('kind = "bce"', 'kind = "half_sse"').replace('"tanh"', '"elu"')
    text = text.replace('"softmax"', '"leaky_relu"').replace("targets = [1.0, 0.0]", "targets = [0.3, 0.6]")
    plan = build_plan(Model(parse_spec(text, "two.toml")), Options())
    intro, closed, where = _closed(plan)
    functions = {
        type(a).__name__
        for c in (closed, *where)
        for s in c.sides
        if isinstance(s, Formula)
        for a in s.expr.atoms(sp.Function)
        if type(a).__name__.startswith("f")
    }
    assert functions == {"f_2", "f_3"}
    named = {dict(s.fields)["name"].text: dict(s.fields)["layer"].n for s in intro.sentences if s.key == "closed_f_one"}
    assert named == {"elu": 2, "leaky_relu": 3}


def test_the_notation_table_of_nielsen_gets_room_between_rows(plan):
    tex = render_tex(plan)
    start = tex.index("Nielsen")
    table = tex[tex.rfind(r"\begin{center}", 0, start) : tex.index(r"\end{tabular}", start)]
    assert r"\renewcommand{\arraystretch}" in table  # a^l_j no longer touches z^l_j's superscript
    assert r"\if@nobreak" in tex  # no page break between a heading and its first block


def test_a_wide_softmax_output_folds_its_paths_into_delta():
    outputs = 6
    text = BCE_SOFTMAX.replace('kind = "bce"', 'kind = "cross_entropy"')
    text = text.replace('names = ["o1", "o2"]', f"names = {[f'o{k}' for k in range(1, outputs + 1)]}".replace("'", '"'))
    rows = ", ".join(f"[{0.1 * k}, -0.2, 0.1]" for k in range(outputs))
    text = text.replace("weights = [[0.2, -0.3, 0.1], [-0.1, 0.4, 0.2]]", f"weights = [{rows}]")
    text = text.replace("bias = [0.0, 0.1]", f"bias = {[0.0] * outputs}")
    text = text.replace("targets = [1.0, 0.0]", f"targets = {[1.0] + [0.0] * (outputs - 1)}")
    plan = build_plan(Model(parse_spec(text, "wide.toml")), Options())
    keys = {s.key for s in sentences(plan)}
    assert "folded_output" in keys and "folded" in keys
    captions = {b.caption.key for _, b in blocks_in_order(plan) if isinstance(b, Equations) and b.caption}
    assert {"delta_form_output_folded", "delta_form_hidden_folded"} <= captions
    (intro,) = [s for s in sentences(plan) if s.key == "hidden_intro_softmax"]
    assert dict(intro.fields)["paths"].n == outputs * outputs


@pytest.mark.parametrize(("example", "key"), [("mazur", "why_dE_dout_half"), ("softmax", "why_dE_dout")])
def test_the_loss_factor_is_derived_once_from_its_own_term(example, key):
    """∂E/∂out = ∂/∂out of that output's term of E, which equals the factor used (sympy.diff, built here)."""
    plan = build_plan(Model.load(example), Options())
    found = []
    items = list(blocks_in_order(plan))
    for _, block in items:
        if isinstance(block, Paragraph) and any(isinstance(s, Say) and s.key == key for s in block.sentences):
            found.append(block)  # its derivation is set inside the note's box
    assert len(found) == 1, found
    (line,) = found[0].math
    derivative, factor = (side.expr for side in line.chain.sides)
    out = line.chain.lhs.wrt
    assert isinstance(derivative, sp.Derivative) and derivative.variables == (out,)
    assert sp.simplify(sp.diff(derivative.expr, out) - factor) == 0
    if example == "mazur":
        target = next(s for s in derivative.expr.free_symbols if s != out)
        assert sp.simplify(derivative.expr - (target - out) ** 2 / 2) == 0  # half the squared error, built here
