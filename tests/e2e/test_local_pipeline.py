"""End to end on the example config: local up → seed → run → down. The run replays the synthesized pipelines (created
at once, the bases' publications starting what builds on them, every action's buildspec as CodeBuild runs it); the tests then
check the deployed digests against the registry with plain HTTP GETs. Slow (debootstrap, arm64 under QEMU); `make
test` runs it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import requests

from pipeline import assembly
from pipeline.commands.local import run
from pipeline.local.aws import client, organization_credentials
from pipeline.local.state import LocalState
from tests.conftest import EXAMPLE
from tests.e2e.conftest import CREDENTIALS, get

pytestmark = pytest.mark.e2e
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
DEV, PROD = "222222222222", "555555555555"
PROD_REGION = "eu-central-1"  # prod runs payments/api from its ECR replica there
REPLICA = f"111111111111.dkr.ecr.{PROD_REGION}.amazonaws.com"
REGISTRY_OF = {DEV: ECR, PROD: REPLICA}


def image_json(state: LocalState, service: str) -> dict:
    return json.loads((state.directory / "runs" / service / "image.json").read_text())


def in_account(local: LocalState, service: str, account: str) -> Any:
    """A client of the AWS stand-in acting in ``account`` (a workload account through its organization role), in the
    region the example's environment there is in."""
    admin = local.aws_credentials()
    if account == "111111111111":
        return client(service, local.aws_endpoint, admin)
    region = PROD_REGION if account == PROD else "eu-west-1"
    return client(service, local.aws_endpoint, organization_credentials(local.aws_endpoint, account, admin), region)


def test_lambda_runs_the_arm64_child_the_registry_serves_in_dev_and_in_prod(local: LocalState) -> None:
    """Promotion moves the same bytes: both accounts' functions name the one arm64 child of the one release."""
    image = image_json(local, "payments-api")
    index = get(
        f"http://{local.registry}/v2/payments/api/manifests/{image['index_digest']}",
        "application/vnd.oci.image.index.v1+json",
    )
    assert "sha256:" + hashlib.sha256(index).hexdigest() == image["index_digest"]
    arm = next(m for m in json.loads(index)["manifests"] if m["platform"]["architecture"] == "arm64")
    for account in (DEV, PROD):
        served = f"{REGISTRY_OF[account]}/payments/api@{arm['digest']}"
        assert alias_image(in_account(local, "lambda", account)) == served, account
        function = in_account(local, "lambda", account).get_function(FunctionName="payments-api")
        assert function["Configuration"]["Architectures"] == ["arm64"]


def alias_image(lam: Any, function: str = "payments-api", alias: str = "live") -> str:
    """The image the alias serves: the version it names was published with its image as description (the deployer's
    record on the function itself)."""
    version = lam.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]
    return str(lam.get_function_configuration(FunctionName=function, Qualifier=version)["Description"])


def test_ecs_services_run_the_index_digest(local: LocalState) -> None:
    for account, cluster, service, path, registry in (
        (DEV, "payments", "api", "payments/api", ECR),
        (PROD, "payments", "api", "payments/api", REPLICA),
        ("111111111111", "search", "indexer", "search/indexer", ECR),
    ):
        ecs = in_account(local, "ecs", account)
        image = image_json(local, path.replace("/", "-"))
        described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        definition = ecs.describe_task_definition(taskDefinition=described["taskDefinition"])["taskDefinition"]
        assert definition["containerDefinitions"][0]["image"] == f"{registry}/{path}@{image['index_digest']}", account
        served = get(
            f"http://{local.registry}/v2/{path}/manifests/{image['index_digest']}",
            "application/vnd.oci.image.index.v1+json",
        )
        assert "sha256:" + hashlib.sha256(served).hexdigest() == image["index_digest"]


def test_the_run_reports_each_deployment_with_its_environment_and_account(local: LocalState) -> None:
    deployments = json.loads((local.directory / "runs" / "last-run.json").read_text())["deployments"]
    assert sorted((d["service"], d["environment"], d["account"], d["target"]) for d in deployments) == [
        ("payments-api", "dev", DEV, "ecs:payments/api"), ("payments-api", "dev", DEV, "lambda:payments-api"),
        ("payments-api", "prod", PROD, "ecs:payments/api"), ("payments-api", "prod", PROD, "lambda:payments-api"),
        ("search-indexer", "", "111111111111", "ecs:search/indexer"),
        ("search-indexer", "", "111111111111", "eks:search/search/indexer"),
    ]  # fmt: skip
    for target in ("ecs:payments/api", "lambda:payments-api"):  # one release, promoted: the same digest in each
        assert len({d["image"].split("@")[1] for d in deployments if d["target"] == target}) == 1, target
    assert {d["image"].split("/")[0] for d in deployments if d["environment"] == "prod"} == {REPLICA}


