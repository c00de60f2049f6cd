"""``slipway synth``: synthesize the CDK app (cdk-nag included) and print a summary of every stack."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.table import render


@dataclass(frozen=True)
class StackSummary:
    name: str
    resources: int
    top_types: tuple[tuple[str, int], ...]


def register(commands: Any) -> None:
    parser = commands.add_parser("synth", help="synthesize the CDK app and summarize it", description=__doc__)
    parser.add_argument("--config", default="platform.toml", type=Path, help="default: %(default)s")
    parser.add_argument("--outdir", default="cdk.out", type=Path, help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=lambda a: synth(config_path=a.config, outdir=a.outdir, as_json=a.json))


def synth(*, config_path: Path, outdir: Path, as_json: bool = False) -> int:
    try:
        loaded = config.load(config_path)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / ".slipway-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        print(f"slipway synth: --outdir {outdir}: cannot write there ({exc.strerror or exc})", file=sys.stderr)
        return 2
    summaries = synthesize(loaded, outdir)
    if as_json:
        print(json.dumps([s.__dict__ for s in summaries], indent=2))
        return 0
    rows = [
        (s.name, str(s.resources), ", ".join(f"{t.removeprefix('AWS::')}x{n}" for t, n in s.top_types))
        for s in summaries
    ]
    print(render(("stack", "resources", "largest resource types"), rows))
    print(f"{len(summaries)} stacks, {sum(s.resources for s in summaries)} resources → {outdir}/")
    return 0


def synthesize(loaded: config.PlatformConfig, outdir: Path) -> list[StackSummary]:
    # Imported here: jsii start-up costs seconds, and `slipway validate` should not pay it.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.platform_app import build_app

    assembly = build_app(loaded, outdir=str(outdir)).synth()
    summaries = []
    for stack in assembly.stacks:
        resources: dict[str, Any] = stack.template.get("Resources", {})
        types = Counter(r["Type"] for r in resources.values())
        summaries.append(StackSummary(stack.stack_name, len(resources), tuple(types.most_common(3))))
    return summaries
