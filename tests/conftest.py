from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "platform.toml"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture
def example_raw() -> dict[str, Any]:
    """A fresh, mutable copy of the example platform.toml."""
    return copy.deepcopy(_EXAMPLE_RAW)


_EXAMPLE_RAW = tomllib.loads(EXAMPLE.read_text())


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthesize the example app once per session (jsii start-up costs seconds): {stack name: Template}."""
    from aws_cdk.assertions import Template

    from infra.platform_app import build_app
    from pipeline.config import load

    app = build_app(load(EXAMPLE), outdir=str(tmp_path_factory.mktemp("cdk.out")))
    from aws_cdk import Stack

    stacks = [c for c in app.node.children if isinstance(c, Stack)]
    templates = {s.stack_name: Template.from_stack(s) for s in stacks}
    assembly = app.synth()  # runs cdk-nag: raises on any unacknowledged finding
    return {"templates": templates, "stacks": {s.stack_name: s for s in stacks}, "assembly": assembly}
