"""`dropcut estimate`: what Submit would refuse, and what the provider would bill."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from dropcut.errors import InputInvalid
from dropcut.model.plan import DEFAULT_MAX_PARTS, MAX_PARTS, Plan
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
    max_parts_option: Annotated[
        int | None,
        typer.Option(
            "--max-parts",
            "--max-segments",  # its name before parts had one name (deprecated)
            min=1,
            max=MAX_PARTS,
            help="MaxPartsPerJob: the most parts a long video is split into "
            f"[default: the stack's with --stack/--local/--endpoint-url, else {DEFAULT_MAX_PARTS}]",
            show_default=False,
        ),
    ] = None,
    normalize_inputs: Annotated[
        NormalizeInputs | None,
        typer.Option(
            help="NormalizeInputs: auto converts out-of-spec videos, off refuses them "
            "[default: the stack's with --stack/--local/--endpoint-url, else auto]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Check local videos as Submit would, without uploading anything.

    Prints the problems Submit would refuse each input for (field, message, limit, hint), the
    media facts, the notices, Submit's plan (as is, normalize, split, pad or refuse, and why),
    its parts and the billed seconds where the provider documents its rule, and, with a stack,
    the credits its daily budget would reserve (CreditsPerBilledSecond).
    Exit 1 if any input would be refused."""
    parameters = _stack_parameters(ctx)
    name = provider or parameters.get("Provider") or "evolink"
    if name not in PROVIDERS:
        raise context.usage(f"unknown provider {name!r}: one of {', '.join(sorted(PROVIDERS))}")
    max_parts = max_parts_option or int(parameters.get("MaxPartsPerJob") or DEFAULT_MAX_PARTS)
    normalize = (normalize_inputs or parameters.get("NormalizeInputs") or "auto") == "auto"
    try:
        document = job_document(manifest, prompt)
    except InputInvalid as invalid:
        raise context.refused(invalid, f"{manifest}") from None
    price = _stack_price(ctx)
    results = [
        check(
            path, PROVIDERS[name], document, max_parts=max_parts, normalize=normalize, price=price
        )
        for path in paths
    ]
    if as_json:
        print_json({"provider": name, "inputs": [result.as_json() for result in results]})
    else:
        for result in results:
            _show(result)
    raise typer.Exit(Exit.FAILED if any(result.refused for result in results) else Exit.OK)


class NormalizeInputs(StrEnum):
    AUTO = "auto"
    OFF = "off"


def _stack_parameters(ctx: typer.Context) -> dict[str, str]:
    """The named stack's parameters (Provider, MaxPartsPerJob, NormalizeInputs); none
    without --stack/--local/--endpoint-url."""
    if not context.target(ctx).given:
        return {}
    return context.stack(ctx).parameters


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
    if result.plan is not None:
        _show_plan(result.plan)
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


def _show_plan(plan: Plan) -> None:
    """The plan's kind and what Prepare would write, its reasons, and one line per part."""
    line = f"  plan     {plan.kind.value.replace('_', ' ')}"
    if plan.target is not None:
        target = plan.target
        rate = target.fps_num / target.fps_den
        line += (
            f" (prepared as H.264 {target.width}x{target.height}, {rate:.3g} fps, "
            f"at most {target.max_bitrate / 1e6:g} Mb/s)"
        )
    out.print(line)
    for reason in plan.reasons:
        out.print(f"  reason   {reason}")
    if len(plan.parts) > 1 or plan.pad_to_seconds is not None:
        for part in plan.parts:
            billed = "unknown" if part.billed_seconds is None else f"{part.billed_seconds:g} s"
            padded = f", padded to {plan.pad_to_seconds:g} s" if plan.pad_to_seconds else ""
            out.print(
                f"  part {part.index + 1:<3} {part.start_seconds:6.2f} - {part.end_seconds:6.2f} s"
                f"{padded}, billed {billed}"
            )