def test_prod_runs_the_replica_ecr_replication_made_in_its_region(local: LocalState) -> None:
    """Issue #27: the replica in eu-central-1 serves the release by the same digests -- copied there by the
    replication stand-in after the push, as ECR does -- and only what the replication rule names."""
    image = image_json(local, "payments-api")
    regions = dict(entry.split("=", 1) for entry in local.regions.split(","))
    replica = regions[PROD_REGION]
    index = get(f"http://{replica}/v2/payments/api/manifests/{image['index_digest']}",
                "application/vnd.oci.image.index.v1+json")  # fmt: skip
    assert "sha256:" + hashlib.sha256(index).hexdigest() == image["index_digest"]
    for entry in json.loads(index)["manifests"]:
        get(f"http://{replica}/v2/payments/api/manifests/{entry['digest']}", entry["mediaType"])
    indexer = image_json(local, "search-indexer")["index_digest"]
    with pytest.raises(requests.HTTPError) as missing:  # search/indexer deploys only in eu-west-1: not replicated
        get(f"http://{replica}/v2/search/indexer/manifests/{indexer}", "application/vnd.oci.image.index.v1+json")
    assert missing.value.response.status_code == 404


def test_the_eks_deployment_runs_the_index_digest_and_keeps_its_rollback_target(local: LocalState) -> None:
    """The deploy patched the Deployment in the cluster stand-in through kubectl (a kubeconfig from moto's
    eks:DescribeCluster), as in EKS: the index digest, and the image it replaced as an annotation."""
    image = image_json(local, "search-indexer")
    cluster = json.loads((local.directory / "kube" / "search.json").read_text())
    live = cluster["deployments"]["search/indexer"]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == f"{ECR}/search/indexer@{image['index_digest']}"
    annotations = live["metadata"]["annotations"]
    assert annotations["slipway.dev/image"] == f"{ECR}/search/indexer@{image['index_digest']}"
    assert annotations["slipway.dev/previous-image"].startswith(f"{ECR}/search/indexer@sha256:")


def test_static_service_is_tiny_and_both_platforms_are_built(local: LocalState) -> None:
    image = image_json(local, "search-indexer")
    assert set(image["platforms"]) == {"linux/amd64", "linux/arm64"}
    assert all(p["size"] <= 2_000_000 for p in image["platforms"].values()), image["platforms"]


def test_the_replay_ran_exactly_the_actions_the_assembly_defines(local: LocalState) -> None:
    """Every pipeline of cdk.out, every action, in the assembly's order: what `slipway local run --json` listed. A
    pipeline created before its bases were published failed at Build -- waiting, registered -- and the publication
    started it again: its last execution ran every action and succeeded."""
    defined = [
        (p.name, stage.name, action.name)
        for p in assembly.load(local.directory / "cdk.out")
        for stage, action in p.actions()
    ]
    ran = json.loads((local.directory / "runs" / "last-run.json").read_text())["actions"]
    last = {a["pipeline"]: a["execution"] for a in ran}  # rows come in execution order
    final = [a for a in ran if a["execution"] == last[a["pipeline"]]]
    assert sorted((a["pipeline"], a["stage"], a["action"]) for a in final) == sorted(defined)
    assert {a["status"] for a in final} == {"Succeeded"}
    assert all(a["role"] and a["seconds"] >= 0 for a in ran)
    waiting = [a for a in ran if a["status"] != "Succeeded"]
    assert all(a["stage"] == "Build" for a in waiting), waiting


