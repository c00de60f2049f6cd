"""IAM enforced in the AWS stand-in as AWS enforces it, with Slipway's evaluator in place of moto's.

moto's own enforcement (5.2.5) checks every non-S3 action against ``Resource "*"``, so each least-privilege grant on an
ARN is denied; it also crashes on ``Service`` principals and on Secrets Manager's ``-??????`` ARN patterns. Here each
authenticated request is turned into the IAM requests AWS authorizes for it -- the action on the resource the request
names (:func:`requests_for`), plus the extra authorizations some actions imply (``iam:PassRole`` for a role handed to
ECS, ``ecs:TagResource`` for tags on create, the ECR pull behind a Lambda image update) -- and each is evaluated by
:mod:`pipeline.local.replay.policy` against the caller's identity policies (the assumed role's inline and attached
policies, as moto keeps them). An action whose resource this module cannot name is evaluated on ``*``: what AWS
does for actions without resource-level permissions, and a denial (never a silent allow) otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pipeline.local.replay.policy import ALLOW, Request, evaluate
from pipeline.registry.base import ecr_account_region

ECS_TASKS = "ecs-tasks.amazonaws.com"
# Services that answer in XML (the query protocol); the others Slipway calls answer in JSON.
QUERY_PROTOCOL = frozenset({"sts", "iam", "ec2", "cloudformation", "sns", "autoscaling", "elasticloadbalancing"})


# API operations whose IAM action has another name (moto names the action after the operation).
IAM_ACTIONS = {"lambda:Invoke": "lambda:InvokeFunction"}
IAM_PREFIXES = {"monitoring": "cloudwatch"}
"""moto names an action after its endpoint's prefix (CloudWatch's is ``monitoring``); IAM after the service's."""


def _first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def parameters(data: Any, body: bytes | str | None, path: str) -> dict[str, Any]:
    """The request's parameters: a JSON body (ECR, ECS, Secrets Manager), form or query values (STS, IAM), and the
    query string (Lambda's ``Qualifier``)."""
    found: dict[str, Any] = {k: _first(v) for k, v in parse_qs(urlparse(path).query).items()}
    if isinstance(data, Mapping):
        found.update({str(k): v if isinstance(v, dict) else _first(v) for k, v in data.items()})
    raw = body.decode(errors="replace") if isinstance(body, bytes) else body or ""
    if raw.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            found.update(json.loads(raw))
    return found


