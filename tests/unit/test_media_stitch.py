"""dropcut_media.stitch: parts joined exactly (seams from the right part), remux when the parts
match and re-encode when they do not, trim, and the input's audio laid under as one track."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import pytest

from devstack.media import make_sample_video, top_level_boxes, with_noise_media_data
from devstack.media_samples import by_second, frames, make_colour_clip, nearest_index
from dropcut_media.errors import MediaUnreadable, PartsIncompatible
from dropcut_media.inspect import DECODE_CHECK_FRAMES, check_decodes, describe
from dropcut_media.prepare import Cut, Target, prepare_video
from dropcut_media.stitch import stitch_parts

FPS = Fraction(24)
FRAME = 1 / 24


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory):
    """A 31 s clip (a colour per second, with a tone) and its 4 prepared parts."""
    folder = tmp_path_factory.mktemp("split")
    source = make_colour_clip(folder / "in.mp4", seconds=31, width=128, height=96, fps=30)
    cuts = [Cut(i, 31 * i / 4, 31 * (i + 1) / 4) for i in range(4)]
    parts = prepare_video(source, cuts, Target(128, 96, FPS, 1_000_000), folder / "parts")
    return source, parts


def _audio_frames(path: Path) -> list[tuple[float, int, int]]:
    """(time, samples, sample rate) of each decoded audio frame of the only audio track."""
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
        return [
            (float(f.time or 0.0), f.samples, f.sample_rate)
            for f in container.decode(container.streams.audio[0])
        ]


def test_matching_parts_are_remuxed_and_each_seam_shows_the_right_part(split, tmp_path):
    source, parts = split
    info = stitch_parts([p.path for p in parts], tmp_path / "out.mp4")
    assert info.remuxed and info.audio == "parts"
    assert info.frames == sum(p.frames for p in parts) == 744
    facts = describe(info.path)
    assert abs(facts["duration_seconds"] - describe(source)["duration_seconds"]) <= FRAME
    assert (facts["video_codec"], facts["pix_fmt"], facts["fps"]) == ("h264", "yuv420p", 24.0)
    assert abs(facts["audio_duration_seconds"] - facts["duration_seconds"]) <= FRAME
    decoded = frames(info.path)
    assert len(decoded) == 744
    for part in parts[1:]:
        seam = round(part.start_seconds * 24)
        before, after = decoded[seam - 1][1], decoded[seam][1]
        assert nearest_index(before, range(32)) == by_second((seam - 1) / 24)
        assert nearest_index(after, range(32)) == by_second(seam / 24 + 1e-6)


def test_the_input_audio_is_laid_under_as_one_continuous_track(split, tmp_path):
    source, parts = split
    info = stitch_parts([p.path for p in parts], tmp_path / "out.mp4", audio_source=source)
    assert info.audio == "original" and info.remuxed and info.audio_copied
    facts = describe(info.path)
    assert facts["audio_codec"] == "aac"
    assert abs(facts["audio_duration_seconds"] - info.duration_seconds) <= FRAME
    decoded = _audio_frames(info.path)
    assert abs(decoded[0][0]) <= FRAME  # starts with the picture
    for (t0, n0, rate), (t1, _, _) in itertools.pairwise(decoded):
        assert t1 == pytest.approx(t0 + n0 / rate, abs=1e-3), "a gap in the audio"
    end = decoded[-1][0] + decoded[-1][1] / decoded[-1][2]
    assert abs(end - info.duration_seconds) <= FRAME


def test_the_input_audio_from_an_offset_is_cut_to_the_video(split, tmp_path):
    source, parts = split
    info = stitch_parts(
        [p.path for p in parts[1:3]],
        tmp_path / "out.mp4",
        audio_source=source,
        audio_offset_seconds=parts[1].start_seconds,
    )
    facts = describe(info.path)
    assert info.frames == parts[1].frames + parts[2].frames
    assert abs(facts["audio_duration_seconds"] - info.duration_seconds) <= FRAME


def test_parts_that_differ_are_re_encoded_to_the_first_parts_size(tmp_path):
    first = make_colour_clip(tmp_path / "a.mp4", seconds=3, width=128, height=96, fps=24)
    second = make_colour_clip(
        tmp_path / "b.mp4", seconds=3, width=96, height=96, fps=30, audio=False
    )
    info = stitch_parts([first, second], tmp_path / "out.mp4")
    assert not info.remuxed and info.audio == "parts"
    assert info.frames == 144
    facts = describe(info.path)
    assert (facts["width"], facts["height"], facts["fps"]) == (128, 96, 24.0)
    assert (facts["video_codec"], facts["pix_fmt"]) == ("h264", "yuv420p")
    assert facts["frames"] == 144
    # the part without audio is silence of its length: the track still covers the whole video
    assert abs(facts["audio_duration_seconds"] - 6.0) <= FRAME
    decoded = frames(info.path)
    assert (
        nearest_index(decoded[71][1], range(4)) == 2
        and nearest_index(decoded[72][1], range(4)) == 0
    )


def test_pad_then_trim_gives_back_the_inputs_length(tmp_path):
    source = make_colour_clip(tmp_path / "short.mp4", seconds=1.2, width=96, height=64, fps=30)
    (part,) = prepare_video(
        source,
        [Cut(0, 0, 1.2, pad_to_seconds=3.0)],
        Target(96, 64, FPS, 1_000_000),
        tmp_path / "parts",
    )
    info = stitch_parts([part.path], tmp_path / "out.mp4", trim_to_seconds=1.2, audio_source=source)
    assert info.frames == 29 and not info.remuxed  # 1.2 s is inside a group of pictures
    facts = describe(info.path)
    assert abs(facts["duration_seconds"] - 1.2) <= FRAME
    assert abs(facts["audio_duration_seconds"] - 1.2) <= FRAME


def test_a_trim_on_a_keyframe_stays_a_remux(split, tmp_path):
    _, parts = split
    info = stitch_parts(
        [p.path for p in parts], tmp_path / "out.mp4", trim_to_seconds=parts[2].start_seconds
    )
    assert info.remuxed and info.frames == parts[0].frames + parts[1].frames


def test_parts_without_audio_give_a_silent_video_and_bad_input_is_named(tmp_path):
    clip = make_colour_clip(tmp_path / "a.mp4", seconds=1, width=64, height=64, fps=24, audio=False)
    info = stitch_parts([clip, clip], tmp_path / "out.mp4")
    assert info.audio == "none" and info.remuxed and info.frames == 48
    assert not describe(info.path)["has_audio"]
    with pytest.raises(PartsIncompatible):
        stitch_parts([], tmp_path / "none.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaUnreadable, match=r"broken\.mp4"):
        stitch_parts([clip, broken], tmp_path / "out2.mp4")


def _loudness_by_tenth(path: Path) -> list[float]:
    """The RMS level of each tenth of a second of the audio."""
    import numpy as np

    with av.open(str(path)) as container:
        samples = np.concatenate(
            [f.to_ndarray()[0] for f in container.decode(container.streams.audio[0])]
        )
        rate = container.streams.audio[0].sample_rate
    tenth = rate // 10
    return [
        float(np.sqrt(np.mean(samples[i : i + tenth] ** 2)))
        for i in range(0, len(samples) - tenth + 1, tenth)
    ]


@pytest.mark.parametrize(
    ("container_format", "audio_codec"), [("mp4", "aac"), ("mov", "pcm_s16le")]
)
def test_the_input_audio_is_in_sync_from_any_offset(tmp_path, container_format, audio_codec):
    """The input's tone starts at 2.0 s: under both parts it is silent until 2.0 s; under the
    second part alone (offset 4 s) it sounds from the start. AAC is copied, PCM encoded."""
    source = make_colour_clip(
        tmp_path / f"in.{container_format}",
        seconds=8,
        width=64,
        height=64,
        fps=30,
        container_format=container_format,
        audio_codec=audio_codec,
        audio_start=2.0,
        audio_seconds=6.0,
    )
    parts = prepare_video(
        source,
        [Cut(0, 0, 4), Cut(1, 4, 8)],
        Target(64, 64, FPS, 1_000_000),
        tmp_path / "parts",
        keep_audio=False,
        scene_window_seconds=0,
    )
    assert parts[1].start_seconds == 4.0
    both = stitch_parts([p.path for p in parts], tmp_path / "both.mp4", audio_source=source)
    assert both.audio == "original"
    assert not both.audio_copied  # the track starts 2 s in: encoded, with silence before it
    assert describe(both.path)["audio_codec"] == "aac"
    loudness = _loudness_by_tenth(both.path)
    assert max(loudness[:19]) < 0.01 and min(loudness[21:79]) > 0.1
    second = stitch_parts(
        [parts[1].path], tmp_path / "second.mp4", audio_source=source, audio_offset_seconds=4.0
    )
    loudness = _loudness_by_tenth(second.path)
    assert min(loudness[:39]) > 0.1
    assert second.audio_copied == (audio_codec == "aac")
    assert abs(describe(second.path)["audio_duration_seconds"] - 4.0) <= FRAME


def test_a_video_whose_media_data_is_noise_does_not_pass_the_decode_check(tmp_path: Path) -> None:
    good = Path(make_sample_video(tmp_path / "good.mp4", seconds=1.0))
    assert check_decodes(good) == DECODE_CHECK_FRAMES
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(with_noise_media_data(good))
    assert [box.type for box in top_level_boxes(noise)] == [
        box.type for box in top_level_boxes(good)
    ]
    with pytest.raises(MediaUnreadable, match="does not decode"):
        check_decodes(noise)
