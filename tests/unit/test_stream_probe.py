"""StreamProbe, fed a file in chunks of any size, reaches the same verdict as probe_video reading
the whole file: the same facts for a video, the same NotAVideo sentence for anything else."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.media import (
    fragmented_mp4,
    make_faststart_copy,
    make_sample_mov,
    make_sample_video,
)
from dropcut.formats.probe import NotAVideo, probe_video
from dropcut.formats.stream_probe import StreamProbe


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("stream-probe")
    mp4 = make_sample_video(folder / "moov_at_end.mp4", seconds=4.0)
    found = {
        "mp4": mp4,
        "faststart": make_faststart_copy(mp4, folder / "faststart.mp4"),
        "mov": make_sample_mov(folder / "sample.mov", seconds=2.0),
        "fragmented": fragmented_mp4(folder / "fragmented.mp4", seconds=2.0),
        # frame rate and bit depth read from the index, as probe_video reads them
        "hevc10": make_sample_video(
            folder / "hevc10.mov",
            seconds=1.0,
            fps=15,
            codec="libx265",
            pix_fmt="yuv420p10le",
            container="mov",
        ),
    }
    data = {name: Path(path).read_bytes() for name, path in found.items()}
    data["html"] = b"<!doctype html><html><body>Not found</body></html>" * 20
    data["truncated"] = data["mp4"][: len(data["mp4"]) // 2]
    data["empty"] = b""
    return data


def verdict(read_whole: bool, data: bytes, cuts: list[int]) -> object:
    try:
        if read_whole:
            info = probe_video(lambda offset, length: data[offset : offset + length], len(data))
        else:
            probe = StreamProbe()
            for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
                probe.feed(data[start:end])
            info = probe.finish()
    except NotAVideo as refused:
        return ("refused", str(refused))
    return info.model_dump(exclude={"bytes_read", "reads"})


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(
        ["mp4", "faststart", "mov", "fragmented", "hevc10", "html", "truncated", "empty"]
    ),
    seed=st.integers(0, 2**32),
    chunk=st.sampled_from([1, 7, 16, 4096, 65536, 1 << 20]),
)
def test_the_stream_verdict_equals_the_whole_file_verdict(files, name, seed, chunk):
    data = files[name]
    rng = random.Random(seed)
    cuts, position = [], 0
    while position < len(data):
        position += rng.randint(1, chunk)
        if position < len(data):
            cuts.append(position)
    assert verdict(False, data, cuts) == verdict(True, data, [])


def test_a_web_page_is_refused_by_content(files):
    probe = StreamProbe()
    probe.feed(files["html"])
    with pytest.raises(NotAVideo, match="text, not an MP4"):
        probe.finish()


def test_a_streamed_hevc_gives_its_frame_rate_and_bit_depth(files):
    data = files["hevc10"]
    cuts = list(range(1000, len(data), 1000))
    streamed = verdict(False, data, cuts)
    assert streamed == verdict(True, data, [])
    assert isinstance(streamed, dict)
    assert (streamed["video_codec"], streamed["frame_rate"], streamed["bit_depth"]) == (
        "hev1",
        15.0,
        10,
    )
