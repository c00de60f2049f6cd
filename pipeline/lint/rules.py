"""Slipway's own Dockerfile rules, each a small function over the parsed file.

hadolint covers generic Dockerfile hygiene; these rules encode what Slipway promises on AWS: every image a build
pulls comes from the platform's registry pinned by digest, secrets only as BuildKit mounts, small multi-stage images,
a non-root final stage, and cache-friendly order. "Final stage" means the stage the pipeline builds (``--target``,
default the last), together with the stages it is built ``FROM``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from pipeline.lint.args import Scopes, expand
from pipeline.lint.parse import Instruction, ParsedDockerfile, Stage
from pipeline.lint.shell import commands, installed_and_kept, package_commands
from pipeline.references import DIGEST


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    message: str
    fix: str
    level: str = "error"
    """``error``/``warning``/``info`` fail the gate; ``note`` only informs."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule} {self.message} (fix: {self.fix})"


@dataclass(frozen=True)
class Policy:
    allowed_registries: tuple[str, ...]
    """``host/prefix/`` beginnings a pulled image may have (pull-through prefixes and curated repositories)."""


@dataclass(frozen=True)
class Context:
    """What a rule sees: the file, the stage being built, the policy and the build arguments as BuildKit scopes them
    for one platform (:mod:`pipeline.lint.args`)."""

    dockerfile: ParsedDockerfile
    target: Stage
    policy: Policy
    scopes: Scopes
    image_user: Callable[[str, str], str | None] | None = None
    """The user a base image runs as (:mod:`pipeline.lint.base_user`); None: base images are not read."""

    @property
    def args(self) -> Mapping[str, str]:
        """What FROM lines see: the global ARGs and the platform's predefined ones."""
        return self.scopes.global_

    def at(self, instruction: Instruction) -> Mapping[str, str]:
        """What ``instruction`` sees: its stage's ARGs and ENVs declared before it."""
        return self.scopes.before(instruction.line)

    def lineage(self) -> list[Stage]:
        """The target stage and the stages it is built FROM, root first: all of them end up in the image."""
        chain = [self.target]
        while (parent := self.dockerfile.stage_named(expand(chain[0].base, self.args))) is not None:
            if parent in chain or parent.index >= chain[0].index:
                break
            chain.insert(0, parent)
        return chain

    def final_instructions(self) -> list[Instruction]:
        return [i for stage in self.lineage() for i in stage.instructions]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    fix: str
    check: Callable[[Context], Iterator[tuple[int, str]]]


_TOOLCHAIN = re.compile(
    r"gcc(-\d+)?|g\+\+(-\d+)?|clang(-\d+)?|make|build-essential|build-base|golang(-go|-\d[\d.]*)?|go|rustc|cargo|"
    r"musl-dev|python3?(\.\d+)?-dev|libc6?-dev|cmake|autoconf|automake|libtool|"
    r"(default|openjdk-\d+)-jdk(-headless)?|openjdk\d+(-jdk)?|java-[\d.]+-openjdk-devel|maven|gradle|"
    r"gcc-c\+\+|[Dd]evelopment [Tt]ools|@development-tools"
)
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|ACCESS_?KEY)", re.I)
# A variable that names where a secret lives (a file, a directory) holds no secret itself.
_NAMES_A_LOCATION = re.compile(r"_(FILE|FILENAME|PATH|DIR)$", re.I)
_SECRET_FILE = re.compile(
    r"(^|/)(\.npmrc|\.pypirc|\.netrc|\.env(\.[\w-]+)?|\.git-credentials|\.ssh|secrets?\.(json|ya?ml|toml)|id_rsa|"
    r"id_ed25519|id_ecdsa|credentials|.*\.pem|.*\.key)/?$"
)
_DEPENDENCY_STEP = re.compile(
    r"\b(pip3? install|npm (ci|install)|yarn install|pnpm install|go mod download|"
    r"cargo (fetch|build)|bundle install|poetry install|uv sync|composer install|"
    r"(\./)?mvnw?\b[^\n]*\b(package|install|verify|dependency:\S+)|"
    r"(\./)?gradlew?\b[^\n]*\b(build|assemble|dependencies)|\byarn\s*($|&&|;|\|)|"
    r"dotnet (restore|publish|build))"
)
# Files that only declare dependencies: copying them first is what keeps the install step cached.
_MANIFEST = re.compile(
    r"(^|/)(requirements[\w.-]*\.txt|constraints[\w.-]*\.txt|pyproject\.toml|poetry\.lock|uv\.lock|Pipfile(\.lock)?|"
    r"setup\.(py|cfg)|package(-lock)?\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|\.npmrc|go\.(mod|sum)|"
    r"Cargo\.(toml|lock)|Gemfile(\.lock)?|pom\.xml|build\.gradle(\.kts)?|settings\.gradle(\.kts)?|gradle\.properties|"
    r"[\w.-]+\.(csproj|fsproj|sln)|packages\.lock\.json|NuGet\.config|composer\.(json|lock)|requirements)$"
)
# A glob copies only manifests when it matches one of these and none of these ordinary source names.
_MANIFEST_NAMES = ("package.json", "package-lock.json", "app.csproj", "app.fsproj", "go.mod", "go.sum", "poetry.lock",
                   "requirements.txt", "requirements-dev.txt", "Cargo.toml", "Cargo.lock", "Gemfile", "Gemfile.lock",
                   "pom.xml", "build.gradle", "yarn.lock", "pnpm-lock.yaml", "composer.json", "uv.lock")  # fmt: skip