def _lambda(name: str, qualifier: str, arn: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"{arn}function:{name}" + (f":{qualifier}" if qualifier else "")


def _repository_arn(image_uri: str, region: str, account: str) -> str:
    """``ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME@sha256:…`` → the repository's ARN."""
    host, _, rest = image_uri.partition("/")
    name = re.split(r"[@:]", rest, maxsplit=1)[0]
    account, region = ecr_account_region(host) or (account, region)
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def requests_for(
    action: str, resource: str, *, region: str, account: str, path: str, params: Mapping[str, Any],
    secret_arn: Any = None, kms_key: Any = None,
) -> list[Request]:  # fmt: skip
    """The IAM requests AWS authorizes for one API call. ``resource``: what the stand-in already knows (S3 passes its
    bucket/key ARN; ``*`` otherwise). ``secret_arn``: name or ARN → the secret's full ARN (Secrets Manager).
    ``kms_key``: a key's ID, ARN, alias or alias ARN → the key's ARN (KMS authorizes on the key, and a request naming
    an alias carries it as ``kms:RequestAlias``)."""
    action = IAM_ACTIONS.get(action, action)
    prefix, _, operation = action.partition(":")
    action = f"{IAM_PREFIXES.get(prefix, prefix)}:{operation}"
    if resource != "*":
        return [Request(action, resource)]
    service, _, name = action.partition(":")
    arn = f"arn:aws:{service}:{region}:{account}:"
    if service == "ecr" and params.get("repositoryName"):
        return [Request(action, f"{arn}repository/{params['repositoryName']}")]
    if service == "lambda":
        found = re.search(r"/(?:functions|tags)/([^/?]+)", unquote(urlparse(path).path))
        if not found:
            return [Request(action, "*")]
        function = _lambda(found.group(1), _first(params.get("Qualifier")), arn)
        wanted = [Request(action, function)]
        if name in ("UpdateFunctionCode", "CreateFunction") and (params.get("ImageUri") or params.get("Code")):
            image = params.get("ImageUri") or (params.get("Code") or {}).get("ImageUri", "")
            if image:  # Lambda fetches the image with the caller's permission to pull it
                repository = _repository_arn(image, region, account)
                wanted += [Request(f"ecr:{pull}", repository) for pull in ("BatchGetImage", "GetDownloadUrlForLayer")]
        return wanted
    if service == "ecs":
        return _ecs(action, name, arn, params)
    if service == "secretsmanager" and params.get("SecretId"):
        secret = str(params["SecretId"])
        return [Request(action, secret if secret.startswith("arn:") else (secret_arn or (lambda s: s))(secret))]
    if service == "kms" and params.get("KeyId"):
        key = str(params["KeyId"])
        alias = "alias/" + key.split(":alias/", 1)[-1].removeprefix("alias/") if "alias/" in key else ""
        return [Request(action, (kms_key or (lambda k: k))(key), context={"kms:RequestAlias": alias} if alias else {})]
    if service == "sts" and name == "AssumeRole" and params.get("RoleArn"):
        return [Request(action, str(params["RoleArn"]))]
    if service == "sns" and params.get("TopicArn"):
        return [Request(action, str(params["TopicArn"]))]
    if service == "codepipeline" and params.get("name"):
        return [Request(action, f"{arn}{params['name']}")]
    if service == "ssm":
        return _ssm(action, arn, params)
    if service == "cloudwatch" and name == "DescribeAlarms" and isinstance(params.get("AlarmNames"), list):
        return [Request(action, f"{arn}alarm:{alarm}") for alarm in params["AlarmNames"]]  # each alarm it names
    if service == "eks" and name == "DescribeCluster":
        cluster = re.search(r"/clusters/([^/?]+)", urlparse(path).path)
        return [Request(action, f"{arn}cluster/{unquote(cluster.group(1))}" if cluster else "*")]
    return [Request(action, "*")]


def _ssm(action: str, arn: str, params: Mapping[str, Any]) -> list[Request]:
    """A parameter's ARN is ``parameter`` + its name (``/slipway/acme/lock/X``); GetParameters asks for each name,
    GetParametersByPath for the path."""
    names = params.get("Names") or [params.get("Name") or params.get("Path") or ""]
    names = names if isinstance(names, list) else [names]
    return [Request(action, f"{arn}parameter{n if str(n).startswith('/') else '/' + str(n)}" if n else "*")
            for n in names]  # fmt: skip


def _ecs(action: str, name: str, arn: str, params: Mapping[str, Any]) -> list[Request]:
    cluster = str(params.get("cluster") or "default").rsplit("/", 1)[-1]
    if name in ("UpdateService", "DescribeServices"):
        services = params.get("services") or [params.get("service", "")]
        return [Request(action, s if str(s).startswith("arn:") else f"{arn}service/{cluster}/{s}") for s in services]
    if name == "TagResource" and params.get("resourceArn"):
        return [Request(action, str(params["resourceArn"]))]
    if name != "RegisterTaskDefinition":
        return [Request(action, "*")]
    # RegisterTaskDefinition has no resource-level permission; what it implies does.
    wanted = [Request(action, "*")]
    if params.get("tags"):
        family = params.get("family", "")
        wanted.append(Request("ecs:TagResource", f"{arn}task-definition/{family}",
                              context={"ecs:CreateAction": "RegisterTaskDefinition"}))  # fmt: skip
    for key in ("taskRoleArn", "executionRoleArn"):
        if params.get(key):
            wanted.append(Request("iam:PassRole", str(params[key]), context={"iam:PassedToService": ECS_TASKS}))
    return wanted


def documents(policies: list[Any]) -> list[dict[str, Any]]:
    """moto's policies as documents: inline ones are JSON strings (or ``{"policy_document": …}``), attached ones are
    managed policies with versions."""
    found = []
    for item in policies:
        if hasattr(item, "versions"):
            item = next(v.document for v in item.versions if v.is_default)
        elif isinstance(item, Mapping):
            item = item["policy_document"]
        found.append(json.loads(item) if isinstance(item, str) else dict(item))
    return found


def denied(policies: list[Any], wanted: list[Request]) -> Request | None:
    """The first request the caller's identity policies do not allow (``None``: all allowed)."""
    docs = documents(policies)
    return next((request for request in wanted if evaluate(docs, request) != ALLOW), None)


ORGANIZATION_ROLE = "OrganizationAccountAccessRole"
"""What AWS Organizations creates in each member account (administrator access, trusting the management account):
the stand-in's admin reaches a workload account through it, as a platform team does to set the account up."""


def _organization_access(access_key: Any) -> bool:
    """An assumed session of a workload account's organization role, which the stand-in has not created as a role."""
    if type(access_key).__name__ != "AssumedRoleAccessKey" or access_key._owner_role_name != ORGANIZATION_ROLE:
        return False
    return ORGANIZATION_ROLE not in {role.name for role in access_key.backend.roles.values()}


def principal_arn(access_key: Any) -> str:
    """The caller as trust policies name it: an assumed session's role ARN (with its path), or the user's ARN."""
    if type(access_key).__name__ == "AssumedRoleAccessKey":
        with contextlib.suppress(Exception):
            return str(access_key.backend.get_role(access_key._owner_role_name).arn)
    return str(access_key.arn)


def _trusted(access_key: Any, role_arn: str) -> bool:
    """The role's trust policy (in the role's own account: cross-account assumption too) lets the caller assume it.
    A role that does not exist cannot be assumed -- except a workload account's organization role."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) < 6:
        return False
    caller = principal_arn(access_key)
    try:
        role = iam_backends[parts[4]]["aws"].get_role_by_arn(role_arn)
    except Exception:  # the organization role trusts the management account's administrators: the stand-in's admin
        return role_arn.endswith(f":role/{ORGANIZATION_ROLE}") and ":user/" in caller
    request = Request("sts:AssumeRole", role_arn, caller, {"aws:PrincipalArn": caller})
    return evaluate([json.loads(role.assume_role_policy_document)], request, resource_policy=True) == ALLOW


def install() -> None:
    """Replace moto's check (an import-time patch of the server process: ``pipeline.local.moto_server``)."""
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.iam import access_control
    from moto.kms.models import kms_backends
    from moto.secretsmanager.models import secretsmanager_backends

    def denial(caller: str, service: str, request: Request) -> Exception:
        """AccessDenied as the service's protocol spells it (XML for the query services, JSON for the rest)."""
        message = f"User: {caller} is not authorized to perform: {request.action} on resource: {request.resource}"
        if service in QUERY_PROTOCOL:
            denied_xml = AccessDeniedError(caller, request.action)
            denied_xml.description = str(denied_xml.description).replace(
                request.action, f"{request.action} on resource: {request.resource}", 1
            )
            return denied_xml
        denied_json = JsonRESTError("AccessDeniedException", message)
        denied_json.code = 403
        return denied_json

    def check_action_permitted(self: Any, resource: str) -> None:
        if self._action == "sts:GetCallerIdentity":  # always allowed, even under an explicit Deny
            return

        def secret_arn(name: str) -> str:
            try:
                return str(secretsmanager_backends[self.account_id][self._region].describe_secret(name).arn)
            except Exception:  # no such secret: the call itself answers ResourceNotFound
                return f"arn:aws:secretsmanager:{self._region}:{self.account_id}:secret:{name}"

        def kms_key(key: str) -> str:
            try:
                return str(kms_backends[self.account_id][self._region].describe_key(key).arn)
            except Exception:  # no such key: the call itself answers NotFound
                return f"arn:aws:kms:{self._region}:{self.account_id}:{key}"

        if _organization_access(self._access_key):
            return
        wanted = requests_for(
            self._action, resource, region=self._region, account=self.account_id, path=self._path,
            params=parameters(self._data, self._body, self._path), secret_arn=secret_arn, kms_key=kms_key,
        )  # fmt: skip
        refused = denied(self._access_key.collect_policies(), wanted)
        if refused is not None:
            if isinstance(self, access_control.S3IAMRequest):
                self._raise_access_denied()
            raise denial(self._access_key.arn, self._service, refused)
        if self._action == "sts:AssumeRole" and not _trusted(self._access_key, wanted[0].resource):
            raise denial(self._access_key.arn, self._service, wanted[0])

    access_control.IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]


