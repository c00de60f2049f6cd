"""Service pipeline shape: trigger, native parallel builds, stitch, deploys, least-privilege IAM."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from infra.platform_app import COMMITTED_LOCK
from pipeline import bases, runner_image

PAYMENTS = "Slipway-Acme-Pipelines-payments-1"
SEARCH = "Slipway-Acme-Pipelines-search-1"


@pytest.fixture(scope="module")
def payments(synthesized: dict[str, Any]) -> Template:
    return synthesized["templates"][PAYMENTS]


@pytest.fixture(scope="module")
def search(synthesized: dict[str, Any]) -> Template:
    return synthesized["templates"][SEARCH]


def role_statements(template: Template, project: str) -> list[dict[str, Any]]:
    """Every IAM statement of the role a CodeBuild project runs as (found by the project's buildspec, not by name)."""
    role = projects(template)[project]["ServiceRole"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def repository_arn_tail(name: str) -> str:
    """How a pipeline stack names a repository: by ARN built from its name, never by an import from another stack."""
    return f":repository/{name}"


def projects(template: Template) -> dict[str, dict[str, Any]]:
    """CodeBuild projects keyed by their description-free identity: the first CLI verb of their buildspec."""
    found = {}
    for resource in template.find_resources("AWS::CodeBuild::Project").values():
        props = resource["Properties"]
        spec = json.loads(props["Source"]["BuildSpec"])
        command = spec["phases"]["build"]["commands"][0]
        key = " ".join(command.split()[:2])
        if key == "slipway build":
            key += " " + command.split("--platform ")[1].split()[0]
        elif key == "slipway deploy":
            key += " " + command.split()[2]
        found[key] = props
    return found


def test_v2_pipeline_triggered_by_push_to_branch_with_path_filter(payments: Template) -> None:
    payments.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "PipelineType": "V2",
            "Triggers": [
                {
                    "ProviderType": "CodeStarSourceConnection",
                    "GitConfiguration": {
                        "SourceActionName": "Source",
                        "Push": [
                            {
                                "Branches": {"Includes": ["main"]},
                                "FilePaths": {"Includes": ["app/**", "requirements.txt", "Dockerfile"]},
                            }
                        ],
                    },
                }
            ],
        },
    )


def test_stages_in_order_with_parallel_native_builds(payments: Template) -> None:
    stages = Capture()
    payments.has_resource_properties("AWS::CodePipeline::Pipeline", {"Stages": stages})
    names = [s["Name"] for s in stages.as_array()]
    assert names == ["Source", "Build", "Stitch", "Deploy-dev", "Deploy-prod"]
    build = next(s for s in stages.as_array() if s["Name"] == "Build")
    assert [a["Name"] for a in build["Actions"]] == ["Lint", "Build-amd64", "Build-arm64"]
    assert {a["RunOrder"] for a in build["Actions"]} == {1}, "lint and the platforms run side by side"


def test_arm64_builds_natively_on_arm_container(payments: Template) -> None:
    found = projects(payments)
    arm = found["slipway build linux/arm64"]["Environment"]
    amd = found["slipway build linux/amd64"]["Environment"]
    assert arm["Type"] == "ARM_CONTAINER" and arm["PrivilegedMode"] is True
    assert amd["Type"] == "LINUX_CONTAINER" and amd["PrivilegedMode"] is True
    assert not found["slipway lint"]["Environment"]["PrivilegedMode"], "only builds need privileged mode"


def test_buildspecs_only_install_and_call_the_cli(payments: Template) -> None:
    for props in projects(payments).values():
        spec = json.loads(props["Source"]["BuildSpec"])
        assert all(c.startswith("slipway ") for c in spec["phases"]["build"]["commands"])
        assert not any(token in props["Source"]["BuildSpec"] for token in ("$(", "jq ", "for ", "&&", "latest"))