_SOURCE_NAMES = ("main.py", "app.py", "index.js", "main.go", "Program.cs", "src", "app", "lib", "main.rs", "README.md",
                 "package", "Dockerfile")  # fmt: skip


def _manifest_only(source: str) -> bool:
    """A COPY source that can only bring dependency manifests: a manifest, a directory of them
    (``requirements/``), or a glob (``package*.json``, ``*.csproj``, ``go.*``, ``poetry.lock*``) that matches manifests
    and no ordinary source file."""
    name = source.rstrip("/")
    if _MANIFEST.search(name):
        return True
    if not any(c in name for c in "*?["):
        return False
    base = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(m, base) for m in _MANIFEST_NAMES) and not any(
        fnmatch.fnmatchcase(s, base) for s in _SOURCE_NAMES
    )


_ROOT = {"root", "0", "containeradministrator"}
"""Users that are root: by name, by uid, and Windows' administrator account (compared case-insensitively)."""


def pulled_images(context: Context) -> Iterator[tuple[int, str, str]]:
    """``(line, image, how)`` for every image a build pulls: FROM, ``COPY --from``, ``RUN --mount=…,from=``.

    Stage names and indexes are the build's own; ``scratch`` is no image.
    """
    dockerfile = context.dockerfile
    for stage in dockerfile.stages:
        references = [(stage.line, expand(stage.base, context.args), "base image")]
        for instruction in stage.instructions:
            scope = context.at(instruction)
            if instruction.keyword in ("COPY", "ADD") and (source := instruction.flag("from")):
                references.append((instruction.line, expand(source, scope), f"{instruction.keyword} --from image"))
            if instruction.keyword == "RUN":
                references += [
                    (instruction.line, expand(s, scope), "RUN --mount image") for s in instruction.mount_sources()
                ]
        for line, image, how in references:
            if image == "scratch" or dockerfile.stage_named(image) is not None:
                continue
            yield line, image, how


def image_not_from_platform(context: Context) -> Iterator[tuple[int, str]]:
    allowed = context.policy.allowed_registries
    for line, image, how in pulled_images(context):
        if "$" in image:
            continue  # reported by SW002: an unresolved reference cannot be checked
        if not image.startswith(allowed):
            shown = ", ".join(allowed[:2]) + (f" and {len(allowed) - 2} more" if len(allowed) > 2 else "")
            yield line, f"{how} {image!r} is not from the platform registry (allowed: {shown or 'none configured'})"


def image_not_pinned(context: Context) -> Iterator[tuple[int, str]]:
    for line, image, how in pulled_images(context):
        if "$" in image:
            yield line, f"{how} {image!r} is unresolved; give the ARG a pinned default or pass it"
            continue
        if not DIGEST.fullmatch(image.partition("@")[2]):
            tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
            what = (
                "uses 'latest'" if tag == "latest" else "has no tag or digest" if not tag else "is pinned by tag only"
            )
            yield line, f"{how} {image!r} {what}; pin it by digest"


