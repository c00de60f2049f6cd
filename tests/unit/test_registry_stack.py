"""Registry stack: repositories, pull-through cache, creation templates, and their validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from infra.creation_templates import RepositoryCreationTemplates, RepositoryCreationTemplatesProps
from infra.image_repository import ImageRepository, ImageRepositoryProps
from infra.pull_through_cache import PullThroughCache, PullThroughCacheProps
from infra.validation import PropsError
from pipeline.config import Upstream

REGISTRY = "Slipway-Acme-Registry"


@pytest.fixture(scope="module")
def registry(synthesized: dict[str, Any]) -> Template:
    return synthesized["templates"][REGISTRY]


@pytest.fixture(scope="module")
def repositories(synthesized: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every team's repositories, by logical ID, from the team's registry stacks (infra.repositories_stack)."""
    found: dict[str, dict[str, Any]] = {}
    for name, template in synthesized["templates"].items():
        if name.startswith(REGISTRY + "-"):
            found.update(template.find_resources("AWS::ECR::Repository"))
    return found


def test_the_registry_stack_holds_only_the_runners_repository_and_each_team_has_its_own(
    synthesized: dict[str, Any],
) -> None:
    """The runner's repository is the platform's (bootstrapped before any other stack deploys): immutable tags, the
    registry's key, lifecycle; no push Deny, since no job pushes there."""
    runner = synthesized["templates"][REGISTRY].find_resources("AWS::ECR::Repository")
    [(_, resource)] = runner.items()
    properties = resource["Properties"]
    assert properties["RepositoryName"] == "slipway/runner" and properties["ImageTagMutability"] == "IMMUTABLE"
    assert properties["EncryptionConfiguration"]["EncryptionType"] == "KMS" and "LifecyclePolicy" in properties
    assert "RepositoryPolicyText" not in properties and resource["DeletionPolicy"] == "Retain"
    payments = synthesized["templates"][REGISTRY + "-payments-1"].find_resources("AWS::ECR::Repository")
    assert {r["Properties"]["RepositoryName"].split("/")[0] for r in payments.values()} == {"payments"}


def test_repository_shards_split_by_bytes_in_config_order() -> None:
    from infra.repositories_stack import PlannedRepository, shard_repositories

    planned = [
        PlannedRepository(f"Service-s{i}", ImageRepositoryProps(repository_name=f"t/s{i}", team="t"))
        for i in range(500)
    ]
    shards = shard_repositories(planned)
    assert len(shards) > 1 and [r for s in shards for r in s] == planned
    assert all(sum(r.estimated_bytes for r in s) <= 900_000 for s in shards)


KEY = "arn:aws:kms:eu-west-1:111111111111:key/0b5d4e2a-6f1c-4a8e-9d3b-2c7f1e8a9b40"


@pytest.fixture(scope="module")
def repository() -> Template:
    """One ImageRepository in a stack of its own (aws-cdk's construct-test style): only what the construct does."""
    stack = Stack(App(), "Repository")
    ImageRepository(
        stack, "Repo", ImageRepositoryProps(repository_name="payments/api", team="payments", kms_key_arn=KEY)
    )
    return Template.from_stack(stack)


def test_service_repository_is_immutable_except_cache_tags(repository: Template) -> None:
    repository.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "payments/api",
            "ImageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
            "ImageTagMutabilityExclusionFilters": [
                {
                    "ImageTagMutabilityExclusionFilterType": "WILDCARD",
                    "ImageTagMutabilityExclusionFilterValue": "cache-*",
                }
            ],
            "EncryptionConfiguration": {"EncryptionType": "KMS", "KmsKey": KEY},
        },
    )


def test_repositories_are_retained(repositories: dict[str, dict[str, Any]]) -> None:
    assert repositories
    for resource in repositories.values():
        assert resource["DeletionPolicy"] == "Retain"


