"""Fused row entropy (toolbox) vs the naive torch path (log_softmax, exp, multiply, sum, gather).

Time and peak memory side by side in one run. CPU peak memory is the process's peak RSS growth measured in a
fresh subprocess per method, over a baseline taken once the logits exist (they are generated in place, so no
input-sized temporary inflates the baseline) and the method has run on two rows; on CUDA, torch.cuda.max_memory_allocated, and the fraction of the
card's measured copy bandwidth (one read of the logits vs a device-to-device copy, which reads and writes).

    python bench/bench_entropy.py                       # CPU float32, [4096, 32768] and [1024, 151936]
    python bench/bench_entropy.py --dtypes float32 bfloat16 float16
    python bench/bench_entropy.py --device cuda --shapes 4096x32768 8192x151936
    python bench/bench_entropy.py --numerics            # max errors against float64 (offsets, masks, 16-bit)
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, time_it  # noqa: E402


def naive(x, y):
    import torch

    logp = torch.log_softmax(x, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return entropy, logp.gather(-1, y[:, None])[:, 0]


def fused(x, y):
    from toolbox.entrocraft.fused_entropy import row_entropy

    return row_entropy(x, y)[:2]


def _inputs(rows, vocab, device, dtype):
    import torch

    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.empty(rows, vocab, device=device, dtype=dtype).normal_(0.0, 3.0, generator=gen)
    y = torch.randint(0, vocab, (rows,), generator=gen, device=device)
    return x, y


def measure_cpu_child(method: str, rows: int, vocab: int, repeat: int, dtype: str) -> dict:
    """Run in a fresh process: time and peak RSS growth of one method."""
    import torch

    x, y = _inputs(rows, vocab, "cpu", getattr(torch, dtype))
    fn = fused if method == "fused" else naive
    fn(x[:2], y[:2])  # code paths loaded on first use are not the method's working memory
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = time_it(lambda: fn(x, y), repeat=repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_extra_mb": (peak - base) / 1024}


def run_cpu(shapes, repeat, dtypes):
    rows_out = []
    for (rows, vocab), dtype in itertools.product(shapes, dtypes):
        res = {}
        for method in ("naive", "fused"):
            out = subprocess.run([sys.executable, __file__, "--child", method, f"{rows}x{vocab}", str(repeat), dtype],
                                 capture_output=True, text=True, check=True)
            res[method] = json.loads(out.stdout)
        input_mb = rows * vocab * (4 if dtype == "float32" else 2) / 2**20
        rows_out.append({"device": "cpu", "shape": f"{rows}x{vocab}", "dtype": dtype, "input_mb": input_mb,
                         "naive_s": res["naive"]["seconds"], "fused_s": res["fused"]["seconds"],
                         "speedup": res["naive"]["seconds"] / res["fused"]["seconds"],
                         "naive_peak_extra_mb": res["naive"]["peak_extra_mb"],
                         "fused_peak_extra_mb": res["fused"]["peak_extra_mb"]})
    return rows_out


def run_cuda(shapes, repeat, dtypes):
    import torch

    name = torch.cuda.get_device_name(0)
    out = []
    for rows, vocab in shapes:
        for dtype in dtypes:
            x, y = _inputs(rows, vocab, "cuda", dtype)
            sync = torch.cuda.synchronize
            copy_s = time_it(x.clone, repeat=repeat, sync=sync)
            copy_bw = 2 * x.numel() * x.element_size() / copy_s  # bytes read + written per second
            res = {}
            for label, fn in (("naive", naive), ("fused", fused)):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
                seconds = time_it(functools.partial(fn, x, y), repeat=repeat, sync=sync)
                res[label] = (seconds, (torch.cuda.max_memory_allocated() - before) / 2**20)
            fused_bw = x.numel() * x.element_size() / res["fused"][0]
            out.append({"device": name, "shape": f"{rows}x{vocab}", "dtype": str(dtype).removeprefix("torch."),
                        "input_mb": x.numel() * x.element_size() / 2**20,
                        "naive_s": res["naive"][0], "fused_s": res["fused"][0],
                        "speedup": res["naive"][0] / res["fused"][0],
                        "naive_peak_extra_mb": res["naive"][1], "fused_peak_extra_mb": res["fused"][1],
                        "copy_bandwidth_gbs": copy_bw / 1e9, "fused_bandwidth_gbs": fused_bw / 1e9,
                        "fraction_of_copy_bw": fused_bw / copy_bw})
            del x, y
    return out


def numerics(device: str) -> list[dict]:
    """Max |error| of (H, log p, lse) against the float64 reference, for the fused path and torch float32."""
    import torch

    from toolbox.entrocraft.fused_entropy import row_entropy, row_entropy_reference

    gen = torch.Generator().manual_seed(0)
    base = 3 * torch.randn(64, 32768, generator=gen)
    y = torch.randint(0, 32768, (64,), generator=gen)
    masked, leading = base.clone(), base.clone()
    masked[:16, ::3] = masked[16:32, :4100] = masked[32:48, 1:] = float("-inf")  # scattered, > 2 blocks, one left
    leading[:, :2048] = float("-inf")
    cases = [("3 randn", base), ("3 randn + 1e3", base + 1e3), ("3 randn + 1e4", base + 1e4),
             ("300 randn (x100)", 100 * base), ("-inf masks", masked), ("first 2048 -inf", leading),
             ("3 randn bfloat16", base.bfloat16()), ("3 randn float16", base.half())]

    def torch_f32(x, y):
        logp = torch.log_softmax(x.float(), -1)
        return -(logp.exp() * logp).sum(-1), logp.gather(-1, y[:, None])[:, 0], torch.logsumexp(x.float(), -1)

    def max_err(got, want):  # equal infinities count as exact; any NaN shows as nan
        return [(g.double().cpu() - w).abs().masked_fill(g.double().cpu() == w, 0).max().item()
                for g, w in zip(got, want)]

    rows = []
    for name, x in cases:
        want = row_entropy_reference(x.double(), y)
        xd, yd = x.to(device), y.to(device)
        for method, out in (("fused", row_entropy(xd, yd)), ("torch float32", torch_f32(xd, yd))):
            rows.append({"logits": name, "method": method,
                         **dict(zip(("entropy_err", "logp_err", "lse_err"), max_err(out, want)))})
    return rows


def parse_shape(text: str) -> tuple[int, int]:
    rows, vocab = text.lower().split("x")
    return int(rows), int(vocab)


def main(argv=None):
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        method, shape, repeat, dtype = sys.argv[2], parse_shape(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        print(json.dumps(measure_cpu_child(method, *shape, repeat, dtype)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--shapes", nargs="+", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dtypes", nargs="+", default=None, choices=["float32", "bfloat16", "float16"],
                    help="logit dtypes (default: float32 on CPU, float32 and bfloat16 on CUDA)")
    ap.add_argument("--numerics", action="store_true", help="print the error table instead of timing")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.numerics:
        rows = numerics(args.device)
    elif args.device == "cuda":
        import torch

        shapes = [parse_shape(s) for s in (args.shapes or ["4096x32768", "8192x151936"])]
        rows = run_cuda(shapes, args.repeat, [getattr(torch, d) for d in (args.dtypes or ["float32", "bfloat16"])])
    else:
        shapes = [parse_shape(s) for s in (args.shapes or ["4096x32768", "1024x151936"])]
        rows = run_cpu(shapes, args.repeat, args.dtypes or ["float32"])
    cols = list(rows[0])
    print(markdown_table(cols, [[r[c] for c in cols] for r in rows]))
    if args.json:
        from toolbox.core.io import write_json

        write_json(args.json, rows)


if __name__ == "__main__":
    main()
