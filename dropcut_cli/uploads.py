"""Uploading a job: reference images, then the manifest, then the video (the video's event then
finds its options at once), through boto3's transfer manager (multipart for big files)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from dropcut.aws.storage import version_of
from dropcut.model.batches import BatchTag
from dropcut.model.jobs import job_id_for
from dropcut.model.layout import BucketLayout
from dropcut_cli.connection import Stack

#: Files above this go up in parts, 4 at once (as Finalize stores results).
PART_BYTES = 8 * 1024 * 1024
TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=4
)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Uploaded:
    """One video in the inbox: where, which version, and the job that version is."""

    path: Path
    key: str
    version: str
    job_id: str
    manifest_key: str | None


def folder_key(layout: BucketLayout, prefix: str, name: str) -> str:
    """`inbox/<prefix>/<name>` (prefix may be empty, with or without slashes)."""
    folder = prefix.strip("/")
    return f"{layout.inbox}{folder + '/' if folder else ''}{name}"


def upload_file(
    stack: Stack,
    path: Path,
    key: str,
    progress: Progress | None = None,
    metadata: dict[str, str] | None = None,
) -> str:
    """Upload `path` to `key` (with S3 user `metadata`); the version (or, unversioned, the
    ETag) S3 answered with."""
    s3 = stack.s3
    extra = {"Metadata": metadata} if metadata else None
    with _answers(s3) as answers:
        s3.upload_file(
            str(path), stack.bucket, key, ExtraArgs=extra, Config=TRANSFER, Callback=progress
        )
    answer = answers[-1]
    return version_of(answer)


def upload_manifest(stack: Stack, video_key: str, manifest: Any) -> str:
    """Put `<video key>.json`; its key."""
    key = BucketLayout.manifest_key(video_key)
    body = json.dumps(manifest, indent=2).encode()
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body, ContentType="application/json")
    return key


def submit_video(
    stack: Stack,
    path: Path,
    key: str,
    manifest: Any,
    progress: Progress | None = None,
    batch: BatchTag | None = None,
) -> Uploaded:
    """Manifest first, then the video (tagged with its `batch`: dropcut.model.batches); the
    job id is the pipeline's own for that version."""
    manifest_key = upload_manifest(stack, key, manifest) if manifest is not None else None
    version = upload_file(stack, path, key, progress, batch.metadata() if batch else None)
    return Uploaded(path, key, version, job_id_for(stack.bucket, key, version), manifest_key)


@contextmanager
def _answers(s3: Any) -> Iterator[list[dict[str, Any]]]:
    """The parsed answers of the PutObject / CompleteMultipartUpload calls made inside: the
    transfer manager does not return them, and they carry the new version's id."""
    seen: list[dict[str, Any]] = []

    def keep(parsed: dict[str, Any], **_: Any) -> None:
        seen.append(parsed)

    events = ("after-call.s3.PutObject", "after-call.s3.CompleteMultipartUpload")
    for event in events:
        s3.meta.events.register(event, keep, unique_id=f"dropcut-cli-{event}")
    try:
        yield seen
    finally:
        for event in events:
            s3.meta.events.unregister(event, unique_id=f"dropcut-cli-{event}")
