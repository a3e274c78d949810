"""Speed of finite-horizon backward induction (shape-reward's planner): naive Python loops, the numpy reference,
the C++ kernel and, when importable, pymdptoolbox's FiniteHorizon (the classic MDP toolbox; hard VI only).

    .venv/bin/python bench/bench_shaping.py [--json out.json] [--repeat 5]
    PYTHONPATH=/path/to/pymdptoolbox .venv/bin/python bench/bench_shaping.py     # adds the anchor column

Every method is checked against the numpy reference before it is timed. numpy and the C++ kernel alternate (median
of --repeat rounds). "read fraction": the kernel reads P once per step, H P.nbytes in all, against a numpy sum over
an array of P's size timed in the same run (1 = the kernel streams P as fast as numpy reads it).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from toolbox.core.io import write_json
from toolbox.shaping import mdp, native
from toolbox.shaping.envs import deepsea, random_mdp, riverswim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, load_average  # noqa: E402


def naive_backward_induction(R, P, H, T):
    """The textbook triple loop (per step, state, action and next state) in plain Python."""
    S, A = R.shape
    R, P = R.tolist(), P.tolist()
    V = [[0.0] * S for _ in range(H + 1)]
    for h in range(H - 1, -1, -1):
        for s in range(S):
            q = [R[s][a] + sum(P[s][a][t] * V[h + 1][t] for t in range(S)) for a in range(A)]
            if T == 0:
                V[h][s] = max(q)
            else:
                m = max(q)
                V[h][s] = m + T * math.log(sum(math.exp((x - m) / T) for x in q))
    return np.array(V)


def mdptoolbox_backward_induction(R, P, H):
    import mdptoolbox.mdp

    fh = mdptoolbox.mdp.FiniteHorizon(np.ascontiguousarray(P.transpose(1, 0, 2)), R, 1.0, H)
    fh.run()
    return fh.V.T  # its V[:, h] is the value at stage h, ours V[h]


def best_time(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        import mdptoolbox.mdp  # noqa: F401
        has_anchor = True
    except ImportError:
        has_anchor = False
    cases = [("riverswim S=6 A=2 H=20", riverswim(), 20), ("deepsea-12 S=145 A=2 H=12", deepsea(12), 12),
             ("random S=200 A=4 H=50", random_mdp(200, 4, 50, seed=0), 50)]
    print(f"median of {args.repeat} alternated rounds (numpy, C++); {load_average()}")
    rows = []
    for label, env, H in cases:
        for T in (0.0, 0.1):
            fns = {"numpy": lambda: mdp.backward_induction(env.R, env.P, H, T),
                   "native": lambda: native.backward_induction(env.R, env.P, H, T)}
            V_ref, V_nat = fns["numpy"]()[1], fns["native"]()[1]
            sec = alternate(fns, args.repeat)
            naive_t, V_naive = best_time(lambda: naive_backward_induction(env.R, env.P, H, T), 1)
            for V in (V_nat, V_naive):
                assert np.allclose(V, V_ref, atol=1e-9)
            # each step reads P once: H P.nbytes against one numpy read of an array of P's size (cache-resident
            # for the small cases)
            p_sized = np.ones(env.P.size)
            read_s = alternate({"sum": lambda: p_sized.sum()}, args.repeat)["sum"]
            row = {"case": label, "temperature": T, "naive_python_s": naive_t, "numpy_s": sec["numpy"],
                   "native_s": sec["native"], "native_read_fraction": H * read_s / sec["native"]}
            if has_anchor and T == 0:
                row["mdptoolbox_s"], V_tb = best_time(lambda: mdptoolbox_backward_induction(env.R, env.P, H),
                                                      args.repeat)
                assert np.allclose(V_tb, V_ref, atol=1e-9)
            rows.append(row)
    # A batch of posterior models (as PSRL / the generalised VI plan with): 256 RiverSwim-sized MDPs.
    rng = np.random.default_rng(0)
    R = rng.random((256, 6, 2))
    P = rng.dirichlet(np.ones(6), (256, 6, 2))
    for T in (0.0, 0.1):
        fns = {"numpy": lambda: mdp.backward_induction(R, P, 20, T),
               "native": lambda: native.backward_induction(R, P, 20, T)}
        assert np.allclose(fns["native"]()[1], fns["numpy"]()[1], atol=1e-9)
        sec = alternate(fns, args.repeat)
        rows.append({"case": "batch of 256 MDPs S=6 A=2 H=20", "temperature": T, "numpy_s": sec["numpy"],
                     "native_s": sec["native"]})
    cols = ["naive_python_s", "numpy_s", "native_s", "mdptoolbox_s"]
    print(f"{'case':34s} {'T':>4s} " + " ".join(f"{c:>15s}" for c in cols) + f" {'numpy/native':>13s}"
          f" {'read fraction':>14s}")
    for r in rows:
        cells = " ".join(f"{r[c] * 1e3:13.3f}ms" if c in r else f"{'-':>15s}" for c in cols)
        frac = f"{r['native_read_fraction']:14.2f}" if "native_read_fraction" in r else f"{'-':>14s}"
        print(f"{r['case']:34s} {r['temperature']:4.1f} {cells} {r['numpy_s'] / r['native_s']:12.1f}x {frac}")
    print(f"after: {load_average()}")
    if args.json:
        write_json(args.json, {"native_available": native.available(), "rows": rows})


if __name__ == "__main__":
    main()
