"""What ``slipway local up`` started (or found already running), kept in ``.slipway/state.json``.

``down`` stops only entries marked ``ours``, by the recorded PID.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

STATE_DIR = Path(".slipway")
REGISTRY_PORT = 5000
MOTO_PORT = 5001

STATE_ENV = "SLIPWAY_LOCAL_STATE"
"""Where a stand-in running in its own process (moto, a job's kubectl) finds the local state."""


@dataclass
class Running:
    name: str
    pid: int = 0
    ours: bool = False
    """False when something already answered (an existing registry or docker daemon): never stopped by ``down``."""
    address: str = ""


@dataclass
class LocalState:
    directory: Path = STATE_DIR
    services: dict[str, Running] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.directory / "state.json"

    @property
    def registry(self) -> str:
        running = self.services.get("registry")
        return running.address if running else f"127.0.0.1:{REGISTRY_PORT}"

    @property
    def regions(self) -> str:
        """``SLIPWAY_ECR_REGIONS`` of the replay (:mod:`pipeline.local.replicas`): the platform's region at the
        registry, each replica region at its own gate (``registry@<region>``); empty before ``up``."""
        served = [
            (name.split("@", 1)[1], r.address) for name, r in self.services.items() if name.startswith("registry@")
        ]
        return ",".join(f"{region}={address}" for region, address in served)

    @property
    def docker_host(self) -> str:
        running = self.services.get("builder")
        return running.address if running else ""

    @property
    def aws_endpoint(self) -> str:
        running = self.services.get("aws")
        return running.address if running else f"http://127.0.0.1:{MOTO_PORT}"

    def aws_credentials(self) -> dict[str, str] | None:
        """The AWS stand-in's admin key (moto enforces IAM: the replay signs every call), if `up` created one."""
        path = self.directory / "aws-admin.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return {"AccessKeyId": str(data["AccessKeyId"]), "SecretAccessKey": str(data["SecretAccessKey"])}

    def save_aws_credentials(self, credentials: dict[str, str]) -> None:
        path = self.directory / "aws-admin.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(credentials))

    def registry_token_key(self) -> str:
        """The key the AWS stand-in signs registry tokens with and the registry gate checks them with (mode 0600)."""
        path = self.directory / "registry-token.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip()

    @property
    def git_root(self) -> Path:
        """The git host's stand-in: one repository per source repository of the platform."""
        return self.directory / "git"

    @property
    def lock_path(self) -> Path:
        return self.directory / "lock.json"

    @classmethod
    def load(cls, directory: Path = STATE_DIR) -> LocalState:
        # Absolute: daemons started from here must not depend on the caller's working directory.
        state = cls(directory.resolve())
        if state.path.exists():
            state.services = _read_services(state.path)
        return state

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"services": {k: asdict(v) for k, v in self.services.items()}}, indent=2))


class StateError(InputError):
    """``state.json`` is not what ``slipway local up`` writes."""


def _read_services(path: Path) -> dict[str, Running]:
    def broken(why: str) -> StateError:
        return StateError(f"{path}: {why}; stop what it names by hand if needed, then remove the file")

    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise broken(f"unreadable ({exc})") from exc
    entries = raw.get("services", {}) if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise broken("expected {'services': {NAME: {...}}}")
    services = {}
    for name, entry in entries.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name", name), str)
            and isinstance(entry.get("pid", 0), int)
            and isinstance(entry.get("ours", False), bool)
            and isinstance(entry.get("address", ""), str)
            and set(entry) <= {"name", "pid", "ours", "address"}
        ):
            raise broken(f"service {name!r}: expected name, pid, ours and address")
        services[name] = Running(**entry)
    return services
