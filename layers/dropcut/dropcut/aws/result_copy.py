"""Copying a provider's result into S3, trusting nothing about it.

The link must pass the address guard (dropcut.public_urls; the connection goes to the address
that was checked), redirects are followed only to links that pass it too (at most
`max_redirects`), only a `200` with a video (or generic binary) content type and no content
coding is read (the bytes as sent: a gzip of 510 KiB would otherwise become 512 MiB in this
process before any cap saw them), the bytes are capped and the whole copy is timed, and the
content itself must be an MP4/MOV with a video track (dropcut.formats.stream_probe.StreamProbe,
fed as the bytes stream past). The upload goes through boto3's
transfer manager (multipart, parts uploaded while the next ones download); a result that fails
any check raises before the upload completes, so the transfer manager aborts it and no object
appears. Memory stays near max_in_memory_upload_chunks x part size whatever the size.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit

import httpx
from boto3.s3.transfer import TransferConfig

from dropcut.errors import ProviderUnavailable, ResultInvalid, ResultUnavailable, ResultUrlRefused
from dropcut.formats.probe import NotAVideo
from dropcut.formats.stream_probe import StreamProbe
from dropcut.providers.base import is_public_https
from dropcut.public_urls import Resolver, UrlRefused, check_public_https, system_resolver

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024


def transfer_config(part_bytes: int, concurrency: int, in_memory_parts: int) -> TransferConfig:
    """The transfer manager's settings for a copy: `part_bytes` parts, `concurrency` uploading
    at once, at most `in_memory_parts` read ahead of the upload (s3transfer's
    max_in_memory_upload_chunks, which boto3's constructor does not take; its default of 10
    would hold 10 parts)."""
    config = TransferConfig(
        multipart_threshold=part_bytes, multipart_chunksize=part_bytes, max_concurrency=concurrency
    )
    config.max_in_memory_upload_chunks = in_memory_parts
    return config


#: Parts of 8 MiB, 4 uploading while the next downloads: at most 4 parts buffered, about 40 MiB
#: of process memory at peak (bench/result_copy.py measures it).
TRANSFER = transfer_config(8 * MIB, 4, 4)
#: Content types a video result may come with (CDNs often send a generic binary type).
VIDEO_TYPES = ("video/", "application/mp4", "application/octet-stream", "binary/octet-stream")
#: The only content coding a result may come in: none (RFC 9110, 8.4.1 and 12.5.3: a client
#: that sends `Accept-Encoding: identity` asks for the representation as it is).
IDENTITY = "identity"


@dataclass(frozen=True)
class ResultLimits:
    """Bounds on one copy: bytes (MaxResultBytes), seconds for the whole copy, redirects."""

    max_bytes: int
    max_seconds: float = 600.0
    max_redirects: int = 3


def copy_result_to_s3(
    client: httpx.Client,
    s3: S3Client,
    url: str,
    bucket: str,
    key: str,
    limits: ResultLimits,
    *,
    allow_insecure: bool = False,
    resolve: Resolver = system_resolver,
    transfer: TransferConfig = TRANSFER,
) -> int:
    """Copy the result at `url` into s3://bucket/key (ContentType video/mp4); the bytes stored.

    Raises ResultUrlRefused (the link or a redirect fails the address guard), ResultUnavailable
    (401/403/404/410: expired or removed), ProviderUnavailable (5xx, a broken or too slow
    transfer: worth a retry) and ResultInvalid (anything that is not a video within the limits).
    """
    deadline = time.monotonic() + limits.max_seconds
    with _open_result(client, url, limits, allow_insecure, resolve) as response:
        _check_headers(response, limits)
        body = _CheckedBody(response.iter_bytes(), limits, deadline)  # identity: as sent
        try:
            s3.upload_fileobj(
                cast("IO[bytes]", body),
                bucket,
                key,
                ExtraArgs={"ContentType": "video/mp4"},
                Config=transfer,
            )
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"downloading the result failed ({type(exc).__name__})"
            ) from None
    return body.size


@contextmanager
def _open_result(
    client: httpx.Client, url: str, limits: ResultLimits, allow_insecure: bool, resolve: Resolver
) -> Iterator[httpx.Response]:
    """The 200 answer for `url`, after at most max_redirects checked redirects."""
    current = url
    for _ in range(limits.max_redirects + 1):
        target, headers, extensions = _connection(current, allow_insecure, resolve)
        try:
            with client.stream(
                "GET",
                target,
                headers={**headers, "Accept-Encoding": IDENTITY},
                extensions=extensions,
                follow_redirects=False,
            ) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise ResultInvalid("the result link redirected without a Location")
                    current = urljoin(current, location)
                    continue
                _check_status(response)
                yield response
                return
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"downloading the result failed ({type(exc).__name__})"
            ) from None
    raise ResultInvalid(f"the result link redirected more than {limits.max_redirects} times")


def _connection(
    url: str, allow_insecure: bool, resolve: Resolver
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL to connect to, headers, httpx extensions): pinned to the checked address, with the
    name kept for Host and TLS (SNI and the certificate check)."""
    if allow_insecure:  # the local stack serves results over http://127.0.0.1
        problem = is_public_https(url, allow_insecure=True)
        if problem:
            raise ResultUrlRefused(f"the provider's result URL {problem}; it was not fetched")
        return url, {}, {}
    try:
        checked = check_public_https(url, resolve)
    except UrlRefused as refused:
        raise ResultUrlRefused(f"the provider's result URL {refused}; it was not fetched") from None
    netloc = urlsplit(url).netloc
    return checked.pinned_url(), {"Host": netloc}, {"sni_hostname": checked.host}


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status in (401, 403, 404, 410):
        raise ResultUnavailable(
            f"the provider's result link answered HTTP {status} (expired or removed)"
        )
    if status >= 500 or status in (408, 429):
        raise ProviderUnavailable(
            f"the provider's result link answered HTTP {status}", status=status
        )
    if status != 200:
        raise ResultInvalid(f"the provider's result link answered HTTP {status}, not 200")


