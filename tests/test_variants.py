"""Exercise variants: reproducible, reasonable (checked with the oracle's forward pass), valid specs."""

import tomllib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import Net, forward, mazur

from derive.errors import DeriveError
from derive.lecture.maps import MAX_MAP_ENTRIES
from derive.sheets.variants import (
    MAX_WIDTH,
    NET_MAX,
    NET_MIN,
    TARGET_GAP,
    draw_variants,
    dump_toml,
    labels,
)
from derive.spec.reading import builtin_example_text, builtin_examples, parse_spec


def oracle_net(variant_toml, base=None):
    """The variant as the oracle's Net, read from its TOML here (not through derive)."""
    data = tomllib.loads(variant_toml)
    net = base or mazur()
    layers = data["layers"]
    weights = [np.array(layer["weights"], dtype=float) for layer in layers[1:]]
    biases = [np.array(layer["bias"], dtype=float) for layer in layers[1:]]
    return Net(
        **{
            **net.__dict__,
            "x": np.array(layers[0]["values"], dtype=float),
            "t": np.array(layers[-1]["targets"], dtype=float),
            "weights": weights,
            "biases": biases,
        }
    )


def test_the_same_seed_gives_the_same_class_and_another_seed_another():
    first = [v.toml for v in draw_variants("mazur", 6, seed=7)]
    again = [v.toml for v in draw_variants("mazur", 6, seed=7)]
    other = [v.toml for v in draw_variants("mazur", 6, seed=8)]
    assert first == again
    assert first != other
    assert len(set(first)) == 6  # every student has their own numbers


def test_a_students_variant_does_not_depend_on_the_size_of_the_class():
    small = draw_variants("mazur", 3, seed=11)
    large = draw_variants("mazur", 30, seed=11)
    assert [v.toml for v in small] == [v.toml for v in large[:3]]


def test_labels_are_zero_padded_to_the_class_size():
    assert labels(3) == ["01", "02", "03"]
    assert labels(120)[0] == "001"


@pytest.mark.parametrize("weights", [False, True])
def test_every_mazur_variant_is_reasonable_by_the_oracles_forward_pass(weights):
    for v in draw_variants("mazur", 30, seed=3, weights=weights):
        net = oracle_net(v.toml)
        zs, acts = forward(net)
        for z in zs[1:]:
            assert np.all(np.abs(z) <= NET_MAX) and np.all(np.abs(z) >= NET_MIN)
        assert np.all(np.abs(acts[-1] - net.t) >= TARGET_GAP)
        assert np.all((net.x > 0) & (net.x <= 1))
        assert np.allclose(net.x * 20, np.round(net.x * 20))  # on the 0.05 grid
        assert np.all((net.t > 0) & (net.t < 1))  # sigmoid outputs reach them


def test_without_weights_only_inputs_targets_name_and_title_change():
    base = parse_spec(builtin_example_text("mazur"), "mazur")
    assert base.published is not None
    for v in draw_variants("mazur", 5, seed=1):
        spec = v.spec
        assert spec.name == f"mazur_{v.label}"
        assert spec.title.endswith(f"(variant {v.label})")
        assert spec.published is None  # the article's numbers are the original example's, not the variant's
        assert spec.title_zh.endswith(f"（变式 {v.label}）")
        assert spec.required_digits == 6  # what the sheet asks, recorded for derive check
        same = replace(
            spec,
            name=base.name,
            title=base.title,
            title_zh=base.title_zh,
            source=base.source,
            published=base.published,
            required_digits=base.required_digits,
        )
        layers = list(same.layers)
        layers[0] = replace(layers[0], samples=base.layers[0].samples)
        layers[-1] = replace(layers[-1], target_samples=base.layers[-1].target_samples)
        assert replace(same, layers=tuple(layers)) == base


def test_with_weights_they_are_drawn_on_the_grid_and_keep_the_bases_sign():
    for v in draw_variants("mazur", 10, seed=5, weights=True):
        for layer in v.spec.layers[1:]:
            w = np.array(layer.weights)
            assert np.all(w > 0) and np.all(w <= 0.8)
            assert np.allclose(w * 20, np.round(w * 20))
    assert len({v.spec.layers[1].weights for v in draw_variants("mazur", 10, seed=5, weights=True)}) > 1


