"""The cloud assembly (``cdk.out``) as the replay reads it: pipelines, their stages and actions, and CodeBuild projects.

Nothing here is re-derived from ``platform.toml``: the replay runs what was synthesized. CloudFormation intrinsics
are resolved the way CloudFormation would for one account and region (``Ref`` to a resource gives the physical name
the template sets; an IAM role the template does not name gets a name unique to its stack, as CloudFormation generates
one -- two stacks' roles of one logical ID are two roles; anything else unnamed, the logical ID; ``Fn::GetAtt [Role,
Arn]`` an ARN built from it).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import InputError


class AssemblyError(InputError):
    pass


@dataclass(frozen=True)
class EnvironmentVariable:
    name: str
    value: str
    type: str = "PLAINTEXT"


@dataclass(frozen=True)
class Project:
    """A CodeBuild project: what its jobs run and with what."""

    name: str
    buildspec: dict[str, Any]
    environment_type: str
    image: str
    privileged: bool
    role: str
    variables: tuple[EnvironmentVariable, ...]


@dataclass(frozen=True)
class Action:
    name: str
    provider: str
    run_order: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    configuration: dict[str, Any]
    role: str
    namespace: str = ""


@dataclass(frozen=True)
class Rule:
    """One rule of a stage condition (:mod:`infra.stage_gates`): CodePipeline evaluates it as ``role``."""

    name: str
    provider: str
    configuration: dict[str, Any]
    region: str
    role: str


@dataclass(frozen=True)
class Stage:
    name: str
    actions: tuple[Action, ...]
    before_entry: tuple[tuple[str, tuple[Rule, ...]], ...] = ()
    """The entry conditions: ``(result, rules)`` each; a condition whose rules do not all pass engages its result."""
    on_failure: str = ""
    """What a failure of the stage engages (``ROLLBACK``), if anything."""

    def waves(self) -> list[list[Action]]:
        """Actions grouped by run order: one group after the other, the actions of a group side by side."""
        orders = sorted({a.run_order for a in self.actions})
        return [[a for a in self.actions if a.run_order == order] for order in orders]


@dataclass(frozen=True)
class PushFilter:
    branches: tuple[str, ...] = ()
    branches_excluded: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    paths_excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    name: str
    stack: str
    role: str
    stages: tuple[Stage, ...]
    triggers: tuple[PushFilter, ...] = ()
    projects: dict[str, Project] = field(default_factory=dict, compare=False)
    schedules: tuple[str, ...] = ()
    """Schedule expressions of the EventBridge rules that start this pipeline (the weekly base rebuild)."""

    @property
    def source(self) -> Action:
        return self.stages[0].actions[0]

    @property
    def repository(self) -> str:
        return str(self.source.configuration.get("FullRepositoryId", ""))

    @property
    def branch(self) -> str:
        return str(self.source.configuration.get("BranchName", ""))

    def actions(self) -> list[tuple[Stage, Action]]:
        return [(stage, action) for stage in self.stages for action in stage.actions]


@dataclass
class _Resolver:
    """CloudFormation's intrinsics for one stack in one account and region."""

    resources: dict[str, Any]
    account: str
    region: str
    stack: str

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()  # fmt: skip
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self._get_att(*arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self(part)) for part in arg[1])
            if key == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if key == "Fn::Split":
                return str(self(arg[1])).split(arg[0])
            if key == "Fn::Sub":
                return self._sub(arg)
        return {k: self(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": "",
        }  # fmt: skip
        if name in pseudo:
            return pseudo[name]
        resource = self.resources.get(name)
        if resource is None:
            raise AssemblyError(f"Ref {name}: no such resource or pseudo parameter")
        properties = resource.get("Properties", {})
        for key in ("Name", "RoleName", "BucketName", "FunctionName", "RepositoryName"):
            if isinstance(properties.get(key), str):
                return str(properties[key])
        if resource["Type"] == "AWS::IAM::Role":
            return generated_name(self.stack, name)
        if resource["Type"] == "AWS::IAM::ManagedPolicy":  # its Ref is its ARN
            path = str(properties.get("Path", "/"))
            policy = properties.get("ManagedPolicyName") or generated_name(self.stack, name)
            return f"arn:aws:iam::{self.account}:policy{path}{policy}"
        return name

    def _get_att(self, name: str, attribute: str) -> str:
        resource = self.resources.get(name)
        if resource is None:
            raise AssemblyError(f"Fn::GetAtt {name}.{attribute}: no such resource")
        physical = self._ref(name)
        if attribute != "Arn":
            return physical
        path = str(resource.get("Properties", {}).get("Path", "/"))
        service = {
            "AWS::IAM::Role": f"iam::{self.account}:role{path}{physical}",
            "AWS::KMS::Key": f"kms:{self.region}:{self.account}:key/{physical}",
            "AWS::S3::Bucket": f"s3:::{physical}",
            "AWS::CodeBuild::Project": f"codebuild:{self.region}:{self.account}:project/{physical}",
        }.get(resource["Type"], f"{resource['Type'].split('::')[1].lower()}:{self.region}:{self.account}:{physical}")
        return f"arn:aws:{service}"

    def _sub(self, arg: Any) -> str:
        text, values = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(self(values[name]))
            if "." in name:
                return self._get_att(*name.split(".", 1))
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)


def generated_name(stack: str, logical: str) -> str:
    """The name CloudFormation gives a resource its template leaves unnamed: the starts of the stack name and the
    logical ID and a suffix (random there, a stable hash here), within IAM's 64 characters."""
    suffix = hashlib.sha256(f"{stack}/{logical}".encode()).hexdigest()[:12].upper()
    return f"{stack[:25]}-{logical[:25]}-{suffix}"


