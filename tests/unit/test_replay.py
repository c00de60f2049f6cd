"""The replay's parts without services: the assembly as read from cdk.out, CodePipeline's trigger filters, CodeBuild's
phase and artifact rules, and an execution's order, approvals and stop-at-first-failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import assembly
from pipeline.assembly import Action, EnvironmentVariable, Pipeline, Project, PushFilter, Stage
from pipeline.local.replay import codebuild, executor, sources

ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture(scope="module")
def pipelines(synthesized: dict[str, Any]) -> dict[str, Pipeline]:
    return {p.name: p for p in assembly.load(Path(synthesized["assembly"].directory))}


def test_every_pipeline_of_the_assembly_is_read_with_its_stages_in_order(pipelines: dict[str, Pipeline]) -> None:
    assert set(pipelines) == {
        "slipway-payments-api", "slipway-search-indexer", "slipway-payments-base-python",
        "slipway-payments-base-python-build", "slipway-payments-base-lambda-python", "slipway-payments-base-debian",
        "slipway-search-base-static", "slipway-platform",
    }  # fmt: skip
    api = pipelines["slipway-payments-api"]
    assert [s.name for s in api.stages] == ["Source", "Build", "Stitch", "Deploy-dev", "Deploy-prod"]
    assert (api.repository, api.branch) == ("acme/payments-api", "main")
    build = next(s for s in api.stages if s.name == "Build")
    assert [[a.name for a in wave] for wave in build.waves()] == [["Lint", "Build-amd64", "Build-arm64"]]
    deploy = next(s for s in api.stages if s.name == "Deploy-prod")
    assert [[a.provider for a in wave] for wave in deploy.waves()] == [["Manual"], ["CodeBuild", "CodeBuild"]]


def test_intrinsics_resolve_as_cloudformation_would(pipelines: dict[str, Pipeline]) -> None:
    api = pipelines["slipway-payments-api"]
    stitch = next(a for _, a in api.actions() if a.name == "Stitch")
    project = api.projects[str(stitch.configuration["ProjectName"])]
    variables = {v.name: v for v in project.variables}
    assert variables["SLIPWAY_REPOSITORY_URI"].value == f"{ECR}/payments/api"
    assert project.role.startswith("arn:aws:iam::111111111111:role/")
    assert stitch.inputs == ("source", "build_amd64", "build_arm64") and stitch.outputs == ("image",)
    assert api.triggers == (PushFilter(("main",), (), ("app/**", "requirements.txt", "Dockerfile"), ()),)


def test_the_weekly_schedule_belongs_to_the_platform_pipeline(pipelines: dict[str, Pipeline]) -> None:
    from infra.blueprint import weekly_rebuild_time

    hour, minute = weekly_rebuild_time("slipway-platform")
    assert pipelines["slipway-platform"].schedules == (f"cron({minute} {hour} ? * SUN *)",)
    assert [name for name, p in pipelines.items() if p.schedules] == ["slipway-platform"]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("app/**", "app/handler.py", True),
        ("app/**", "app/deep/er/x.py", True),
        ("app/**", "application.py", False),
        ("*.txt", "requirements.txt", True),
        ("*.txt", "docs/notes.txt", False),
        ("**/*.py", "setup.py", True),
        ("**/*.py", "a/b/c.py", True),
        ("Dockerfile", "Dockerfile.dev", False),
        ("images/?ebian/**", "images/debian/Dockerfile", True),
    ],
)
def test_trigger_globs(pattern: str, path: str, matches: bool) -> None:
    assert bool(sources.glob_pattern(pattern).fullmatch(path)) is matches


def test_a_push_starts_a_pipeline_only_on_its_branch_and_paths() -> None:
    flt = PushFilter(branches=("main", "release/*"), paths=("app/**",), paths_excluded=("app/docs/**",))
    assert sources.push_starts(flt, "main", ["README.md", "app/x.py"])
    assert sources.push_starts(flt, "release/2", ["app/x.py"])
    assert not sources.push_starts(flt, "feature", ["app/x.py"])
    assert not sources.push_starts(flt, "main", ["README.md"])
    assert not sources.push_starts(flt, "main", ["app/docs/guide.md"])
    assert sources.push_starts(PushFilter(branches=("main",), branches_excluded=("main",)), "main", []) is False


def _project(
    phases: dict[str, Any], artifacts: dict[str, Any] | None = None, variables: tuple[EnvironmentVariable, ...] = ()
) -> Project:
    spec: dict[str, Any] = {"version": "0.2", "phases": phases}
    if artifacts:
        spec["artifacts"] = artifacts
    return Project(
        "p", spec, "LINUX_CONTAINER", "aws/codebuild/standard:7.0", False, "arn:aws:iam::1:role/r", variables
    )


def _job(tmp_path: Path, project: Project, inputs: dict[str, Path] | None = None, primary: str = "") -> codebuild.Job:
    return codebuild.Job(
        project=project, workspace=tmp_path / "ws", primary=primary, inputs=inputs or {},
        environment={"PATH": SYSTEM_PATH}, action_variables={"FROM_ACTION": "action"},
        secret=lambda reference: f"secret-of-{reference}",
    )  # fmt: skip


def test_a_job_runs_phases_in_one_shell_environment_and_collects_its_artifacts(tmp_path: Path) -> None:
    source, extra = tmp_path / "source", tmp_path / "extra"
    source.mkdir()
    extra.mkdir()
    (source / "in.txt").write_text("primary")
    (extra / "more.txt").write_text("secondary")
    project = _project(
        {"install": {"commands": ["export CARRIED=from-install"]},
         "build": {"commands": ['echo "$CARRIED $PLAIN $SECRET $FROM_ACTION" > out.txt',
                                'cat "$CODEBUILD_SRC_DIR_extra/more.txt" >> out.txt', "touch other.bin"]}},
        artifacts={"files": ["out.txt"]},
        variables=(EnvironmentVariable("PLAIN", "plain"), EnvironmentVariable("SECRET", "db:token", "SECRETS_MANAGER")),
    )  # fmt: skip
    outcome = codebuild.run(_job(tmp_path, project, {"source": source, "extra": extra}, primary="source"))
    assert outcome.succeeded, codebuild.tail(outcome.log)
    assert (outcome.output / "out.txt").read_text() == "from-install plain secret-of-db:token action\nsecondary"
    assert sorted(p.name for p in outcome.output.iterdir()) == ["out.txt"]
    assert (source / "in.txt").read_text() == "primary" and not (source / "out.txt").exists()  # inputs are copies


def test_a_failed_build_still_runs_post_build_and_fails(tmp_path: Path) -> None:
    project = _project({"build": {"commands": ['echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"', "false", "echo never"]},
                        "post_build": {"commands": ['echo "cleanup succeeding=$CODEBUILD_BUILD_SUCCEEDING"']}})  # fmt: skip
    outcome = codebuild.run(_job(tmp_path, project))
    log = outcome.log.read_text()
    assert not outcome.succeeded and outcome.failed_phase == "build"
    assert "never" not in log
    # As CodeBuild: 1 while every phase succeeded, 0 in the post_build that follows a failed build.
    assert "succeeding=1" in log and "cleanup succeeding=0" in log


def test_a_failed_install_skips_every_later_phase(tmp_path: Path) -> None:
    project = _project({"install": {"commands": ["exit 3"]}, "build": {"commands": ["echo built"]},
                        "post_build": {"commands": ["echo post"]}})  # fmt: skip
    outcome = codebuild.run(_job(tmp_path, project))
    assert outcome.failed_phase == "install"
    assert "built" not in outcome.log.read_text() and "post" not in outcome.log.read_text()


def test_a_missing_artifact_fails_the_job(tmp_path: Path) -> None:
    outcome = codebuild.run(
        _job(tmp_path, _project({"build": {"commands": ["true"]}}, artifacts={"files": ["x.json"]}))
    )
    assert not outcome.succeeded and "no matching artifact paths found for x.json" in outcome.log.read_text()


def _pipeline(repo: str, approve_first: bool) -> Pipeline:
    build = _project({"build": {"commands": ['echo "$COMMIT" > commit.txt']}}, artifacts={"files": ["commit.txt"]})
    deploy = _project({"build": {"commands": ["cat commit.txt > deployed.txt"]}}, artifacts={"files": ["deployed.txt"]})
    source = Action("Source", "CodeStarSourceConnection", 1, (), ("source",),
                    {"FullRepositoryId": repo, "BranchName": "main"}, "arn:aws:iam::1:role/source", "Source_NS")  # fmt: skip
    env = json.dumps([{"name": "COMMIT", "type": "PLAINTEXT", "value": "#{Source_NS.CommitId}"}])
    stages = (
        Stage("Source", (source,)),
        Stage(
            "Build",
            (
                Action(
                    "Build",
                    "CodeBuild",
                    1,
                    ("source",),
                    ("built",),
                    {"ProjectName": "build", "EnvironmentVariables": env},
                    "arn:aws:iam::1:role/build",
                ),
            ),
        ),
        Stage(
            "Deploy",
            (
                Action("Approve", "Manual", 1, (), (), {}, "arn:aws:iam::1:role/approve"),
                Action(
                    "Deploy",
                    "CodeBuild",
                    2,
                    ("built",),
                    ("deployed",),
                    {"ProjectName": "deploy"},
                    "arn:aws:iam::1:role/deploy",
                ),
            ),
        ),
    )
    return Pipeline(
        "demo", "Stack", "arn:aws:iam::1:role/pipeline", stages, projects={"build": build, "deploy": deploy}
    )


def _context(tmp_path: Path, approve: bool) -> executor.Context:
    return executor.Context(
        git_root=tmp_path / "git", runs=tmp_path / "runs", environment={},
        secret=lambda reference, role: "", approve=approve, host_jobs=True,
    )  # fmt: skip


@pytest.fixture
def pushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sources.Revision:
    folder = tmp_path / "checkout" / "svc"
    folder.mkdir(parents=True)
    (folder / "app.txt").write_text("v1")
    monkeypatch.setattr(sources, "_tracked_files", lambda checkout, name: ["app.txt"])
    return sources.seed_repository(tmp_path / "git", "acme/svc", "main", tmp_path / "checkout", "svc")


def test_an_execution_hands_artifacts_and_variables_on_and_approval_gates_the_deploy(
    tmp_path: Path, pushed: sources.Revision
) -> None:
    run = executor.execute(_pipeline("acme/svc", True), pushed, _context(tmp_path, approve=True))
    assert [(r.stage, r.action, r.status) for r in run.results] == [
        ("Source", "Source", "Succeeded"), ("Build", "Build", "Succeeded"),
        ("Deploy", "Approve", "Succeeded"), ("Deploy", "Deploy", "Succeeded"),
    ]  # fmt: skip
    assert (run.artifacts["deployed"] / "deployed.txt").read_text().strip() == pushed.commit
    assert run.succeeded and [r.role for r in run.results][-1] == "deploy"


def test_an_unapproved_deploy_is_rejected_and_nothing_after_it_runs(tmp_path: Path, pushed: sources.Revision) -> None:
    run = executor.execute(_pipeline("acme/svc", True), pushed, _context(tmp_path, approve=False))
    assert [(r.action, r.status) for r in run.results][-1] == ("Approve", "Rejected")
    assert "deployed" not in run.artifacts and not run.succeeded


def test_a_second_push_starts_the_pipeline_only_when_a_changed_file_matches(
    tmp_path: Path, pushed: sources.Revision
) -> None:
    (tmp_path / "checkout" / "svc" / "app.txt").write_text("v2")
    after = sources.seed_repository(tmp_path / "git", "acme/svc", "main", tmp_path / "checkout", "svc")
    assert after.commit != pushed.commit
    changed = sources.changed_files(tmp_path / "git", after, pushed.commit)
    assert changed == ["app.txt"]
    pipeline = Pipeline("p", "S", "", (), triggers=(PushFilter(branches=("main",), paths=("docs/**",)),))
    assert not sources.triggered(pipeline, "main", changed)
    assert sources.seed_repository(tmp_path / "git", "acme/svc", "main", tmp_path / "checkout", "svc") == after


def test_a_job_assumes_only_a_role_its_template_lets_codebuild_assume() -> None:
    from pipeline.local.replay import iam, policy

    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
                            "Action": "sts:AssumeRole"},
                           {"Effect": "Deny", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
                           {"Effect": "Allow", "Principal": {"Service": ["ecs-tasks.amazonaws.com"]},
                            "Action": ["sts:AssumeRole", "sts:TagSession"]}]}  # fmt: skip
    assert policy.trusted_services(trust) == {"codebuild.amazonaws.com", "ecs-tasks.amazonaws.com"}

    class Sts:
        def assume_role(self, RoleArn: str, RoleSessionName: str) -> dict[str, Any]:
            return {"Credentials": {"AccessKeyId": "AK", "SecretAccessKey": "SK", "SessionToken": "ST"}}

    trusts = {"arn:build": {"codebuild.amazonaws.com"}, "arn:pipeline": {"codepipeline.amazonaws.com"}}
    assume = iam.assumer(Sts(), lambda: trusts)
    assert assume("arn:build") == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "ST"}
    with pytest.raises(
        iam.TrustError, match=r"role arn:pipeline: its trust policy does not let codebuild\.amazonaws\.com"
    ):
        assume("arn:pipeline")


def test_every_codebuild_role_of_the_assembly_trusts_codebuild(synthesized: dict[str, Any]) -> None:
    """What the replay checks before each job, over the whole synthesized app (read from the assembly itself, so a
    fresh `local push` or `local run --scheduled` process checks the same)."""
    from pipeline.local.replay import authorize

    directory = Path(synthesized["assembly"].directory)
    trusts = authorize.current(directory).trusts
    roles = {p.role for pipeline in assembly.load(directory) for p in pipeline.projects.values()}
    assert roles and all("codebuild.amazonaws.com" in trusts[role] for role in roles)
    assert all(role.startswith(("arn:aws:iam::111111111111:role/slipway/build/",
                                "arn:aws:iam::111111111111:role/slipway/deploy/",
                                "arn:aws:iam::111111111111:role/slipway/platform/")) for role in roles)  # fmt: skip
    assert authorize.current(directory) is authorize.current(directory)  # read once per synthesis, not per job


def test_two_stacks_roles_of_one_logical_id_are_two_roles(synthesized: dict[str, Any]) -> None:
    """A team's Pipelines and Bases stacks both hold ``Team-<team>/BuildRole``; CloudFormation names each role after
    its stack, so they are two roles with two policies -- the replay must not make them one (the second stack's policy
    would replace the first's)."""
    found = {
        s.name: s.resolve({"Fn::GetAtt": [logical, "Arn"]})
        for s in assembly.stacks(Path(synthesized["assembly"].directory))
        for logical, props in s.of_type("AWS::IAM::Role").items()
        if props.get("Path") == "/slipway/build/payments/"
    }
    assert set(found) == {"Slipway-Acme-Pipelines-payments-1", "Slipway-Acme-Bases-payments-1"}
    assert len(set(found.values())) == 2
    assert all(len(arn.rsplit("/", 1)[1]) <= 64 for arn in found.values())


def test_a_managed_policy_cdk_moves_statements_to_is_created_attached_and_read(tmp_path: Path) -> None:
    """CDK moves a role's statements past IAM's inline size into AWS::IAM::ManagedPolicy resources: the replay
    creates and attaches them as CloudFormation does (a second deploy makes the new document the default version),
    and the job checks read them -- or a large platform's role would be denied in the replay and allowed in AWS."""
    import aws_cdk as cdk
    import boto3
    from aws_cdk import aws_iam as cdk_iam
    from moto import mock_aws

    from pipeline.local.replay import authorize, iam, policy

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Small", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    role = cdk_iam.Role(stack, "Job", assumed_by=cdk_iam.ServicePrincipal("codebuild.amazonaws.com"))
    document = cdk_iam.PolicyDocument(statements=[
        cdk_iam.PolicyStatement(actions=["sts:AssumeRole"], resources=["arn:aws:iam::210987654321:role/cdk-*-role-x"])
    ])  # fmt: skip
    cdk_iam.ManagedPolicy(stack, "Overflow", document=document, roles=[role])
    app.synth()
    with mock_aws():
        client = boto3.client("iam", region_name="eu-west-1")
        for _ in range(7):  # IAM keeps five versions of a policy: every deploy still lands
            iam.apply(tmp_path, lambda account: client, "arn:aws:iam::123456789012:user/admin")
        (role_name,) = [r["RoleName"] for r in client.list_roles()["Roles"] if r["RoleName"].startswith("Small-Job")]
        (attached,) = client.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
        assert attached["PolicyName"].startswith("Small-Overflow")
        assert len(client.list_policy_versions(PolicyArn=attached["PolicyArn"])["Versions"]) == 5
    documents = authorize.collect(tmp_path).roles[f"arn:aws:iam::123456789012:role/{role_name}"]
    request = policy.Request("sts:AssumeRole", "arn:aws:iam::210987654321:role/cdk-deploy-role-x")
    assert policy.evaluate(documents, request) == policy.ALLOW