def test_build_command_pushes_by_digest_with_secret_env(payments: Template) -> None:
    props = projects(payments)["slipway build linux/arm64"]
    command = json.loads(props["Source"]["BuildSpec"])["phases"]["build"]["commands"][0]
    assert "--builder buildx" in command
    assert "--secret id=pip_index,env=SLIPWAY_SECRET_PIP_INDEX" in command
    env = {e["Name"]: e for e in props["Environment"]["EnvironmentVariables"]}
    assert env["SLIPWAY_SECRET_PIP_INDEX"] == {
        "Name": "SLIPWAY_SECRET_PIP_INDEX",
        "Type": "SECRETS_MANAGER",
        "Value": "payments/pip-index-token",
    }


def test_builds_take_source_date_epoch_from_the_commit(payments: Template) -> None:
    """Same commit, same digests: each build job gets the commit's time, never the clock's."""
    stages = Capture()
    payments.has_resource_properties("AWS::CodePipeline::Pipeline", {"Stages": stages})
    builds = [a for a in next(s for s in stages.as_array() if s["Name"] == "Build")["Actions"] if a["Name"] != "Lint"]
    assert len(builds) == 2
    for action in builds:
        variables = json.loads(action["Configuration"]["EnvironmentVariables"])
        assert variables == [
            {"name": "SLIPWAY_COMMIT_TIME", "type": "PLAINTEXT", "value": "#{Source_Source_NS.AuthorDate}"}
        ]
    for platform in ("linux/amd64", "linux/arm64"):
        command = json.loads(projects(payments)[f"slipway build {platform}"]["Source"]["BuildSpec"])["phases"]["build"]
        assert '--source-date "$SLIPWAY_COMMIT_TIME"' in command["commands"][0]


def test_stitch_gets_commit_and_both_build_outputs(payments: Template) -> None:
    stages = Capture()
    payments.has_resource_properties("AWS::CodePipeline::Pipeline", {"Stages": stages})
    stitch = next(s for s in stages.as_array() if s["Name"] == "Stitch")["Actions"][0]
    assert [a["Name"] for a in stitch["InputArtifacts"]] == ["source", "build_amd64", "build_arm64"]
    assert stitch["OutputArtifacts"] == [{"Name": "image"}]
    assert "#{Source_Source_NS.CommitId}" in json.dumps(stitch["Configuration"]["EnvironmentVariables"])


def test_deploy_behind_manual_approval_when_configured(payments: Template, search: Template) -> None:
    stages = Capture()
    payments.has_resource_properties("AWS::CodePipeline::Pipeline", {"Stages": stages})
    categories = {s["Name"]: [(a["ActionTypeId"]["Category"], a["RunOrder"]) for a in s["Actions"]]
                  for s in stages.as_array()}  # fmt: skip
    assert categories["Deploy-dev"] == [("Build", 2), ("Build", 2)]
    assert categories["Deploy-prod"] == [("Approval", 1), ("Build", 2), ("Build", 2)]
    search_stages = Capture()
    search.has_resource_properties("AWS::CodePipeline::Pipeline", {"Stages": search_stages})
    deploy = next(s for s in search_stages.as_array() if s["Name"] == "Deploy")
    assert [(a["Name"], a["ActionTypeId"]["Category"]) for a in deploy["Actions"]] == [
        ("Deploy-ecs", "Build"), ("Deploy-eks", "Build")
    ]  # fmt: skip


TOPIC = "arn:aws:sns:eu-west-1:111111111111:slipway-{}"


SIGNED = " --release-key arn:aws:kms:eu-west-1:111111111111:alias/slipway-acme-releases --source acme/{}"

APPROVAL_NEXT = (" --next-approval prod --approval-link 'https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/"
                 "pipelines/slipway-payments-api/view?region=eu-west-1'")  # fmt: skip


