"""probe_video checks an MP4/MOV through a few ranged reads, and names what a non-video file is."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image
from pydantic import ValidationError

from devstack.media import (
    fragmented_mp4,
    frame_at,
    make_audio_only_mp4,
    make_faststart_copy,
    make_sample_image,
    make_sample_mov,
    make_sample_video,
    make_two_video_tracks,
    pad_mdat,
    probe,
    top_level_boxes,
    with_display_matrix,
)
from dropcut.aws.storage import s3_range_reader
from dropcut.formats.file_kinds import IMAGE_SNIFF_BYTES, sniff_image
from dropcut.formats.probe import MAX_TOP_LEVEL_BOXES, MediaInfo, NotAVideo, probe_video

HEAD = 64 * 1024


class FileReader:
    """A RangeReader over a local file that records every (offset, length) it is asked for."""

    def __init__(self, path: Path):
        self.path = path
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.calls.append((offset, length))
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)


def probe_file(path: Path, **options: Any) -> MediaInfo:
    return probe_video(FileReader(path), path.stat().st_size, **options)


def probe_bytes(data: bytes, **options: Any) -> MediaInfo:
    return probe_video(lambda offset, length: data[offset : offset + length], len(data), **options)


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def set_box_size(data: bytes, offset: int, size: int) -> bytes:
    return data[:offset] + size.to_bytes(4, "big") + data[offset + 4 :]


def child_offset(data: bytes, parent: int, kind: bytes) -> int:
    """Offset of the first `kind` box directly inside the (8-byte-header) box at `parent`."""
    end = parent + int.from_bytes(data[parent : parent + 4], "big")
    position = parent + 8
    while position < end:
        if data[position + 4 : position + 8] == kind:
            return position
        position += int.from_bytes(data[position : position + 4], "big")
    raise LookupError(kind)


def image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real clips written by PyAV; 4 s so the moov-at-end mp4 is bigger than the 64 KiB head."""
    folder = tmp_path_factory.mktemp("probe")
    mp4 = make_sample_video(folder / "moov_at_end.mp4", seconds=4.0)
    return {
        "mp4": mp4,
        "faststart": make_faststart_copy(mp4, folder / "faststart.mp4"),
        "mov": make_sample_mov(folder / "sample.mov", seconds=4.0),
        "silent": make_sample_video(folder / "silent.mp4", seconds=2.0, audio=False),
        "fragmented": fragmented_mp4(folder / "fragmented.mp4", seconds=4.0),
        "audio_only": make_audio_only_mp4(folder / "audio_only.mp4"),
    }


# --- real files -----------------------------------------------------------------------------


def test_moov_at_end_mp4_reads_head_then_moov_header_then_moov(media):
    path = media["mp4"]
    boxes = {b.type: b for b in top_level_boxes(path)}
    # PyAV (FFmpeg's mp4 muxer) writes ftyp, free, mdat, moov: the index comes last by default.
    assert [b.type for b in top_level_boxes(path)] == ["ftyp", "free", "mdat", "moov"]
    moov = boxes["moov"]
    assert moov.offset > HEAD
    reader = FileReader(path)

    info = probe_video(reader, path.stat().st_size)

    expected = probe(path)
    assert info.container == "mp4"
    assert info.brand == "isom"
    assert info.size_bytes == path.stat().st_size
    assert info.duration_seconds == pytest.approx(expected["duration"], abs=0.1)
    assert (info.width, info.height) == (expected["width"], expected["height"]) == (320, 240)
    assert (info.video_codec, info.audio_codec) == ("avc1", "mp4a")
    assert reader.calls == [(0, HEAD), (moov.offset, 16), (moov.offset, moov.size)]
    assert (info.reads, info.bytes_read) == (3, HEAD + 16 + moov.size)


