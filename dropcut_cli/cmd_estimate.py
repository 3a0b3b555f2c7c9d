"""`dropcut estimate`: what Submit would refuse, and what the provider would bill."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from dropcut.errors import InputInvalid
from dropcut.providers import PROVIDERS
from dropcut_cli import context
from dropcut_cli.context import Exit
from dropcut_cli.display import media_line, out, print_json, problems_table, styled
from dropcut_cli.estimate import Estimate
from dropcut_cli.estimate import estimate as check
from dropcut_cli.options import job_document

EXAMPLES = (
    "Examples:\n\n"
    "  dropcut estimate clip.mp4 --prompt 'sepia, keep the motion'\n\n"
    "  dropcut estimate *.mp4 --manifest options.json --provider evolink --json\n\n"
    "  dropcut --local estimate clip.mp4   (the local stack's provider)"
)


def estimate(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, readable=True, help="Local videos.")
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="A job manifest (JSON) to check too."),
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="The prompt (overrides the manifest's).")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            help="aimlapi or evolink [default: the stack's provider with --stack/--local/"
            "--endpoint-url, else evolink]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Check local videos as Submit would, without uploading anything.

    Prints the problems Submit would refuse each input for (field, message, limit, hint), the
    media facts, the notices, the billed seconds where the provider documents its rule, and,
    with a stack, the credits its daily budget would reserve (CreditsPerBilledSecond).
    Exit 1 if any input would be refused."""
    name = provider or _stack_provider(ctx) or "evolink"
    if name not in PROVIDERS:
        raise context.usage(f"unknown provider {name!r}: one of {', '.join(sorted(PROVIDERS))}")
    try:
        document = job_document(manifest, prompt)
    except InputInvalid as invalid:
        raise context.refused(invalid, f"{manifest}") from None
    price = _stack_price(ctx)
    results = [check(path, PROVIDERS[name], document, price) for path in paths]
    if as_json:
        print_json({"provider": name, "inputs": [result.as_json() for result in results]})
    else:
        for result in results:
            _show(result)
    raise typer.Exit(Exit.FAILED if any(result.refused for result in results) else Exit.OK)


def _stack_provider(ctx: typer.Context) -> str | None:
    if not context.target(ctx).given:
        return None
    return context.stack(ctx).provider


def _stack_price(ctx: typer.Context) -> float | None:
    """The stack's CreditsPerBilledSecond (None without a stack, or one that predates it)."""
    if not context.target(ctx).given:
        return None
    value = context.stack(ctx).parameters.get("CreditsPerBilledSecond")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _show(result: Estimate) -> None:
    verdict = (
        styled("would be refused", "red")
        if result.refused
        else styled("would be accepted", "green")
    )
    out.print(Text.assemble((str(result.path), "bold"), ": ", verdict, f" by {result.provider}"))
    out.print(f"  media    {media_line(result.media)}")
    for notice in result.notices:
        out.print(f"  notice   {notice}")
    if result.billed_seconds is not None:
        out.print(f"  billed   {result.billed_seconds:g} s ({result.billing})")
    else:
        out.print(f"  billed   unknown: {result.billing}")
    if result.credits is not None:
        out.print(f"  credits  about {result.credits:g} (what the daily budget reserves)")
    if result.problems:
        out.print(
            problems_table((p.as_dict() for p in result.problems), f"{result.path.name}: problems")
        )