def toolchain_in_final_stage(context: Context) -> Iterator[tuple[int, str]]:
    for instruction in context.final_instructions():
        if instruction.keyword != "RUN":
            continue
        tools = [p for p in installed_and_kept(instruction.script) if _TOOLCHAIN.fullmatch(p)]
        if tools:
            yield instruction.line, f"toolchain {', '.join(repr(t) for t in tools)} installed in the final stage"


def shell_form_entrypoint(context: Context) -> Iterator[tuple[int, str]]:
    """The ENTRYPOINT and the CMD the image ends up with: the last of each in the final stage's lineage (a parent
    stage's ENTRYPOINT is inherited when the final stage sets none)."""
    final = context.final_instructions()
    for keyword in ("ENTRYPOINT", "CMD"):
        effective = [i for i in final if i.keyword == keyword][-1:]
        for instruction in effective:
            if not instruction.exec_form:
                yield instruction.line, f"{keyword} in shell form ({instruction.value.strip()!r})"


def _variable_names(instruction: Instruction) -> list[str]:
    if instruction.keyword == "ARG":
        return [word.partition("=")[0] for word in instruction.args]
    return list(instruction.args[0::2])  # ENV: the parser gives key, value, key, value, ...


def secrets_in_image(context: Context) -> Iterator[tuple[int, str]]:
    for stage in context.dockerfile.stages:
        for instruction in stage.instructions:
            if instruction.keyword in ("ARG", "ENV"):
                for name in _variable_names(instruction):
                    if _SECRET_NAME.search(name) and not _NAMES_A_LOCATION.search(name):
                        yield (
                            instruction.line,
                            f"{instruction.keyword} {name} looks like a secret; build args and ENV are stored in the image",
                        )
            if instruction.keyword in ("COPY", "ADD"):
                sources = [s.strip("\"'") for s in instruction.args[:-1]]
                secret = next((s for s in sources if _SECRET_FILE.search(s)), None)
                if (
                    secret is None
                    and any(s.startswith("<<") for s in sources)
                    and _SECRET_FILE.search(instruction.args[-1])
                ):
                    secret = instruction.args[-1]  # a heredoc written into a secret file: the file is in the layer
                if secret:
                    yield (
                        instruction.line,
                        f"{instruction.keyword} of secret file {secret!r} puts it in a layer (deleting it later does not remove it)",
                    )


def _pip_install(words: list[str]) -> bool:
    """``pip install``, ``pip3 install`` or ``python -m pip install`` (any python, options before the verb)."""
    tool = words[0].rsplit("/", 1)[-1]
    if re.fullmatch(r"python[\d.]*", tool) and words[1:3] == ["-m", "pip"]:
        words = words[2:]
    elif not re.fullmatch(r"pip[\d.]*", tool):
        return False
    return next((w for w in words[1:] if not w.startswith("-")), "") == "install"


def _installs(script: str) -> bool:
    return any(c.action == "install" for c in package_commands(script))


def package_manager_hygiene(context: Context) -> Iterator[tuple[int, str]]:
    """Judged on the commands a RUN runs (words inside a string are not commands)."""
    for stage in context.dockerfile.stages:
        previous: Instruction | None = None
        for instruction in stage.instructions:
            if instruction.keyword != "RUN":
                previous = instruction
                continue
            run = list(commands(instruction.script))
            mounted_cache = any("type=cache" in f for f in instruction.flags)
            apt = [w for w in run if w[0] in ("apt-get", "apt")]
            apt_install = any("install" in w[1:] for w in apt)
            lists_removed = any(w[0] == "rm" and any("/var/lib/apt/lists" in a for a in w[1:]) for w in run)
            if any("update" in w[1:] for w in apt) and not apt_install:
                yield (
                    instruction.line,
                    "apt-get update in its own layer (the install that follows may use a stale index)",
                )
            elif apt_install and not lists_removed and not mounted_cache:
                yield instruction.line, "apt-get install without removing /var/lib/apt/lists in the same layer"
            apk_add = [w for w in run if w[0] == "apk" and "add" in w[1:]]
            if apk_add and not all("--no-cache" in w for w in apk_add) and not mounted_cache:
                yield instruction.line, "apk add without --no-cache"
            pip = [w for w in run if _pip_install(w)]
            if pip and not all("--no-cache-dir" in w for w in pip) and not mounted_cache:
                yield instruction.line, "pip install without --no-cache-dir (or a cache mount)"
            installs_again = previous is not None and previous.keyword == "RUN" and _installs(previous.script)
            if installs_again and _installs(instruction.script):
                yield instruction.line, "package installs split across layers; combine them in one RUN"
            previous = instruction


