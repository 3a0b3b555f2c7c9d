"""Checks made before any money is spent: the video by its content (a few ranged GETs), the
reference images, and the options against the active provider's limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dropcut.aws.storage import head_or_none, s3_range_reader
from dropcut.errors import Problem
from dropcut.formats.file_kinds import IMAGE_SNIFF_BYTES, sniff_image
from dropcut.formats.matroska import probe_matroska
from dropcut.formats.probe import MediaInfo, NotAVideo, RangeReader, probe_video
from dropcut.model.jobs import JobSpec
from dropcut.model.layout import VIDEO_SUFFIXES, is_video_key
from dropcut.model.media_limits import decode_problems
from dropcut.model.plan import duration_notice
from dropcut.providers import Provider
from dropcut.public_urls import Resolver, UrlRefused, check_public_https, system_resolver

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024

_NOT_A_VIDEO_HINTS = {
    "zero bytes": "The upload is empty: upload the video again.",
    "truncated": "The upload is incomplete or damaged: upload the whole file again.",
    "png": "Upload the video itself; reference images belong in the manifest's 'images'.",
    "jpeg": "Upload the video itself; reference images belong in the manifest's 'images'.",
    "webp": "Upload the video itself; reference images belong in the manifest's 'images'.",
    "gif": "Upload the video itself; reference images belong in the manifest's 'images'.",
}
_CONVERT_HINT = (
    "Convert it to MP4 (H.264 video, AAC audio), for example: "
    "ffmpeg -i input -c:v libx264 -c:a aac output.mp4"
)


@dataclass(frozen=True)
class InputCheck:
    """What the checks found: the video's facts, notices to pass on, and every problem."""

    media: MediaInfo | None = None
    notices: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def check_input(
    s3: S3Client,
    provider: type[Provider],
    bucket: str,
    video_key: str,
    head: dict[str, Any],
    spec: JobSpec | None,
    resolve: Resolver = system_resolver,
) -> InputCheck:
    """Check the video in the bucket (by content), the reference images and the options; list
    every problem."""
    video = s3_range_reader(s3, bucket, video_key, head.get("VersionId"))
    checked = check_video(video, int(head["ContentLength"]), provider)
    if spec is not None:
        if (notice := audio_notice(spec, checked.media)) is not None:
            checked.notices.append(notice)
        checked.problems.extend(check_options(provider, spec))
        checked.problems.extend(_image_problems(s3, provider, bucket, spec, resolve))
    return checked


def video_name_problems(name: str) -> list[Problem]:
    """A video must be named as one of the containers dropcut reads (VIDEO_SUFFIXES, any case)."""
    if is_video_key(name):
        return []
    names = ", ".join(VIDEO_SUFFIXES)
    return [
        Problem(
            "key",
            f"the file is not named as a video dropcut reads ({names})",
            names,
            "Upload an MP4, MOV, MKV or WebM video, named as such.",
        )
    ]


def _probe(read: RangeReader, size: int) -> MediaInfo:
    """The video's facts from its index: MP4/MOV (dropcut.formats.probe), or Matroska/WebM
    (dropcut.formats.matroska), which the MP4 probe names by its first bytes."""
    try:
        return probe_video(read, size)
    except NotAVideo as exc:
        if exc.detected in ("mkv", "webm"):
            return probe_matroska(read, size)
        raise


def check_video(read: RangeReader, size: int, provider: type[Provider]) -> InputCheck:
    """Check that `size` bytes read through `read` (ranged reads of an S3 object or a local
    file) are a usable video: its facts, the notices, and every problem. What does not fit the
    model's limits or the provider's size cap is for the plan (dropcut.model.plan.plan_video)."""
    problems: list[Problem] = []
    notices: list[str] = []
    media: MediaInfo | None = None
    try:
        media = _probe(read, size)
    except NotAVideo as exc:
        problems.append(
            Problem(
                "video",
                str(exc),
                "an MP4, MOV, MKV or WebM video (checked by its content, not its name)",
                _NOT_A_VIDEO_HINTS.get(exc.detected or "", _CONVERT_HINT),
            )
        )
    if media is not None:
        problems.extend(decode_problems(media))
    if media is not None and media.duration_seconds is not None:
        notice = duration_notice(provider, media.duration_seconds)
        if notice:
            notices.append(notice)
    return InputCheck(media=media, notices=notices, problems=problems)


def audio_notice(spec: JobSpec, media: MediaInfo | None) -> str | None:
    """What the user should know when `keep_audio` asks for a sound track the video does not
    have (the job runs: its output is silent, as the input is); None otherwise."""
    if spec.keep_audio and media is not None and media.audio_codec is None:
        return "keep_audio was asked, but the video has no audio track: the edited video is silent"
    return None


def check_options(provider: type[Provider], spec: JobSpec) -> list[Problem]:
    """The provider's own limits on the options (the same rules its adapter checks)."""
    return [
        *provider.prompt_problems(spec.prompt),
        *provider.reference_problems(len(spec.images), len(spec.elements)),
    ]


def _image_problems(
    s3: S3Client, provider: type[Provider], bucket: str, spec: JobSpec, resolve: Resolver
) -> list[Problem]:
    found: list[Problem] = []
    formats = ", ".join(sorted(provider.image_formats))
    for where, image in spec.image_fields():
        if image.startswith("https://"):
            # Fetched by the provider itself: checked so that no job sends it a URL that
            # points inside a network (the provider may run where that reaches something).
            try:
                check_public_https(image, resolve)
            except UrlRefused as refused:
                found.append(
                    Problem(
                        where,
                        f"the image URL {refused}",
                        "an https URL of a public host",
                        "Upload the image beside the video and name its key instead.",
                    )
                )
            continue
        head = head_or_none(s3, bucket, image)
        if head is None:
            found.append(
                Problem(
                    where,
                    f"{image!r} does not exist in the bucket",
                    "an existing image key",
                    "Upload the image first (or fix its key), then upload the manifest again.",
                )
            )
            continue
        size = int(head["ContentLength"])
        if size > provider.max_image_bytes:
            found.append(
                Problem(
                    where,
                    f"{image!r} is {size / MIB:.1f} MB",
                    f"at most {provider.max_image_bytes // MIB} MB per image for {provider.name}",
                    "Resize or recompress the image.",
                )
            )
        kind = _sniff(s3, bucket, image, size)
        if kind not in provider.image_formats:
            what = f"a {kind.upper()} image" if kind else "not an image we can recognise"
            found.append(
                Problem(
                    where,
                    f"{image!r} is {what}",
                    f"{formats} for {provider.name}",
                    "Convert the image to JPEG or PNG.",
                )
            )
    return found


def _sniff(s3: S3Client, bucket: str, key: str, size: int) -> str | None:
    if size == 0:
        return None
    head = s3_range_reader(s3, bucket, key, None)(0, min(size, IMAGE_SNIFF_BYTES))
    return sniff_image(head)
