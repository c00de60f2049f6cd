"""The root of Slipway's exceptions: the CLI turns any of them into one clear line and a non-zero exit."""

from __future__ import annotations


class SlipwayError(Exception):
    """A failure the user can act on. ``exit_code`` 1 means the step failed; 2 means bad input."""

    exit_code = 1


class InputError(SlipwayError):
    exit_code = 2
