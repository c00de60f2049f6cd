"""A small IAM policy evaluator over the synthesized documents: what moto cannot check for the replay.

moto's IAM enforcement checks non-S3 actions against ``Resource "*"`` only, and never evaluates resource policies (the
ECR repository policy a Lambda function pulls through). This evaluates one request against policy documents the way
IAM does for the parts Slipway's policies use: an explicit ``Deny`` wins, else an ``Allow`` that matches, else the
implicit deny; ``Action``/``NotAction`` and ``Resource``/``NotResource`` with ``*`` and ``?`` wildcards (actions
case-insensitive); ``Principal`` for resource policies (``*``, an account's root, an ARN, a service); and the
``String*``/``Arn*`` condition operators (keys case-insensitive; a missing key never satisfies a positive operator and
always satisfies a negated one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALLOW, DENY, IMPLICIT_DENY = "Allow", "Deny", "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    principal: str = ""
    """For resource policies: the caller's ARN, or ``service:<name>`` for an AWS service principal."""
    context: Mapping[str, str] = field(default_factory=dict)
    """Condition keys of the request (``aws:sourceArn``, ``aws:PrincipalArn``…)."""


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM's wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` one; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL if case else re.DOTALL | re.IGNORECASE) is not None


def _matches_any(patterns: Any, value: str, *, case: bool = True) -> bool:
    return any(_like(p, value, case=case) for p in _listed(patterns))


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if caller.startswith("service:"):
        return caller.removeprefix("service:") in _listed(principal.get("Service"))
    for named in _listed(principal.get("AWS")):
        if named == "*" or named == caller:
            return True
        root = re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}):root", named)
        if root and f":{root.group(1)}:" in caller:
            return True
    return False


def _equals(pattern: str, value: str) -> bool:
    return pattern == value


def _wildcard(pattern: str, value: str) -> bool:
    return _like(pattern, value)


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_equals, False), "StringLike": (_wildcard, False), "ArnEquals": (_equals, False),
    "ArnLike": (_wildcard, False), "StringNotEquals": (_equals, True), "StringNotLike": (_wildcard, True),
    "ArnNotEquals": (_equals, True), "ArnNotLike": (_wildcard, True),
}  # fmt: skip


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    values = {k.lower(): v for k, v in context.items()}
    for operator, keys in conditions.items():
        if operator not in _OPERATORS:
            return False  # an operator this evaluator does not know never grants
        compare, negated = _OPERATORS[operator]
        for key, patterns in keys.items():
            value = values.get(key.lower())
            if value is None:
                if not negated:
                    return False
                continue
            matched = any(compare(p, value) for p in _listed(patterns))
            if matched == negated:
                return False
    return True


def _statement_applies(statement: Mapping[str, Any], request: Request, *, resource_policy: bool) -> bool:
    if "Action" in statement and not _matches_any(statement["Action"], request.action, case=False):
        return False
    if "NotAction" in statement and _matches_any(statement["NotAction"], request.action, case=False):
        return False
    if "Resource" in statement and not _matches_any(statement["Resource"], request.resource):
        return False
    if "NotResource" in statement and _matches_any(statement["NotResource"], request.resource):
        return False
    if resource_policy and not _principal_matches(statement.get("Principal"), request.principal):
        return False
    return _conditions_hold(statement.get("Condition", {}), request.context)


def evaluate(documents: Iterable[Mapping[str, Any]], request: Request, *, resource_policy: bool = False) -> str:
    """``Allow``, ``Deny`` (an explicit deny matched) or ``ImplicitDeny`` (nothing allowed it)."""
    decision = IMPLICIT_DENY
    for document in documents:
        statements = document.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if not _statement_applies(statement, request, resource_policy=resource_policy):
                continue
            if statement.get("Effect") == "Deny":
                return DENY
            if statement.get("Effect") == "Allow":
                decision = ALLOW
    return decision


def trusted_services(trust: dict[str, Any]) -> set[str]:
    """The AWS services a trust policy lets assume the role (``Allow`` ``sts:AssumeRole`` to a ``Service``)."""
    services: set[str] = set()
    for statement in trust.get("Statement", []):
        if statement.get("Effect") == "Allow" and "sts:AssumeRole" in _listed(statement.get("Action")):
            services.update(_listed(statement.get("Principal", {}).get("Service")))
    return services
