"""Train the digits network with the exported module's fit and with the same loop in PyTorch.

scikit-learn's 8×8 digits, a stratified 75/25 split (derive.fit.data), inputs
standardised by the training rows; 64-30-10 sigmoid/softmax with cross-entropy,
30 epochs of mini-batch SGD (batch 32, η = 0.5), both from the same initial
weights and visiting the rows in the same order. PyTorch runs in float64 on one
thread, written the way its tutorials do (nn.Linear, optim.SGD, F.cross_entropy);
NumPy's BLAS is limited to one thread as well. Both loops are timed in this run,
alternately, and the medians compared.

    python benchmarks/fit_digits.py [--repeat 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from derive.app.api import Model
from derive.codegen.modules import compile_module, vector_module
from derive.fit.data import load_data, scaling, split

EPOCHS, BATCH, LR, SEED = 30, 32, 0.5, 0


def torch_fit(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> torch.nn.Sequential:
    """The PyTorch loop: the same weights, batches and order as the module's fit."""
    net = torch.nn.Sequential(torch.nn.Linear(64, 30), torch.nn.Sigmoid(), torch.nn.Linear(30, 10)).double()
    with torch.no_grad():
        for layer, l in ((net[0], 2), (net[2], 3)):
            layer.weight.copy_(torch.from_numpy(params[f"W{l}"]))
            layer.bias.copy_(torch.from_numpy(params[f"b{l}"]))
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    rng = np.random.default_rng(SEED)
    for _ in range(EPOCHS):
        order = torch.from_numpy(rng.permutation(len(X)))
        Xs, ys = tX[order], ty[order]
        for start in range(0, len(X), BATCH):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(Xs[start : start + BATCH]), ys[start : start + BATCH])
            loss.backward()
            optimizer.step()
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    module = compile_module(vector_module(Model.load("digits")), "digits")
    data = load_data("digits", 64, 10)
    train, test = split(data, 0.25, SEED)
    assert test is not None and train.labels is not None and test.labels is not None
    scaled = scaling(train.X, "standard")
    X, T, y = scaled.apply(train.X), train.T, train.labels
    X_test = scaled.apply(test.X)
    start_params = module.init_params()

    derive_times, torch_times = [], []
    with threadpool_limits(1):
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            params = module.fit(start_params, X, T, epochs=EPOCHS, batch_size=BATCH, lr=LR, seed=SEED)
            derive_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            net = torch_fit(start_params, X, y)
            torch_times.append(time.perf_counter() - t0)

    with torch.no_grad():
        torch_accuracy = float((net(torch.from_numpy(X_test)).argmax(dim=1).numpy() == test.labels).mean())
        torch_params = {"W2": net[0].weight, "b2": net[0].bias, "W3": net[2].weight, "b3": net[2].bias}
        difference = max(float(np.abs(params[k] - v.numpy()).max()) for k, v in torch_params.items())
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}",
        "train_rows": train.rows,
        "test_rows": test.rows,
        "derive_fit_seconds": statistics.median(derive_times),
        "torch_seconds": statistics.median(torch_times),
        "ratio": statistics.median(derive_times) / statistics.median(torch_times),
        "derive_test_accuracy": module.accuracy(params, X_test, test.T),
        "torch_test_accuracy": torch_accuracy,
        "max_parameter_difference": difference,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['machine']}; digits: {train.rows} training rows, {test.rows} held out; medians of {args.repeat}")
    print()
    print("| implementation | 30 epochs, batch 32 | vs PyTorch | held-out accuracy |")
    print("|---|---|---|---|")
    print(
        f"| exported module's fit | {1e3 * result['derive_fit_seconds']:.0f} ms | {result['ratio']:.2f}× "
        f"| {100 * result['derive_test_accuracy']:.2f} % |"
    )
    print(
        f"| PyTorch (float64, 1 thread) | {1e3 * result['torch_seconds']:.0f} ms | 1.00× | {100 * torch_accuracy:.2f} % |"
    )
    print()
    print(f"largest difference between the two trained parameter sets: {difference:.1e}")


if __name__ == "__main__":
    main()
