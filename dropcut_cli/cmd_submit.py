"""`dropcut submit`: upload videos (manifest first), optionally follow them to their ending."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from dropcut.errors import InputInvalid
from dropcut.model.batches import BatchTag, new_batch_id
from dropcut.model.layout import BucketLayout, is_video_key
from dropcut_cli import context
from dropcut_cli.connection import Stack
from dropcut_cli.context import Exit
from dropcut_cli.display import err, out, print_json, short_id
from dropcut_cli.follow import follow
from dropcut_cli.jobs import JobReader
from dropcut_cli.options import is_url, job_document
from dropcut_cli.outcomes import download, outcome_json, show_outcomes
from dropcut_cli.uploads import Uploaded, folder_key, submit_video, upload_file

EXAMPLES = (
    "Examples:\n\n"
    "  dropcut --local submit clip.mp4 --prompt 'sepia, 1920s film' --wait\n\n"
    "  dropcut --stack dropcut-prod submit a.mp4 b.mov --manifest options.json --prefix team\n\n"
    "  dropcut submit clip.mp4 --prompt 'match this style' --image style.png --download out/\n\n"
    "  dropcut submit shoot/ --prefix team/shoot --prompt 'grade it teal and orange'\n\n"
    "Run `dropcut estimate` first to see what Submit would refuse."
)


def submit(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            readable=True,
            help="Videos (.mp4, .mov), or folders: each video in them (not below).",
        ),
    ],
    prompt: Annotated[
        str | None, typer.Option(help="What to change (overrides the manifest's).")
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="A job manifest (JSON) for every video."),
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PATH_OR_URL",
            help="A reference image: a local file (uploaded beside the video) or an https URL. Repeatable.",
        ),
    ] = None,
    keep_audio: Annotated[
        bool, typer.Option("--keep-audio", help="Keep the input's sound.")
    ] = False,
    aspect_ratio: Annotated[
        str | None, typer.Option(metavar="R", help="16:9, 9:16 or 1:1 (evolink only).")
    ] = None,
    prefix: Annotated[str, typer.Option(metavar="P", help="Folder under inbox/.")] = "",
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow each job live until it ends.")
    ] = False,
    download_dir: Annotated[
        Path | None,
        typer.Option(
            "--download",
            metavar="DIR",
            file_okay=False,
            help="Save the outputs here (implies --wait).",
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Stop waiting after this long (exit 1).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Upload videos (manifest first) as one batch, optionally follow them to their ending.

    Each video goes under inbox/<prefix>/, after its manifest (built from --manifest and the
    options; local --image files are uploaded beside it). A folder given stands for the videos
    in it. The videos form one batch (its id is printed): when the last of its jobs ends, one
    summary is written to outbox/<prefix>/_batches/ (`dropcut batches`, `dropcut watch --batch
    ID`, `dropcut cancel --batch ID`). With --wait, every job is followed
    live (waiting for its manifest, in line for a provider slot, at the provider with its
    progress, storing, done or failed with the report's advice), then the outputs are listed.
    Exit 1 if a job failed."""
    try:
        document = job_document(manifest, prompt, image, keep_audio, aspect_ratio)
    except InputInvalid as invalid:
        raise context.refused(invalid, str(manifest)) from None
    videos = _videos(paths)
    batch = BatchTag(batch_id=new_batch_id(), size=len(videos))
    stack = context.stack(ctx)
    with context.aws_errors():
        if isinstance(document, dict) and document.get("images"):
            document["images"] = _upload_images(stack, document["images"], prefix)
        uploaded = _upload_videos(stack, videos, prefix, document, batch, quiet=as_json)
        if not (wait or download_dir):
            _show_uploaded(uploaded, batch, context.target(ctx).flags, as_json)
            raise typer.Exit(Exit.OK)
        reader = JobReader(stack)
        followed = follow(
            reader, {u.job_id: u.key for u in uploaded}, live=not as_json, timeout=timeout
        )
        saved = download(stack, followed, download_dir) if download_dir else {}
    if as_json:
        print_json({"jobs": [outcome_json(reader, followed, u.job_id, saved) for u in uploaded]})
    else:
        show_outcomes(reader, followed, saved)
    ok = followed.ended and all(phase.ok for phase in followed.phases.values())
    raise typer.Exit(Exit.OK if ok else Exit.FAILED)


def _videos(paths: list[Path]) -> list[Path]:
    """The videos to upload: each file given, and the videos in each folder given (by name);
    exit 2 when there is none, or two share a name (they would land on one key)."""
    videos: list[Path] = []
    for path in paths:
        if path.is_dir():
            videos.extend(sorted(p for p in path.iterdir() if p.is_file() and is_video_key(p.name)))
        else:
            videos.append(path)
    if not videos:
        raise context.usage(
            "no video to upload (.mp4, .mov, .mkv or .webm files, or folders holding them)"
        )
    names = [video.name for video in videos]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise context.usage(f"two videos named {twice[0]}: each goes to inbox/<prefix>/<name>")
    return videos


def _upload_images(stack: Stack, images: list[Any], prefix: str) -> list[Any]:
    """Local image files go up beside the videos; the manifest names their keys."""
    named: list[Any] = []
    for image in images:
        path = Path(str(image))
        if isinstance(image, str) and not is_url(image) and path.is_file():
            key = folder_key(BucketLayout(stack.bucket), prefix, path.name)
            upload_file(stack, path, key)
            named.append(key)
        else:
            named.append(image)
    return named


def _upload_videos(
    stack: Stack, paths: list[Path], prefix: str, document: Any, batch: BatchTag, *, quiet: bool
) -> list[Uploaded]:
    layout = BucketLayout(stack.bucket)
    uploaded: list[Uploaded] = []
    columns = (
        TextColumn("{task.description}", markup=False),  # a file name, not markup
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=err, disable=quiet) as bars:
        for path in paths:
            task = bars.add_task(path.name, total=path.stat().st_size)
            key = folder_key(layout, prefix, path.name)
            done = submit_video(stack, path, key, document, _advance(bars, task), batch)
            uploaded.append(done)
    return uploaded


def _advance(bars: Progress, task: TaskID) -> Callable[[int], None]:
    """The transfer manager's callback (bytes sent since the last call) -> the task's bar."""

    def advance(sent: int) -> None:
        bars.advance(task, sent)

    return advance


def _show_uploaded(uploaded: list[Uploaded], batch: BatchTag, flags: str, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "batch_id": batch.batch_id,
                "jobs": [
                    {
                        "job_id": u.job_id,
                        "key": u.key,
                        "version": u.version,
                        "manifest_key": u.manifest_key,
                    }
                    for u in uploaded
                ],
            }
        )
        return
    for u in uploaded:
        out.print(f"uploaded {u.key} (job {short_id(u.job_id)})")
    out.print(
        f"batch {batch.batch_id}: {len(uploaded)} video(s); follow it with "
        f"`dropcut {flags + ' ' if flags else ''}watch --batch {batch.batch_id}`"
    )