def test_faststart_copy_is_read_in_one_go(media):
    path = media["faststart"]
    assert [b.type for b in top_level_boxes(path)][:2] == ["ftyp", "moov"]

    info = probe_file(path)

    at_end = probe_file(media["mp4"])
    assert info.model_dump(exclude={"bytes_read", "reads"}) == at_end.model_dump(
        exclude={"bytes_read", "reads"}
    )
    # moov and the mdat header both sit in the first 64 KiB
    assert (info.reads, info.bytes_read) == (1, HEAD)


def test_quicktime_mov(media):
    path = media["mov"]
    assert top_level_boxes(path)[0].type == "ftyp"

    info = probe_file(path)

    expected = probe(path)
    assert (info.container, info.brand) == ("mov", "qt")
    assert info.duration_seconds == pytest.approx(expected["duration"], abs=0.1)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (
        320,
        240,
        "avc1",
        "mp4a",
    )


def test_quicktime_without_ftyp_is_mov(media):
    data = media["mov"].read_bytes()
    ftyp_size = int.from_bytes(data[:4], "big")

    info = probe_bytes(data[ftyp_size:])  # old QuickTime files start straight with wide/mdat

    assert (info.container, info.brand, info.video_codec) == ("mov", "", "avc1")


def test_video_without_audio(media):
    info = probe_file(media["silent"])

    assert probe(media["silent"])["has_audio"] is False
    assert info.audio_codec is None
    assert (info.video_codec, info.width, info.height) == ("avc1", 320, 240)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)


def test_fragmented_mp4_stops_at_moov(media):
    path = media["fragmented"]
    types = [b.type for b in top_level_boxes(path)]
    assert types[:3] == ["ftyp", "moov", "moof"]
    assert types.count("moof") > 1

    info = probe_file(path)

    assert (info.container, info.video_codec, info.audio_codec) == ("mp4", "avc1", "mp4a")
    assert (info.width, info.height) == (320, 240)
    # FFmpeg's empty_moov leaves mvhd's duration 0 and writes no mehd: the duration comes from
    # the last fragment, found through the mfra box at the end (a few small reads more).
    assert info.duration_seconds == pytest.approx(probe(path)["duration"], abs=0.05)
    assert info.reads <= 5


def test_a_long_fragmented_clip_gets_its_duration_and_billing_notice(tmp_path):
    from dropcut.model.plan import duration_notice
    from dropcut.providers import EvolinkProvider

    path = fragmented_mp4(tmp_path / "long.mp4", seconds=14.0, width=64, height=48)
    info = probe_file(path)
    assert info.duration_seconds == pytest.approx(14.0, abs=0.1)
    assert duration_notice(EvolinkProvider, 14.0) is None  # split into parts: nothing over 10 s
    assert "bills it as 3 s" in (duration_notice(EvolinkProvider, 1.2) or "")
    assert info.bytes_read < 200 * 1024


@pytest.mark.parametrize("version", [0, 1])
def test_fragmented_duration_comes_from_mehd(media, version):
    data = media["fragmented"].read_bytes()
    moov = next(b.offset for b in top_level_boxes(media["fragmented"]) if b.type == "moov")
    mvhd = child_offset(data, moov, b"mvhd")
    timescale = int.from_bytes(data[mvhd + 20 : mvhd + 24], "big")
    mvex = child_offset(data, moov, b"mvex")
    width = 8 if version == 1 else 4
    mehd = box(b"mehd", bytes([version, 0, 0, 0]) + (4 * timescale).to_bytes(width, "big"))
    grown = data[: mvex + 8] + mehd + data[mvex + 8 :]
    for parent in (moov, mvex):
        size = int.from_bytes(grown[parent : parent + 4], "big")
        grown = set_box_size(grown, parent, size + len(mehd))

    info = probe_bytes(grown)

    assert info.duration_seconds == pytest.approx(4.0)


