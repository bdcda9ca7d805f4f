"""Full-batch gradient descent on a large synthetic data set: one process against a Dask cluster.

A 64-30-10 sigmoid/softmax network (the digits example) on N rows of Gaussian
inputs labelled by a random teacher network. Three ways to run the same steps,
timed in this run:

- the NumPy module on NumPy arrays, in this process (BLAS uses every core);
- the array-API module on the Dask array in this process (Dask's threads);
- the array-API module on a dask.distributed.LocalCluster of worker processes,
  the rows persisted on the workers in chunks; each step is one graph whose
  gradient reductions run on the workers, and only the parameters come back.

    python benchmarks/dask_full_batch.py [--rows 1000000] [--steps 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import dask
import dask.array as da
import numpy as np
from dask.distributed import Client, LocalCluster

from derive.app.api import Model
from derive.codegen.modules import compile_module, vector_module


def teacher_labels(X: da.Array) -> da.Array:
    W = np.random.default_rng(1).normal(size=(64, 10))
    return da.argmax(X @ W, axis=1)


def timed_steps(step, params, steps):
    """Median seconds per step and the final parameters."""
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        params = step(params)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=125_000)
    args = parser.parse_args()

    model = Model.load("digits")
    numpy_module = compile_module(vector_module(model), "digits")
    api = compile_module(vector_module(model, "array-api"), "digits_api")
    start = numpy_module.init_params()
    lr = 0.5

    dX = da.random.default_rng(0).normal(size=(args.rows, 64), chunks=(args.chunk, 64))
    dT = da.eye(10, chunks=10)[teacher_labels(dX)].rechunk((args.chunk, 10))
    X, T = dask.compute(dX, dT)
    print(
        f"{args.rows} rows × 64 inputs ({X.nbytes / 2**20:.0f} MiB), {args.steps} full-batch steps, {os.cpu_count()} CPUs"
    )

    one, p_numpy = timed_steps(lambda p: numpy_module.train_step(p, X, T, lr), start, args.steps)
    dX_local, dT_local = da.from_array(X, chunks=(args.chunk, 64)), da.from_array(T, chunks=(args.chunk, 10))
    threads, p_threads = timed_steps(
        lambda p: dask.compute(api.train_step(p, dX_local, dT_local, lr))[0], start, args.steps
    )
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        cX, cT = dask.persist(dX, dT)  # generated on the workers, and kept there
        cluster_time, p_cluster = timed_steps(
            lambda p: dask.compute(api.train_step(p, cX, cT, lr))[0], start, args.steps
        )
    difference = max(float(np.abs(p[k] - p_numpy[k]).max()) for p in (p_threads, p_cluster) for k in p_numpy)
    print()
    print("| where | per full-batch step | vs one process |")
    print("|---|---|---|")
    print(f"| NumPy module, one process | {one:.3f} s | 1.00× |")
    print(f"| array-API module, Dask threads, one process | {threads:.3f} s | {threads / one:.2f}× |")
    print(
        f"| array-API module, LocalCluster ({args.workers} worker processes) | {cluster_time:.3f} s | {cluster_time / one:.2f}× |"
    )
    print()
    print(f"largest difference from the NumPy parameters after {args.steps} steps: {difference:.1e}")


if __name__ == "__main__":
    main()
