"""``slipway status --html FILE``: one static page a person opens or publishes -- services down, environments across,
each cell the targets there with their short digest, release, age and state; drift in red.

Self-contained (inline CSS, no script, no external asset), every value escaped: the page can be served from any
bucket or attached to a ticket as it is.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

from pipeline.status import DRIFT, HELD, NEVER, OK, SHIFTING, UNREADABLE, Row

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1b1f24; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d0d7de; padding: .5rem .75rem; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
.target { margin: .15rem 0; }
.ok { color: #116329; }
.drift, .unreadable { color: #fff; background: #cf222e; padding: 0 .3rem; border-radius: 3px; }
.never { color: #57606a; }
.held, .shifting { color: #9a6700; }
code { font: 12px ui-monospace, monospace; }
.why { color: #cf222e; font-size: 12px; }
.verified { color: #57606a; font-size: 12px; }
"""
_CLASS = {OK: "ok", HELD: "held", SHIFTING: "shifting", DRIFT: "drift", UNREADABLE: "unreadable", NEVER: "never"}


def age(since: str, now: datetime) -> str:
    """``3d``, ``5h``, ``12m`` since ``since`` (ISO 8601, as AWS and Kubernetes write it); ``-`` when unknown."""
    try:
        when = datetime.fromisoformat(since.replace(" ", "T"))
    except ValueError:
        return "-"
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    minutes = max(0, int((now - when).total_seconds() // 60))
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes >= size:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def render(rows: Sequence[Row], *, platform: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    environments = list(dict.fromkeys(r.environment for r in rows))
    services = list(dict.fromkeys(r.service for r in rows))
    e = html.escape
    head = "".join(f"<th>{e(env or 'platform account')}</th>" for env in environments)
    body = []
    for service in services:
        cells = []
        for environment in environments:
            here = [r for r in rows if r.service == service and r.environment == environment]
            cells.append(f'<td data-environment="{e(environment)}">{"".join(_target(r, now) for r in here)}</td>')
        body.append(f'<tr data-service="{e(service)}"><th>{e(service)}</th>{"".join(cells)}</tr>')
    drifting = sum(r.state in (DRIFT, UNREADABLE) for r in rows)
    summary = f"{len(rows)} targets, {drifting} drifting" if drifting else f"{len(rows)} targets, no drift"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Slipway status: {e(platform)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>Slipway status: {e(platform)}</h1>"
        f'<p id="summary">{e(summary)} — read live from every target at {e(now.strftime("%Y-%m-%d %H:%M UTC"))}</p>'
        f"<table><thead><tr><th>service</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>\n"
    )


def _target(row: Row, now: datetime) -> str:
    e = html.escape
    short = row.digest.removeprefix("sha256:")[:12] or "-"
    release = f" {e(row.release)}" if row.release else ""
    why = f'<div class="why">{e(row.why)}</div>' if row.why else ""
    verified = f'<div class="verified">verified: {e(row.verified)}</div>' if row.verified else ""
    return (
        f'<div class="target" data-target="{e(row.target)}" data-state="{e(row.state)}">{e(row.target)} '
        f'<code title="{e(row.image)}">{e(short)}</code>{release} · {e(age(row.since, now))} '
        f'<span class="{_CLASS.get(row.state, "drift")}">{e(row.state)}</span>{verified}{why}</div>'
    )