def test_rerunning_a_pipeline_on_the_same_commit_succeeds_and_changes_nothing(
    local: LocalState, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retry of the whole service pipeline on the commit it already released: no base runs, the
    rebuild gives the same digests, stitch finds its tag already on that index, and no deploy changes anything."""
    before = image_json(local, "payments-api")
    revision = deployed(local, "payments-api", "dev-ecs")["revision"]
    assert run(state_dir=local.directory, config_path=EXAMPLE, service="payments/api", approve=True, as_json=True) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert {a["pipeline"] for a in report["actions"]} == {"slipway-payments-api"}
    assert all(a["status"] == "Succeeded" for a in report["actions"])
    assert "slipway-payments-base-python" not in err  # only the pipeline asked for (and what it starts: nothing)
    assert image_json(local, "payments-api") == before
    assert deployed(local, "payments-api", "dev-lambda")["changed"] is False
    assert deployed(local, "payments-api", "prod-lambda")["changed"] is False
    assert deployed(local, "payments-api", "dev-ecs")["revision"] == revision  # the revision in place, none registered


def test_the_registry_is_as_strict_as_ecr(local: LocalState) -> None:
    """Anonymous requests get 401; a blob read answers 307 to a second host that refuses any Authorization header."""
    anonymous = requests.get(f"http://{local.registry}/v2/", timeout=5)
    assert anonymous.status_code == 401
    image = image_json(local, "payments-api")
    index = json.loads(get(f"http://{local.registry}/v2/payments/api/manifests/{image['index_digest']}",
                           "application/vnd.oci.image.index.v1+json"))  # fmt: skip
    child = json.loads(get(f"http://{local.registry}/v2/payments/api/manifests/{index['manifests'][0]['digest']}",
                           index["manifests"][0]["mediaType"]))  # fmt: skip
    blob = f"http://{local.registry}/v2/payments/api/blobs/{child['config']['digest']}"
    redirected = requests.get(blob, auth=CREDENTIALS[0], allow_redirects=False, timeout=5)
    assert redirected.status_code == 307
    location = redirected.headers["Location"]
    assert not location.startswith(f"http://{local.registry}/")
    assert requests.get(location, headers={"Authorization": "Basic eA=="}, timeout=5).status_code == 400
    assert hashlib.sha256(requests.get(location, timeout=5).content).hexdigest() == child["config"]["digest"][7:]


def deployed(state: LocalState, service: str, kind: str) -> dict:
    return json.loads((state.directory / "runs" / service / f"deployed-{kind}.json").read_text())


def test_every_deployment_answered_on_its_own_architecture(local: LocalState) -> None:
    """The deployed digests themselves: the Lambda child invoked (through Lambda's Invoke, which the stand-in runs) under
    QEMU as arm64, the ECS images asked for their health path (or run, for the indexer that serves no HTTP), the EKS
    Deployment schema-checked by the cluster stand-in and its image run."""
    checks = {
        ("payments-api", "dev-lambda"): {"ok": True, "check": "invoke", "status": 200, "machine": "aarch64"},
        ("payments-api", "dev-ecs"): {"ok": True, "check": "GET /health", "status": 200, "machine": "x86_64"},
        ("payments-api", "prod-lambda"): {"ok": True, "check": "invoke", "status": 200, "machine": "aarch64"},
        ("payments-api", "prod-ecs"): {"ok": True, "check": "GET /health", "status": 200, "machine": "x86_64"},
        ("search-indexer", "ecs"): {"ok": True, "check": "run", "status": 0, "machine": "aarch64"},
        ("search-indexer", "eks"): {"ok": True, "check": "run", "status": 0, "machine": "x86_64"},
    }
    assert {key: deployed(local, *key)["verified"] for key in checks} == checks


def test_status_reads_every_target_live_and_names_a_hand_change(local: LocalState, capsys: Any, tmp_path: Any) -> None:
    """Issue #31: `slipway status` against the replay's accounts, exactly as against AWS: every target serves what its
    last deploy put there, a release of its repository; a Lambda alias moved by hand in moto is drift, exit 1."""
    from pipeline.commands.status import show

    assert show(config_path=EXAMPLE, as_json=True, local=local.directory) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and {r["state"] for r in rows} == {"ok"}, rows
    # ... and what proved each digest answered, as its deploy left it on the target (tag, or annotation on EKS).
    checks = {(r["service"], r["environment"], r["target"]): r["verified"].split(" at ")[0] for r in rows}
    assert checks == {
        ("payments/api", "dev", "lambda:payments-api"): "invoke 200 aarch64",
        ("payments/api", "dev", "ecs:payments/api"): "GET /health 200 x86_64",
        ("payments/api", "prod", "lambda:payments-api"): "invoke 200 aarch64",
        ("payments/api", "prod", "ecs:payments/api"): "GET /health 200 x86_64",
        ("search/indexer", "", "ecs:search/indexer"): "run 0 aarch64",
        ("search/indexer", "", "eks:search/search/indexer"): "run 0 x86_64",
    }, rows
    release = image_json(local, "payments-api")
    for row in (r for r in rows if r["service"] == "payments/api"):
        registry = REGISTRY_OF[row["account"]]
        platform = "linux/arm64" if row["target"].startswith("lambda:") else ""
        digest = release["platforms"][platform]["digest"] if platform else release["index_digest"]
        assert row["image"] == row["deployed"] == f"{registry}/payments/api@{digest}", row
        assert row["release"] == release["tag"] and row["commit"], row
    lam = in_account(local, "lambda", DEV)
    before = lam.get_alias(FunctionName="payments-api", Name="live")["FunctionVersion"]
    by_hand = f"{ECR}/payments/api@sha256:{'e' * 64}"
    lam.update_function_code(FunctionName="payments-api", ImageUri=by_hand)
    version = lam.publish_version(FunctionName="payments-api", Description=by_hand)["Version"]
    lam.update_alias(FunctionName="payments-api", Name="live", FunctionVersion=version)
    try:
        page = tmp_path / "status.html"
        assert show(config_path=EXAMPLE, local=local.directory, page=page) == 1
        out = capsys.readouterr().out
        assert f"payments/api dev lambda:payments-api: drift: serves {by_hand}, which no release of" in out
        assert "6 targets, 1 drifting" in page.read_text()
    finally:
        lam.update_alias(FunctionName="payments-api", Name="live", FunctionVersion=before)


def test_each_team_was_told_through_its_topic(local: LocalState) -> None:
    """Issue #31 item 3: the run's messages, as each team's inbox (an SQS queue on its SNS topic) received them: the
    approval CodePipeline published for prod, and a message per deploy from the deploy jobs -- release and digest."""
    told = json.loads((local.directory / "runs" / "told.json").read_text())  # every run's, in order
    payments, search = told["slipway-payments"], told["slipway-search"]
    release = image_json(local, "payments-api")
    approvals = [json.loads(m["message"])["approval"] for m in payments if m["subject"].startswith("APPROVAL NEEDED")]
    assert approvals and {(a["pipelineName"], a["stageName"]) for a in approvals} == {
        ("slipway-payments-api", "Deploy-prod")
    }
    assert approvals[0]["customData"].startswith("Deploy payments/api release of commit ")
    deployed = [m["subject"] for m in payments if " deployed to " in m["subject"]]
    for subject in ("deployed to dev; prod awaits approval", "deployed to prod"):  # its Lambda and its ECS service
        assert deployed.count(f"Slipway: payments/api {subject}") >= 2, deployed
    # dev's deploys name what prod's approval will be asked for -- release and digest -- and where to approve it
    awaiting = [m["message"] for m in payments if m["subject"].endswith("prod awaits approval")]
    assert any(
        f"approve release {release['tag']} ({release['index_digest']}) for prod: https://" in m for m in awaiting
    )
    assert any(release["tag"] in m["message"] and release["index_digest"] in m["message"] for m in payments)
    assert len([m for m in search if m["subject"] == "Slipway: search/indexer deployed to the platform account"]) >= 2


def test_every_release_is_signed_beside_its_index_and_what_is_not_is_refused_at_deploy(local: LocalState) -> None:
    """Issue #28, in the replay: each release's signature, provenance and SBOMs are OCI 1.1 referrers of its index (listed by
    the gate's referrers API, signed by moto's KMS with the release key), its cosign-format signature is tagged beside
    it, and the index lists its platform children only; an index pushed by hand under a release path, with credentials that can push, is refused by the deploy's
    own check before anything changes; a forged provenance beside a signed release is refused too."""
    from dataclasses import replace as changed

    from pipeline.attest import referrers
    from pipeline.attest.cosign import signature_tag
    from pipeline.attest.dsse import AttestationError, Envelope
    from pipeline.attest.release import COSIGN, ENVELOPE, PREDICATE, attest, verify
    from pipeline.attest.signer import KmsSigner
    from pipeline.attest.statements import PROVENANCE, SBOM, Provenance
    from pipeline.commands.deploy import deploy
    from pipeline.config import load
    from pipeline.local.reading import reading
    from pipeline.naming import release_key_arn
    from pipeline.oci import INDEXES, OCI_MANIFEST, Manifest, canonical_json
    from pipeline.records import ImageRecord, write
    from pipeline.registry import RepositoryRef, client_for
    from pipeline.registry.distribution import DistributionClient

    with reading(local):  # the replay's stand-ins, as its own process reaches them
        key = KmsSigner(release_key_arn("acme", "111111111111", "eu-west-1"))
        for service, source in (("payments-api", "acme/payments-api"), ("search-indexer", "acme/search-indexer")):
            record = ImageRecord.load(local.directory / "runs" / service / "image.json")
            repo = RepositoryRef.parse(record.repository)
            client = client_for(repo)
            found = verify(client, record, key, source=source)
            assert [f.kind for f in found] == ["https://slipway.dev/attestations/release/v1", PROVENANCE, SBOM, SBOM,
                                               COSIGN]  # fmt: skip
            # cosign's format beside them (what the EKS admission policy checks): its own tag, not a referrer
            assert signature_tag(record.index_digest) in client.list_tags(repo)
            assert f"built from {source}@{record.commit} by arn:aws:codebuild:eu-west-1:111111111111:project/" in (
                found[1].says
            )
            # each child's SBOM, read from the layers its build exported: the Debian packages of a Debian-based image
            assert all(" package(s)" in f.says for f in found[2:4]), found
            listed = referrers.listed(client, repo, record.index_digest)
            assert {d["artifactType"] for d in listed} == {ENVELOPE} and len(listed) == 4
            index = json.loads(client.get_manifest(repo, record.index_digest, INDEXES).data)
            assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
        # By hand: the same children under another index (an annotation added), pushed by someone who can push. The
        # gate lets only the team's build roles push (the admin is refused, as the repository policy says), so the
        # push goes to the registry's store behind it: what any holder of push rights could put there.
        record = ImageRecord.load(local.directory / "runs" / "payments-api" / "image.json")
        repo = RepositoryRef.parse(record.repository)
        client = client_for(repo)
        document = json.loads(client.get_manifest(repo, record.index_digest, INDEXES).data)
        document["annotations"] = {**document.get("annotations", {}), "by": "hand"}
        by_hand = Manifest(canonical_json(document), document["mediaType"])
        direct = DistributionClient()
        stored = RepositoryRef.parse(f"{local.services['registry-store'].address}/payments/api")
        direct.put_manifest(stored, f"{record.tag}-byhand", by_hand)
        handed = changed(record, tag=f"{record.tag}-byhand", index_digest=by_hand.digest)
        image_json_path = local.directory / "byhand-image.json"
        write(image_json_path, handed)
        target = next(iter(load(EXAMPLE).services()))[1].environments[0].targets()[0]

        def never() -> Any:
            raise AssertionError("the deploy reached its target")

        with pytest.raises(AttestationError, match=f"release {handed.index_uri}: no sig attestation refers to it"):
            deploy(never, target, image_json=image_json_path, out=local.directory / "byhand-deployed.json",
                   registry=client, attested=(key, "acme/payments-api"))  # fmt: skip
        # Signed for real (the stand-in's admin may sign: moto evaluates no key policy) in the store itself, which has
        # no referrers API (docker-registry 2.8): the OCI 1.1 fallback tag path. Then a forged provenance beside it:
        # its payload changed, its signature copied from the genuine one.
        client, repo, handed = direct, stored, changed(handed, repository=str(stored))
        made = Provenance(source="acme/payments-api", commit=record.commit,
                          builder="arn:aws:codebuild:eu-west-1:111111111111:project/slipway_payments_x_Stitch")  # fmt: skip
        sboms = {
            platform: {"spdxVersion": "SPDX-2.3", "name": platform, "packages": []} for platform in handed.platforms
        }
        attest(client, handed, key, made, sboms)
        assert len(verify(client, handed, key, source="acme/payments-api")) == 5
        assert referrers.fallback_tag(by_hand.digest) in client.list_tags(repo)
        genuine = client.get_manifest(repo, f"{handed.tag}-provenance", (OCI_MANIFEST,))
        layer = json.loads(genuine.data)["layers"][0]["digest"]
        envelope = Envelope.parse(client.get_blob(repo, layer), "provenance")
        statement = json.loads(envelope.payload)
        statement["predicate"]["buildDefinition"]["externalParameters"]["source"]["uri"] = "acme/payments-api"
        statement["predicate"]["runDetails"]["builder"]["id"] += "-evil"
        forged = changed(envelope, payload=json.dumps(statement).encode()).to_bytes()
        artifact = referrers.artifact(by_hand, ENVELOPE, forged, {PREDICATE: PROVENANCE})
        referrers.push(client, repo, f"{handed.tag}-forged", artifact, forged)
        with pytest.raises(AttestationError, match="no signature verifies with the platform's release key"):
            verify(client, handed, key, source="acme/payments-api")
