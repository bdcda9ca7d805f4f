"""Seeded initial weights, the same in derive and in every exported module.

The functions are kept as source text: derive runs it, and `derive export`
copies it into the generated module, so both draw identical numbers.
Xavier/Glorot uniform (±√(6/(fan_in + fan_out))), or He normal (std √(2/fan_in))
for the rectifiers (the table in :mod:`derive.spec.builtins` says which); each layer draws from its own stream
``default_rng([seed, layer])``, rounded to 4 decimals so lectures stay readable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec.builtins import ACTIVATIONS, Init
from ..spec.reading import LayerSpec, Spec

SOURCE = '''
def _xavier(seed, layer, n, m):
    """Xavier/Glorot uniform weights for layer `layer`, shape (n, m), rounded to 4 decimals."""
    limit = np.sqrt(6.0 / (m + n))
    return np.round(np.random.default_rng([seed, layer]).uniform(-limit, limit, (n, m)), 4)


def _he(seed, layer, n, m):
    """He normal weights for layer `layer` (relu), shape (n, m), rounded to 4 decimals."""
    return np.round(np.random.default_rng([seed, layer]).normal(0.0, np.sqrt(2.0 / m), (n, m)), 4)
'''.strip()

_namespace: dict[str, Any] = {"np": np}
# SOURCE is a constant of this module (never spec text); running it here is what keeps it identical in exports
exec(compile(SOURCE, "<derive.core.init>", "exec"), _namespace)


def scheme(layer: LayerSpec) -> str:
    """The initialiser's function name for a seeded layer: the table's for a built-in activation, else Xavier's."""
    builtin = ACTIVATIONS.get(layer.activation)
    return (builtin.init if builtin is not None else Init.XAVIER).value


def weights(spec: Spec, index: int) -> np.ndarray:
    """The weight matrix of layer ``index`` (0 is the input layer): the spec's, or seeded."""
    layer = spec.layers[index]
    if layer.weights:
        return np.array(layer.weights, dtype=float)
    if layer.geometry is not None:  # a conv's kernels, a row per output channel (fan-in C_in·kh·kw); a pool has none
        if not layer.weight_names:
            return np.zeros((0, 0))
        n, m = len(layer.weight_names), layer.geometry.fan_in
        result_map: np.ndarray = _namespace[scheme(layer)](spec.seed, layer.number, n, m)
        return result_map
    if layer.kind == "rnn":  # [W | U] drawn as one matrix: the fan-in of a state is D + H
        n, m = len(layer.weight_names), len(layer.weight_names[0])
        result_rnn: np.ndarray = _namespace[scheme(layer)](spec.seed, layer.number, n, m)
        return result_rnn
    n, m = layer.size, spec.layers[index - 1].exposed_size
    result: np.ndarray = _namespace[scheme(layer)](spec.seed, layer.number, n, m)
    return result
