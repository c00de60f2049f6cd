"""The lint corpus: one small Dockerfile per construct BuildKit accepts and per rule refinement, each declaring the
findings it must produce (``# expect: SW001@3 SW002@3`` or ``# expect: nothing``). ``*.pass.Dockerfile`` files are the
compliant cases, ``*.fail.Dockerfile`` the non-compliant ones (cdk-nag's shape: one rule, both cases)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.config import load
from pipeline.lint import LintInputError, lint_file
from pipeline.lint.policy import policy_for
from tests.conftest import EXAMPLE

CORPUS = Path(__file__).parent / "lint_corpus"
POLICY = policy_for(load(EXAMPLE), [])
_EXPECT = re.compile(rb"^(?:\xef\xbb\xbf)?# expect: (?P<what>[^-]*?) --", re.M)


def expected(path: Path) -> list[tuple[str, int]]:
    match = _EXPECT.search(path.read_bytes())
    assert match is not None, f"{path.name} declares no '# expect:' line"
    words = match["what"].decode().split()
    if words == ["nothing"]:
        return []
    return [(rule, int(line)) for rule, _, line in (w.partition("@") for w in words)]


CASES = sorted(CORPUS.glob("*.Dockerfile"))


_REFUSED = re.compile(rb'^# expect: exit 2 at (?P<line>\d+) "(?P<message>[^"]+)" --', re.M)


@pytest.mark.parametrize("path", CASES, ids=[p.name.removesuffix(".Dockerfile") for p in CASES])
def test_corpus_file_gives_exactly_its_declared_findings(path: Path) -> None:
    if path.name.endswith(".error.Dockerfile"):  # what BuildKit refuses: exit 2, file and line named
        match = _REFUSED.search(path.read_bytes())
        assert match is not None, f"{path.name} declares no '# expect: exit 2 at LINE \"message\"' line"
        where = f"{path}:{int(match['line'])}: "
        with pytest.raises(LintInputError, match=re.escape(where) + ".*" + re.escape(match["message"].decode())):
            lint_file(path, POLICY, hadolint=False)
        return
    target = "runtime" if path.name.startswith("target-") else ""
    # As the Lint job runs it: hadolint on, with the rules Slipway supersedes turned off; a note fails nothing.
    findings = [f for f in lint_file(path, POLICY, hadolint=True, target=target) if f.level != "note"]
    assert [(f.rule, f.line) for f in findings] == expected(path)
    assert (findings == []) == path.name.endswith(".pass.Dockerfile")


def test_every_slipway_rule_has_a_passing_and_a_failing_case() -> None:
    from pipeline.lint.rules import RULES

    names = [p.name for p in CASES]
    for rule in ("sw003", "sw005", "sw007", "sw008", "sw009"):
        assert any(n.startswith(rule) and ".pass." in n for n in names), rule
        assert any(n.startswith(rule) and ".fail." in n for n in names), rule
    findings = [p for p in CASES if not p.name.endswith(".error.Dockerfile")]
    assert {r.id for r in RULES} <= {rule for p in findings for rule, _ in expected(p)} | {"SW004"}
