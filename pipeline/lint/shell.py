"""Just enough shell to read what a RUN installs and removes: commands split on ``&&``, ``||``, ``;``, ``|`` and
newlines (heredoc bodies included), package-manager verbs and their package arguments."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_SEPARATORS = re.compile(r"&&|\|\||;|\||\n")
# manager: (install verbs, remove verbs)
_MANAGERS = {
    "apt-get": ({"install"}, {"purge", "remove", "autoremove"}),
    "apt": ({"install"}, {"purge", "remove", "autoremove"}),
    "apk": ({"add"}, {"del"}),
    "dnf": ({"install"}, {"remove", "erase"}),
    "yum": ({"install"}, {"remove", "erase"}),
    "microdnf": ({"install"}, {"remove"}),
}
# Options whose next word is a value, not a package.
_TAKES_VALUE = {"--virtual", "-t", "--repository", "-X", "-o", "--setopt", "--option"}


@dataclass(frozen=True)
class PackageCommand:
    manager: str
    action: str
    """``install`` or ``remove``."""
    packages: tuple[str, ...]
    """Package names without version pins (``gcc=12`` → ``gcc``)."""
    virtual: str = ""
    """apk ``--virtual NAME``: the group the packages can be deleted by."""


def commands(script: str) -> Iterator[list[str]]:
    """Each simple command's words (quotes kept; line continuations already joined by the parser)."""
    for part in _SEPARATORS.split(script.replace("\\\n", " ")):
        words = part.split()
        # `sudo`, `env X=1`, and `DEBIAN_FRONTEND=noninteractive` prefixes do not change the command.
        while words and (words[0] in ("sudo", "env", "exec") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0])):
            words = words[1:]
        if words:
            yield words


def package_commands(script: str) -> Iterator[PackageCommand]:
    for words in commands(script):
        manager = words[0].rsplit("/", 1)[-1]
        if manager not in _MANAGERS:
            continue
        installs, removes = _MANAGERS[manager]
        verb_index = next((i for i, w in enumerate(words[1:], 1) if not w.startswith("-")), None)
        if verb_index is None:
            continue
        verb = words[verb_index]
        if verb not in installs | removes:
            continue
        packages, virtual, skip = [], "", False
        rest = words[verb_index + 1 :]
        for index, word in enumerate(rest):
            if skip:
                skip = False
                continue
            if word.startswith("-"):
                option, _, value = word.partition("=")
                if option in ("--virtual", "-t"):
                    virtual = value or (rest[index + 1] if index + 1 < len(rest) else "")
                    skip = not value
                elif option in _TAKES_VALUE and not value:
                    skip = True
                continue
            packages.append(re.split(r"[=~<>]", word.strip("'\""), maxsplit=1)[0])
        yield PackageCommand(manager, "install" if verb in installs else "remove", tuple(packages), virtual)


def installed_and_kept(script: str) -> list[str]:
    """Packages a RUN installs and does not remove again in the same RUN (by name, or by apk virtual group)."""
    kept: dict[str, str] = {}
    for command in package_commands(script):
        if command.action == "install":
            for package in command.packages:
                kept[package] = command.virtual
        else:
            removed = set(command.packages)
            kept = {p: group for p, group in kept.items() if p not in removed and not (group and group in removed)}
    return list(kept)
