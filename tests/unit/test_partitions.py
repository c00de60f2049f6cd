"""No literal partition or DNS suffix (issue #27, policy 4): the example platform moved to China (``aws-cn``,
``amazonaws.com.cn``) synthesizes with no ``arn:aws:`` and no registry host of the ``aws`` partition in any template
-- a literal would name resources that do not exist there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_platform_in_another_partition_names_only_that_partition(tmp_path: Path) -> None:
    from infra.platform_app import build_app
    from pipeline.config import load

    text = EXAMPLE.read_text().replace("eu-west-1", "cn-north-1").replace("arn:aws:", "arn:aws-cn:")
    text = text.replace("eu-central-1", "cn-northwest-1")  # prod's replica region, in the same partition
    (tmp_path / "platform.toml").write_text(text)
    assembly = build_app(load(tmp_path / "platform.toml"), outdir=str(tmp_path / "cdk.out")).synth()
    found = {}
    for stack in assembly.stacks:
        text = json.dumps(stack.template)
        found[stack.stack_name] = re.findall(r"arn:aws:[^\"]{0,60}", text) + re.findall(
            r"\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?!\.cn)", text
        )
    assert len(found) >= 8 and not {name: hits for name, hits in found.items() if hits}
