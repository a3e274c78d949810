"""Fuzz census for docs/reliability.md: tally the fuzz cases of tests/test_fuzz_bindings.py. Each binding's cases run in a worker process (hypothesis,
derandomized, so the case sequence is fixed); a worker that dies is a crash, one silent for 10 s a hang; the
worker is restarted after the offending case. Usage: python scripts/fuzz_census.py N  (cases per binding)."""
import collections, os, subprocess, sys, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
TIMEOUT = 10.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r'''
import sys
sys.path.insert(0, "tests")
from hypothesis import HealthCheck, given, settings
import test_fuzz_bindings as fz
binding, n, skip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
state = {"i": 0}

def classify(case):
    try:
        out = case.fn()
    except ValueError:
        return "clean" if case.check is None else "spurious_error"
    except RuntimeError as e:
        if case.check is None and "without CUDA" in str(e):
            return "accepted_nonsense"
        return "unclean_error"
    except Exception as e:
        return "unclean_error"
    if case.check is None:
        return "accepted_nonsense"
    try:
        case.check(out)
        return "correct"
    except AssertionError:
        return "wrong_result"

@settings(max_examples=n, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(fz.CASES[binding])
def go(case):
    i = state["i"]
    state["i"] += 1
    if i < skip:
        return
    print(f"start {i} {case.name}", flush=True)
    print(f"done {i} {classify(case)} {case.name}", flush=True)
go()
print("end", flush=True)
'''

import select


def _ready(p):
    return bool(select.select([p.stdout], [], [], 0.05)[0])


def run_binding(binding):
    results, skip = [], 0
    while True:
        p = subprocess.Popen([f"{ROOT}/.venv/bin/python", "-c", WORKER, binding, str(N), str(skip)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        os.set_blocking(p.stdout.fileno(), False)
        current, last, buf = None, time.time(), ""
        while True:
            chunk = os.read(p.stdout.fileno(), 65536).decode() if _ready(p) else ""
            if chunk:
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    parts = line.split()
                    if parts[0] == "start":
                        current = (int(parts[1]), parts[2])
                        last = time.time()
                    elif parts[0] == "done":
                        results.append((parts[2], parts[3]))
                        current = None
                    elif parts[0] == "end":
                        p.wait()
                        return results
            if p.poll() is not None and not chunk and not _ready(p):
                if current is None:
                    return results
                results.append((f"crash(rc {p.returncode})", current[1]))
                skip = current[0] + 1
                break
            if current is not None and time.time() - last > TIMEOUT:
                p.kill()
                p.wait()
                results.append(("hang", current[1]))
                skip = current[0] + 1
                break
            time.sleep(0.01)

sys.path.insert(0, f"{ROOT}/tests")
os.chdir(ROOT)
import test_fuzz_bindings as fz  # noqa: E402
total = collections.Counter()
for binding in sorted(fz.CASES):
    res = run_binding(binding)
    c = collections.Counter(r for r, _ in res)
    total.update(c)
    bad = collections.Counter(f"{name}:{r}" for r, name in res if r not in ("clean", "correct"))
    print(f"{binding}: {dict(c)} {dict(bad) if bad else ''}", flush=True)
print("TOTAL cases", sum(total.values()), dict(total), flush=True)
