"""The lecture of a network with conv and pool layers: one kernel weight's gradient as a sum over its uses.

:func:`build_plan` dispatches here when a layer works on maps. The plan runs: the network (the layers, the
names), the forward pass (the input map, the kernels, the feature maps, the pooling with its winners, the
dense output), the loss, then one kernel weight of the first conv layer: where it is used (the kernel sliding
over the input), the δ map of its feature map (back through the dense layer and the pooling), the sum over its
uses, its channel's bias, and the update. A large map (LeNet's 24×24) is shown as a crop around what matters,
and the uses are folded into the δ-map form beyond :data:`~derive.present.uses.MAX_LISTED_USES`, as
``derive grad`` folds them. Every number comes from the model's exact point, the derivations of the core and
one training step of the float engine; the renderers only format the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import sympy as sp

from ..core.chain import Derivation, derive
from ..core.network import LOSS_SYMBOL, Layer, Network
from ..core.optimizer import Optimizer
from ..core.rules import Activation
from ..core.uses import SharedUses, shared_uses
from ..errors import DeriveError
from ..present.display import display_point
from ..present.equations import Partial, definition
from ..present.numbers import format_number
from ..present.uses import MAX_LISTED_USES, UseMaps, use_maps
from ..spec.naming import delta_name
from ..spec.reading import BUILTIN_SUFFIX, BiasKind, LayerSpec
from .plan import (
    MARK_PAD,
    MARK_STRONG,
    MARK_USE,
    MARK_WIN,
    Block,
    Claim,
    Code,
    Equations,
    Exercise,
    Exercises,
    Field,
    Grid,
    LecturePlan,
    Line,
    Math,
    Num,
    Panel,
    Paragraph,
    Say,
    Section,
    Table,
    Text,
    say,
)

if TYPE_CHECKING:
    from ..core.worked import Worked
    from .plan import Options

MAX_SIDE = 8  # rows or columns of a map shown whole; a larger map is cropped to this around what matters
MAX_CHANNELS = 2  # maps of a layer shown side by side; beyond, the one that matters
MAX_SLIDES = 9  # positions of the kernel drawn as it slides over the input
MAX_NET_TERMS = 12  # a dense output's net input written out term by term up to this many inputs
MAX_LISTED_TERMS = 16  # non-zero products listed in the folded sum
MAX_OUTPUT_ROWS = 10
MAX_MAP_ENTRIES = 36  # entries of a map layer (all its channels) on a student's sheet: tinyconv's 4×4 and 2×3×3
MAX_LECTURE_MAP_ENTRIES = 256  # in a lecture's exercises, whose answers show the working (a LeNet's 3,456 do not)


def hand_sized(layers: Sequence[LayerSpec], source: str, limit: int = MAX_MAP_ENTRIES) -> None:
    """Raise unless every map layer is small enough for exercises worked by hand (a LeNet is not)."""
    maps = [layer for layer in layers if layer.shape]
    largest = max(maps, key=lambda layer: layer.size, default=None)
    if largest is not None and largest.size > limit:
        raise DeriveError(
            f"exercises are worked by hand: at most {limit} entries a map layer, "
            f"this spec's layer {largest.number} has {largest.size}",
            where=source,
            hint="use a smaller network (tinyconv) for exercises; `derive lecture` without --exercises teaches this one",
        )


def has_maps(net: Network) -> bool:
    """Whether a layer of the network works on maps (a conv or pool layer)."""
    return any(layer.spec.geometry is not None for layer in net.layers)


def build_map_plan(model: Worked, options: Options) -> LecturePlan:
    """The conv lecture of ``model`` (a DeriveError when the spec has no numbers); a batch works one sample."""
    return _MapBuilder(model, options).plan()


@dataclass(frozen=True)
class _Crop:
    """Rows and columns of a map shown: [row, row + rows) × [col, col + cols), from 0."""

    row: int
    col: int
    rows: int
    cols: int

    @property
    def whole(self) -> bool:
        return self.row == 0 and self.col == 0

    def grow(self, by: tuple[int, int], limit: tuple[int, int]) -> _Crop:
        """The crop of the layer before a window of ``by`` extra rows and columns (its input)."""
        return _Crop(self.row, self.col, min(self.rows + by[0], limit[0]), min(self.cols + by[1], limit[1]))


def _sides(layer: Layer) -> tuple[int, int]:
    """A map's (rows, columns); a 1-D map is one row."""
    shape = layer.spec.shape
    return (shape[1], shape[2]) if len(shape) == 3 else (1, shape[1])


def _full(layer: Layer) -> _Crop:
    rows, cols = _sides(layer)
    return _Crop(0, 0, min(rows, MAX_SIDE), min(cols, MAX_SIDE))


def _crop_around(values: Sequence[bool], sides: tuple[int, int], align: tuple[int, int] = (1, 1)) -> _Crop:
    """A window of at most MAX_SIDE × MAX_SIDE holding the most ``values`` (the first such, reading order),
    starting on a multiple of ``align`` (a pool's stride: the crop then holds whole pool windows)."""
    rows, cols = sides
    h, w = min(rows, MAX_SIDE), min(cols, MAX_SIDE)
    best, at = -1, (0, 0)
    for r in range(0, rows - h + 1, align[0]):
        for c in range(0, cols - w + 1, align[1]):
            count = sum(values[(r + i) * cols + c + j] for i in range(h) for j in range(w))
            if count > best:
                best, at = count, (r, c)
    return _Crop(at[0], at[1], h, w)


