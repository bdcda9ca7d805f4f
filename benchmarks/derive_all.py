"""Time deriving every gradient of width-4 networks of growing depth.

Each run builds the symbolic network from its spec and derives ∂E/∂p for
every weight and bias (paths or δ form, with every factor evaluated). A
δ-structured derivation is linear in the number of parameters: the table
reports the time per parameter, which should stay about flat with depth.

    python benchmarks/derive_all.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from derive.codegen.engine import Compiled
from derive.core.chain import derive_all
from derive.core.network import Network
from derive.spec.reading import parse_spec


def spec_text(depth: int, width: int = 4) -> str:
    hidden = "\n".join([f"[[layers]]\nsize = {width}\nactivation = 'tanh'\nbias = 'per_neuron'"] * depth)
    values = ", ".join(str(0.1 * (k + 1)) for k in range(width))
    targets = ", ".join(str(0.2 * k) for k in range(width))
    return (
        f"name = 'deep{depth}'\n[loss]\nkind = 'half_sse'\n[init]\nseed = 1\n"
        f"[[layers]]\nsize = {width}\nvalues = [{values}]\n{hidden}\n"
        f"[[layers]]\nsize = {width}\nactivation = 'sigmoid'\nbias = 'per_neuron'\ntargets = [{targets}]\n"
    )


def run(depth: int) -> tuple[float, float, int]:
    """(total seconds: spec → network → numbers → every derivation, seconds in derive_all, parameters)."""
    start = time.perf_counter()
    network = Network(parse_spec(spec_text(depth)))
    point = Compiled(network).point()
    middle = time.perf_counter()
    derivations = derive_all(network, point)
    end = time.perf_counter()
    assert all(d.value is not None for d in derivations.values())
    return end - start, end - middle, len(derivations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run(2)  # warm caches (rule derivatives) and imports
    rows = []
    for depth in (4, 8, 16):
        totals, derives = [], []
        for _ in range(args.repeat):
            total, derive_only, n_params = run(depth)
            totals.append(total)
            derives.append(derive_only)
        median = statistics.median(totals)
        rows.append(
            {
                "depth": depth,
                "parameters": n_params,
                "seconds": median,
                "derive_all_seconds": statistics.median(derives),
                "ms_per_parameter": 1000 * median / n_params,
            }
        )
    if args.json:
        print(json.dumps({"machine": platform.platform(), "python": platform.python_version(), "rows": rows}, indent=2))
        return
    print(f"derive_all on width-4 networks ({platform.python_version()}, {platform.machine()})")
    print("| hidden layers | parameters | total (median) | of which derive_all | per parameter | total vs depth 4 |")
    print("|---|---|---|---|---|---|")
    base = rows[0]["seconds"]
    for r in rows:
        print(
            f"| {r['depth']} | {r['parameters']} | {r['seconds'] * 1000:.0f} ms | {r['derive_all_seconds'] * 1000:.0f} ms"
            f" | {r['ms_per_parameter']:.2f} ms | {r['seconds'] / base:.2f}× |"
        )


if __name__ == "__main__":
    main()
