"""S3: presigned inputs, streamed results (bounded memory), JSON reports."""

from __future__ import annotations

import json
import logging
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from typing import TYPE_CHECKING, Any

from dropcut.formats.probe import RangeReader

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB except the last.


def object_ref(bucket: str, key: str, version: str | None) -> dict[str, Any]:
    """Bucket, Key and (when there is one) VersionId parameters for one version of an object.

    "null" is the version id S3 reports for objects written before versioning was enabled;
    passing it back is refused, so it means "no version".
    """
    ref: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version and version != "null":
        ref["VersionId"] = version
    return ref


def head_or_none(
    s3: S3Client, bucket: str, key: str, version: str | None = None
) -> dict[str, Any] | None:
    """The object's HEAD answer, or None when that object (version) does not exist."""
    try:
        head: dict[str, Any] = dict(s3.head_object(**object_ref(bucket, key, version)))
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NoSuchVersion"):
            return None
        raise
    return head


def version_of(head: dict[str, Any]) -> str:
    """The version a HEAD answer describes: its VersionId, or its ETag in a bucket that keeps no
    versions (the job record's `version`)."""
    return str(head.get("VersionId") or head["ETag"].strip('"'))


def input_absence(s3: S3Client, bucket: str, key: str, version: str) -> str | None:
    """Why one version of an input can no longer be edited, or None while it can.

    Gone: the version itself was deleted, or the key was deleted (its current version is a delete
    marker) with no newer upload since. A newer upload leaves the older version editable (its
    edit goes under its versioned name: dropcut.model.layout). One HEAD when the version is the
    current one, two otherwise. A HEAD of a missing key answers 403 unless the caller may list
    the bucket: the role needs s3:ListBucket.
    """
    current = head_or_none(s3, bucket, key)
    if current is not None and version_of(current) == version:
        return None
    if current is not None and not current.get("VersionId"):
        return "it was replaced by a new upload, and the bucket keeps no older versions"
    if head_or_none(s3, bucket, key, version) is None:
        return f"its version {version} was deleted"
    if current is None:
        return "it was deleted"
    return None


def s3_range_reader(s3: S3Client, bucket: str, key: str, version: str | None) -> RangeReader:
    """A RangeReader doing one ranged GET per read; pinned to `version`, so every read sees
    the same object."""
    ref = object_ref(bucket, key, version)

    def read(offset: int, length: int) -> bytes:
        if length <= 0:
            return b""  # "bytes=10-9" is not a valid range
        response = s3.get_object(**ref, Range=f"bytes={offset}-{offset + length - 1}")
        data: bytes = response["Body"].read()
        return data

    return read


def presign_get(s3: S3Client, bucket: str, key: str, version: str | None, expires: int) -> str:
    """A presigned GET URL for one version of an object. Never log it: it carries a signature."""
    params = object_ref(bucket, key, version)
    url: str = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
    return url


def put_json(s3: S3Client, bucket: str, key: str, document: dict[str, Any]) -> None:
    body = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json; charset=utf-8")


def decode_metadata_value(value: str) -> str:
    """A user metadata value as the uploader wrote it. S3 hands non-ASCII values back as RFC 2047
    encoded words (`=?UTF-8?B?...?=`, `=?UTF-8?Q?...?=`), which the standard library's
    `email.header` decodes. Raises ValueError when the value looks encoded but does not decode."""
    if "=?" not in value:
        return value
    try:
        decoded = str(make_header(decode_header(value)))
    except (ValueError, LookupError, HeaderParseError) as exc:
        raise ValueError(f"it is RFC 2047 encoded text that does not decode ({exc})") from None
    if value.strip() and not decoded.strip():
        raise ValueError("it is RFC 2047 encoded text that decodes to nothing")
    return decoded