def test_100_mb_file_with_moov_at_end_costs_three_small_reads(media, tmp_path):
    big = pad_mdat(media["mp4"], tmp_path / "big.mp4", 100 * 1024 * 1024)
    assert [b.type for b in top_level_boxes(big)] == ["ftyp", "free", "mdat", "moov"]
    reader = FileReader(big)

    info = probe_video(reader, big.stat().st_size)

    print(f"100 MiB moov-at-end file: {info.bytes_read} bytes in {info.reads} reads")
    assert info.bytes_read < 256 * 1024
    assert info.reads <= 4
    assert sum(length for _, length in reader.calls) == info.bytes_read
    expected = probe(big)  # the padded file still opens and decodes
    assert info.duration_seconds == pytest.approx(expected["duration"], abs=0.1)
    assert (info.width, info.height) == (expected["width"], expected["height"])
    assert frame_at(big, 3.0).shape == (240, 320, 3)


def test_64_bit_mdat_size(media, tmp_path):
    padded = pad_mdat(media["mp4"], tmp_path / "largesize.mp4", 200_000, largesize=True)
    boxes = top_level_boxes(padded)
    assert [(b.type, b.header_size) for b in boxes] == [("ftyp", 8), ("mdat", 16), ("moov", 8)]

    info = probe_file(padded)

    assert info.duration_seconds == pytest.approx(probe(padded)["duration"], abs=0.1)
    assert info.video_codec == "avc1"


def test_mdat_with_size_0_runs_to_end_of_file(media):
    data = media["faststart"].read_bytes()
    mdat = next(b for b in top_level_boxes(media["faststart"]) if b.type == "mdat")

    info = probe_bytes(set_box_size(data, mdat.offset, 0))

    assert info.video_codec == "avc1"


def test_mdat_with_size_0_before_moov_means_still_being_written(media):
    data = media["mp4"].read_bytes()
    mdat = next(b for b in top_level_boxes(media["mp4"]) if b.type == "mdat")

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(set_box_size(data, mdat.offset, 0))

    assert caught.value.detected == "truncated"
    assert str(caught.value) == (
        "the file has no index (moov box): it is truncated or still being written"
    )


# --- not a video ----------------------------------------------------------------------------


def test_zero_bytes():
    with pytest.raises(NotAVideo) as caught:
        probe_video(lambda offset, length: pytest.fail("nothing to read"), 0)

    assert caught.value.detected == "zero bytes"
    assert str(caught.value) == "the file is empty (0 bytes)"


def test_png_named_mp4(tmp_path):
    path = make_sample_image(tmp_path / "photo.png").rename(tmp_path / "photo.mp4")

    with pytest.raises(NotAVideo) as caught:
        probe_file(path)

    assert caught.value.detected == "png"
    assert str(caught.value) == "the file is a PNG image, not an MP4/MOV video"


@pytest.mark.parametrize(
    ("fmt", "detected", "noun"),
    [
        ("JPEG", "jpeg", "a JPEG image"),
        ("GIF", "gif", "a GIF image"),
        ("WEBP", "webp", "a WebP image"),
    ],
)
def test_other_images(fmt, detected, noun):
    with pytest.raises(NotAVideo) as caught:
        probe_bytes(image_bytes(fmt))

    assert caught.value.detected == detected
    assert str(caught.value) == f"the file is {noun}, not an MP4/MOV video"


def test_text_file():
    # 70 kB of text: the 64 KiB head may end inside a multi-byte character
    text = ("Ceci n'est pas une vidéo. \N{CLAPPER BOARD}\n" * 2000).encode()

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(text)

    assert caught.value.detected == "text"
    assert str(caught.value) == "the file is text, not an MP4/MOV video"


def test_random_bytes():
    noise = random.Random(7).randbytes(100_000)

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(noise)

    assert caught.value.detected is None
    assert str(caught.value) == (
        "the file is not an MP4/MOV video (its first bytes are not an MP4/MOV header)"
    )


