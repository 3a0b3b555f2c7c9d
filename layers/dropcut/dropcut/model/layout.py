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

import hashlib
from dataclasses import dataclass

from dropcut.providers.base import IMAGE_SUFFIXES

#: The containers dropcut reads: MP4 and MOV as the model takes them (Kling O1 edit: docs/providers.md,
#: "The model's own limits"), Matroska and WebM converted to MP4 by Prepare.
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")
MANIFEST_SUFFIX = ".json"
PRESET_NAME = "_preset.json"
OUTPUT_SUFFIX = ".edited.mp4"
RESULT_MANIFEST_SUFFIX = ".result.json"
ERROR_REPORT_SUFFIX = ".error.json"
CONTACT_SHEET_SUFFIX = ".sheet.png"
#: Where Prepare's parts and Finalize's edited parts live: outside the inbox (never triggers a
#: job) and expired by the bucket's lifecycle rule (template.yaml, expire-work-objects).
WORK_PREFIX = "work/"
#: How long objects under WORK_PREFIX live (days; the lifecycle rule's ExpirationInDays, which
#: tests/unit/test_template.py ties to this).
WORK_KEEP_DAYS = 7


#: Files operating systems and sync tools add beside real files (compared case-insensitively).
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r", ".ds_store"})
#: The first bytes of AppleDouble / AppleSingle files (macOS resource forks, `._name`).
APPLE_DOUBLE_MAGIC = (b"\x00\x05\x16\x07", b"\x00\x05\x16\x00")
#: Objects this small are read (4 bytes) to recognise what they are by content.
SNIFF_SMALL_OBJECT_BYTES = 16 * 1024


def not_a_job(key: str, size: int, first_bytes: bytes = b"") -> str | None:
    """Why an inbox object is not a job at all (ignored: no job, no report), or None.

    Folder markers (the S3 console's "Create folder": a zero-byte key ending in '/'), hidden
    files (.DS_Store, AppleDouble `._A001.mp4`), files systems add (Thumbs.db, desktop.ini),
    empty objects that are not named as videos, and AppleDouble content under any name.
    `size` -1 (unknown) and no `first_bytes` decide by the name alone. The name is what follows
    the last `/` or `\\` (a Windows path in a key): `..\\..\\x.mp4` is not a hidden file but
    a video whose key Submit refuses, with a report (key_shape_problem).
    """
    if key.endswith("/"):
        return "a folder marker"
    name = key.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if name.startswith("."):
        return "a hidden file"
    if name.lower() in SYSTEM_FILES:
        return "a file the operating system adds"
    if first_bytes[:4] in APPLE_DOUBLE_MAGIC:
        return "an AppleDouble resource fork"
    if size == 0 and not is_video_key(key) and not key.endswith(MANIFEST_SUFFIX):
        return "an empty object"
    return None


#: Letters of an S3 version id that name an older version's edit (version_output_key).
VERSION_TAG_CHARS = 12
#: S3's limit on an object key: 1,024 bytes of UTF-8 (Amazon S3 User Guide, "Naming objects").
MAX_KEY_BYTES = 1024
#: Where the report of an input whose own report key would be too long goes.
LONG_KEY_REPORTS = "_keys-too-long/"
#: Where the report of an input whose key is refused for its shape goes (key_shape_problem):
#: its own path would carry the same `..` or `\\` into the errors prefix.
UNSAFE_KEY_REPORTS = "_keys-refused/"
#: Names Windows reserves for devices, with or without an extension (Microsoft Learn, "Naming
#: Files, Paths, and Namespaces"): an output saved under one cannot be opened there.
WINDOWS_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"{device}{n}" for device in ("com", "lpt") for n in (*"123456789", "¹", "²", "³")}
)


def key_bytes(key: str) -> int:
    """The key's length as S3 counts it (UTF-8 bytes)."""
    return len(key.encode("utf-8", "surrogatepass"))