class _MapBuilder:
    def __init__(self, model: Worked, options: Options) -> None:
        model.network.require_numbers("derive lecture")
        if options.exercises:
            hand_sized(model.spec.layers, model.spec.source, MAX_LECTURE_MAP_ENTRIES)
        batch = model
        assert batch.points is not None  # checks every sample's forward pass
        # a batch's lecture works one sample in full (Spec.worked), as the dense lecture does; the update is the batch's
        self.sample = batch.spec.worked if batch.is_batch else None
        if batch.is_batch:
            model = batch.sample(batch.spec.worked)
        assert model.point is not None
        self.model = model
        self.options = options
        self.net: Network = model.network
        self.exact = model.point
        self.point = display_point(self.net, model.point)
        self.digits = options.digits
        net = self.net
        self.conv_index = next(i for i, layer in enumerate(net.layers) if layer.spec.kind.startswith("conv"))
        self.conv = net.layers[self.conv_index]
        self.channel = self._channel()
        self.weight = self._weight()
        uses = shared_uses(net, self.weight)
        assert uses is not None
        self.uses: SharedUses = uses
        self.d: Derivation = derive(net, self.weight, self.exact)
        self.maps: UseMaps = use_maps(self.d, uses)
        self.nonzero = _nonzero(self.maps)  # uses whose product δ · input is not 0 (as floats: a sympy 0.0 is not 0)
        bias = self.conv.biases[self.channel * self._positions(self.conv)]
        self.bias = bias
        self.bias_d = derive(net, bias, self.exact) if bias is not None else None
        self.crop = self._conv_crop()
        self.batch = batch
        engine = batch.compiled()
        self.old = engine.parameter_values()
        _, self.batch_gradients = engine.named_gradients()
        history = engine.train(1)
        self.new = engine.parameter_values()
        self.loss_before, self.loss_after = history[0], engine.current_loss()
        self.optimizer = Optimizer.of(model.spec)

    # -- choices ---------------------------------------------------------------------

    def _positions(self, layer: Layer) -> int:
        rows, cols = _sides(layer)
        return rows * cols

    def _deltas(self, layer: Layer, channel: int) -> list[float]:
        n = self._positions(layer)
        return [float(self.exact[d]) for d in layer.deltas[channel * n : (channel + 1) * n]]

    def _channel(self) -> int:
        """The conv layer's map whose δ map has the most non-zero entries (the first, on a tie)."""
        channels = self.conv.spec.shape[0]
        counts = [sum(v != 0 for v in self._deltas(self.conv, c)) for c in range(channels)]
        return max(range(channels), key=lambda c: (counts[c], -c))

    def _weight(self) -> sp.Symbol:
        """The channel's first kernel weight whose gradient is not 0 (else its first)."""
        row = list(self.conv.weights[self.channel])
        for w in row:
            uses = shared_uses(self.net, w)
            if uses is None:
                continue
            if any(
                n is not None
                and f is not None
                and float(self.exact[self.net.neuron_of(n).delta]) != 0
                and _value(f, self.exact) != 0
                for n, f in zip(uses.nets, uses.factors)
            ):
                return w
        return row[0]

    def _conv_crop(self) -> _Crop:
        """The part of the conv map shown: the whole map up to MAX_SIDE, else a crop around its non-zero δs."""
        sides = _sides(self.conv)
        if max(sides) <= MAX_SIDE:
            return _full(self.conv)
        align = (1, 1)
        if self.conv_index + 1 < len(self.net.layers):
            after = self.net.layers[self.conv_index + 1].spec.geometry
            if after is not None and after.kind.endswith("pool2d"):
                align = (after.stride[0], after.stride[1])
        return _crop_around([v != 0 for v in self._deltas(self.conv, self.channel)], sides, align)

    # -- helpers ---------------------------------------------------------------------

    def name(self, symbol: sp.Symbol) -> Field:
        return Math(symbol)

    def cells(
        self, symbols: Sequence[sp.Symbol], layer: Layer, channel: int, crop: _Crop
    ) -> tuple[tuple[float | None, ...], ...]:
        rows, cols = _sides(layer)
        base = channel * rows * cols
        return tuple(
            tuple(
                float(self.exact[symbols[base + r * cols + c]])
                for c in range(crop.col, min(crop.col + crop.cols, cols))
            )
            for r in range(crop.row, min(crop.row + crop.rows, rows))
        )

    def marks(self, layer: Layer, channel: int, crop: _Crop, marked: Mapping[int, int]) -> tuple[tuple[int, ...], ...]:
        """Marks of a crop from ``marked``: flat neuron index → mark."""
        rows, cols = _sides(layer)
        base = channel * rows * cols
        return tuple(
            tuple(marked.get(base + r * cols + c, 0) for c in range(crop.col, min(crop.col + crop.cols, cols)))
            for r in range(crop.row, min(crop.row + crop.rows, rows))
        )

    def panel(
        self,
        symbols: Sequence[sp.Symbol],
        layer: Layer,
        channel: int,
        crop: _Crop,
        label: Field,
        marked: Mapping[int, int] | None = None,
    ) -> Panel:
        return Panel(
            self.cells(symbols, layer, channel, crop),
            self.marks(layer, channel, crop, marked or {}),
            label,
            crop.row + 1,
            crop.col + 1,
        )

    def crop_note(self, layer: Layer, crop: _Crop) -> Say | None:
        rows, cols = _sides(layer)
        if crop.rows >= rows and crop.cols >= cols:
            return None
        return say(
            "conv_crop_note",
            rows=Text(f"{crop.row + 1}–{crop.row + crop.rows}"),
            cols=Text(f"{crop.col + 1}–{crop.col + crop.cols}"),
            size=Text(f"{rows}×{cols}"),
        )

    def channels_shown(self, layer: Layer, preferred: int) -> list[int]:
        channels = layer.spec.shape[0]
        if channels <= MAX_CHANNELS and max(_sides(layer)) <= MAX_SIDE:
            return list(range(channels))
        return [min(preferred, channels - 1)]

    def layer_crop(self, index: int) -> _Crop:
        """The crop of map layer ``index``: the conv layer's, carried to the layers before and after by their windows."""
        layer = self.net.layers[index]
        sides = _sides(layer)
        if max(sides) <= MAX_SIDE:
            return _full(layer)
        if index == self.conv_index:
            return self.crop
        if index == self.conv_index - 1:  # the conv's input: the inputs the followed weight multiplies there
            geometry = self.conv.spec.geometry
            assert geometry is not None
            stride = geometry.stride if len(geometry.stride) == 2 else (1, geometry.stride[0])
            padding = geometry.padding if len(geometry.padding) == 2 else (0, geometry.padding[0])
            entry = self.uses.offset[1:] if len(self.uses.offset) == 3 else (0, self.uses.offset[1])
            c = self.crop
            row = min(max(c.row * stride[0] + entry[0] - padding[0], 0), sides[0] - 1)
            col = min(max(c.col * stride[1] + entry[1] - padding[1], 0), sides[1] - 1)
            rows = min((c.rows - 1) * stride[0] + 1, MAX_SIDE, sides[0] - row)
            cols = min((c.cols - 1) * stride[1] + 1, MAX_SIDE, sides[1] - col)
            return _Crop(row, col, rows, cols)
        if index == self.conv_index + 1 and self.net.layers[index].spec.kind.endswith("pool2d"):
            geometry = self.net.layers[index].spec.geometry
            assert geometry is not None
            c = self.crop
            r0, c0 = c.row // geometry.stride[0], c.col // geometry.stride[1]
            return _Crop(
                r0,
                c0,
                min(c.rows // geometry.stride[0] or 1, sides[0] - r0),
                min(c.cols // geometry.stride[1] or 1, sides[1] - c0),
            )
        return _full(layer)

    def source(self) -> str:
        spec = self.model.spec
        source = spec.display_source
        if source.endswith(BUILTIN_SUFFIX):
            from .latex import words

            source = source[: -len(BUILTIN_SUFFIX)] + words(self.options.lang)["builtin_example"]
        return source

    # -- the plan -----------------------------------------------------------------------

    def plan(self) -> LecturePlan:
        spec = self.model.spec
        lang = self.options.lang
        sections = [
            self.network_section(),
            self.forward_section(),
            self.loss_section(),
            self.gradient_section(),
            self.bias_section(),
            self.update_section(),
        ]
        if self.options.exercises:
            exercises = conv_exercises(self.model, self.digits, self)
            sections.append(
                Section(
                    say("exercises"),
                    (Exercises(exercises, say("exercises_intro")),),
                    key="exercises",
                    numbered=False,
                    new_page=True,
                )
            )
        return LecturePlan(
            lang=lang,
            title=spec.title_zh if lang == "zh" and spec.title_zh else spec.title,
            description=spec.description_zh if lang == "zh" and spec.description_zh else spec.description,
            source=self.source(),
            sections=tuple(sections),
            network=self.net,
            point=self.point,
            digits=self.digits,
        )

    # -- the network ---------------------------------------------------------------

    def network_section(self) -> Section:
        net = self.net
        table = layers_table(net)
        input_layer = net.input_layer
        shape = input_layer.spec.shape
        intro = say(
            "conv_network_intro",
            layers=len(net.layers),
            channels=shape[0],
            size=Text("×".join(map(str, shape[1:]))),
        )
        conv = self.conv
        geometry = conv.spec.geometry
        assert geometry is not None
        l = conv.number
        first_w = conv.weights[0][0]
        z0, a0 = conv.neurons[0].net, conv.neurons[0].out
        assert z0 is not None
        naming = [
            say("conv_names_input", x=Math(input_layer.neurons[0].out)),
            say(
                "conv_names_maps",
                l=l,
                z=Math(z0),
                a=Math(a0),
            ),
            say("conv_names_kernel", l=l, w=Math(first_w), kernel=Text("×".join(map(str, geometry.kernel)))),
        ]
        if conv.biases[0] is not None:
            naming.append(say("conv_names_bias", b=Math(conv.biases[0]), l=l))
        dense = net.output_layer
        last_maps = net.layers[-2]
        naming.append(
            say(
                "conv_names_dense",
                l=dense.number,
                w=Math(dense.weights[0][0]),
                first=Math(last_maps.outs[0]),
                second=Math(last_maps.outs[1]),
            )
        )
        blocks: list[Block] = [Paragraph((intro,)), table, Paragraph(tuple(naming))]
        if self.sample is not None:
            blocks.append(Paragraph((say("conv_batch_note", n=self.batch.samples, k=self.sample),), note=True))
        return Section(say("network"), tuple(blocks), key="network")

    # -- the forward pass ----------------------------------------------------------

    def forward_section(self) -> Section:
        net = self.net
        blocks: list[Block] = [Paragraph((say("conv_forward_intro"),))]
        # the input
        x = net.input_layer
        crop = self.layer_crop(0)
        panels = tuple(
            self.panel(x.outs, x, c, crop, say("conv_input_panel", c=c + 1)) for c in self.channels_shown(x, 0)
        )
        blocks.append(Grid(panels, say("conv_input_grid"), self.crop_note(x, crop)))
        # the kernels
        conv = self.conv
        g = conv.spec.geometry
        assert g is not None
        kernel_rows = g.kernel[0] if len(g.kernel) == 2 else 1
        kernel_cols = g.kernel[-1]
        kernels = []
        for o in range(min(g.out_shape[0], 8)):
            for i in range(min(g.in_shape[0], 1 if g.out_shape[0] > 1 else 3)):
                row = conv.weights[o]
                entries = kernel_rows * kernel_cols
                values = [float(self.exact[w]) for w in row[i * entries : (i + 1) * entries]]
                cells = tuple(tuple(values[r * kernel_cols : (r + 1) * kernel_cols]) for r in range(kernel_rows))
                kernels.append(Panel(cells, (), say("conv_kernel_panel", o=o + 1, i=i + 1)))
        blocks.append(Grid(tuple(kernels), say("conv_kernel_grid", l=conv.number, n=g.out_shape[0])))
        if conv.biases[0] is not None:
            biases = list(dict.fromkeys(b for b in conv.biases if b is not None))
            text = ", ".join(f"{b.name} = {format_number(float(self.exact[b]), self.digits)}" for b in biases[:8])
            blocks.append(Paragraph((say("conv_biases", values=Text(text + (", …" if len(biases) > 8 else ""))),)))
        # one net input, worked
        n0 = conv.neurons[self.channel * self._positions(conv)]
        assert n0.net is not None
        second = conv.neurons[self.channel * self._positions(conv) + 1] if self._positions(conv) > 1 else n0
        blocks.append(
            Equations(
                (Line(definition(n0.net, net.net_definitions[n0.net], float(self.exact[n0.net]))),),
                say("conv_one_net", z=Math(n0.net)),
            )
        )
        assert second.net is not None
        blocks.append(Paragraph((say("conv_slide", z=Math(second.net), n=self._positions(conv)),)))
        blocks.extend(self.activation_blocks(conv))
        crop = self.layer_crop(self.conv_index)
        panels_list = []
        for c in self.channels_shown(conv, self.channel):
            panels_list.append(self.panel(conv.nets, conv, c, crop, say("conv_z_panel", l=conv.number, c=c + 1)))
            panels_list.append(self.panel(conv.outs, conv, c, crop, say("conv_a_panel", l=conv.number, c=c + 1)))
        blocks.append(Grid(tuple(panels_list), say("conv_feature_grid", l=conv.number), self.crop_note(conv, crop)))
        # the layers after it
        for index in range(self.conv_index + 1, len(net.layers)):
            layer = net.layers[index]
            if layer.spec.kind.startswith("conv"):
                blocks.extend(self.later_conv(index))
            elif "pool" in layer.spec.kind:
                blocks.extend(self.pool_blocks(index))
            else:
                blocks.extend(self.dense_blocks(layer))
        return Section(say("forward"), tuple(blocks), key="forward")

    def activation_blocks(self, layer: Layer) -> list[Block]:
        rule = layer.rule
        if isinstance(rule, Activation):
            x = sp.Symbol("x")
            return [
                Paragraph(
                    (
                        say(
                            "conv_activation",
                            l=layer.number,
                            name=Text(layer.spec.activation),
                            formula=Math(rule.f.subs(rule.f.free_symbols.pop(), x) if rule.f.free_symbols else rule.f),
                        ),
                    )
                )
            ]
        return []

    def later_conv(self, index: int) -> list[Block]:
        layer = self.net.layers[index]
        g = layer.spec.geometry
        assert g is not None
        crop = self.layer_crop(index)
        channel = 0
        panel = self.panel(layer.outs, layer, channel, crop, say("conv_a_panel", l=layer.number, c=channel + 1))
        return [
            Paragraph(
                (
                    say(
                        "conv_later",
                        l=layer.number,
                        n=g.out_shape[0],
                        kernel=Text("×".join(map(str, (g.in_shape[0], *g.kernel)))),
                        size=Text("×".join(map(str, g.out_shape[1:]))),
                    ),
                )
            ),
            Grid((panel,), None, self.crop_note(layer, crop)),
        ]

    def pool_blocks(self, index: int) -> list[Block]:
        net = self.net
        layer = net.layers[index]
        prev = net.layers[index - 1]
        g = layer.spec.geometry
        assert g is not None
        maximum = layer.spec.kind.startswith("max")
        size = "×".join(map(str, g.kernel))
        stride = "×".join(map(str, g.stride))
        blocks: list[Block] = []
        preferred = self.channel if index == self.conv_index + 1 else 0
        crop = self.layer_crop(index)
        shown = self.channels_shown(layer, preferred)
        rows, cols = _sides(layer)
        first = layer.neurons[shown[0] * rows * cols + crop.row * cols + crop.col]  # the first entry shown
        if maximum:
            blocks.append(Paragraph((say("conv_maxpool", l=layer.number, window=Text(size), stride=Text(stride)),)))
            winners = {k: MARK_WIN for k in layer.routes}
        else:
            blocks.append(Paragraph((say("conv_avgpool", l=layer.number, window=Text(size), stride=Text(stride)),)))
            winners = {}
        assert first.net is not None
        blocks.append(
            Equations((Line(definition(first.out, net.net_definitions[first.net], float(self.exact[first.out]))),))
        )
        prev_crop = self.layer_crop(index - 1)
        panels = []
        for c in shown:
            panels.append(
                self.panel(prev.outs, prev, c, prev_crop, say("conv_a_panel", l=prev.number, c=c + 1), winners)
            )
            panels.append(self.panel(layer.outs, layer, c, crop, say("conv_a_panel", l=layer.number, c=c + 1)))
        caption = say("conv_pool_grid_max" if maximum else "conv_pool_grid_avg", l=layer.number, prev=prev.number)
        note = self.crop_note(prev, prev_crop)
        blocks.append(Grid(tuple(panels), caption, note))
        return blocks

    def dense_blocks(self, layer: Layer) -> list[Block]:
        net = self.net
        prev = net.layers[layer.index - 1]
        blocks: list[Block] = [
            Paragraph(
                (say("conv_dense", l=layer.number, n=prev.size, first=Math(prev.outs[0]), last=Math(prev.outs[-1])),)
            )
        ]
        o = layer.neurons[0]
        assert o.net is not None
        if prev.size <= MAX_NET_TERMS:
            blocks.append(Equations((Line(definition(o.net, net.net_definitions[o.net], float(self.exact[o.net]))),)))
        rows = []
        for n in layer.neurons[:MAX_OUTPUT_ROWS]:
            assert n.net is not None
            target = Num(float(self.exact[n.target])) if n.target is not None else Text("–")
            rows.append(
                (Math(n.net), Num(float(self.exact[n.net])), Math(n.out), Num(float(self.exact[n.out])), target)
            )
        blocks.append(
            Table(
                (say("conv_net_col"), say("value"), say("conv_out_col"), say("value"), say("conv_target_col")),
                tuple(rows),
                (False, True, False, True, True),
                caption=say("conv_outputs", l=layer.number, activation=Text(layer.spec.activation)),
            )
        )
        return blocks

    # -- the loss ---------------------------------------------------------------------

    def loss_section(self) -> Section:
        net = self.net
        value = float(self.exact[LOSS_SYMBOL])
        kind = self.model.spec.loss.kind
        name = f"loss_{kind}"
        from .latex import words

        known = name in words(self.options.lang)
        intro = say("loss_intro", name=say(name)) if known else say("loss_intro_custom")
        outputs = net.output_layer.size
        numbers = outputs <= 4
        line = Line(definition(LOSS_SYMBOL, net.loss_expression, value, numbers=numbers))
        return Section(say("loss"), (Paragraph((intro,)), Equations((line,))), key="loss")

    # -- one kernel weight's gradient ----------------------------------------------------

    def gradient_section(self) -> Section:
        w = self.weight
        uses = self.uses
        channel, *entry = uses.offset
        where = entry if len(entry) == 2 else [0, entry[0]]
        intro = Paragraph(
            (
                say(
                    "conv_weight_intro",
                    w=Math(w),
                    row=where[0] + 1,
                    col=where[1] + 1,
                    o=uses.channels[0] + 1,
                    i=channel + 1,
                    n=uses.count,
                    l=self.conv.number,
                ),
            )
        )
        subsections = [self.uses_subsection(), self.delta_subsection(), self.sum_subsection()]
        return Section(
            say("conv_gradient_title", w=Math(w)),
            (intro,),
            tuple(subsections),
            key="kernel_weight",
            new_page=False,
        )

    def use_inputs(self) -> dict[int, int]:
        """The input neurons the weight multiplies (flat index → mark): MARK_STRONG where δ·input is not 0."""
        prev = self.net.layers[self.conv_index - 1]
        index = {s: k for k, s in enumerate(prev.outs)}
        marked: dict[int, int] = {}
        for f, delta, value in zip(self.uses.factors, self.maps.deltas, self.maps.factors):
            if f is None or not isinstance(f, sp.Symbol) or f not in index:
                continue
            strong = delta is not None and value is not None and float(delta) != 0 and float(value) != 0
            k = index[f]
            marked[k] = max(marked.get(k, 0), MARK_STRONG if strong else MARK_USE)
        return marked

    def uses_subsection(self) -> Section:
        net = self.net
        prev = net.layers[self.conv_index - 1]
        conv = self.conv
        g = conv.spec.geometry
        assert g is not None
        channel_in = self.uses.offset[0]
        crop = self.layer_crop(self.conv_index - 1)
        # the kernel sliding: its window at the first positions, the weight's cell in the strong colour
        rows, cols = _sides(conv)
        in_rows, in_cols = _sides(prev)
        kernel = g.kernel if len(g.kernel) == 2 else (1, g.kernel[0])
        stride = g.stride if len(g.stride) == 2 else (1, g.stride[0])
        padding = g.padding if len(g.padding) == 2 else (0, g.padding[0])
        entry = self.uses.offset[1:] if len(self.uses.offset) == 3 else (0, self.uses.offset[1])
        slides = []
        c0 = self.crop
        positions = [(r, c) for r in range(c0.row, c0.row + c0.rows) for c in range(c0.col, c0.col + c0.cols)]
        if len(positions) > MAX_SLIDES:
            positions = positions[:3]
        # the region the shown windows cover, in input coordinates; beyond the input: the zero padding
        tops = [r * stride[0] - padding[0] for r, _ in positions]
        lefts = [c * stride[1] - padding[1] for _, c in positions]
        first_row, last_row = max(min(tops), -padding[0]), min(max(tops) + kernel[0], in_rows + padding[0])
        first_col, last_col = max(min(lefts), -padding[1]), min(max(lefts) + kernel[1], in_cols + padding[1])
        padded = False
        for (r, c), top, left in zip(positions, tops, lefts):
            marks = []
            for i in range(first_row, last_row):
                line = []
                for j in range(first_col, last_col):
                    inside = top <= i < top + kernel[0] and left <= j < left + kernel[1]
                    own = (i, j) == (top + entry[0], left + entry[1])
                    outside = not (0 <= i < in_rows and 0 <= j < in_cols)
                    padded |= outside
                    line.append(MARK_STRONG if own else MARK_USE if inside else MARK_PAD if outside else 0)
                marks.append(tuple(line))
            empty = tuple(tuple(None for _ in range(last_col - first_col)) for _ in range(last_row - first_row))
            z = conv.neurons[self.channel * rows * cols + r * cols + c].net
            assert z is not None
            slides.append(Panel(empty, tuple(marks), Math(z)))
        blocks: list[Block] = [
            Grid(
                tuple(slides),
                say("conv_slides", w=Math(self.weight), n=len(positions)),
                say("conv_slides_padding") if padded else None,
                numbers=False,
            ),
        ]
        marked = self.use_inputs()
        blocks.append(
            Grid(
                (self.panel(prev.outs, prev, channel_in, crop, say("conv_input_panel", c=channel_in + 1), marked),),
                say("conv_uses_grid", w=Math(self.weight), n=self.uses.count, nonzero=self.nonzero),
                self.crop_note(prev, crop),
            )
        )
        return Section(say("conv_uses_title", w=Math(self.weight)), tuple(blocks), key="uses")

    def delta_subsection(self) -> Section:
        """δ from the output back to the weight's feature map, layer by layer."""
        net = self.net
        blocks: list[Block] = [
            Paragraph((say("conv_delta_intro", l=self.conv.number, c=self.channel + 1),)),
            Paragraph((say("conv_bp_note"),), note=True),
        ]
        out = net.output_layer
        # BP1 at the outputs
        lines = []
        for n in out.neurons[:4]:
            assert n.delta is not None
            lines.append(Line(definition(n.delta, net.delta_definitions[n.delta], float(self.exact[n.delta]))))
        blocks.append(Equations(tuple(lines), say("conv_delta_out", l=out.number)))
        if out.size > 4:
            blocks.append(Paragraph((say("more_neurons", n=out.size - 4, layer=out.number),)))
        for index in range(len(net.layers) - 2, self.conv_index - 1, -1):
            blocks.extend(self.delta_blocks(index))
        return Section(say("conv_delta_title", l=self.conv.number, c=self.channel + 1), tuple(blocks), key="deltas")

    def delta_panel(self, layer: Layer, channel: int, crop: _Crop) -> Panel:
        n = self._positions(layer)
        marked = {
            k: MARK_STRONG for k in range(channel * n, (channel + 1) * n) if float(self.exact[layer.deltas[k]]) != 0
        }
        return self.panel(
            layer.deltas, layer, channel, crop, say("conv_delta_panel", l=layer.number, c=channel + 1), marked
        )

    def delta_blocks(self, index: int) -> list[Block]:
        net = self.net
        layer = net.layers[index]
        after = net.layers[index + 1]
        preferred = self.channel if index in (self.conv_index, self.conv_index + 1) else 0
        crop = self.layer_crop(index)
        channels = self.channels_shown(layer, preferred)
        if index == self.conv_index:
            channels = [self.channel]
        # the δ worked for one entry: the first non-zero one in the shown crop, else the first
        rows, cols = _sides(layer)
        c = channels[0]
        candidates = [
            c * rows * cols + r * cols + k
            for r in range(crop.row, crop.row + crop.rows)
            for k in range(crop.col, crop.col + crop.cols)
        ]
        chosen = next((k for k in candidates if float(self.exact[layer.deltas[k]]) != 0), candidates[0])
        delta = layer.deltas[chosen]
        kind = after.spec.kind
        if "pool" in kind:
            key = "conv_delta_through_max" if kind.startswith("max") else "conv_delta_through_avg"
            g = after.spec.geometry
            assert g is not None
            text = say(key, l=layer.number, after=after.number, k=int(sp.prod(g.kernel)))
        elif kind.startswith("conv"):
            text = say("conv_delta_through_conv", l=layer.number, after=after.number)
        else:
            text = say("conv_delta_through_dense", l=layer.number, after=after.number)
        definition_expr = net.delta_definitions[delta]
        example = len(sp.Add.make_args(definition_expr)) <= MAX_NET_TERMS
        if "pool" in layer.spec.kind:
            fprime = say("conv_delta_no_fprime", l=layer.number)
        else:
            fprime = say("conv_delta_fprime", l=layer.number, name=Text(layer.spec.activation))
        said = (text, fprime, say("conv_for_example")) if example else (text, fprime)
        blocks: list[Block] = [Paragraph(said)]
        if example:
            blocks.append(Equations((Line(definition(delta, definition_expr, float(self.exact[delta]))),)))
        if layer.spec.activation in ("relu",) and index == self.conv_index:
            blocks.append(Paragraph((say("conv_relu_delta"),), note=True))
        panels = tuple(self.delta_panel(layer, ch, crop) for ch in channels)
        blocks.append(Grid(panels, say("conv_delta_grid", l=layer.number), self.crop_note(layer, crop)))
        if index == self.conv_index:
            n = self._positions(layer)
            nonzero = sum(float(self.exact[d]) != 0 for d in layer.deltas[self.channel * n : (self.channel + 1) * n])
            blocks.append(Paragraph((say("conv_delta_count", n=n, nonzero=nonzero, c=self.channel + 1),)))
        return blocks

    def sum_subsection(self) -> Section:
        w = self.weight
        lhs = Partial(LOSS_SYMBOL, w)
        uses = self.uses
        value = float(self.d.value) if self.d.value is not None else 0.0
        blocks: list[Block] = [Paragraph((say("conv_sum_rule", w=Math(w), l=self.conv.number),))]
        terms = [(n, f) for n, f in zip(uses.nets, uses.factors) if n is not None and f is not None]
        products = [self.net.neuron_of(n).delta * f for n, f in terms]
        if uses.count <= MAX_LISTED_USES:
            blocks.append(
                Equations(
                    (Line(definition(lhs, sp.Add(*products, evaluate=False), value)),),
                    say("conv_sum_listed", n=uses.count),
                )
            )
        else:
            layer = self.conv
            crop = self.crop
            # the map of what the weight multiplies, on the conv map's grid; red where δ · input is not 0
            _rows, cols = _sides(layer)
            factor_cells, marks = [], []
            for r in range(crop.row, crop.row + crop.rows):
                line: list[float | None] = []
                marked: list[int] = []
                for k in range(crop.col, crop.col + crop.cols):
                    v, dv = self.maps.factors[r * cols + k], self.maps.deltas[r * cols + k]
                    line.append(None if v is None else float(v))
                    counts = v is not None and dv is not None and float(v) != 0 and float(dv) != 0
                    marked.append(MARK_STRONG if counts else 0)
                factor_cells.append(tuple(line))
                marks.append(tuple(marked))
            delta_panel = replace(self.delta_panel(layer, self.channel, crop), marks=tuple(marks))
            factor_panel = Panel(
                tuple(factor_cells), tuple(marks), say("conv_factor_panel", w=Math(w)), crop.row + 1, crop.col + 1
            )
            blocks.append(Paragraph((say("conv_sum_folded", n=uses.count, limit=MAX_LISTED_USES),)))
            blocks.append(Grid((delta_panel, factor_panel), say("conv_folded_grid"), self.crop_note(layer, crop)))
            nonzero = [
                (self.net.neuron_of(n).delta, f)
                for (n, f), dv, fv in zip(
                    terms,
                    [d for d in self.maps.deltas if d is not None],
                    [x for x in self.maps.factors if x is not None],
                )
                if float(dv) != 0 and float(fv) != 0
            ]
            if 0 < len(nonzero) <= MAX_LISTED_TERMS:
                expr = sp.Add(*(d * f for d, f in nonzero), evaluate=False)
                blocks.append(
                    Equations(
                        (Line(definition(lhs, expr, value)),),
                        say("conv_sum_nonzero", n=uses.count, nonzero=len(nonzero)),
                    )
                )
            else:  # the sum said with its count; no second sentence saying it again
                said = say("conv_sum_many", n=uses.count, nonzero=len(nonzero), g=Math(lhs), value=Num(value))
                return Section(say("conv_sum_title"), (*blocks, Paragraph((said,))), key="sum")
        blocks.append(
            Paragraph((say("conv_sum_total", g=Math(lhs), value=Num(value), n=uses.count, nonzero=self.nonzero),))
        )
        return Section(say("conv_sum_title"), tuple(blocks), key="sum")

    # -- the bias -----------------------------------------------------------------------

    def bias_section(self) -> Section:
        b = self.bias
        if b is None or self.bias_d is None or self.bias_d.value is None:
            return Section(say("conv_bias_title_none"), (Paragraph((say("conv_no_bias"),)),), key="bias")
        lhs = Partial(LOSS_SYMBOL, b)
        value = float(self.bias_d.value)
        n = self._positions(self.conv)
        if self.conv.spec.bias.kind is BiasKind.SHARED:  # one bias for every map: its δ maps all add up
            deltas = tuple(self.conv.deltas)
            n = len(deltas)
            intro = say("conv_bias_shared_intro", b=Math(b), n=n, l=self.conv.number)
        else:
            deltas = self.conv.deltas[self.channel * n : (self.channel + 1) * n]
            intro = say("conv_bias_intro", b=Math(b), n=n, c=self.channel + 1)
        blocks: list[Block] = [Paragraph((intro,))]
        if n <= MAX_LISTED_USES:
            blocks.append(Equations((Line(definition(lhs, sp.Add(*deltas, evaluate=False), value)),)))
        else:
            nonzero = [d for d in deltas if float(self.exact[d]) != 0]
            if 0 < len(nonzero) <= MAX_LISTED_TERMS:
                blocks.append(
                    Equations(
                        (Line(definition(lhs, sp.Add(*nonzero, evaluate=False), value)),),
                        say("conv_bias_nonzero", nonzero=len(nonzero), n=n),
                    )
                )
            else:
                blocks.append(Paragraph((say("conv_bias_value", g=Math(lhs), value=Num(value)),)))
        return Section(say("conv_bias_title", b=Math(b)), tuple(blocks), key="bias")

    # -- the update --------------------------------------------------------------------

    def update_section(self) -> Section:
        eta = self.model.spec.training.learning_rate
        plain = self.optimizer.name == "sgd" and not self.optimizer.settings_beyond_sgd
        blocks: list[Block] = []
        pairs = [(self.weight, self.d)]
        if self.bias is not None and self.bias_d is not None:
            pairs.append((self.bias, self.bias_d))
        sentences: list[Say] = []
        for p, d in pairs:
            g = float(d.value) if d.value is not None else 0.0
            if self.sample is not None:  # a batch: the step follows the batch's gradient, not the worked sample's
                g = self.batch_gradients[p.name]
            if plain:
                sentences.append(
                    say(
                        "sheet_update_answer",
                        weight=Math(p),
                        partial=Math(Partial(LOSS_SYMBOL, p)),
                        old=Num(self.old[p.name]),
                        eta=Num(eta),
                        g=Num(g),
                        new=Num(self.new[p.name]),
                    )
                )
            else:
                sentences.append(say("conv_update_other", weight=Math(p), new=Num(self.new[p.name])))
        intro = (
            say("conv_update_intro", eta=Num(eta))
            if plain
            else say("conv_update_intro_other", name=Text(self.optimizer.name))
        )
        blocks.append(Paragraph((intro,)))
        if self.sample is not None:
            blocks.append(Paragraph((say("conv_update_batch", n=self.batch.samples, k=self.sample),)))
        blocks.extend(Paragraph((s,)) for s in sentences)
        blocks.append(Paragraph((say("conv_update_all", after=Num(self.loss_after), before=Num(self.loss_before)),)))
        return Section(say("update_step"), tuple(blocks), key="update")


def map_givens(model: Worked) -> list[Block]:
    """The input map and the first conv layer's kernels as grids (a sheet gives them; no derived number)."""
    net = model.network
    assert model.point is not None
    point = model.point
    x = net.input_layer
    rows, cols = _sides(x)
    blocks: list[Block] = []
    if rows <= MAX_SIDE and cols <= MAX_SIDE:
        panels = tuple(
            Panel(
                tuple(
                    tuple(float(point[x.outs[c * rows * cols + r * cols + k]]) for k in range(cols))
                    for r in range(rows)
                ),
                (),
                say("conv_input_panel", c=c + 1),
            )
            for c in range(min(x.spec.shape[0], 3))
        )
        blocks.append(Grid(panels, say("conv_input_grid")))
    conv = next(layer for layer in net.layers if layer.spec.kind.startswith("conv"))
    g = conv.spec.geometry
    assert g is not None
    kernel_rows, kernel_cols = (g.kernel[0], g.kernel[1]) if len(g.kernel) == 2 else (1, g.kernel[0])
    entries = kernel_rows * kernel_cols
    kernels = []
    for o in range(min(g.out_shape[0], 8)):
        for i in range(min(g.in_shape[0], 2)):
            values = [float(point[w]) for w in conv.weights[o][i * entries : (i + 1) * entries]]
            cells = tuple(tuple(values[r * kernel_cols : (r + 1) * kernel_cols]) for r in range(kernel_rows))
            kernels.append(Panel(cells, (), say("conv_kernel_panel", o=o + 1, i=i + 1)))
    blocks.append(Grid(tuple(kernels), say("conv_kernel_grid", l=conv.number, n=g.out_shape[0])))
    return blocks


def layers_table(net: Network) -> Table:
    """The layers: kind, maps, the names of their values and parameters (no numbers: a sheet shows it too)."""
    rows: list[tuple[Field, ...]] = [
        (Text(str(layer.number)), kind_word(layer), shape_word(layer), *layer_names(layer)) for layer in net.layers
    ]
    return Table(
        (say("layer"), say("conv_kind"), say("conv_shape"), say("conv_names"), say("conv_parameters")),
        tuple(rows),
        (True, False, False, False, False),
    )


def kind_word(layer: Layer) -> Field:
    kind = layer.spec.kind
    if layer.index == 0:
        return say("input")
    if kind.startswith("conv"):
        g = layer.spec.geometry
        assert g is not None
        return say(
            "conv_kind_conv",
            channels=g.out_shape[0],
            kernel=Text("×".join(map(str, g.kernel))),
            activation=Text(layer.spec.activation),
        )
    if "pool" in kind:
        g = layer.spec.geometry
        assert g is not None
        return say(
            "conv_kind_max" if kind.startswith("max") else "conv_kind_avg",
            kernel=Text("×".join(map(str, g.kernel))),
            stride=Text("×".join(map(str, g.stride))),
        )
    return say("conv_kind_dense", activation=Text(layer.spec.activation))


def shape_word(layer: Layer) -> Field:
    shape = layer.spec.shape
    if shape:
        return say("conv_maps_of", channels=shape[0], size=Text("×".join(map(str, shape[1:]))))
    return say("conv_neurons", n=layer.size)


def layer_names(layer: Layer) -> tuple[Field, Field]:
    l = layer.number
    spatial = "_c_r_k" if len(layer.spec.shape) == 3 else "_c_k"
    if layer.index == 0:
        return Code(f"x{l}{spatial}" if layer.spec.shape else f"x{l}_k"), Text("–")
    values = Code(f"z{l}{spatial}, a{l}{spatial}") if layer.spec.shape else Code(f"z{l}_j, a{l}_j")
    count = sum(len(row) for row in layer.weights) + sum(1 for b in dict.fromkeys(layer.biases) if b is not None)
    if count == 0:
        return values, Text("–")
    if layer.spec.kind.startswith("conv"):
        kernel = "_o_i_r_c" if len(layer.spec.shape) == 3 else "_o_i_c"
        bias = f", b{l}_o" if layer.biases[0] is not None else ""
        return values, Code(f"w{l}{kernel}{bias} ({count})")
    bias = f", b{l}_j" if layer.biases[0] is not None else ""
    return values, Code(f"w{l}_j_k{bias} ({count})")


def _nonzero(maps: UseMaps) -> int:
    return sum(
        d is not None and f is not None and float(d) != 0 and float(f) != 0 for d, f in zip(maps.deltas, maps.factors)
    )


def _value(f: sp.Expr, point: Mapping[sp.Symbol, float]) -> float:
    return float(point[f]) if isinstance(f, sp.Symbol) else float(f)


# -- exercises: from the same numbers, for the lecture and for a student's sheet ------------------------


def conv_exercises(model: Worked, digits: int, builder: _MapBuilder | None = None) -> tuple[Exercise, ...]:
    """Questions on a conv network with worked answers and claims ``derive check`` grades: another kernel
    weight's gradient, a conv bias's gradient, a pooled value and a δ-map entry."""
    if builder is None:
        builder = _MapBuilder(model, _options(digits))
    b = builder
    net = b.net
    exact = b.exact
    conv = b.conv
    positions = b._positions(conv)
    channels = conv.spec.shape[0]
    other = (b.channel + 1) % channels if channels > 1 else b.channel
    items: list[Exercise] = []

    def named(name: str) -> str:
        """A claim's name as derive check reads it: a batch's worked sample k is dE[k]/dX, a3_1_1_1[k]."""
        if b.sample is None:
            return name
        if name.startswith("dE/"):
            return f"dE[{b.sample}]/" + name[3:]
        return f"{name}[{b.sample}]"

    def answer(name: str, value: float, blocks: list[Block]) -> tuple[Block, ...]:
        claim = Code(f"{named(name)} = {format_number(value, digits)}")
        return (*blocks, Paragraph((say("sheet_answer", claim=claim),)))

    # 1. another kernel weight's gradient: the other channel's weight, or the next entry of this kernel
    row = list(conv.weights[other])
    choice = (
        next((w for w in row if w != b.weight and _gradient_nonzero(b, w)), None)
        or next(w for w in row if w != b.weight)
        if len(row) > 1
        else row[0]
    )
    d = derive(net, choice, exact)
    assert d.value is not None
    uses = shared_uses(net, choice)
    assert uses is not None
    lhs = Partial(LOSS_SYMBOL, choice)
    maps = use_maps(d, uses)
    terms = [(net.neuron_of(n).delta, f) for n, f in zip(uses.nets, uses.factors) if n is not None and f is not None]
    if uses.count <= MAX_LISTED_USES:
        working: list[Block] = [
            Equations((Line(definition(lhs, sp.Add(*(dd * f for dd, f in terms), evaluate=False), float(d.value))),))
        ]
    else:
        nonzero = [
            (dd, f)
            for (dd, f), dv, fv in zip(
                terms, [x for x in maps.deltas if x is not None], [x for x in maps.factors if x is not None]
            )
            if float(dv) != 0 and float(fv) != 0
        ]
        if len(nonzero) <= MAX_LISTED_TERMS:
            working = [
                Equations(
                    (Line(definition(lhs, sp.Add(*(dd * f for dd, f in nonzero), evaluate=False), float(d.value))),)
                )
            ]
        else:
            working = [
                Paragraph(
                    (say("conv_sum_many", n=uses.count, nonzero=len(nonzero), g=Math(lhs), value=Num(float(d.value))),)
                )
            ]
    name = f"dE/d{choice.name}"
    items.append(
        Exercise(
            (Paragraph((say("conv_ex_weight", partial=Math(lhs), n=uses.count),)),),
            answer(
                name,
                float(d.value),
                [
                    Grid(
                        (b.delta_panel(conv, other, b.layer_crop(b.conv_index)),),
                        say("conv_ex_delta_map", c=other + 1),
                        b.crop_note(conv, b.layer_crop(b.conv_index)),
                    ),
                    Paragraph((say("conv_ex_weight_answer"),)),
                    *working,
                ],
            ),
            (Claim(named(name), float(d.value)),),
        )
    )
    # 2. a conv bias's gradient: the other channel's
    bias = conv.biases[other * positions]
    if bias is not None:
        bd = derive(net, bias, exact)
        assert bd.value is not None
        shared = conv.spec.bias.kind is BiasKind.SHARED  # one bias for every map: every δ of the layer
        deltas = tuple(conv.deltas) if shared else conv.deltas[other * positions : (other + 1) * positions]
        shown = deltas if len(deltas) <= MAX_LISTED_USES else tuple(x for x in deltas if float(exact[x]) != 0)
        lhs_b = Partial(LOSS_SYMBOL, bias)
        name = f"dE/d{bias.name}"
        if len(shown) <= MAX_LISTED_TERMS:  # the δs written out (beyond: the sum's value, as the lecture says it)
            expr = sp.Add(*shown, evaluate=False) if shown else sp.S.Zero
            bias_working: Block = Equations((Line(definition(lhs_b, expr, float(bd.value))),))
        else:
            bias_working = Paragraph((say("conv_bias_value", g=Math(lhs_b), value=Num(float(bd.value))),))
        question = (
            say("conv_ex_bias_shared", partial=Math(lhs_b), l=conv.number)
            if shared
            else say("conv_ex_bias", partial=Math(lhs_b), c=other + 1)
        )
        items.append(
            Exercise(
                (Paragraph((question,)),),
                answer(name, float(bd.value), [bias_working]),
                (Claim(named(name), float(bd.value)),),
            )
        )
    # 3. a pooled value: the last entry of the other channel's pooled map
    pool_index = b.conv_index + 1
    if pool_index < len(net.layers) - 1 and "pool" in net.layers[pool_index].spec.kind:
        pool = net.layers[pool_index]
        pool_positions = b._positions(pool)
        n = pool.neurons[other * pool_positions + pool_positions - 1]
        assert n.net is not None
        g = pool.spec.geometry
        assert g is not None
        maximum = pool.spec.kind.startswith("max")
        # the whole window, for the answer: the entries a max pool compares
        from ..core.layers import windows

        table = windows(g)
        prev = net.layers[b.conv_index]
        p = pool_positions - 1
        window = [prev.outs[other * table.area + s] for s in table.spatial[p].tolist() if s >= 0]
        values = ", ".join(f"{s.name} = {format_number(float(exact[s]), digits)}" for s in window)
        value = float(exact[n.out])
        items.append(
            Exercise(
                (Paragraph((say("conv_ex_pool", a=Math(n.out), window=Text("×".join(map(str, g.kernel)))),)),),
                answer(
                    n.out.name,
                    value,
                    [
                        Paragraph(
                            (
                                say(
                                    "conv_ex_pool_answer_max" if maximum else "conv_ex_pool_answer_avg",
                                    values=Text(values),
                                ),
                            )
                        ),
                        Equations((Line(definition(n.out, net.net_definitions[n.net], value)),)),
                    ],
                ),
                (Claim(named(n.out.name), value),),
            )
        )
    # 4. a δ-map entry: the first non-zero δ of the other channel's map (else its first)
    deltas = conv.deltas[other * positions : (other + 1) * positions]
    delta = next((x for x in deltas if float(exact[x]) != 0), deltas[0])
    neuron = net.neuron_of(delta)
    value = float(exact[delta])
    assert neuron.net is not None
    name = delta_name(neuron.net.name)
    after = net.layers[b.conv_index + 1]
    lines = []
    if after.index + 1 == len(net.layers) - 1:  # the pool feeds the dense output: its δs from BP1 first
        for o in net.output_layer.neurons:
            assert o.delta is not None
            lines.append(Line(definition(o.delta, net.delta_definitions[o.delta], float(exact[o.delta]))))
    for m in after.neurons:
        assert m.delta is not None
        if m.delta in net.delta_definitions[delta].free_symbols:
            lines.append(Line(definition(m.delta, net.delta_definitions[m.delta], float(exact[m.delta]))))
    lines.append(Line(definition(delta, net.delta_definitions[delta], value)))
    items.append(
        Exercise(
            (
                Paragraph(
                    (
                        say(
                            "conv_ex_delta",
                            delta=Math(delta),
                            z=Math(neuron.net) if neuron.net is not None else Text(""),
                        ),
                    )
                ),
            ),
            answer(name, value, [Equations(tuple(dict.fromkeys(lines)))]),
            (Claim(named(name), value),),
        )
    )
    return tuple(items)


def _gradient_nonzero(b: _MapBuilder, w: sp.Symbol) -> bool:
    uses = shared_uses(b.net, w)
    if uses is None:
        return False
    return any(
        n is not None and f is not None and float(b.exact[b.net.neuron_of(n).delta]) != 0 and _value(f, b.exact) != 0
        for n, f in zip(uses.nets, uses.factors)
    )


def _options(digits: int) -> Options:
    from .plan import Options

    return Options(digits=digits, steps=0)
