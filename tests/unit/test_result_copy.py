"""Finalize's copy of a provider result trusts nothing: only a 200 video from a public address
(connected to as checked, redirects checked too) within the byte and time limits is stored;
anything else raises a named error and leaves no object and no open multipart upload."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx
import pytest
from moto import mock_aws

from devstack.media import make_sample_video, pad_mdat
from dropcut.aws.result_copy import ResultLimits, copy_result_to_s3
from dropcut.errors import ProviderUnavailable, ResultInvalid, ResultUnavailable, ResultUrlRefused

CDN = "93.184.215.14"
CDN2 = "93.184.215.15"
HOSTS = {"cdn.example": [CDN], "cdn2.example": [CDN2], "inside.example": ["10.0.0.7"]}
LIMITS = ResultLimits(max_bytes=64 * 1024 * 1024)


def resolve(host: str, port: int) -> list[str]:
    if host not in HOSTS:
        raise OSError("no such host")
    return HOSTS[host]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("results")
    small = make_sample_video(folder / "small.mp4", seconds=1.0, width=160, height=120)
    big = pad_mdat(small, folder / "big.mp4", 20 * 1024 * 1024)  # three 8 MiB parts
    return {"small": Path(small).read_bytes(), "big": Path(big).read_bytes()}


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="media")
        yield client


class Server:
    """Answers by (pinned address, Host); records what was asked."""

    def __init__(self, answers: dict[tuple[str, str], httpx.Response]):
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[(request.url.host, request.headers["host"])]


def copy(s3, server: Server, url: str = "https://cdn.example/out.mp4", limits=LIMITS) -> int:
    client = httpx.Client(transport=httpx.MockTransport(server))
    return copy_result_to_s3(
        client, s3, url, "media", "outbox/a.edited.mp4", limits, resolve=resolve
    )


def video(body: bytes, content_type: str = "video/mp4") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": content_type}, content=body)


def nothing_stored(s3) -> bool:
    listed = s3.list_objects_v2(Bucket="media", Prefix="outbox/")
    uploads = s3.list_multipart_uploads(Bucket="media")
    return "Contents" not in listed and not uploads.get("Uploads")


@pytest.mark.parametrize("name", ["small", "big"])
def test_a_video_is_stored_whole_through_the_checked_address(s3, videos, name):
    server = Server({(CDN, "cdn.example"): video(videos[name])})
    assert copy(s3, server) == len(videos[name])
    stored = s3.get_object(Bucket="media", Key="outbox/a.edited.mp4")
    assert stored["Body"].read() == videos[name] and stored["ContentType"] == "video/mp4"
    (request,) = server.requests
    assert request.url.host == CDN and request.headers["host"] == "cdn.example"
    assert request.extensions["sni_hostname"] == "cdn.example"


def test_a_redirect_to_another_public_host_is_followed(s3, videos):
    server = Server(
        {
            (CDN, "cdn.example"): httpx.Response(
                302, headers={"location": "https://cdn2.example/v"}
            ),
            (CDN2, "cdn2.example"): video(videos["small"]),
        }
    )
    assert copy(s3, server) == len(videos["small"])


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (video(b"<!doctype html><p>Sign in</p>" * 50, "text/html"), ResultInvalid, "text/html"),
        (
            video(b"<!doctype html><p>Sign in</p>" * 50, "binary/octet-stream"),
            ResultInvalid,
            "text",
        ),
        (
            httpx.Response(302, headers={"location": "http://cdn2.example/v"}),
            ResultUrlRefused,
            "https",
        ),
        (
            httpx.Response(302, headers={"location": "https://inside.example/v"}),
            ResultUrlRefused,
            "10.0.0.7",
        ),
        (
            httpx.Response(302, headers={"location": "https://169.254.169.254/"}),
            ResultUrlRefused,
            "public",
        ),
        (httpx.Response(302, headers={"location": "/out.mp4"}), ResultInvalid, "more than 3"),
        (httpx.Response(206, content=b"\0" * 100), ResultInvalid, "206"),
        (httpx.Response(404), ResultUnavailable, "404"),
        (httpx.Response(503), ProviderUnavailable, "503"),
        (
            httpx.Response(200, headers={"content-length": str(2**40)}, content=b""),
            ResultInvalid,
            "over the limit",
        ),
    ],
)
def test_anything_but_a_video_raises_and_stores_nothing(s3, answer, error, words):
    with pytest.raises(error, match=words):
        copy(s3, Server({(CDN, "cdn.example"): answer}))
    assert nothing_stored(s3)


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate, gzip"])
def test_a_result_in_a_content_coding_is_refused_without_being_decoded(s3, coding):
    # 512 MiB of zeros as gzip is about 510 KiB: decoded, the copy's memory and the byte cap would
    # meet the bomb only after the decoder had made it. The coded bytes are never read.
    bomb = httpx.Response(
        200,
        headers={"content-type": "video/mp4", "content-encoding": coding},
        stream=httpx.ByteStream(b"\x1f\x8b" + b"\0" * 1024),
    )
    server = Server({(CDN, "cdn.example"): bomb})
    with pytest.raises(ResultInvalid, match="Content-Encoding"):
        copy(s3, server)
    assert server.requests[0].headers["accept-encoding"] == "identity"
    assert nothing_stored(s3)


def test_a_result_marked_identity_is_stored_as_sent(s3, videos):
    sent = httpx.Response(
        200,
        headers={"content-type": "video/mp4", "content-encoding": "identity"},
        content=videos["small"],
    )
    assert copy(s3, Server({(CDN, "cdn.example"): sent})) == len(videos["small"])


def test_a_result_cut_short_after_several_parts_stores_nothing(s3, videos):
    cut = videos["big"][: 18 * 1024 * 1024]  # two parts uploaded, then the end is missing
    with pytest.raises(ResultInvalid, match="truncated"):
        copy(s3, Server({(CDN, "cdn.example"): video(cut)}))
    assert nothing_stored(s3)


def test_bytes_and_time_are_capped_while_streaming(s3, videos):
    with pytest.raises(ResultInvalid, match="over the limit"):
        copy(s3, Server({(CDN, "cdn.example"): video(videos["big"])}), limits=ResultLimits(1 << 20))
    assert nothing_stored(s3)
    with pytest.raises(ProviderUnavailable, match="longer than"):
        copy(
            s3,
            Server({(CDN, "cdn.example"): video(videos["small"])}),
            limits=ResultLimits(LIMITS.max_bytes, max_seconds=-1),
        )
    assert nothing_stored(s3)


def test_a_link_to_a_private_address_is_never_fetched(s3):
    server = Server({})
    with pytest.raises(ResultUrlRefused, match="not a public address"):
        copy(s3, server, url="https://0x7f000001/out.mp4")
    assert server.requests == [] and nothing_stored(s3)


def test_the_body_reads_whole_parts_so_the_transfer_manager_uploads_in_parts():
    """A short read would make s3transfer take the stream for its end and PUT the rest in one
    request, buffered whole in memory."""
    from dropcut.aws.result_copy import TRANSFER, ResultLimits, _CheckedBody

    chunks = iter([b"a" * 1000] * 10)
    body = _CheckedBody(chunks, ResultLimits(max_bytes=10**6), deadline=float("inf"))
    body._probe.finish = lambda: None  # type: ignore[method-assign]  # bytes, not a video here
    assert len(body.read(4096)) == 4096
    assert len(body.read(4096)) == 4096
    assert len(body.read(4096)) == 1808
    assert body.read(4096) == b""
    assert TRANSFER.max_in_memory_upload_chunks * TRANSFER.multipart_chunksize <= 64 * 2**20