def test_deploy_commands_name_their_target(payments: Template, search: Template) -> None:
    commands = [
        json.loads(p["Source"]["BuildSpec"])["phases"]["build"]["commands"][0]
        for t in (payments, search)
        for p in projects_all(t)
        if "slipway deploy" in p["Source"]["BuildSpec"]
    ]
    role = "--role-arn arn:aws:iam::{}:role/slipway-deploy-payments-api-{} --region {}"
    lambda_args = ("--function-name payments-api --architecture arm64 --alias live --smoke-event '{\"path\": "
                   "\"/health\"}' --smoke-expect '{\"statusCode\": 200}'")  # fmt: skip
    ecs_args = (
        "--cluster payments --service api --container api --task-role payments-api-task --task-role "
        "payments-api-execution --health-url https://api.{}payments.acme.example/health --health-path /health"
    )
    assert sorted(commands) == sorted([
        f"slipway deploy lambda --image-json image.json --environment {env} {role.format(account, env, region)} "
        f"{lambda_args}{shift} --notify-topic {TOPIC.format('payments')}{then}{SIGNED.format('payments-api')} "
        f"--out deployed-{env}-lambda.json"
        # the aliases move by a canary (#29) watching an alarm: its numbers and the alarm on the command line
        for env, account, region, then, shift in (
            ("dev", "222222222222", "eu-west-1", APPROVAL_NEXT, " --strategy canary --percent 10 --bake-seconds 20 "
             "--alarm payments-api-dev-errors"),
            ("prod", "555555555555", "eu-central-1", "", " --strategy canary --percent 10 --bake-seconds 10 --alarm "
             "payments-api-prod-errors"),
        )
    ] + [
        f"slipway deploy ecs --image-json image.json --environment {env} {role.format(account, env, region)} "
        f"{ecs_args.format(host)}{shift} --notify-topic {TOPIC.format('payments')}{then}"
        f"{SIGNED.format('payments-api')} --out deployed-{env}-ecs.json"
        # prod's service deploys by ECS's own canary (#29), watching its alarm
        for env, account, host, region, then, shift in (
            ("dev", "222222222222", "dev.", "eu-west-1", APPROVAL_NEXT, ""),
            ("prod", "555555555555", "", "eu-central-1", "",
             " --strategy canary --percent 10 --bake-seconds 60 --alarm payments-api-prod-5xx"),
        )
    ] + [
        "slipway deploy ecs --image-json image.json --cluster search --service indexer --container indexer --task-role search-indexer-execution --notify-topic arn:aws:sns:eu-west-1:111111111111:slipway-search" + SIGNED.format("search-indexer") + " --out deployed-ecs.json",
        "slipway deploy eks --image-json image.json --cluster search --namespace search --deployment indexer --container indexer --notify-topic arn:aws:sns:eu-west-1:111111111111:slipway-search" + SIGNED.format("search-indexer") + " --out deployed-eks.json",
    ])  # fmt: skip


def projects_all(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.find_resources("AWS::CodeBuild::Project").values()]


def test_build_roles_live_under_team_path(payments: Template) -> None:
    roles = payments.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": Match.object_like(
                    {"Statement": [Match.object_like({"Principal": {"Service": "codebuild.amazonaws.com"}})]}
                )
            }
        },
    )
    paths = sorted(r["Properties"]["Path"] for r in roles.values())
    assert paths == ["/slipway/build/payments/", "/slipway/build/payments/stitch/", "/slipway/deploy/payments/dev/",
                     "/slipway/deploy/payments/prod/"], (
        "lint and builds as the team's build role, stitch as its Stitch role; each environment's deploys as the "
        "team's role for it"
    )  # fmt: skip
    for props in projects(payments).values():
        assert "Fn::GetAtt" in props["ServiceRole"], "a Ref would drop the role path"
        assert props["Name"].startswith("slipway_payments_api_"), "the team's roles reach its projects by this prefix"


def test_build_role_pushes_only_its_repository(payments: Template) -> None:
    statements = role_statements(payments, "slipway build linux/arm64")
    push = [s for s in statements if "ecr:PutImage" in s["Action"]]
    assert len(push) == 1
    assert push[0]["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ecr:eu-west-1:111111111111:repository/payments/api"]]
    }
    first_pull = [s for s in statements if "ecr:BatchImportUpstreamImage" in s["Action"]]
    assert first_pull and "repository/docker-hub/*" in json.dumps(first_pull[0]["Resource"])


