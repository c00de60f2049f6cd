#!/usr/bin/env python3
"""CDK entry point: load platform.toml and synthesize. All wiring lives in infra.platform_app."""

from __future__ import annotations

import os
import sys

from infra.platform_app import build_app
from pipeline.config import ConfigError, load

try:
    config = load(os.environ.get("SLIPWAY_CONFIG", "platform.toml"))
except ConfigError as exc:
    sys.exit(str(exc))

build_app(config).synth()
