"""The `dropcut` command: global connection options, and the commands registered on them."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

from dropcut_cli import cmd_batches, cmd_control, cmd_estimate, cmd_jobs, cmd_submit
from dropcut_cli.connection import DEFAULT_STACK, LOCAL_ENDPOINT, LOCAL_STACK, Target
from dropcut_cli.context import usage

app = typer.Typer(
    name="dropcut",
    help=(
        "Drop videos into a dropcut stack and get them back edited (Kling O1 video edit).\n\n"
        "Exit status: 0 everything asked for succeeded; 1 a job failed or an input was "
        "refused; 2 usage error; 3 the stack could not be found or reached."
    ),
    epilog=(
        "Examples:\n\n"
        "  dropcut --local submit clip.mp4 --prompt 'sepia, 1920s film' --wait\n\n"
        "  dropcut --stack dropcut-prod --profile prod ls --status failed --since 2h\n\n"
        "  dropcut estimate clip.mp4 --prompt 'make it monochrome'\n\n"
        "  dropcut --local cancel team/clip.mp4; dropcut --local retry team/clip.mp4 --yes --wait"
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def connection(
    ctx: typer.Context,
    stack: Annotated[
        str | None,
        typer.Option(
            envvar="DROPCUT_STACK",
            help=f"CloudFormation stack name [default: {DEFAULT_STACK}; {LOCAL_STACK} with --local]",
            show_default=False,
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option("--local", help=f"Use the local stack of `make stack` ({LOCAL_ENDPOINT})."),
    ] = False,
    endpoint_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Send every AWS call to this endpoint (a local stack)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(envvar="AWS_PROFILE", help="AWS profile (as the AWS CLI's --profile)."),
    ] = None,
) -> None:
    """Which stack: --stack NAME (its CloudFormation outputs), --local, or --endpoint-url URL."""
    if local and endpoint_url:
        raise usage("give --local or --endpoint-url, not both")
    ctx.obj = Target(stack, local, endpoint_url, region, profile)


def reflow(doc: str | None) -> str:
    """A docstring as help text: paragraphs joined into lines (Rich wraps them to the terminal)."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


for name, command, examples in (
    ("submit", cmd_submit.submit, cmd_submit.EXAMPLES),
    ("ls", cmd_jobs.ls, cmd_jobs.LS_EXAMPLES),
    ("show", cmd_jobs.show, cmd_jobs.SHOW_EXAMPLES),
    ("fetch", cmd_jobs.fetch, cmd_jobs.FETCH_EXAMPLES),
    ("watch", cmd_jobs.watch, cmd_jobs.WATCH_EXAMPLES),
    ("batches", cmd_batches.batches, cmd_batches.BATCHES_EXAMPLES),
    ("cancel", cmd_control.cancel, cmd_control.CANCEL_EXAMPLES),
    ("retry", cmd_control.retry, cmd_control.RETRY_EXAMPLES),
    ("estimate", cmd_estimate.estimate, cmd_estimate.EXAMPLES),
):
    app.command(name, help=reflow(command.__doc__), epilog=examples)(command)


def main() -> None:
    """The console script `dropcut`."""
    app()
