"""SARIF 2.1.0 output, so findings show up in code-scanning UIs (GitHub, CodeCatalyst, IDEs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.lint import HADOLINT_WIKI
from pipeline.lint.rules import RULES, Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note", "style": "note"}


def to_sarif(findings: Sequence[Finding]) -> dict[str, Any]:
    rules = [{"id": r.id, "shortDescription": {"text": r.title}, "help": {"text": r.fix}} for r in RULES]
    known = {r.id for r in RULES}
    for rule in sorted({f.rule for f in findings} - known):
        rules.append(
            {
                "id": rule,
                "shortDescription": {"text": rule},
                "helpUri": f"{HADOLINT_WIKI}{rule}",
            }
        )
    results = [
        {
            "ruleId": f.rule,
            "level": _LEVEL.get(f.level, "warning"),
            "message": {"text": f"{f.message} (fix: {f.fix})"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path},
                        "region": {"startLine": max(f.line, 1)},
                    }
                }
            ],
        }
        for f in findings
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "slipway-lint",
                        "informationUri": "https://github.com/hadolint/hadolint",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
