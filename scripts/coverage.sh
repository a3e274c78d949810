#!/usr/bin/env bash
# Line + branch coverage of the default test suite (-m "not slow"), the CLI runs in subprocesses included.
# Configuration: [tool.coverage.*] in pyproject.toml (patch = subprocess, parallel, source = toolbox + toolbox.cli).
# Usage: scripts/coverage.sh [extra pytest args]     (e.g. scripts/coverage.sh tests/test_core_infra.py)
# Output: the per-module table on stdout; data in build/coverage/ (`.venv/bin/coverage html` for an HTML view).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PYTEST=${PYTEST:-.venv/bin/pytest}
mkdir -p build/coverage
export COVERAGE_FILE="$PWD/build/coverage/.coverage"   # absolute: children run with other working directories
rm -f build/coverage/.coverage build/coverage/.coverage.*
# The report maps line numbers onto the files as they are at the end: a source edited during the run gives
# meaningless numbers for that file. Fingerprint the sources before and compare after.
fingerprint() { find toolbox cli -name '*.py' -print0 | sort -z | xargs -0 sha1sum; }
fingerprint > build/coverage/sources.before
# Run the pytest script, not `-m pytest`: `-m` would put the repository root on sys.path and import the source
# folder toolbox/ instead of the installed package (see tests/conftest.py).
# Ctrl-C is restored first: a background job (`scripts/coverage.sh &`) starts with SIGINT ignored, which every child
# inherits, and the tests that interrupt a run with SIGINT would then fail.
"$PY" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$PY" -m coverage run "$PYTEST" -m "not slow" -q -p no:cacheprovider "$@"
status=$?
"$PY" -m coverage combine -q || exit 1
fingerprint > build/coverage/sources.after
if ! cmp -s build/coverage/sources.before build/coverage/sources.after; then
    echo "coverage.sh: WARNING: sources changed during the run; their numbers are not valid (exit 3):" >&2
    diff build/coverage/sources.before build/coverage/sources.after | sed -n 's/^[<>] [0-9a-f]*  //p' | sort -u >&2
    status=3
fi
"$PY" -m coverage report --sort=cover
"$PY" -m coverage json -q -o build/coverage/coverage.json
# The same numbers as a Markdown table with lines and branches apart (the "Cover" column above mixes them);
# modules under 85% of their lines are marked. This is the table in docs/developing.md#coverage.
"$PY" - build/coverage/coverage.json <<'PYEOF'
import json, sys

data = json.load(open(sys.argv[1]))
files, t = data["files"], data["totals"]


def pct(hit, total):
    return 100.0 * hit / total if total else 100.0


print("\nPer module (⚠: under 85% of lines):\n\n| module | statements | lines % | branches | branches % |\n"
      "|---|---:|---:|---:|---:|")
for name in sorted(files, key=lambda n: (not n.startswith("cli/"), n)):
    s = files[name]["summary"]
    lines = pct(s["covered_lines"], s["num_statements"])
    print(f"| `{name}` | {s['num_statements']} | {lines:.1f}{' ⚠' if lines < 85 else ''} | {s['num_branches']} | "
          f"{pct(s['covered_branches'], s['num_branches']):.1f} |")
print(f"| **total** | {t['num_statements']} | **{pct(t['covered_lines'], t['num_statements']):.1f}** | "
      f"{t['num_branches']} | **{pct(t['covered_branches'], t['num_branches']):.1f}** |")
PYEOF
exit $status
