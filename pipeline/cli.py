"""``slipway``: the one CLI behind every build job. It parses arguments and dispatches; commands do the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.commands import (
    admission,
    attest,
    bases,
    build,
    deploy,
    lint,
    local,
    platform,
    preflight,
    rollback,
    runner,
    status,
    stitch,
    synth,
    validate,
    verify,
)
from pipeline.errors import SlipwayError

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slipway",
        description="git push to a running container on AWS, pinned by digest.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        validate,
        preflight,
        synth,
        lint,
        build,
        stitch,
        verify,
        attest,
        deploy,
        admission,
        rollback,
        bases,
        runner,
        platform,
        status,
        local,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except SlipwayError as exc:
        print(f"slipway {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ClientError, BotoCoreError) as exc:
        # The last line of defence: every deployer turns the AWS errors it expects into its own, naming the target;
        # one it did not expect is still one line, never a traceback.
        print(f"slipway {args.command}: AWS: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