@pytest.mark.parametrize(
    ("head", "detected"),
    [
        (b"\x1aE\xdf\xa3\xa3B\x86\x81\x01B\xf7\x81\x01B\x82\x84webm", "webm"),
        (b"RIFF\x00\x10\x00\x00AVI LIST", "avi"),
        (box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + box(b"meta", bytes(20)), "heic"),
        (box(b"ftyp", b"avif\x00\x00\x00\x00mif1avif") + box(b"meta", bytes(20)), "avif"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pdf"),
    ],
)
def test_other_formats_are_named(head, detected):
    with pytest.raises(NotAVideo) as caught:
        probe_bytes(head + bytes(1000))

    assert caught.value.detected == detected
    assert str(caught.value).endswith(", not an MP4/MOV video")


def test_truncated_in_the_middle_of_mdat(media):
    data = media["mp4"].read_bytes()
    mdat = next(b for b in top_level_boxes(media["mp4"]) if b.type == "mdat")

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(data[:30_000])

    assert caught.value.detected == "truncated"
    assert str(caught.value) == (
        f"the file is truncated: box 'mdat' at byte {mdat.offset} claims {mdat.size} bytes "
        "but the file ends at 30000"
    )


def test_truncated_inside_moov(media):
    data = media["mp4"].read_bytes()
    moov = next(b for b in top_level_boxes(media["mp4"]) if b.type == "moov")
    cut = moov.offset + 100

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(data[:cut])

    assert caught.value.detected == "truncated"
    assert str(caught.value) == (
        f"the file is truncated: box 'moov' at byte {moov.offset} claims {moov.size} bytes "
        f"but the file ends at {cut}"
    )


def test_faststart_file_truncated_in_mdat_is_caught_after_the_index(media):
    data = media["faststart"].read_bytes()

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(data[:50_000])

    assert caught.value.detected == "truncated"
    assert "box 'mdat'" in str(caught.value)


@pytest.mark.parametrize("largesize", [False, True])
def test_absurd_box_size(media, largesize):
    data = media["faststart"].read_bytes()[:5000]
    moov = 32
    assert data[moov + 4 : moov + 8] == b"moov"
    if largesize:
        data = data[:moov] + (1).to_bytes(4, "big") + b"moov" + (2**63).to_bytes(8, "big")
        claimed = 2**63
    else:
        data = set_box_size(data, moov, 0xFFFF_FFF0)
        claimed = 0xFFFF_FFF0

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(data)

    assert caught.value.detected == "truncated"
    assert str(caught.value) == (
        f"the file is truncated: box 'moov' at byte 32 claims {claimed} bytes "
        f"but the file ends at {len(data)}"
    )


def test_garbage_where_a_box_should_be(media):
    data = bytearray(media["mp4"].read_bytes())
    data[32:40] = b"\x00\x00\x00\x10\x01\x02\x03\x04"  # the free box, with an unprintable type

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(bytes(data))

    assert caught.value.detected is None
    assert str(caught.value) == (
        "the file is not a valid MP4/MOV video: the data at byte 32 is not an MP4/MOV box"
    )


def test_no_moov_at_all():
    data = box(b"ftyp", b"isom\x00\x00\x02\x00isom") + box(b"free") + box(b"mdat", bytes(5000))

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(data)

    assert caught.value.detected == "truncated"
    assert "no index (moov box)" in str(caught.value)


def test_moov_bigger_than_max_index_bytes(media):
    moov = next(b for b in top_level_boxes(media["mp4"]) if b.type == "moov")
    reader = FileReader(media["mp4"])

    with pytest.raises(NotAVideo) as caught:
        probe_video(reader, media["mp4"].stat().st_size, max_index_bytes=1000)

    assert caught.value.detected is None
    assert str(caught.value) == (
        f"the file's index (moov box) is {moov.size / 1000:.1f} kB, over the 1.0 kB limit"
    )
    assert (moov.offset, moov.size) not in reader.calls  # refused before reading it


def test_audio_only_mp4_has_no_video_track(media):
    assert probe(media["audio_only"])["has_audio"] is True

    with pytest.raises(NotAVideo) as caught:
        probe_file(media["audio_only"])

    assert caught.value.detected == "audio"
    assert str(caught.value) == "the file has no video track"


def test_short_mvhd_is_not_a_struct_error():
    moov = box(b"moov", box(b"mvhd", b"\x00\x00\x00\x00\x00\x00"))

    with pytest.raises(NotAVideo) as caught:
        probe_bytes(box(b"ftyp", b"isom\x00\x00\x02\x00") + moov)

    assert caught.value.detected == "truncated"
    assert str(caught.value) == (
        "the file is truncated or damaged: its 'mvhd' box at byte 24 is too short"
    )


def test_reader_returning_less_than_the_size_says(media):
    data = media["mp4"].read_bytes()
    short = data[:70_000]

    with pytest.raises(NotAVideo) as caught:
        probe_video(lambda offset, length: short[offset : offset + length], len(data))

    assert caught.value.detected == "truncated"
    assert str(caught.value).startswith("the file is truncated: it ends at byte 70000")


def test_too_many_top_level_boxes_is_refused():
    data = box(b"ftyp", b"isom\x00\x00\x02\x00") + box(b"free") * (MAX_TOP_LEVEL_BOXES + 1)
    reads: list[int] = []

    def read(offset: int, length: int) -> bytes:
        reads.append(length)
        return data[offset : offset + length]

    with pytest.raises(NotAVideo) as caught:
        probe_video(read, len(data))

    assert f"more than {MAX_TOP_LEVEL_BOXES} boxes" in str(caught.value)
    assert len(reads) < MAX_TOP_LEVEL_BOXES


@pytest.mark.parametrize("name", ["mp4", "faststart", "mov", "fragmented"])
def test_corrupted_and_truncated_files_only_raise_not_a_video(media, name):
    """Flip bytes and cut files at random: the only exception a damaged file gives is NotAVideo."""
    data = media[name].read_bytes()
    index = next(b for b in top_level_boxes(media[name]) if b.type == "moov")
    rng = random.Random(name)
    outcomes = set()
    for _ in range(150):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(index.offset, index.end)] = rng.randrange(256)
        cut = rng.choice([len(data), rng.randrange(1, len(data))])
        try:
            probe_bytes(bytes(damaged[:cut]))
            outcomes.add("ok")
        except NotAVideo as caught:
            assert str(caught) and "\n" not in str(caught)
            outcomes.add(caught.detected)
    assert "ok" in outcomes
    assert "truncated" in outcomes