def install_tokens(key: str) -> None:
    """``GetAuthorizationToken`` hands out tokens that name their caller (:mod:`pipeline.local.registry_token`), so
    the registry gate authorizes each push and pull as the principal that asked, as ECR does."""
    from datetime import UTC, datetime

    from moto.core.responses import ActionResult
    from moto.ecr.responses import ECRResponse
    from moto.iam import access_control

    from pipeline.local import registry_token

    original = ECRResponse.get_authorization_token

    def get_authorization_token(self: Any) -> Any:
        authorization = self.headers.get("Authorization", "")
        found = re.search(r"Credential=([^/]+)/", authorization)
        try:
            access_key = access_control.create_access_key(
                account_id=self.current_account, partition="aws", access_key_id=found.group(1) if found else "",
                headers=self.headers,
            )  # fmt: skip
        except access_control.CreateAccessKeyFailure:
            return original(self)  # unauthenticated stand-ins (tests without IAM): moto's fixed token
        password, expires = registry_token.issue(access_key.arn, key)
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        return ActionResult({"authorizationData": [{
            "authorizationToken": token,
            "expiresAt": datetime.fromtimestamp(expires, tz=UTC),
            "proxyEndpoint": f"https://{self.current_account}.dkr.ecr.{self.region}.amazonaws.com",
        }]})  # fmt: skip

    ECRResponse.get_authorization_token = get_authorization_token  # type: ignore[method-assign]
