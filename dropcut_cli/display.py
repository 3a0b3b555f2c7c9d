"""What the command line prints: Rich tables for people, JSON for scripts. Progress and live
views go to stderr, so stdout stays what a script reads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dropcut.formats.probe import MediaInfo
from dropcut.model.jobs import BASE_JOB_ID_CHARS, JobRecord
from dropcut_cli.jobs import Phase

# No markup: keys, prompts and provider messages are printed as they are ("[sim:fail]",
# "[generation_failed]" are text, not styles); styles are given as Text spans (styled()).
out = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """`label` in `style`, then `rest` as plain text."""
    return Text.assemble((label, style), rest)


#: Job record fields never printed: the task token resumes the job's execution.
PRIVATE_FIELDS = frozenset({"callback_token"})
_PHASE_STYLES = {
    "done": "green",
    "failed": "red",
    "cancelled": "magenta",
    "at provider": "cyan",
    "in line": "yellow",
}


def print_json(document: Any) -> None:
    """One JSON document on stdout (plain: no colour, no wrapping)."""
    print(json.dumps(document, indent=2, default=str))


def record_json(record: JobRecord) -> dict[str, Any]:
    """A job record for scripts (without what resumes its execution)."""
    return record.model_dump(mode="json", exclude=set(PRIVATE_FIELDS))


def when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return time.strftime("%m-%d %H:%M:%S", time.localtime(epoch))


def problems_table(problems: Iterable[Mapping[str, str]], title: str = "Problems") -> Table:
    """Each problem: the field, what was wrong, the limit, what to do."""
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    for column in ("field", "problem", "limit", "what to do"):
        table.add_column(column, overflow="fold")
    for problem in problems:
        table.add_row(
            problem.get("field", ""),
            problem.get("message", ""),
            problem.get("limit", ""),
            problem.get("hint", ""),
        )
    return table


def media_line(media: MediaInfo | Mapping[str, Any] | None) -> str:
    """`mp4, 4.00 s, 1280x720, avc1 + mp4a, 30 fps, 8-bit, 1.2 MB` (what the probe read from
    the header)."""
    if media is None:
        return "not a video we can read"
    facts = media.model_dump() if isinstance(media, MediaInfo) else dict(media)
    parts = [str(facts.get("container", "?"))]
    if facts.get("duration_seconds") is not None:
        parts.append(f"{facts['duration_seconds']:.2f} s")
    if facts.get("width") and facts.get("height"):
        parts.append(f"{facts['width']}x{facts['height']}")
    codecs = " + ".join(str(c) for c in (facts.get("video_codec"), facts.get("audio_codec")) if c)
    if codecs:
        parts.append(codecs)
    if facts.get("frame_rate"):
        parts.append(f"{facts['frame_rate']:.3g} fps")
    if facts.get("bit_depth"):
        parts.append(f"{facts['bit_depth']}-bit")
    parts.append(f"{int(facts.get('size_bytes') or 0) / 1e6:.1f} MB")
    return ", ".join(parts)


def plan_line(plan: Mapping[str, Any] | None) -> str:
    """`split into 4 parts, billed 31 s: 31.0 s is over the model's 10 s: ...` (Submit's plan
    as a job record holds it; "" without one)."""
    if not plan:
        return ""
    kind = str(plan.get("kind", "?")).replace("_", " ")
    parts = len(plan.get("parts") or [])
    line = f"{kind} into {parts} parts" if kind == "split" else kind
    if plan.get("billed_seconds") is not None:
        line += f", billed {plan['billed_seconds']:g} s"
    reasons = [str(reason) for reason in plan.get("reasons") or []]
    return line + (": " + "; ".join(reasons) if reasons else "")


def jobs_table(
    rows: Iterable[tuple[str, str, Phase]], created: Sequence[str] | None = None
) -> Table:
    """One row per job: input, job id, where it is and the detail (and when it was created)."""
    table = Table()
    table.add_column("input", overflow="fold", min_width=16)
    table.add_column("job", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    if created is not None:
        table.add_column("created")
    for index, (label, job_id, phase) in enumerate(rows):
        style = _PHASE_STYLES.get(phase.name, "")
        status = Text(phase.name, style=style)
        extra = [created[index]] if created is not None else []
        table.add_row(label, short_id(job_id), status, phase.detail, *extra)
    return table


def short_id(job_id: str) -> str:
    """`job-`, 12 hex digits and a retry's attempt (`-r2`): enough to name a job to
    `dropcut show`."""
    return job_id[:16] + job_id[BASE_JOB_ID_CHARS:]