def context_copied_before_dependencies(context: Context) -> Iterator[tuple[int, str]]:
    """A COPY of source (anything but dependency manifests) before the first dependency step of its stage."""
    for stage in context.dockerfile.stages:
        source_copy: Instruction | None = None
        for instruction in stage.instructions:
            if instruction.keyword == "COPY" and instruction.flag("from") is None and source_copy is None:
                sources = [s for s in instruction.args[:-1] if not s.startswith("<<")]
                if any(not _manifest_only(s) for s in sources):
                    source_copy = instruction
            elif instruction.keyword == "RUN" and _DEPENDENCY_STEP.search(instruction.script):
                if source_copy is not None:
                    yield (
                        source_copy.line,
                        f"source copied ({source_copy.value!r}) before dependencies are installed: any source change "
                        "re-installs them",
                    )
                break


def final_stage_runs_as_root(context: Context) -> Iterator[tuple[int, str]]:
    users = [i for i in context.final_instructions() if i.keyword == "USER"]
    if users:
        user = expand(users[-1].value.strip(), context.at(users[-1]))
        if user.partition(":")[0].lower() in _ROOT:
            yield users[-1].line, f"final stage runs as {user!r}"
        return
    # No USER line: the image runs as its base does. The lock pins the base, so its config says who that is.
    base = expand(context.lineage()[0].base, context.args)
    known = context.image_user(base, context.scopes.platform) if context.image_user and base != "scratch" else None
    if known is None:
        yield context.target.line, "final stage sets no USER, so it runs as root"
    elif known.partition(":")[0].lower() in _ROOT or not known:
        yield context.target.line, f"final stage sets no USER and its base runs as {known or 'root'!r}"


def add_from_url(context: Context) -> Iterator[tuple[int, str]]:
    for stage in context.dockerfile.stages:
        for instruction in stage.instructions:
            urls = [a for a in instruction.args[:-1] if re.match(r"https?://", a.strip("\"'"))]
            if instruction.keyword != "ADD" or not urls:
                continue
            checksum = instruction.flag("checksum") or ""
            if not DIGEST.fullmatch(checksum):
                yield instruction.line, "ADD from a URL without --checksum=sha256:…: unpinned, unverified download"


RULES: tuple[Rule, ...] = (
    Rule("SW001", "Images from the platform registry", "FROM/--from <account>.dkr.ecr.<region>.amazonaws.com/<pull-through prefix or team>/bases/...", image_not_from_platform),
    Rule("SW002", "Images pinned by digest", "repo:tag@sha256:<digest> (slipway bases update writes images/lock.json)", image_not_pinned),
    Rule("SW003", "No toolchain in the final stage", "compile in a builder stage; COPY --from=build only the artifacts (or remove build deps in the same RUN)", toolchain_in_final_stage),
    Rule("SW004", "Exec-form ENTRYPOINT/CMD", 'ENTRYPOINT ["/app/server"] so signals reach the process', shell_form_entrypoint),
    Rule("SW005", "Secrets only as BuildKit secret mounts", "RUN --mount=type=secret,id=NAME ... and slipway build --secret id=NAME,env=VAR", secrets_in_image),
    Rule("SW006", "Package installs combined and cleaned in one layer", "RUN apt-get update && apt-get install -y --no-install-recommends ... && rm -rf /var/lib/apt/lists/*", package_manager_hygiene),
    Rule("SW007", "Dependencies installed before the source is copied", "COPY the lock/manifest files, install or resolve, then COPY the source", context_copied_before_dependencies),
    Rule("SW008", "Final stage runs as a non-root user", "USER 65534:65534 (or a named user the base creates)", final_stage_runs_as_root),
    Rule("SW009", "No unverified ADD from a URL", "ADD --checksum=sha256:<digest> <url> <dest>, or COPY a vendored file", add_from_url),
)  # fmt: skip