def _check_headers(response: httpx.Response, limits: ResultLimits) -> None:
    coding = response.headers.get("content-encoding", IDENTITY).strip().lower()
    if coding != IDENTITY:
        raise ResultInvalid(
            f"the provider's result link answered with Content-Encoding {coding!r}: dropcut "
            f"takes the video's own bytes only (it asked for {IDENTITY!r})"
        )
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and not content_type.startswith(VIDEO_TYPES):
        raise ResultInvalid(
            f"the provider's result link answered with {content_type!r}, not a video"
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise ResultInvalid(
            f"the provider's result is {int(declared)} bytes, over the limit of "
            f"{limits.max_bytes} (MaxResultBytes)"
        )


class _CheckedBody(io.RawIOBase):
    """The download as a file object for the transfer manager: counted, timed, and probed; at
    its end it raises ResultInvalid unless the bytes are a video."""

    def __init__(self, chunks: Iterator[bytes], limits: ResultLimits, deadline: float) -> None:
        self._chunks = chunks
        self._limits = limits
        self._deadline = deadline
        self._probe = StreamProbe()
        self._pending = b""
        self.size = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Exactly `size` bytes unless the result ends first (all of it for -1 or None).

        The transfer manager reads a non-seekable body in part-sized reads and takes a short
        read for the end of the stream: RawIOBase.read (one readinto, one network chunk) would
        make it PUT the whole result in one request, buffered in memory."""
        wanted = -1 if size is None else size
        parts: list[bytes] = []
        count = 0
        while wanted < 0 or count < wanted:
            while not self._pending and not self._ended:
                self._next_chunk()
            if not self._pending:
                break
            take = len(self._pending) if wanted < 0 else min(wanted - count, len(self._pending))
            parts.append(self._pending[:take])
            self._pending = self._pending[take:]
            count += take
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._ended:
            self._next_chunk()
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _next_chunk(self) -> None:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._ended = True
            try:
                self._probe.finish()
            except NotAVideo as refused:
                raise ResultInvalid(f"the provider's result is not a video: {refused}") from None
            return
        self.size += len(chunk)
        if self.size > self._limits.max_bytes:
            raise ResultInvalid(
                f"the provider's result is over the limit of {self._limits.max_bytes} bytes "
                "(MaxResultBytes)"
            )
        if time.monotonic() > self._deadline:
            raise ProviderUnavailable(
                f"copying the result took longer than {self._limits.max_seconds:.0f} s"
            )
        self._probe.feed(chunk)
        self._pending = chunk
