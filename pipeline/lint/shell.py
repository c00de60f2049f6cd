"""Just enough shell to read what a RUN installs and removes: commands split on ``&&``, ``||``, ``;``, ``|`` and
newlines (heredoc bodies included), package-manager verbs and their package arguments."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

_SEPARATORS = re.compile(r"&&|\|\||;|\||\n")
# manager: (install verbs, remove verbs)
_MANAGERS = {
    "apt-get": ({"install"}, {"purge", "remove", "autoremove"}),
    "apt": ({"install"}, {"purge", "remove", "autoremove"}),
    "apk": ({"add"}, {"del"}),
    "dnf": ({"install", "groupinstall"}, {"remove", "erase", "groupremove"}),
    "yum": ({"install", "groupinstall"}, {"remove", "erase", "groupremove"}),
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
    """Each simple command's words, split as a POSIX shell splits them (quotes removed: a word inside a string is not
    a command), on ``&&``, ``||``, ``;``, ``|``, ``&`` and newlines. A script the splitter cannot read (an unbalanced
    quote) falls back to splitting on blanks."""
    joined = script.replace("\\\n", " ")
    try:
        lexer = shlex.shlex(joined.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        tokens = [w for part in _SEPARATORS.split(joined) for w in [*part.split(), ";"]]
    words: list[str] = []
    for token in [*tokens, ";"]:
        if token and set(token) <= set(";&|"):
            yield from _simple(words)
            words = []
        else:
            words.append(token)


def _simple(words: list[str]) -> Iterator[list[str]]:
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
    """Packages a RUN installs and does not remove again in the same RUN (by name, or by apk virtual group). Debian's
    idiom counts as a removal of everything apt installed here: ``apt-mark auto '.*'`` (then ``apt-mark manual`` of
    what was there before) followed by ``apt-get purge --auto-remove`` (or ``autoremove``), as Docker's official
    python image does."""
    kept: dict[str, str] = {}
    apt_installed: set[str] = set()
    all_marked_auto = False
    for words in commands(script):
        if words[0] == "apt-mark" and len(words) > 2 and words[1] == "auto" and words[2] in (".*", "'.*'"):
            all_marked_auto = True
        autoremove = words[0] in ("apt-get", "apt") and ("autoremove" in words or "--auto-remove" in words)
        if all_marked_auto and autoremove:
            kept = {p: group for p, group in kept.items() if p not in apt_installed}
        for command in package_commands(" ".join(shlex.quote(w) for w in words)):
            if command.action == "install":
                for package in command.packages:
                    kept[package] = command.virtual
                if command.manager in ("apt-get", "apt"):
                    apt_installed.update(command.packages)
            else:
                removed = set(command.packages)
                kept = {p: group for p, group in kept.items() if p not in removed and not (group and group in removed)}
    return list(kept)
