"""A job's options from the command line: a manifest file, overridden by --prompt, --image,
--keep-audio and --aspect-ratio; read within the bounds Submit reads manifests with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dropcut.bounded_json import BoundedJsonError, parse_bounded_json
from dropcut.errors import InputInvalid, Problem
from dropcut.steps.submit import MAX_MANIFEST_BYTES


def is_url(image: str) -> bool:
    return "://" in image


def job_document(
    manifest: Path | None = None,
    prompt: str | None = None,
    images: list[str] | None = None,
    keep_audio: bool = False,
    aspect_ratio: str | None = None,
) -> Any:
    """The manifest to upload (None: nothing given, the video goes alone). Raises InputInvalid
    for a manifest file Submit would refuse to read; a manifest that is JSON but no object is
    passed on as it is (parse_job_spec says what is wrong with it, as it does for Submit)."""
    document: Any = read_manifest(manifest) if manifest else {}
    if not isinstance(document, dict):
        return document
    if prompt is not None:
        document["prompt"] = prompt
    if images:
        document["images"] = [*document.get("images", []), *images]
    if keep_audio:
        document["keep_audio"] = True
    if aspect_ratio is not None:
        document["aspect_ratio"] = aspect_ratio
    return document if (manifest or document) else None


def read_manifest(path: Path) -> Any:
    """A manifest file, parsed as Submit parses one (dropcut.bounded_json, the same bounds)."""
    try:
        document = parse_bounded_json(path.read_bytes(), max_bytes=MAX_MANIFEST_BYTES)
    except BoundedJsonError as exc:
        raise InputInvalid(
            [
                Problem(
                    "manifest",
                    f"the manifest cannot be read: {exc}",
                    f"a JSON object of at most {MAX_MANIFEST_BYTES} bytes",
                    "Check the manifest with a JSON validator.",
                )
            ]
        ) from None
    if not isinstance(document, dict):
        raise InputInvalid(
            [Problem("manifest", f"{path.name} is not a JSON object", "a JSON object")]
        )
    return document