# --- sniff_image, MediaInfo -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("GIF", "gif")]
)
def test_sniff_image(fmt, expected):
    assert sniff_image(image_bytes(fmt)[:IMAGE_SNIFF_BYTES]) == expected


@pytest.mark.parametrize(
    "head", [b"", b"plain text here", b"\x00\x00\x00\x20ftypisom", b"RIFF\x00\x00\x00\x00WAVE"]
)
def test_sniff_image_unknown(head):
    assert sniff_image(head) is None


def test_media_info_is_frozen(media):
    info = probe_file(media["silent"])

    with pytest.raises(ValidationError):
        info.width = 1  # type: ignore[misc]


# --- S3 -------------------------------------------------------------------------------------


class RecordingS3:
    """Passes get_object through to a real (moto) client, keeping the arguments of each call."""

    def __init__(self, s3: Any):
        self.s3 = s3
        self.calls: list[dict[str, Any]] = []

    def get_object(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.s3.get_object(**kwargs)


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="media")
        yield client


def test_s3_range_reader_probes_with_ranged_gets(media, tmp_path, s3):
    padded = pad_mdat(media["mp4"], tmp_path / "upload.mp4", 3_000_000)
    s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="media", Key="inbox/a.mp4", Body=padded.read_bytes())[
        "VersionId"
    ]
    size = s3.head_object(Bucket="media", Key="inbox/a.mp4")["ContentLength"]
    recording = RecordingS3(s3)

    info = probe_video(s3_range_reader(recording, "media", "inbox/a.mp4", version), size)

    assert info.video_codec == "avc1"
    assert info.bytes_read < size / 10
    assert info.reads == len(recording.calls) == 3
    assert all(call["VersionId"] == version for call in recording.calls)
    ranges = [
        tuple(int(n) for n in call["Range"].removeprefix("bytes=").split("-"))
        for call in recording.calls
    ]
    assert ranges[0] == (0, HEAD - 1)
    assert all(first <= last < size for first, last in ranges)
    assert sum(last - first + 1 for first, last in ranges) == info.bytes_read