@pytest.mark.parametrize("kind", ["ecs", "eks"])
def test_every_deploy_role_reads_its_repository_for_the_registry_check(search: Template, kind: str) -> None:
    """`slipway deploy` verifies image.json against the registry before deploying, whatever the target: without the
    pull and an ECR token the job stops at AccessDenied (found by the replay's IAM enforcement, ECS first)."""
    statements = role_statements(search, f"slipway deploy {kind}")
    pulls = [s for s in statements if "ecr:BatchGetImage" in s["Action"] and "slipway/runner" not in json.dumps(s)]
    assert [json.dumps(s["Resource"]).endswith(':repository/search/indexer"]]}') for s in pulls] == [True]
    assert any(s["Action"] == "ecr:GetAuthorizationToken" and s["Resource"] == "*" for s in statements)


def test_eks_access_entry_limited_to_namespace(search: Template) -> None:
    search.has_resource_properties(
        "AWS::EKS::AccessEntry",
        {
            "ClusterName": "search",
            "AccessPolicies": [
                {
                    "PolicyArn": {
                        "Fn::Join": [
                            "",
                            ["arn:", {"Ref": "AWS::Partition"}, ":eks::aws:cluster-access-policy/AmazonEKSEditPolicy"],
                        ]
                    },
                    "AccessScope": {"Type": "namespace", "Namespaces": ["search"]},
                }
            ],
        },
    )


def test_stateful_pipeline_logical_ids_are_pinned(payments: Template) -> None:
    assert sorted(payments.find_resources("AWS::S3::Bucket")) == ["AccessLogs8B620ECA", "Artifacts82DD59A1"]
    assert list(payments.find_resources("AWS::KMS::Key")) == ["ArtifactsKeyA65E83CB"]


def test_cdk_nag_reports_nothing_unacknowledged(synthesized: dict[str, Any]) -> None:
    """Synth itself fails on a finding; this pins that the AwsSolutions pack ran over every stack."""
    import pathlib

    report = json.loads((pathlib.Path(synthesized["assembly"].directory) / "validation-report.json").read_text())
    conclusions = {r["pluginName"]: (r["conclusion"], r["violations"]) for r in report["pluginReports"]}
    assert conclusions["AwsSolutions"] == ("success", [])


BASES_PAYMENTS = "Slipway-Acme-Bases-payments-1"


def test_base_pipelines_start_on_their_context_and_have_no_schedule_of_their_own(synthesized: dict[str, Any]) -> None:
    """A push to the base's folder starts it; a new base or upstream under it starts it through the lock store; the
    weekly refresh is the platform pipeline's (a base's own schedule would rebuild unchanged bases for nothing)."""
    bases = synthesized["templates"][BASES_PAYMENTS]
    triggers = [
        p["Properties"]["Triggers"][0]["GitConfiguration"]["Push"][0]
        for p in bases.find_resources("AWS::CodePipeline::Pipeline").values()
    ]
    assert {"Branches": {"Includes": ["main"]}, "FilePaths": {"Includes": ["images/python/**"]}} in triggers
    assert bases.find_resources("AWS::Events::Rule") == {}


def test_base_variant_builds_its_target_stage(synthesized: dict[str, Any]) -> None:
    commands = [
        json.loads(p["Source"]["BuildSpec"])["phases"]["build"]["commands"][0]
        for p in projects_all(synthesized["templates"][BASES_PAYMENTS])
    ]
    assert any("--context images/python --dockerfile images/python/Dockerfile --target build" in c for c in commands)
    assert any(
        c.startswith("slipway lint") and c.endswith(" --target build images/python/Dockerfile") for c in commands
    )


def test_the_lint_job_runs_on_the_x86_runner(payments: Template) -> None:
    """BuildKit's parser has x86_64 wheels only: the runner holds it for amd64, and Lint runs there."""
    assert projects(payments)["slipway lint"]["Environment"]["Type"] == "LINUX_CONTAINER"


