"""What every command shares: the connection options, exit codes, and turning failures into
a message and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import typer
from botocore.exceptions import BotoCoreError, ClientError

from dropcut.errors import InputInvalid
from dropcut_cli.connection import ConnectionFailed, Stack, Target, connect
from dropcut_cli.display import err, problems_table, styled


class Exit(IntEnum):
    """The command's exit status."""

    OK = 0
    #: A job failed, an input was (or would be) refused, or a job did not end in time.
    FAILED = 1
    #: Bad options or arguments (Typer's own usage errors exit 2 too).
    USAGE = 2
    #: The stack could not be found or AWS could not be reached.
    UNREACHABLE = 3


def target(ctx: typer.Context) -> Target:
    found = ctx.find_root().obj
    return found if isinstance(found, Target) else Target()


def stack(ctx: typer.Context) -> Stack:
    """Connect to the stack the global options name; exit 3 with the reason if it fails."""
    try:
        return connect(target(ctx))
    except ConnectionFailed as exc:
        err.print(styled("error:", "red", f" {exc}"))
        raise typer.Exit(Exit.UNREACHABLE) from None


def usage(message: str) -> typer.Exit:
    err.print(styled("usage:", "red", f" {message}"))
    return typer.Exit(Exit.USAGE)


@contextmanager
def aws_errors() -> Iterator[None]:
    """AWS failures in the middle of a command: a one-line message and exit 3."""
    try:
        yield
    except (ClientError, BotoCoreError, ConnectionFailed) as exc:
        err.print(styled("error:", "red", f" {exc}"))
        raise typer.Exit(Exit.UNREACHABLE) from None


def refused(invalid: InputInvalid, what: str) -> typer.Exit:
    """An input refused before anything was uploaded: its problems, exit 1."""
    err.print(styled("refused:", "red", f" {what}"))
    err.print(problems_table(p.as_dict() for p in invalid.problems))
    return typer.Exit(Exit.FAILED)