@pytest.mark.parametrize("version", [None, "null"])
def test_s3_range_reader_without_a_version(s3, version):
    s3.put_object(Bucket="media", Key="k", Body=b"0123456789")
    recording = RecordingS3(s3)
    read: Callable[[int, int], bytes] = s3_range_reader(recording, "media", "k", version)

    assert read(2, 3) == b"234"
    assert read(5, 0) == b""
    assert recording.calls == [{"Bucket": "media", "Key": "k", "Range": "bytes=2-4"}]


def test_thousands_of_tiny_boxes_cost_a_few_reads_not_one_each():
    # A 150 KB file of 10,000 tiny boxes once cost one ranged GET per box (Submit timed out).
    data = box(b"ftyp", b"isom\x00\x00\x02\x00") + box(b"free", b"x" * 7) * 9_999
    reads: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return data[offset : offset + length]

    with pytest.raises(NotAVideo):
        probe_video(read, len(data))
    assert len(reads) <= 6, reads


def test_reads_are_bounded_whatever_the_layout():
    # Medium boxes far apart: each header would be a read of its own; the probe stops at 64.
    data = box(b"ftyp", b"isom\x00\x00\x02\x00") + box(b"free", bytes(100_000)) * 200
    reads: list[int] = []

    def read(offset: int, length: int) -> bytes:
        reads.append(length)
        return data[offset : offset + length]

    with pytest.raises(NotAVideo, match="too many boxes to check"):
        probe_video(read, len(data))
    assert len(reads) <= 64


@pytest.mark.parametrize(
    ("matrix", "rotation", "shown"),
    [
        ((0, 1 << 16, -(1 << 16), 0), 90, (240, 320)),  # a phone held upright
        ((0, -(1 << 16), 1 << 16, 0), 270, (240, 320)),
        ((-(1 << 16), 0, 0, -(1 << 16)), 180, (320, 240)),
        ((1 << 16, 0, 0, 1 << 16), 0, (320, 240)),
    ],
)
def test_the_display_matrix_gives_the_rotation_and_the_displayed_size(
    media, matrix, rotation, shown
):
    data = with_display_matrix(media["faststart"].read_bytes(), *matrix)
    info = probe_bytes(data)
    assert info.rotation == rotation
    assert (info.width, info.height) == shown
    assert (info.coded_width, info.coded_height) == (320, 240)


# --- frame rate and bit depth -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "codec", "fps", "depth"),
    [
        ({}, "avc1", 24.0, 8),
        ({"fps": 15}, "avc1", 15.0, 8),
        ({"fps": 30, "container": "mov"}, "avc1", 30.0, 8),
        ({"pix_fmt": "yuv420p10le"}, "avc1", 24.0, 10),  # H.264 High 10
        ({"codec": "libx265", "pix_fmt": "yuv420p10le"}, "hev1", 24.0, 10),
        ({"codec": "libx265", "pix_fmt": "yuv420p10le", "container": "mov"}, "hev1", 24.0, 10),
        ({"codec": "libx265", "fps": 60}, "hev1", 60.0, 8),
    ],
)
def test_frame_rate_and_bit_depth_come_from_the_index(tmp_path, sample, codec, fps, depth):
    path = make_sample_video(tmp_path / "clip", seconds=1.0, audio=False, **sample)
    info = probe_file(path)
    assert (info.video_codec, info.frame_rate, info.bit_depth) == (codec, fps, depth)
    assert info.frame_rate == pytest.approx(probe(path)["fps"])
    assert info.reads == 1  # the clip is smaller than the first read