def test_lifecycle_expires_untagged_bounds_cache_and_keeps_releases(repository: Template) -> None:
    [repo] = repository.find_resources("AWS::ECR::Repository").values()
    rules = json.loads(repo["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [(r["rulePriority"], r["selection"]) for r in rules] == [
        (1, {"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 14, "countUnit": "days"}),
        (2, {"tagStatus": "tagged", "tagPrefixList": ["cache-"], "countType": "imageCountMoreThan", "countNumber": 10}),
        # Every release child is tagged <release>-<arch> and kept in step with the releases, before the "*" rule.
        (
            3,
            {
                "tagStatus": "tagged",
                "tagPatternList": ["*-amd64"],
                "countType": "imageCountMoreThan",
                "countNumber": 50,
            },
        ),
        (
            4,
            {
                "tagStatus": "tagged",
                "tagPatternList": ["*-arm64"],
                "countType": "imageCountMoreThan",
                "countNumber": 50,
            },
        ),
        # ... and so is each release's signature and provenance, tagged <release>-sig and <release>-provenance.
        (5, {"tagStatus": "tagged", "tagPatternList": ["*-sig"], "countType": "imageCountMoreThan", "countNumber": 50}),
        (6, {"tagStatus": "tagged", "tagPatternList": ["*-provenance"], "countType": "imageCountMoreThan",
             "countNumber": 50}),
        (7, {"tagStatus": "tagged", "tagPatternList": ["*-sbom"], "countType": "imageCountMoreThan",
             "countNumber": 100}),  # one a platform child
        # ... and its signature in cosign's format (tag-based discovery: sha256-<index hex>.sig).
        (8, {"tagStatus": "tagged", "tagPatternList": ["sha256-*.sig"], "countType": "imageCountMoreThan",
             "countNumber": 50}),
        (9, {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan", "countNumber": 50}),
    ]  # fmt: skip
    assert all(r["action"] == {"type": "expire"} for r in rules)


def test_only_team_build_roles_push_and_only_the_accounts_and_functions_it_deploys_to_pull(
    repositories: dict[str, dict[str, Any]],
) -> None:
    """search/indexer deploys to ECS and EKS in the platform account only: no workload account and no Lambda
    function may pull it (issue #27: its policy let every function of three accounts pull)."""
    [repo] = [r for r in repositories.values() if r["Properties"]["RepositoryName"] == "search/indexer"]
    statements = {s["Sid"]: s for s in repo["Properties"]["RepositoryPolicyText"]["Statement"]}
    deny = statements["OnlyTeamBuildRolesPush"]
    assert deny["Effect"] == "Deny" and "ecr:PutImage" in deny["Action"]
    assert json.dumps(deny["Condition"]).count("role/slipway/build/search/*") == 1
    assert set(statements) == {"OnlyTeamBuildRolesPush"}
    # A team's curated base: its workload accounts may pull it, no function runs it.
    [base] = [r for r in repositories.values() if r["Properties"]["RepositoryName"] == "search/bases/static"]
    statements = {s["Sid"]: s for s in base["Properties"]["RepositoryPolicyText"]["Statement"]}
    principals = json.dumps(statements["WorkloadAccountsPull"]["Principal"])
    assert "333333333333" in principals and "444444444444" in principals and "LambdaPull" not in statements


def test_lambda_may_pull_for_exactly_the_functions_named() -> None:
    """Lambda pulls as the Lambda service: without this statement even a same-account function cannot be updated;
    with it, only the functions named (their versions and aliases) may."""
    stack = Stack(App(), "Repository")
    function = "arn:aws:lambda:eu-west-1:111111111111:function:payments-api"
    ImageRepository(stack, "Repo", ImageRepositoryProps(repository_name="payments/api", team="payments",
                                                        lambda_functions=(function,)))  # fmt: skip
    [repo] = Template.from_stack(stack).find_resources("AWS::ECR::Repository").values()
    [statement] = [s for s in repo["Properties"]["RepositoryPolicyText"]["Statement"] if s["Sid"] == "LambdaPull"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert statement["Condition"] == {"ArnLike": {"aws:sourceArn": [function, f"{function}:*"]}}


def test_a_repository_no_function_runs_lets_no_function_pull(repository: Template) -> None:
    [repo] = repository.find_resources("AWS::ECR::Repository").values()
    assert "LambdaPull" not in {s["Sid"] for s in repo["Properties"]["RepositoryPolicyText"]["Statement"]}


def test_base_image_repositories_per_team(repositories: dict[str, dict[str, Any]]) -> None:
    names = {r["Properties"]["RepositoryName"] for r in repositories.values()}
    assert names == {
        "payments/api",
        "search/indexer",
        "payments/bases/python",
        "payments/bases/python-build",
        "payments/bases/lambda-python",
        "payments/bases/debian",
        "search/bases/static",
    }


@pytest.mark.parametrize(
    ("prefix", "upstream", "url", "credential"),
    [
        ("ecr-public", "ecr-public", "public.ecr.aws", False),
        ("k8s", "k8s", "registry.k8s.io", False),
        ("quay", "quay", "quay.io", False),
        ("docker-hub", "docker-hub", "registry-1.docker.io", True),
        ("ghcr", "github-container-registry", "ghcr.io", True),
        ("acr", "azure-container-registry", "acmecorp.azurecr.io", True),
    ],
)
def test_pull_through_cache_rule_per_upstream(
    registry: Template, prefix: str, upstream: str, url: str, credential: bool
) -> None:
    expected: dict[str, Any] = {
        "EcrRepositoryPrefix": prefix,
        "UpstreamRegistry": upstream,
        "UpstreamRegistryUrl": url,
    }
    expected["CredentialArn"] = Match.any_value() if credential else Match.absent()
    registry.has_resource_properties("AWS::ECR::PullThroughCacheRule", expected)


def test_docker_hub_secret_is_an_empty_shell_never_a_value(registry: Template) -> None:
    """The shape ECR reads, with empty values (a random string would fail every pull); the value is set out of band."""
    registry.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": "ecr-pullthroughcache/docker-hub",
            "SecretString": '{"username":"","accessToken":""}',
            "GenerateSecretString": Match.absent(),
        },
    )
    # Referenced, not created: only docker-hub asked for create_secret.
    registry.resource_count_is("AWS::SecretsManager::Secret", 1)


def test_creation_templates_for_each_prefix_and_root(registry: Template) -> None:
    templates = registry.find_resources("AWS::ECR::RepositoryCreationTemplate")
    by_prefix = {t["Properties"]["Prefix"]: t["Properties"] for t in templates.values()}
    assert set(by_prefix) == {"ecr-public", "k8s", "quay", "docker-hub", "ghcr", "acr", "ROOT"}
    hub = by_prefix["docker-hub"]
    assert hub["AppliedFor"] == ["PULL_THROUGH_CACHE"]
    assert hub["ImageTagMutability"] == "MUTABLE"
    assert hub["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    assert json.loads(hub["LifecyclePolicy"])["rules"][0]["selection"]["tagStatus"] == "untagged"
    assert by_prefix["ROOT"]["AppliedFor"] == ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE"]


def test_enhanced_scanning_is_registry_wide(registry: Template) -> None:
    registry.has_resource_properties(
        "AWS::ECR::RegistryScanningConfiguration",
        {"ScanType": "ENHANCED", "Rules": [Match.object_like({"ScanFrequency": "CONTINUOUS_SCAN"})]},
    )


def test_stateful_logical_ids_are_pinned(registry: Template, repositories: dict[str, dict[str, Any]]) -> None:
    """Renaming these would make CloudFormation replace a repository full of released images (and the IDs are the
    ones they had in the registry stack, so a platform deployed before the split refactors them across stacks)."""
    assert sorted(repositories) == [
        "TeampaymentsBasedebianRepositoryD4EC7927",
        "TeampaymentsBaselambdapythonRepository56DA04C0",
        "TeampaymentsBasepythonRepository86EA601A",
        "TeampaymentsBasepythonbuildRepositoryA9CFC775",
        "TeampaymentsServiceapiRepositoryF2ED4722",
        "TeamsearchBasestaticRepository1F68E3B0",
        "TeamsearchServiceindexerRepository3C1858E9",
    ]
    assert list(registry.find_resources("AWS::SecretsManager::Secret")) == [
        "PullThroughCacheCredentialdockerhubFD2AF9F1"
    ]


def _stack() -> Stack:
    return Stack(App(), "T", env={"account": "111111111111", "region": "eu-west-1"})


def test_fails_image_repository_with_bad_props() -> None:
    props = ImageRepositoryProps(
        repository_name="Payments/API", team="payments", keep_releases=0, pull_accounts=("12",)
    )
    with pytest.raises(PropsError) as info:
        ImageRepository(_stack(), "R", props)
    assert str(info.value) == (
        "ImageRepository: repository_name: expected a lowercase ECR name like 'team/service', got 'Payments/API'; "
        "keep_releases: expected 1..1000, got 0; pull_accounts[0]: expected a 12-digit account id, got '12'"
    )


def test_fails_image_repository_making_everything_mutable() -> None:
    props = ImageRepositoryProps(repository_name="a/b", team="a", extra_mutable_tag_prefixes=("*",))
    with pytest.raises(PropsError, match=r"extra_mutable_tag_prefixes\[0\]: release tags must stay immutable"):
        ImageRepository(_stack(), "R", props)


def test_image_uri_refuses_a_tag() -> None:
    repo = ImageRepository(_stack(), "R", ImageRepositoryProps(repository_name="a/b", team="a"))
    with pytest.raises(ValueError, match=r"image_uri: expected a literal digest 'sha256:<64 hex>', got 'latest'"):
        repo.image_uri("latest")
    assert "@sha256:" in repo.image_uri("sha256:" + "a" * 64)


def test_fails_pull_through_cache_with_bad_props() -> None:
    upstreams = (
        Upstream(prefix="hub", registry="docker-hub", credential_secret="token"),
        Upstream(prefix="hub", registry="k8s", credential_secret="ecr-pullthroughcache/k8s"),
    )
    with pytest.raises(PropsError) as info:
        PullThroughCache(_stack(), "P", PullThroughCacheProps(upstreams=upstreams))
    assert str(info.value) == (
        "PullThroughCache: upstreams[0].credential_secret: docker-hub needs a secret named "
        "'ecr-pullthroughcache/...', got 'token'; upstreams[1].prefix: duplicate prefix 'hub'; "
        "upstreams[1].credential_secret: k8s takes no credential"
    )


def test_fails_pull_through_cache_without_upstreams() -> None:
    with pytest.raises(PropsError, match=r"upstreams: expected at least one upstream registry, got none"):
        PullThroughCache(_stack(), "P", PullThroughCacheProps(upstreams=()))


def test_fails_creation_templates_with_bad_props() -> None:
    with pytest.raises(PropsError) as info:
        RepositoryCreationTemplates(
            _stack(), "C", RepositoryCreationTemplatesProps(pull_through_prefixes=("ROOT",), keep_images=0)
        )
    assert str(info.value) == (
        "RepositoryCreationTemplates: pull_through_prefixes: 'ROOT' is not a prefix; set include_root=True instead; "
        "keep_images: expected 1..10000, got 0"
    )


def test_creation_role_scope_and_its_reason_agree(registry: Template) -> None:
    """With a ROOT template the role may create any repository; its acknowledgment must say so, not 'the prefix'."""
    from infra.creation_templates import creation_role_reason

    [policy] = [
        p for p in registry.find_resources("AWS::IAM::Policy").values()
        if "ecr:CreateRepository" in json.dumps(p["Properties"]["PolicyDocument"])
    ]  # fmt: skip
    [statement] = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "ecr:CreateRepository" in s["Action"]
    ]
    resource = json.dumps(statement["Resource"])
    assert resource.endswith(':repository/*"]]}'), "the example has a ROOT template: every repository"
    assert "any name" in creation_role_reason("*") and "prefix" not in creation_role_reason("*")
    assert creation_role_reason("docker-hub/*").endswith("scoped to docker-hub/*")
