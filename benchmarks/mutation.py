"""Summarize a `mutmut run` (make mutation): killed/survived per module into benchmarks/results/mutation.json, and
list the survivors. A mutant no unit test runs counts as survived: untested code is what the score is about."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
TARGET = 0.90
# mutmut's own reading of a mutant's exit code; "no tests" and "not checked" count as survived.
KILLED = {"killed", "timeout", "caught by type check"}


def main() -> int:
    metas = sorted(MUTANTS.rglob("*.py.meta"))
    if not metas:
        sys.exit("no mutmut results: run `make mutation`")
    modules: dict[str, dict[str, float]] = {}
    survivors: list[str] = []
    for meta in metas:
        module = str(meta.relative_to(MUTANTS)).removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        statuses = {key: status_by_exit_code[code] for key, code in codes.items()}
        outcome = Counter("killed" if status in KILLED else "survived" for status in statuses.values())
        survivors += [f"{module}: {key} ({status})" for key, status in statuses.items() if status not in KILLED]
        total = outcome["killed"] + outcome["survived"]
        modules[module] = {
            "killed": outcome["killed"],
            "survived": outcome["survived"],
            "score": round(outcome["killed"] / total, 3) if total else 1.0,
        }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"target": TARGET, "modules": modules}, indent=2) + "\n")
    for module, row in modules.items():
        verdict = "ok" if row["score"] >= TARGET else "below target"
        print(
            f"{module:<36} killed {row['killed']:>4}  survived {row['survived']:>4}  score {row['score']:.3f}  {verdict}"
        )
    print(f"\n{len(survivors)} survivors (mutmut show <name> prints one):")
    print("\n".join(f"  {s}" for s in survivors))
    return 0 if all(row["score"] >= TARGET for row in modules.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
