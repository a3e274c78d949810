"""Census of the CLI bad-input matrix (tests/test_bad_input_matrix.py) by outcome, for docs/reliability.md.

Each case is classified by what a user sees, whatever the wording: clean (exit 2, one line of ours or click's usage
error, no traceback, nothing written), accepted (exit 0: the bad input ran), exit-1 (a failure instead of a
rejection), left-files (rejected, but a run folder or file was written) or traceback.
Usage: python scripts/bad_input_census.py [--json]
"""
from __future__ import annotations

import collections
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    import test_bad_input_matrix as matrix

    tally, worst = collections.Counter(), collections.defaultdict(list)
    for name, kind, extra, _ in matrix._cases():
        with tempfile.TemporaryDirectory() as tmp:
            result, work = matrix.run_case(Path(tmp), name, kind, extra)
            out = result.output.strip()
            if "Traceback" in out or (result.exception and not isinstance(result.exception, SystemExit)):
                outcome = "traceback"
            elif result.exit_code == 0:
                outcome = "accepted"
            elif result.exit_code != 2:
                outcome = "exit-1"
            elif list(work.iterdir()):
                outcome = "left-files"
            elif out.startswith("error:") and len(out.splitlines()) > 1:
                outcome = "multi-line"
            else:
                outcome = "clean"
            tally[outcome] += 1
            if outcome != "clean":
                worst[outcome].append(f"{name} / {kind}")
    doc = {"cases": sum(tally.values()), **dict(tally), "examples": {k: v[:6] for k, v in worst.items()}}
    print(json.dumps(doc, indent=1) if "--json" in sys.argv else doc)


if __name__ == "__main__":
    main()
