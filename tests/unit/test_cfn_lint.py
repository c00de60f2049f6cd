"""cfn-lint over every synthesized template, info-level rules included: no errors, and no IAM action whose service
prefix does not match its resource (I3510: the first push would stop at Source)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

# What cfn-lint reports on CDK's own output, each with why it stays.
ACCEPTED = {
    "I1022": "CDK renders ARNs as Fn::Join with an empty delimiter, not Fn::Sub",
    "W3005": "CDK adds DependsOn that CloudFormation would infer",
    "W3045": "CDK's access-log bucket grants log delivery with the AccessControl property",
}


def test_cfn_lint_finds_nothing_but_cdks_own_style(synthesized: dict[str, Any]) -> None:
    templates = sorted(str(p) for p in Path(synthesized["assembly"].directory).glob("*.template.json"))
    assert templates
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--include-checks", "I", "--format", "json", "--", *templates],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    findings = json.loads(completed.stdout or "[]")
    unexpected = [
        f"{f['Filename']}: {f['Rule']['Id']} {f['Message']}" for f in findings if f["Rule"]["Id"] not in ACCEPTED
    ]
    assert unexpected == []
    assert not [f for f in findings if f["Level"] == "Error"]
