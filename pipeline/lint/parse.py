"""Dockerfiles read as BuildKit reads them, with BuildKit's own parser (the ``dockerfile`` package wraps its Go code).

That parser knows flags on every instruction, ``AS`` in any case, heredocs (their bodies belong to the RUN or COPY
that opens them), line continuations, the ``# syntax=`` and ``# escape=`` directives and ONBUILD. It ships x86_64
wheels only, so it is the ``lint`` extra: lint runs on the x86_64 runner, and ARM build runners never install it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError
from pipeline.lint import instructions


class LintInputError(InputError):
    """A Dockerfile cannot be read or parsed (exit 2)."""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: tuple[str, ...]
    """The words after the keyword and its flags (a heredoc opener stays as ``<<EOF``)."""
    line: int
    """1-based line of the instruction's start."""
    flags: tuple[str, ...] = ()
    heredocs: tuple[str, ...] = ()
    """Bodies of the instruction's heredocs: for RUN, the script that runs."""
    exec_form: bool = False
    """JSON (exec) form: ``CMD ["/app"]``."""

    @property
    def value(self) -> str:
        return " ".join(self.args)

    @property
    def script(self) -> str:
        """What a RUN executes: its command line and every heredoc body."""
        return "\n".join((self.value, *self.heredocs))

    def flag(self, name: str) -> str | None:
        """The value of ``--name=value`` (the first one), None when absent."""
        prefix = f"--{name}="
        return next((f[len(prefix) :] for f in self.flags if f.startswith(prefix)), None)

    def mount_sources(self) -> list[str]:
        """``from=`` of each ``--mount`` (an image or a stage a RUN reads from)."""
        sources = []
        for mount in (f.partition("=")[2] for f in self.flags if f.startswith("--mount=")):
            options = dict(part.partition("=")[::2] for part in mount.split(","))
            if options.get("from"):
                sources.append(options["from"])
        return sources


@dataclass
class Stage:
    base: str
    name: str
    line: int
    index: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass(frozen=True)
class ParsedDockerfile:
    path: Path
    stages: list[Stage]
    args: dict[str, str]
    """Defaults of the global ARGs (before the first FROM) and of stage ARGs, first one wins."""
    lines: list[str]
    global_args: tuple[tuple[str, ...], ...] = ()
    """The words of each ARG before the first FROM, in order (``pipeline.lint.args`` scopes them)."""
    onbuild_lines: frozenset[int] = frozenset()
    """Lines of ONBUILD triggers: they run in images built FROM this one, and are judged there."""
    shell: tuple[str, ...] = ()
    """The last SHELL instruction's words (``powershell``, ``cmd``: a Windows image, not a POSIX shell)."""

    def stage_named(self, name: str) -> Stage | None:
        """The stage a ``FROM``/``--from`` reference names: its name (case-insensitively) or its index."""
        if name.isascii() and name.isdigit():
            number = int(name)
            return self.stages[number] if number < len(self.stages) else None
        return next((s for s in self.stages if s.name and s.name.lower() == name.lower()), None)

    def target(self, name: str) -> Stage:
        """The stage a build of ``--target name`` ends at (default: the last)."""
        if not name:
            return self.stages[-1]
        stage = next((s for s in self.stages if s.name and s.name.lower() == name.lower()), None)
        if stage is None:
            known = ", ".join(s.name for s in self.stages if s.name) or "none"
            raise LintInputError(f"{self.path}: --target {name!r}: no such stage (named stages: {known})")
        return stage


def decode(path: Path, data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else Latin-1: BuildKit reads bytes, and a comment in another encoding is legal."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LintInputError(f"{path}: UTF-16 text; BuildKit reads UTF-8 Dockerfiles")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse(path: Path) -> ParsedDockerfile:
    if path.exists() and not path.is_file() and not path.is_dir():
        raise LintInputError(f"{path}: not a regular file (a FIFO, socket or device is never read)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LintInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse_text(path, decode(path, data))


def parse_text(path: Path, text: str) -> ParsedDockerfile:
    if (nul := text.find("\x00")) >= 0:
        # BuildKit's parser is handed a C string here: everything after a NUL would silently not be linted.
        line = text.count("\n", 0, nul) + 1
        raise LintInputError(f"{path}:{line}: a NUL byte; a Dockerfile is text, and BuildKit does not build this one")
    try:
        import dockerfile
    except ImportError as exc:  # pragma: no cover - depends on how Slipway was installed
        raise LintInputError(
            "slipway lint needs BuildKit's parser: pip install 'slipway[lint]' (x86_64 wheels only)"
        ) from exc
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise LintInputError(f"{path}: BuildKit cannot parse it ({str(exc).strip()[:200]})") from exc
    stages: list[Stage] = []
    args: dict[str, str] = {}
    global_args: list[tuple[str, ...]] = []
    onbuild_lines: set[int] = set()
    shell: tuple[str, ...] = ()
    for command in commands:
        if not command.cmd:
            continue  # a stray line continuation: BuildKit ignores it too
        if why := instructions.problem(command):
            raise LintInputError(f"{path}:{command.start_line}: {why} (BuildKit refuses it)")
        keyword = command.cmd.upper()
        if keyword == "ONBUILD":
            onbuild_lines.add(int(command.start_line))
            continue  # triggers run in images built FROM this one, not in this build
        if keyword == "SHELL":
            shell = tuple(command.value)
        instruction = Instruction(
            keyword=keyword,
            args=tuple(command.value),
            line=int(command.start_line),
            flags=tuple(command.flags),
            heredocs=tuple(h.content for h in command.heredocs),
            exec_form=bool(command.json),
        )
        if keyword == "FROM":
            words = instruction.args
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0] if words else "", name, instruction.line, len(stages)))
            continue
        if keyword == "ARG":
            for word in instruction.args:
                name, sep, default = word.partition("=")
                if sep and name not in args:
                    args[name] = default.strip("\"'")
            if not stages:
                global_args.append(instruction.args)
        if stages:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise LintInputError(f"{path}: no FROM instruction")
    return ParsedDockerfile(path, stages, args, text.splitlines(), tuple(global_args), frozenset(onbuild_lines), shell)