@dataclass(frozen=True)
class StackTemplate:
    name: str
    resources: dict[str, Any]
    resolve: _Resolver

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """``{logical ID: resolved properties}`` of every resource of ``kind``."""
        return {k: self.resolve(r.get("Properties", {})) for k, r in self.resources.items() if r["Type"] == kind}


def stacks(directory: Path) -> list[StackTemplate]:
    """Every stack of the assembly, in the manifest's order, with the intrinsics resolver of its account and region."""
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AssemblyError(f"{manifest_path}: not a cloud assembly ({exc}); run `slipway synth`") from exc
    found = []
    for stack, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        account, region = environment(artifact.get("environment", ""))
        template = json.loads((directory / artifact["properties"]["templateFile"]).read_text(encoding="utf-8"))
        resources = template.get("Resources", {})
        found.append(StackTemplate(stack, resources, _Resolver(resources, account, region, stack)))
    return found


def load(directory: Path) -> list[Pipeline]:
    """Every CodePipeline in the assembly, in the order of the manifest's stacks and their templates."""
    return [p for stack in stacks(directory) for p in load_stack(stack)]


def load_stack(stack: StackTemplate) -> list[Pipeline]:
    """The CodePipelines of one stack's template."""
    return _pipelines(stack.name, stack.resources, stack.resolve)


def environment(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"aws://([^/]+)/([^/]+)", text)
    if not match:
        raise AssemblyError(f"stack environment {text!r}: expected aws://ACCOUNT/REGION")
    return match.group(1), match.group(2)


def _pipelines(stack: str, resources: dict[str, Any], resolve: _Resolver) -> list[Pipeline]:
    schedules: dict[str, list[str]] = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in resource["Properties"]:
            for target in resolve(resource["Properties"].get("Targets", [])):
                schedules.setdefault(str(target["Arn"]).rsplit(":", 1)[-1], []).append(
                    resource["Properties"]["ScheduleExpression"]
                )
    found = []
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::CodePipeline::Pipeline":
            continue
        properties = resolve(resource["Properties"])
        name = properties.get("Name", logical)
        # An action with no role of its own acts as the pipeline's role, as CodePipeline runs it.
        stages = tuple(_stage(s, str(properties.get("RoleArn", ""))) for s in properties["Stages"])
        projects = {
            str(a.configuration["ProjectName"]): _project(resources, str(a.configuration["ProjectName"]), resolve)
            for s in stages for a in s.actions if a.provider == "CodeBuild"
        }  # fmt: skip
        found.append(
            Pipeline(
                name=name,
                stack=stack,
                role=str(properties.get("RoleArn", "")),
                stages=stages,
                triggers=tuple(_push_filters(properties.get("Triggers", []))),
                projects=projects,
                schedules=tuple(schedules.get(name, ())),
            )
        )
    return found


def _stage(raw: dict[str, Any], pipeline_role: str = "") -> Stage:
    actions = tuple(
        Action(
            name=a["Name"],
            provider=a["ActionTypeId"]["Provider"],
            run_order=int(a.get("RunOrder", 1)),
            inputs=tuple(i["Name"] for i in a.get("InputArtifacts", [])),
            outputs=tuple(o["Name"] for o in a.get("OutputArtifacts", [])),
            configuration=dict(a.get("Configuration", {})),
            role=str(a.get("RoleArn") or pipeline_role),
            namespace=a.get("Namespace", ""),
        )
        for a in raw["Actions"]
    )
    entry = tuple(
        (str(c["Result"]), tuple(
            Rule(r["Name"], r["RuleTypeId"]["Provider"], dict(r.get("Configuration", {})), str(r.get("Region", "")),
                 str(r.get("RoleArn") or pipeline_role))
            for r in c.get("Rules", [])
        ))
        for c in raw.get("BeforeEntry", {}).get("Conditions", [])
    )  # fmt: skip
    return Stage(raw["Name"], actions, entry, str(raw.get("OnFailure", {}).get("Result", "")))


def _push_filters(triggers: list[dict[str, Any]]) -> list[PushFilter]:
    filters = []
    for trigger in triggers:
        for push in trigger.get("GitConfiguration", {}).get("Push", []):
            branches, paths = push.get("Branches", {}), push.get("FilePaths", {})
            filters.append(
                PushFilter(
                    tuple(branches.get("Includes", [])),
                    tuple(branches.get("Excludes", [])),
                    tuple(paths.get("Includes", [])),
                    tuple(paths.get("Excludes", [])),
                )
            )
    return filters


def _project(resources: dict[str, Any], name: str, resolve: _Resolver) -> Project:
    logical = next(
        (k for k, r in resources.items() if r["Type"] == "AWS::CodeBuild::Project" and resolve({"Ref": k}) == name),
        None,
    )
    if logical is None:
        raise AssemblyError(f"CodeBuild project {name}: not in the template")
    properties = resolve(resources[logical]["Properties"])
    environment = properties["Environment"]
    try:
        buildspec = json.loads(properties["Source"]["BuildSpec"])
    except (KeyError, ValueError) as exc:
        raise AssemblyError(f"CodeBuild project {name}: no inline JSON buildspec ({exc})") from exc
    return Project(
        name=name,
        buildspec=buildspec,
        environment_type=environment["Type"],
        image=environment["Image"],
        privileged=bool(environment.get("PrivilegedMode", False)),
        role=str(properties.get("ServiceRole", "")),
        variables=tuple(
            EnvironmentVariable(v["Name"], str(v["Value"]), v.get("Type", "PLAINTEXT"))
            for v in environment.get("EnvironmentVariables", [])
        ),
    )
