"""Hand-written batched backprop, the way a competent person writes it (Nielsen, chapter 2).

This is the yardstick of `derive bench`: the generated modules must beat it.
It is deliberately ordinary, not a straw man: batched matrix products, the
activation's output reused for its derivative, the softmax/cross-entropy δ
written as a − t, no needless copies. It knows the activations and losses of
the benchmark shapes by name, as hand-written code does. The loss comes from the same forward pass (log-softmax
from the shifted nets), as a person writing both at once would.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def sigmoid(z: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-z))


class Backprop:
    """Gradients of the batch-mean loss for a fully connected network with per-neuron biases."""

    def __init__(self, activations: list[str], loss: str) -> None:
        self.activations = activations
        self.loss = loss

    def gradients(self, params: dict[str, Array], X: Array, T: Array) -> dict[str, Array]:
        return self.loss_and_gradients(params, X, T)[1]

    def loss_and_gradients(self, params: dict[str, Array], X: Array, T: Array) -> tuple[float, dict[str, Array]]:
        """The batch-mean loss and its gradients, in one forward and one backward pass."""
        n_layers = len(self.activations)
        a = X
        outs = [X]
        for i, name in enumerate(self.activations):
            W, b = params[f"W{i + 2}"], params[f"b{i + 2}"]
            z = a @ W.T + b
            if name == "sigmoid":
                a = sigmoid(z)
            elif name == "relu":
                a = np.maximum(z, 0.0)
            elif name == "softmax":
                shifted = z - z.max(axis=1, keepdims=True)
                e = np.exp(shifted)
                total = e.sum(axis=1, keepdims=True)
                a = e / total
                log_a = shifted - np.log(total)
            else:
                raise ValueError(name)
            outs.append(a)
        n = X.shape[0]
        last = self.activations[-1]
        if self.loss == "cross_entropy" and last == "softmax":
            loss = -np.sum(T * log_a) / n
            delta = (a - T) / n
        elif self.loss == "half_sse" and last == "sigmoid":
            error = a - T
            loss = 0.5 * np.sum(error * error) / n
            delta = error * a * (1.0 - a) / n
        else:
            raise ValueError((self.loss, last))
        grads: dict[str, Array] = {}
        for i in range(n_layers - 1, -1, -1):
            grads[f"W{i + 2}"] = delta.T @ outs[i]
            grads[f"b{i + 2}"] = delta.sum(axis=0)
            if i > 0:
                a_prev = outs[i]
                back = delta @ params[f"W{i + 2}"]
                name = self.activations[i - 1]
                if name == "sigmoid":
                    delta = back * a_prev * (1.0 - a_prev)
                elif name == "relu":
                    delta = back * (a_prev > 0)
                else:
                    raise ValueError(name)
        return float(loss), grads
