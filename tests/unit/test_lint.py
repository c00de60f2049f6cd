"""The Dockerfile policy gate: one failing example per rule, clean Dockerfiles pass, SARIF is valid."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.commands.lint import lint
from pipeline.config import load
from pipeline.lint import LintInputError, lint_file
from pipeline.lint.policy import policy_for
from pipeline.lint.rules import RULES
from pipeline.lint.sarif import to_sarif
from tests.conftest import EXAMPLE, ROOT

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
POLICY = policy_for(load(EXAMPLE), [])
CLEAN = f"""\
FROM 127.0.0.1:5000/docker-hub/library/python:3.12-slim@{D1} AS build
WORKDIR /src
COPY requirements.txt ./
RUN pip install --no-cache-dir --prefix=/install -r requirements.txt
COPY . .

FROM 127.0.0.1:5000/payments/bases/python@{D2}
COPY --from=build /install /usr/local
COPY --from=build /src /app
USER 65534:65534
ENTRYPOINT ["python", "-m", "app"]
"""

VIOLATIONS = {
    "SW001": CLEAN.replace("127.0.0.1:5000/docker-hub/library/python:3.12-slim", "docker.io/library/python:3.12-slim"),
    "SW002": CLEAN.replace(f"127.0.0.1:5000/payments/bases/python@{D2}", "127.0.0.1:5000/payments/bases/python:3.12"),
    "SW003": CLEAN.replace(
        "USER 65534",
        "RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*\nUSER 65534",
    ),
    "SW004": CLEAN.replace('ENTRYPOINT ["python", "-m", "app"]', "ENTRYPOINT python -m app"),
    "SW005": CLEAN.replace("WORKDIR /src", "ARG NPM_TOKEN\nWORKDIR /src"),
    "SW006": CLEAN.replace("--no-cache-dir ", ""),
    "SW007": CLEAN.replace(
        "COPY requirements.txt ./\nRUN pip install --no-cache-dir --prefix=/install -r requirements.txt\nCOPY . .",
        "COPY . .\nRUN pip install --no-cache-dir --prefix=/install -r requirements.txt",
    ),
    "SW008": CLEAN.replace("USER 65534:65534\n", ""),
    "SW009": CLEAN.replace("COPY . .\n", "COPY . .\nADD https://example.com/tool.tgz /opt/\n"),
}


def write(tmp_path: Path, text: str, name: str = "Dockerfile") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_clean_dockerfile_has_no_findings_including_hadolint(tmp_path: Path) -> None:
    assert lint_file(write(tmp_path, CLEAN), POLICY) == []


def test_every_rule_has_a_failing_example() -> None:
    assert sorted(VIOLATIONS) == sorted(r.id for r in RULES)


@pytest.mark.parametrize("rule", sorted(VIOLATIONS))
def test_each_violation_trips_exactly_its_rule_with_line_and_fix(tmp_path: Path, rule: str) -> None:
    findings = lint_file(write(tmp_path, VIOLATIONS[rule]), POLICY, hadolint=False)
    assert [f.rule for f in findings] == [rule]
    assert findings[0].line >= 1 and findings[0].fix
    assert str(findings[0]).startswith(f"{tmp_path / 'Dockerfile'}:{findings[0].line}: {rule} ")


def test_secret_file_copy_is_caught(tmp_path: Path) -> None:
    text = CLEAN.replace("COPY requirements.txt ./", "COPY .npmrc requirements.txt ./")
    assert [f.message for f in lint_file(write(tmp_path, text), POLICY, hadolint=False)] == [
        "COPY of secret file '.npmrc' puts it in a layer (deleting it later does not remove it)"
    ]


def test_latest_and_untagged_bases_are_named(tmp_path: Path) -> None:
    text = 'FROM 127.0.0.1:5000/docker-hub/library/alpine:latest\nUSER 1\nCMD ["x"]\n'
    messages = [f.message for f in lint_file(write(tmp_path, text), POLICY, hadolint=False)]
    assert messages == ["base image '127.0.0.1:5000/docker-hub/library/alpine:latest' uses 'latest'; pin it by digest"]


def test_build_args_resolve_from_lines(tmp_path: Path) -> None:
    text = 'ARG BASE\nFROM ${BASE}\nUSER 1\nCMD ["x"]\n'
    path = write(tmp_path, text)
    assert [f.rule for f in lint_file(path, POLICY, hadolint=False)] == ["SW002"]
    pinned = {"BASE": f"127.0.0.1:5000/docker-hub/library/busybox@{D1}"}
    assert lint_file(path, POLICY, pinned, hadolint=False) == []


def test_suppression_needs_a_reason(tmp_path: Path) -> None:
    with_reason = VIOLATIONS["SW004"].replace(
        "ENTRYPOINT python",
        "# slipway-ignore SW004: the base's shell wrapper forwards signals\nENTRYPOINT python",
    )
    assert [f.rule for f in lint_file(write(tmp_path, with_reason), POLICY, hadolint=False)] == []
    without = VIOLATIONS["SW004"].replace("ENTRYPOINT python", "# slipway-ignore SW004\nENTRYPOINT python")
    assert [f.rule for f in lint_file(write(tmp_path, without), POLICY, hadolint=False)] == ["SW000", "SW004"]


def test_sarif_output_is_valid_sarif_2_1_0(tmp_path: Path) -> None:
    schema_path = ROOT / "node_modules" / "@microsoft" / "jest-sarif" / "lib" / "schemas" / "sarif-2.1.0-rtm.5.json"
    schema = json.loads(schema_path.read_text())
    # SW004 and a hadolint rule Slipway keeps (DL3020: ADD of a local file).
    text = VIOLATIONS["SW004"].replace("WORKDIR /src", "WORKDIR /src\nADD app.cfg /etc/app.cfg")
    findings = lint_file(write(tmp_path, text), POLICY)
    document = to_sarif(findings)
    jsonschema.validate(document, schema)
    assert {r["ruleId"] for r in document["runs"][0]["results"]} >= {"SW004", "DL3020"}


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write(tmp_path, CLEAN, "Dockerfile.clean")
    bad = write(tmp_path, VIOLATIONS["SW008"], "Dockerfile.bad")
    assert lint(paths=[clean], config_path=EXAMPLE, allow=[], build_args={}) == 0
    assert lint(paths=[bad], config_path=EXAMPLE, allow=[], build_args={}) == 1
    assert "SW008 final stage sets no USER" in capsys.readouterr().out
    with pytest.raises(LintInputError, match=r"missing: no such file or directory"):
        lint(paths=[tmp_path / "missing"], config_path=EXAMPLE, allow=[], build_args={})


def test_unparseable_dockerfile_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(LintInputError, match=r"Dockerfile: no FROM instruction"):
        lint_file(write(tmp_path, "RUN echo hi\n"), POLICY)


def test_local_registry_on_another_port_is_the_platform_registry(tmp_path: Path) -> None:
    policy = policy_for(load(EXAMPLE), [], local_registry="127.0.0.1:51449")
    text = CLEAN.replace("127.0.0.1:5000", "127.0.0.1:51449")
    assert lint_file(write(tmp_path, text), policy, hadolint=False) == []
    assert [f.rule for f in lint_file(write(tmp_path, text), POLICY, hadolint=False)] == ["SW001", "SW001"]


def test_discovery_finds_every_dockerfile_name_and_skips_dependencies(tmp_path: Path) -> None:
    from pipeline.lint import dockerfiles

    names = ["Dockerfile", "dockerfile", "Dockerfile.dev", "svc/api.Dockerfile", "Containerfile", "x/CONTAINERFILE"]
    ignored = ["Dockerfile.dockerignore", "Dockerfile.md", "node_modules/pkg/Dockerfile", "vendor/lib/Dockerfile",
               ".venv/Dockerfile", "README.md"]  # fmt: skip
    for name in names + ignored:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(CLEAN)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in dockerfiles([tmp_path])) == sorted(names)


def test_fails_when_no_dockerfile_is_found(tmp_path: Path) -> None:
    from pipeline.cli import main

    (tmp_path / "Dockerfile.md").write_text("# not a Dockerfile\n")
    with pytest.raises(LintInputError, match=r"no Dockerfile found \(looked for Dockerfile, Dockerfile\.\*"):
        lint(paths=[tmp_path], config_path=EXAMPLE, allow=[], build_args={})
    assert main(["lint", str(tmp_path), "--config", str(EXAMPLE)]) == 2


def test_fails_on_an_unreadable_file_but_lints_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, VIOLATIONS["SW008"], "Dockerfile.bad")
    write(tmp_path, "RUN echo no stage\n", "Dockerfile.nofrom")
    (tmp_path / "Dockerfile.utf16").write_bytes("FROM x\n".encode("utf-16"))
    assert lint(paths=[tmp_path], config_path=EXAMPLE, allow=[], build_args={}, output="sarif") == 2
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert [r["ruleId"] for r in document["runs"][0]["results"]] == ["SW008"]
    assert f"error: {tmp_path / 'Dockerfile.nofrom'}: no FROM instruction" in captured.err
    assert f"error: {tmp_path / 'Dockerfile.utf16'}: UTF-16 text; BuildKit reads UTF-8 Dockerfiles" in captured.err


def test_fails_on_a_file_buildkit_cannot_parse(tmp_path: Path) -> None:
    with pytest.raises(LintInputError, match=r"Dockerfile: BuildKit cannot parse it"):
        lint_file(write(tmp_path, "FROM scratch\nRUN <<EOF\nunterminated\n"), POLICY)


def test_heredoc_hadolint_cannot_parse_is_said_once_and_does_not_fail(tmp_path: Path) -> None:
    # Two heredocs on one RUN: BuildKit runs both; hadolint 2.15's grammar stops at the second.
    text = CLEAN.replace("COPY . .\n", "COPY . .\nRUN <<ONE <<TWO\necho one\nONE\necho two\nTWO\n")
    findings = lint_file(write(tmp_path, text), POLICY)
    assert [(f.rule, f.level) for f in findings] == [("DL1000", "note")]
    assert "hadolint cannot parse this file, which BuildKit accepts" in findings[0].message
    assert lint(paths=[tmp_path / "Dockerfile"], config_path=EXAMPLE, allow=[], build_args={}) == 0


def test_target_selects_the_stage_final_stage_rules_judge(tmp_path: Path) -> None:
    text = CLEAN + f"\nFROM 127.0.0.1:5000/payments/bases/python@{D2} AS debug\nENTRYPOINT sh\n"
    path = write(tmp_path, text)
    assert [f.rule for f in lint_file(path, POLICY, hadolint=False)] == ["SW008", "SW004"]
    assert lint_file(path, POLICY, hadolint=False, target="build") == [
        lint_file(path, POLICY, hadolint=False, target="build")[0]
    ]
    with pytest.raises(LintInputError, match=r"--target 'nosuch': no such stage \(named stages: build, debug\)"):
        lint_file(path, POLICY, target="nosuch")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("FROMRUNCOPYADD --=<>${}\\\n#:@/.\"'[]ascratchEOF\t\x00é")), max_size=200))
def test_no_input_ends_in_a_traceback(text: str) -> None:
    """Any text is either linted or refused as input (exit 2): never an unexpected exception."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "Dockerfile"
        path.write_text(text, encoding="utf-8")
        with contextlib.suppress(LintInputError):
            lint_file(path, POLICY, hadolint=False)