@pytest.mark.parametrize("example", builtin_examples())
def test_every_built_in_example_has_valid_variants_or_is_too_wide_to_work_by_hand(example):
    spec = parse_spec(builtin_example_text(example), example)
    if any(layer.geometry is not None for layer in spec.layers):  # maps: small ones are worked by hand
        if max(layer.size for layer in spec.layers if layer.shape) > MAX_MAP_ENTRIES:
            with pytest.raises(DeriveError, match=f"at most {MAX_MAP_ENTRIES} entries a map layer"):
                draw_variants(example, 4, seed=2, weights=True)
            return
        for v in draw_variants(example, 4, seed=2, weights=True):
            assert parse_spec(v.toml, "v").layers[0].values == v.inputs
        return
    if spec.is_batch:  # a sheet works one sample by hand
        with pytest.raises(DeriveError, match="drawn for one sample"):
            draw_variants(example, 4, seed=2, weights=True)
        return
    if max(layer.size for layer in spec.layers) > MAX_WIDTH:
        with pytest.raises(DeriveError, match=f"at most {MAX_WIDTH} neurons a layer"):
            draw_variants(example, 4, seed=2, weights=True)
        return
    for v in draw_variants(example, 4, seed=2, weights=True):
        assert parse_spec(v.toml, "v").layers[0].values == v.inputs


def test_relu_variants_keep_every_net_away_from_the_kink(tmp_path):
    spec = tmp_path / "relu.toml"
    spec.write_text(
        'name = "r"\n[loss]\nkind = "half_sse"\n[[layers]]\nnames = ["x1", "x2"]\nvalues = [0.5, 0.5]\n'
        '[[layers]]\nnames = ["h1", "h2"]\nactivation = "relu"\nweights = [[0.5, -0.5], [0.3, 0.2]]\nbias = 0.0\n'
        '[[layers]]\nnames = ["o1"]\nactivation = "linear"\nweights = [[0.7, -0.4]]\ntargets = [0.2]\n',
        encoding="utf-8",
    )
    for v in draw_variants(spec, 20, seed=9, weights=True):
        data = tomllib.loads(v.toml)
        x = np.array(data["layers"][0]["values"])
        w1 = np.array(data["layers"][1]["weights"])
        z1 = w1 @ x + data["layers"][1]["bias"]
        assert np.all(np.abs(z1) >= NET_MIN)  # relu is never at 0, where its derivative is undefined


def test_a_spec_whose_nets_cannot_be_kept_small_says_to_draw_the_weights(tmp_path):
    spec = tmp_path / "big.toml"
    spec.write_text(
        '[loss]\nkind = "half_sse"\n[[layers]]\nsize = 2\nvalues = [0.5, 0.5]\n'
        '[[layers]]\nsize = 1\nactivation = "sigmoid"\nweights = [[40.0, 40.0]]\ntargets = [0.5]\n',
        encoding="utf-8",
    )
    with pytest.raises(DeriveError) as err:
        draw_variants(spec, 2, seed=1)
    assert "--weights" in str(err.value)
    assert len(draw_variants(spec, 2, seed=1, weights=True)) == 2


@pytest.mark.parametrize("example", builtin_examples())
def test_the_toml_writer_round_trips_every_example(example):
    text = builtin_example_text(example)
    assert parse_spec(dump_toml(tomllib.loads(text)), "x") == parse_spec(text, "x")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.text(max_size=200))
def test_the_toml_writer_escapes_any_title_and_description(title, description):
    data = tomllib.loads(builtin_example_text("mazur"))
    data["title"], data["description"] = title, description
    assert tomllib.loads(dump_toml(data)) == data


def test_a_variant_carries_no_published_table_and_its_lecture_cites_no_article():
    from derive.app.api import Model
    from derive.lecture import Options, tex_source

    (v,) = draw_variants("mazur", 1, seed=4)
    assert "published" not in tomllib.loads(v.toml)
    assert "Mazur" not in v.toml.split("\n", 1)[1]  # past the header line naming the base spec
    source = tex_source(Model(v.spec), Options())
    assert "Mazur's article" not in source and "misprint" not in source