def test_builds_and_lint_get_the_base_lock_and_lint_the_ecr_host(payments: Template) -> None:
    for key, props in projects(payments).items():
        env = {e["Name"]: e.get("Value") for e in props["Environment"]["EnvironmentVariables"]}
        if key.startswith(("slipway build", "slipway lint")):
            # Where to read the lock when the job runs, and the name it registers under: never an entry.
            assert env["SLIPWAY_LOCK_PARAMETERS"] == "/slipway/acme/lock/", key
            assert env["SLIPWAY_DEPENDENTS_PARAMETERS"] == "/slipway/acme/dependents/", key
            assert env["SLIPWAY_PIPELINE"] == "slipway-payments-api", key
    lint = json.loads(projects(payments)["slipway lint"]["Source"]["BuildSpec"])["phases"]["build"]["commands"][0]
    ecr = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
    assert lint.startswith(f"slipway lint --registry {ecr} --allow-registry {ecr}/") and lint.endswith(" Dockerfile")
    words = lint.split()
    allowed = [word for before, word in itertools.pairwise(words) if before == "--allow-registry"]
    assert f"{ecr}/docker-hub/" in allowed and f"{ecr}/payments/bases/" in allowed
    assert not [a for a in allowed if a.startswith("127.0.0.1")], "the cloud's gate allows the platform's ECR only"


def test_build_roles_may_pull_curated_bases(payments: Template) -> None:
    statements = role_statements(payments, "slipway build linux/arm64")
    pulls = json.dumps([s["Resource"] for s in statements if "ecr:BatchGetImage" in s["Action"]])
    assert repository_arn_tail("*/bases/*") in pulls  # any team's curated base, one pattern for all of them
    assert pulls.count("/bases/") == 1


def test_no_stack_imports_from_another(synthesized: dict[str, Any]) -> None:
    """No Fn::ImportValue and no exports: removing a base or a service from platform.toml stays an update."""
    for name, template in synthesized["templates"].items():
        document = json.dumps(template.to_json())
        assert "Fn::ImportValue" not in document, name
        assert "Export" not in json.dumps(template.to_json().get("Outputs", {})), name


def test_removing_a_base_and_a_service_leaves_no_dangling_reference(tmp_path: Any) -> None:
    """The second version of platform.toml synthesizes with the first version's stacks unaware of each other."""
    from aws_cdk import Stack

    from infra.platform_app import build_app
    from pipeline import config as config_module
    from tests.conftest import _EXAMPLE_RAW

    raw = json.loads(json.dumps(_EXAMPLE_RAW))
    del raw["teams"][1]["base_images"][0]
    del raw["teams"][0]["services"][0]
    app = build_app(config_module.parse(raw), outdir=str(tmp_path), nag=False)
    templates = [Template.from_stack(c).to_json() for c in app.node.children if isinstance(c, Stack)]
    assert all("Fn::ImportValue" not in json.dumps(t) and "Outputs" not in t for t in templates)


def test_jobs_run_in_the_runner_image_by_digest_and_install_nothing(payments: Template) -> None:
    """Every job runs in Slipway's runner from the platform's ECR, by the lock's digest, pulled with the project's
    role; no buildspec installs anything; the role may pull the runner and no other repository for it."""
    runner = bases.load(COMMITTED_LOCK)[runner_image.LOCK_KEY]
    digest = runner.rpartition("@")[2]
    for key, props in projects(payments).items():
        environment = props["Environment"]
        image = json.dumps(environment["Image"])
        assert f"/slipway/runner@{digest}" in image and ".dkr.ecr." in image, key
        assert environment["ImagePullCredentialsType"] == "SERVICE_ROLE", key
        spec = props["Source"]["BuildSpec"]
        assert "pip install" not in spec and "pip3" not in spec and "install" not in json.loads(spec)["phases"], key
        pulls = [s for s in role_statements(payments, key) if "ecr:BatchGetImage" in s["Action"]
                 and "slipway/runner" in json.dumps(s["Resource"])]  # fmt: skip
        assert len(pulls) == 1, key
        assert "cdk-hnb659fds-assets" not in json.dumps(role_statements(payments, key)), key


def test_an_arm_build_runs_on_the_arm_runner(payments: Template) -> None:
    assert projects(payments)["slipway build linux/arm64"]["Environment"]["Type"] == "ARM_CONTAINER"
    assert projects(payments)["slipway build linux/amd64"]["Environment"]["Type"] == "LINUX_CONTAINER"
    spec = json.loads(projects(payments)["slipway build linux/arm64"]["Source"]["BuildSpec"])
    assert spec["phases"]["pre_build"]["commands"] == ["slipway runner dockerd"]