def key_shape_problem(key: str) -> str | None:
    """Why a key S3 accepts would not survive as a URL path or as a file path under a download
    folder, or None. HTTP clients and servers normalise `.`/`..` segments and `//`, and control
    characters are not sent as is; on Windows `\\` separates folders, `:` names a drive or a
    stream, and device names (WINDOWS_RESERVED_NAMES) are not files: a key with one would be
    written outside, or beside, the folder `dropcut fetch` saves into."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return "it contains a control character"
    segments = key.split("/")
    if any(segment in (".", "..") for segment in segments):
        return "it has a '.' or '..' folder, which URLs resolve away"
    if any(segment == "" for segment in segments[:-1]):
        return "it has an empty folder ('//'), which URLs collapse"
    if "\\" in key:
        return "it has a '\\', a folder separator on Windows"
    if ":" in key:
        return "it has a ':', which names a drive or a stream on Windows"
    reserved = [s for s in segments if s.split(".", 1)[0].strip().lower() in WINDOWS_RESERVED_NAMES]
    if reserved:
        return f"its folder or name {reserved[0]!r} is a device name Windows reserves"
    return None


def is_video_key(key: str) -> bool:
    """True for a key named like a video the model takes (the content is checked separately)."""
    return key.lower().endswith(VIDEO_SUFFIXES)


def is_image_key(key: str) -> bool:
    """True for a key named like a reference image."""
    return key.lower().endswith(IMAGE_SUFFIXES)


#: The folder of the videos at the inbox root, in the backlog's rotation (BucketLayout.folder_of).
ROOT_FOLDER = "."


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

    def folder_of(self, key: str) -> str:
        """The top-level folder below the inbox that a key is in, the unit of fair turns in the
        backlog (dropcut.aws.backlog): inbox/news/a/b.mp4 -> `news`; a key at the inbox root
        -> ROOT_FOLDER."""
        head, slash, _ = self.relative(key).partition("/")
        return head if slash and head else ROOT_FOLDER

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
    def version_output_key(output_key: str, version: str) -> str:
        """Where the edit of an input version that is no longer the newest goes: the output's
        name with `.v<first 12 letters and digits of the S3 version id>` before `.mp4`."""
        tag = "".join(c for c in version if c.isascii() and c.isalnum())[:VERSION_TAG_CHARS]
        stem = output_key.rsplit(".", 1)[0]
        return f"{stem}.v{tag or 'null'}.mp4"

    @staticmethod
    def result_manifest_key(output_key: str) -> str:
        """The result manifest beside an output: `<output without .mp4>.result.json`."""
        return output_key.rsplit(".", 1)[0] + RESULT_MANIFEST_SUFFIX

    @staticmethod
    def contact_sheet_key(output_key: str) -> str:
        """The before/after picture beside an output: `<output without .mp4>.sheet.png`."""
        return output_key.rsplit(".", 1)[0] + CONTACT_SHEET_SUFFIX

    @staticmethod
    def prepared_key(job_id: str, index: int) -> str:
        """Prepare's mezzanine or part `index` of a job: `work/<job id>/prepared/p<NN>.mp4`."""
        return f"{WORK_PREFIX}{job_id}/prepared/p{index:02d}.mp4"

    @staticmethod
    def edited_key(job_id: str, part_id: str) -> str:
        """Finalize's copy of the provider's result for one part (the job itself in the one-part
        case): `work/<job id>/edited/<part id>.mp4`; Stitch makes the output from these."""
        return f"{WORK_PREFIX}{job_id}/edited/{part_id}.mp4"

    def error_report_key(self, video_key: str) -> str:
        """The error report of a job: the input's path under the errors prefix + `.error.json`;
        for an input whose report key would pass MAX_KEY_BYTES, a key that fits:
        `errors/_keys-too-long/<sha-256 of the input key>.error.json`; for an input key refused
        for its shape (key_shape_problem), `errors/_keys-refused/<sha-256>.error.json`, so that
        no `..` or `\\` of the input reaches a key dropcut writes."""
        key = f"{self.errors}{self.relative(video_key)}{ERROR_REPORT_SUFFIX}"
        plain = key_shape_problem(video_key) is None
        if plain and key_bytes(key) <= MAX_KEY_BYTES:
            return key
        folder = LONG_KEY_REPORTS if plain else UNSAFE_KEY_REPORTS
        digest = hashlib.sha256(video_key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.errors}{folder}{digest}{ERROR_REPORT_SUFFIX}"

    def derived_keys(self, video_key: str, output_name: str | None = None) -> dict[str, str]:
        """Every key dropcut writes for an input, by what it holds."""
        output = self.output_key(video_key, output_name)
        older = self.version_output_key(output, "v" * VERSION_TAG_CHARS)
        return {
            "output": output,
            "result manifest": self.result_manifest_key(output),
            "older version's result manifest": self.result_manifest_key(older),
            "error report": f"{self.errors}{self.relative(video_key)}{ERROR_REPORT_SUFFIX}",
        }

    def key_problems(self, video_key: str, output_name: str | None = None) -> list[str]:
        """What would stop dropcut from writing an input's results: the input key's shape, the
        shape of the output key an `output_name` gives (`dropcut fetch` saves it under that
        name), and every derived key within MAX_KEY_BYTES (checked before anything is paid)."""
        found = []
        if (shape := key_shape_problem(video_key)) is not None:
            found.append(f"the key cannot be used as a URL or a file name: {shape}")
        elif output_name is not None:
            output = self.output_key(video_key, output_name)
            if (shape := key_shape_problem(output)) is not None:
                found.append(
                    f"its output key {output!r} cannot be used as a URL or a file name: {shape}"
                )
        for what, key in self.derived_keys(video_key, output_name).items():
            if key_bytes(key) > MAX_KEY_BYTES:
                found.append(
                    f"its {what} key would be {key_bytes(key)} bytes, over S3's "
                    f"{MAX_KEY_BYTES}-byte limit"
                )
        return found
