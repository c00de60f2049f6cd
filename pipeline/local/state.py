"""What ``slipway local up`` started (or found already running), kept in ``.slipway/state.json``.

``down`` stops only entries marked ``ours``, by the recorded PID.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_DIR = Path(".slipway")
REGISTRY_PORT = 5000
MOTO_PORT = 5001


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
    def docker_host(self) -> str:
        running = self.services.get("builder")
        return running.address if running else ""

    @property
    def aws_endpoint(self) -> str:
        running = self.services.get("aws")
        return running.address if running else f"http://127.0.0.1:{MOTO_PORT}"

    @property
    def lock_path(self) -> Path:
        return self.directory / "lock.json"

    @classmethod
    def load(cls, directory: Path = STATE_DIR) -> LocalState:
        # Absolute: daemons started from here must not depend on the caller's working directory.
        state = cls(directory.resolve())
        if state.path.exists():
            raw = json.loads(state.path.read_text())
            state.services = {name: Running(**entry) for name, entry in raw.get("services", {}).items()}
        return state

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"services": {k: asdict(v) for k, v in self.services.items()}}, indent=2))
