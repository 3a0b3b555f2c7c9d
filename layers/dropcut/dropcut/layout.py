"""Where everything lives in the media bucket: the one home of every key rule.

    inbox/<folders>/<name>.mp4                 a user's upload (the only prefix that triggers)
    inbox/<folders>/<name>.mp4.json            its manifest (the job's options)
    inbox/<folders>/_preset.json               a folder's default options (nearest folder wins)
    outbox/<folders>/<stem>.edited.mp4         the edited video
    outbox/<folders>/<stem>.edited.result.json its result manifest
    errors/<folders>/<name>.mp4.error.json     the error report of a job that failed

Outputs and reports live under prefixes that never trigger the pipeline again.
"""

from __future__ import annotations

from dataclasses import dataclass

from dropcut.providers.base import IMAGE_SUFFIXES

#: Video containers the model takes (Kling O1 edit: MP4 or MOV; docs/providers.md, "The model's own limits").
VIDEO_SUFFIXES = (".mp4", ".mov")
MANIFEST_SUFFIX = ".json"
PRESET_NAME = "_preset.json"
OUTPUT_SUFFIX = ".edited.mp4"
RESULT_MANIFEST_SUFFIX = ".result.json"
ERROR_REPORT_SUFFIX = ".error.json"


def is_video_key(key: str) -> bool:
    """True for a key named like a video the model takes (the content is checked separately)."""
    return key.lower().endswith(VIDEO_SUFFIXES)


def is_image_key(key: str) -> bool:
    """True for a key named like a reference image."""
    return key.lower().endswith(IMAGE_SUFFIXES)


@dataclass(frozen=True)
class BucketLayout:
    """The media bucket and its three prefixes (each ends with '/')."""

    bucket: str
    inbox: str = "inbox/"
    outbox: str = "outbox/"
    errors: str = "errors/"

    def in_inbox(self, bucket: str, key: str) -> bool:
        """True for an object of this stack's inbox (the only place uploads trigger jobs)."""
        return bucket == self.bucket and key.startswith(self.inbox)

    def relative(self, key: str) -> str:
        """The key below the inbox (inbox/a/b.mp4 -> a/b.mp4)."""
        return key[len(self.inbox) :] if key.startswith(self.inbox) else key

    @staticmethod
    def manifest_key(video_key: str) -> str:
        """The manifest beside a video: `<video key>.json`."""
        return video_key + MANIFEST_SUFFIX

    @staticmethod
    def manifest_name(video_key: str) -> str:
        """The manifest's file name (no folder), as a user names it."""
        return BucketLayout.manifest_key(video_key).rsplit("/", 1)[-1]

    @staticmethod
    def video_key_of(manifest_key: str) -> str | None:
        """The video a manifest key belongs to; None when the key is no video's manifest."""
        if not manifest_key.endswith(MANIFEST_SUFFIX):
            return None
        video_key = manifest_key[: -len(MANIFEST_SUFFIX)]
        return video_key if is_video_key(video_key) else None

    def preset_keys(self, video_key: str) -> list[str]:
        """Where a video's folder presets may be, nearest folder first, up to the inbox root."""
        keys: list[str] = []
        folder = video_key.rsplit("/", 1)[0] + "/" if "/" in video_key else ""
        while folder.startswith(self.inbox):
            keys.append(folder + PRESET_NAME)
            if folder == self.inbox:
                break
            folder = folder[:-1].rsplit("/", 1)[0] + "/"
        return keys

    def output_key(self, video_key: str, name: str | None = None) -> str:
        """Where the edited video goes: the input's folder under the outbox, named `name` (an
        .mp4 file name) or `<stem>.edited.mp4`."""
        folder, _, filename = self.relative(video_key).rpartition("/")
        stem = filename.rsplit(".", 1)[0] if "." in filename else filename
        chosen = name or stem + OUTPUT_SUFFIX
        if not chosen.lower().endswith(".mp4"):
            chosen += ".mp4"
        return f"{self.outbox}{folder + '/' if folder else ''}{chosen}"

    @staticmethod
    def result_manifest_key(output_key: str) -> str:
        """The result manifest beside an output: `<output without .mp4>.result.json`."""
        return output_key.rsplit(".", 1)[0] + RESULT_MANIFEST_SUFFIX

    def error_report_key(self, video_key: str) -> str:
        """The error report of a job: the input's path under the errors prefix + `.error.json`."""
        return f"{self.errors}{self.relative(video_key)}{ERROR_REPORT_SUFFIX}"