@pytest.mark.parametrize(
    ("sample", "depth", "chroma"),
    [
        ({}, 8, "4:2:0"),
        ({"pix_fmt": "yuv422p"}, 8, "4:2:2"),  # H.264 High 4:2:2 (profile 122)
        ({"pix_fmt": "yuv444p"}, 8, "4:4:4"),  # High 4:4:4 Predictive (244): 8 bits, not 10
        ({"pix_fmt": "yuv420p10le"}, 10, "4:2:0"),
        ({"codec": "libx265", "pix_fmt": "yuv422p"}, 8, "4:2:2"),
    ],
)
def test_bit_depth_and_chroma_are_read_for_every_profile(tmp_path, sample, depth, chroma):
    """Issue 26, item 14: an 8-bit H.264 High 4:4:4 clip was reported as 10-bit, and chroma
    subsampling was never read."""
    info = probe_file(make_sample_video(tmp_path / "clip", seconds=0.5, audio=False, **sample))
    assert (info.bit_depth, info.chroma) == (depth, chroma)


def test_a_fragmented_file_has_the_rate_its_trex_gives_or_none(media):
    data = media["fragmented"].read_bytes()
    assert probe_bytes(data).frame_rate is None  # FFmpeg leaves trex's default duration 0
    moov = next(b.offset for b in top_level_boxes(media["fragmented"]) if b.type == "moov")
    trak = child_offset(data, moov, b"trak")
    mdhd = child_offset(data, child_offset(data, trak, b"mdia"), b"mdhd")
    assert data[mdhd + 8] == 0  # version 0: the timescale follows two 32-bit times
    timescale = int.from_bytes(data[mdhd + 20 : mdhd + 24], "big")
    trex = child_offset(data, child_offset(data, moov, b"mvex"), b"trex")
    assert int.from_bytes(data[trex + 12 : trex + 16], "big") == 1  # the video track's
    default = timescale // 25
    with_default = data[: trex + 20] + default.to_bytes(4, "big") + data[trex + 24 :]
    assert probe_bytes(with_default).frame_rate == round(timescale / default, 3)


def test_a_damaged_codec_configuration_leaves_the_depth_unknown(media):
    data = media["faststart"].read_bytes()
    at = data.index(b"avcC")
    assert probe_bytes(data).bit_depth == 8
    unknown = probe_bytes(data[:at] + b"xxxx" + data[at + 4 :])
    assert unknown.bit_depth is None and unknown.video_codec == "avc1"
    cut = int.from_bytes(data[at - 4 : at], "big")
    # an avcC that claims more bytes than its sample entry holds: still a video, depth unknown
    overrun = data[: at - 4] + (cut + 64).to_bytes(4, "big") + data[at:]
    assert probe_bytes(overrun).bit_depth is None


# --- several video tracks ----------------------------------------------------------------------


def _with_tkhd_enabled(data: bytes, enabled: list[bool]) -> bytes:
    """`data` with each track's tkhd track_enabled flag set as `enabled` says, in track order."""
    patched, at = bytearray(data), 0
    for flag in enabled:
        at = patched.index(b"tkhd", at) + 4
        flags = int.from_bytes(patched[at + 1 : at + 4], "big")
        patched[at + 1 : at + 4] = (flags | 1 if flag else flags & ~1).to_bytes(3, "big")
    return bytes(patched)


@pytest.mark.parametrize(
    ("enabled", "chosen", "size"),
    [
        (None, 2, (720, 720)),  # as written: the real video is the enabled track
        ([True, True], 2, (720, 720)),  # both enabled: the longest
        ([True, False], 1, (320, 240)),  # a player plays the enabled preview
    ],
)
def test_the_video_track_described_is_the_one_a_player_plays(tmp_path, enabled, chosen, size):
    """Issue 26, item 2: a file whose first video track is a 2 s preview was sent as that."""
    data = make_two_video_tracks(tmp_path / "two.mp4").read_bytes()
    if enabled is not None:
        data = _with_tkhd_enabled(data, enabled)
    info = probe_bytes(data)
    assert (info.video_tracks, info.video_track_id, (info.width, info.height)) == (2, chosen, size)
    assert info.duration_seconds == pytest.approx(8.0 if chosen == 2 else 2.0)  # its own length
