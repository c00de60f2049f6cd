"""The registry gate's decisions: which ECR action a request is, who may do it, which tags may move; and the tokens."""

from __future__ import annotations

import pytest

from pipeline.local import registry_token
from pipeline.local.registry_gate import Call, call_for, refusal, tag_locked
from pipeline.local.replay.authorize import Policies

ACCOUNT = "111111111111"
BUILD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/slipway/build/payments/BuildRole"
STITCH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/StitchRole"
REPOSITORY = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/payments/api"
PUSH = ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"]
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


def _allow(actions: list[str], resource: str = REPOSITORY) -> dict[str, object]:
    return {"Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}


ONLY_TEAM_PUSHES = {"Statement": [{
    "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": PUSH,
    "Condition": {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/slipway/build/payments/*"}},
}, {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": PULL}]}  # fmt: skip
POLICIES = Policies(
    account=ACCOUNT, region="eu-west-1",
    roles={BUILD_ROLE: [_allow(PUSH + PULL)], STITCH_ROLE: [_allow(PUSH + PULL)]},
    repositories={"payments/api": ONLY_TEAM_PUSHES},
    immutable={"payments/api": ("cache-*",), "payments/bases/debian": ()},
)  # fmt: skip


def _session(role_arn: str) -> str:
    account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
    return f"arn:aws:sts::{account}:assumed-role/{name}/slipway-replay"


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/v2/", {}, None),
        ("GET", "/v2/payments/api/manifests/abc123", {}, Call("ecr:BatchGetImage", "payments/api")),
        ("HEAD", "/v2/payments/api/manifests/sha256:aa", {}, Call("ecr:BatchGetImage", "payments/api")),
        ("PUT", "/v2/payments/api/manifests/abc123", {}, Call("ecr:PutImage", "payments/api", tag="abc123")),
        ("PUT", "/v2/payments/api/manifests/sha256:aa", {}, Call("ecr:PutImage", "payments/api")),
        ("DELETE", "/v2/payments/api/manifests/sha256:aa", {}, Call("ecr:BatchDeleteImage", "payments/api")),
        ("HEAD", "/v2/payments/api/blobs/sha256:aa", {}, Call("ecr:BatchCheckLayerAvailability", "payments/api")),
        ("GET", "/v2/payments/api/blobs/sha256:aa", {}, Call("ecr:GetDownloadUrlForLayer", "payments/api")),
        ("POST", "/v2/payments/api/blobs/uploads/", {}, Call("ecr:InitiateLayerUpload", "payments/api")),
        ("POST", "/v2/payments/api/blobs/uploads/", {"mount": ["sha256:aa"], "from": ["payments/bases/debian"]},
         Call("ecr:InitiateLayerUpload", "payments/api",
              also=(("ecr:GetDownloadUrlForLayer", "payments/bases/debian"),))),
        ("PATCH", "/v2/payments/api/blobs/uploads/u-1", {}, Call("ecr:UploadLayerPart", "payments/api")),
        ("PUT", "/v2/payments/api/blobs/uploads/u-1", {"digest": ["sha256:aa"]},
         Call("ecr:CompleteLayerUpload", "payments/api")),
        ("GET", "/v2/payments/api/tags/list", {}, Call("ecr:ListImages", "payments/api")),
        ("GET", "/v2/docker-hub/library/busybox/manifests/1.36", {},
         Call("ecr:BatchGetImage", "docker-hub/library/busybox")),
        ("GET", "/v2/_catalog", {}, Call("ecr:DescribeRepositories", "")),
    ],
)  # fmt: skip
def test_each_registry_request_is_the_ecr_action_iam_authorizes(method: str, path: str, query: dict[str, list[str]],
                                                                  expected: Call | None) -> None:  # fmt: skip
    assert call_for(method, path, query) == expected


def test_the_team_build_role_pushes_and_a_role_outside_its_path_is_denied_by_the_repository_policy() -> None:
    push = Call("ecr:PutImage", "payments/api", tag="abc")
    assert refusal(POLICIES, _session(BUILD_ROLE), push) == ""
    why = refusal(POLICIES, _session(STITCH_ROLE), push)
    assert why.startswith(f"User: {_session(STITCH_ROLE)} is not authorized to perform: ecr:PutImage on resource: "
                          f"{REPOSITORY} with an explicit deny in a resource-based policy")  # fmt: skip
    assert refusal(POLICIES, _session(STITCH_ROLE), Call("ecr:BatchGetImage", "payments/api")) == ""


def test_a_role_without_a_grant_is_denied_and_the_admin_is_not() -> None:
    other = f"arn:aws:iam::{ACCOUNT}:role/LintRole"
    why = refusal(POLICIES, _session(other), Call("ecr:BatchGetImage", "payments/bases/debian"))
    assert "because no identity-based policy allows the ecr:BatchGetImage action" in why
    assert "repository/payments/bases/debian" in why
    admin = f"arn:aws:iam::{ACCOUNT}:user/slipway-local-admin"
    assert refusal(POLICIES, admin, Call("ecr:PutImage", "docker-hub/library/busybox", tag="1.36")) == ""
    assert "explicit deny" in refusal(POLICIES, admin, Call("ecr:PutImage", "payments/api", tag="abc"))


def test_another_account_pulls_through_the_repository_policy_alone() -> None:
    workload = "arn:aws:sts::222222222222:assumed-role/Deploy/s"
    assert refusal(POLICIES, workload, Call("ecr:BatchGetImage", "payments/api")) == ""
    assert "ecr:InitiateLayerUpload" in refusal(POLICIES, workload, Call("ecr:InitiateLayerUpload", "payments/api"))


def test_a_blob_mount_needs_the_read_of_its_source_repository() -> None:
    mount = Call("ecr:InitiateLayerUpload", "payments/api", also=(("ecr:GetDownloadUrlForLayer", "search/indexer"),))
    assert "repository/search/indexer" in refusal(POLICIES, _session(BUILD_ROLE), mount)


@pytest.mark.parametrize(
    ("repository", "tag", "locked"),
    [
        ("payments/api", "0123abc", True),
        ("payments/api", "0123abc-linux-arm64", True),
        ("payments/api", "cache-linux-arm64", False),
        ("payments/api", "xcache-1", True),
        ("payments/bases/debian", "cache-linux-amd64", True),
        ("docker-hub/library/busybox", "1.36", False),
    ],
)
def test_release_tags_are_immutable_except_the_repository_exclusions(repository: str, tag: str, locked: bool) -> None:
    assert tag_locked(POLICIES, repository, tag) is locked


def test_a_token_names_its_caller_until_it_expires_and_only_with_its_key() -> None:
    password, expires = registry_token.issue("arn:aws:iam::1:user/a", "key", now=1000.0)
    assert expires == 1000.0 + 12 * 3600
    assert registry_token.caller(password, "key", now=1001.0) == "arn:aws:iam::1:user/a"
    assert registry_token.caller(password, "key", now=expires) is None
    assert registry_token.caller(password, "other key", now=1001.0) is None
    _, _, signature = password.rpartition(".")
    forged, _ = registry_token.issue("arn:aws:iam::1:user/b", "key", now=1000.0)
    assert registry_token.caller(f"{forged.rpartition('.')[0]}.{signature}", "key", now=1001.0) is None
    assert registry_token.caller("111111111111-auth-token", "key") is None


class FakeStore:
    """The store behind the gate: manifests by (repository, reference), blobs by repository."""

    def __init__(self) -> None:
        from pipeline.local.pull_through import Manifest

        self.Manifest = Manifest
        self.manifests: dict[tuple[str, str], Manifest] = {}
        self.blobs: dict[str, set[str]] = {}
        self.mounted: list[tuple[str, str, str]] = []

    def add(self, repository: str, reference: str, document: dict[str, object]) -> str:
        import hashlib
        import json

        body = json.dumps(document).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        manifest = self.Manifest(body, "application/vnd.oci.image.index.v1+json", digest)
        self.manifests[(repository, reference)] = self.manifests[(repository, digest)] = manifest
        return digest

    def manifest(self, repository: str, reference: str):  # type: ignore[no-untyped-def]
        return self.manifests.get((repository, reference))

    def exists(self, repository: str) -> bool:
        return any(r == repository for r, _ in self.manifests)

    def put(self, repository: str, reference: str, manifest) -> None:  # type: ignore[no-untyped-def]
        self.manifests[(repository, reference)] = self.manifests[(repository, manifest.digest)] = manifest

    def mount(self, repository: str, digest: str, source: str) -> None:
        assert digest in self.blobs.get(source, set()), (digest, source)
        self.blobs.setdefault(repository, set()).add(digest)
        self.mounted.append((repository, digest, source))


def test_a_pull_by_tag_imports_the_upstream_image_children_and_blobs_first() -> None:
    from pipeline.local.pull_through import cached, import_tag

    store = FakeStore()
    source, cache = "slipway-upstream/docker-hub/library/debian", "docker-hub/library/debian"
    store.blobs[source] = {"sha256:c", "sha256:l"}
    child = store.add(source, "child", {"config": {"digest": "sha256:c"}, "layers": [{"digest": "sha256:l"}]})
    index = store.add(source, "bookworm", {"manifests": [{"digest": child}]})
    assert not store.exists(cache)
    assert import_tag(store, cache, "bookworm")  # type: ignore[arg-type]
    assert store.manifest(cache, "bookworm").digest == index and store.manifest(cache, child) is not None
    assert store.blobs[cache] == {"sha256:c", "sha256:l"}
    mounts = len(store.mounted)
    assert import_tag(store, cache, "bookworm") and len(store.mounted) == mounts  # the same tag again: nothing to do
    assert not import_tag(store, cache, "trixie")  # the upstream has no such tag
    assert cached(("docker-hub", "quay"), cache) and not cached(("docker-hub",), "payments/api")


def test_the_import_needs_its_own_permission_beside_the_pull() -> None:
    pull_only = Policies(account=ACCOUNT, region="eu-west-1", roles={BUILD_ROLE: [_allow(PULL, "*")]})
    assert refusal(pull_only, _session(BUILD_ROLE), Call("ecr:BatchGetImage", "docker-hub/library/debian")) == ""
    why = refusal(pull_only, _session(BUILD_ROLE), Call("ecr:BatchImportUpstreamImage", "docker-hub/library/debian"))
    assert "not authorized to perform: ecr:BatchImportUpstreamImage on resource: " in why
