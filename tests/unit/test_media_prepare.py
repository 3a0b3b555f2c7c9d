"""dropcut_media.prepare: exact parts, seams from the right second, scene cuts, rotation, size
and frame rate, padding, named errors, bounded memory. Clips are small and synthetic: each
second (or shot) of input has its own colour (devstack/media_samples.py)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from devstack.media import make_faststart_copy, make_sample_video, make_two_video_tracks
from devstack.media_samples import by_second, frames, make_colour_clip, nearest_index, shots
from dropcut_media.errors import MediaPlanInvalid, MediaUnreadable
from dropcut_media.inspect import describe
from dropcut_media.prepare import Cut, DecodeBounds, Target, prepare_video

FPS = Fraction(24)
FRAME = 1 / 24


def _target(width: int = 160, height: int = 128) -> Target:
    return Target(width=width, height=height, fps=FPS, max_bitrate=2_000_000)


def _equal_cuts(seconds: float, count: int) -> list[Cut]:
    return [Cut(i, seconds * i / count, seconds * (i + 1) / count) for i in range(count)]


@pytest.fixture(scope="module")
def clip31(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip31")
    return make_colour_clip(folder / "in.mp4", seconds=31, width=160, height=128, fps=30)


@pytest.fixture(scope="module")
def parts31(clip31: Path, tmp_path_factory: pytest.TempPathFactory):
    return prepare_video(clip31, _equal_cuts(31, 4), _target(), tmp_path_factory.mktemp("parts"))


def test_a_31_s_clip_becomes_4_exact_parts_that_sum_to_the_input(clip31, parts31):
    assert [p.index for p in parts31] == [0, 1, 2, 3]
    total = sum(p.duration_seconds for p in parts31)
    assert abs(total - describe(clip31)["duration_seconds"]) <= FRAME
    assert sum(p.frames for p in parts31) == 31 * 24
    for before, after in itertools.pairwise(parts31):  # contiguous on the grid
        assert after.start_seconds == pytest.approx(before.start_seconds + before.duration_seconds)
    for part in parts31:
        assert 3.0 <= part.duration_seconds <= 10.0
        facts = describe(part.path)
        assert facts["video_codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
        assert (facts["width"], facts["height"], facts["fps"]) == (160, 128, 24.0)
        assert facts["frames"] == part.frames
        assert facts["rotation"] == 0
        assert part.size_bytes == part.path.stat().st_size
        assert part.has_audio and facts["audio_codec"] == "aac"
        assert abs(facts["audio_duration_seconds"] - part.duration_seconds) <= FRAME


def test_each_part_starts_with_a_keyframe_and_its_edges_come_from_the_right_second(parts31):
    for part in parts31:
        decoded = frames(part.path)
        assert decoded[0][2], f"part {part.index} does not start with a keyframe"
        assert len(decoded) == part.frames
        first_second = by_second(part.start_seconds + 1e-6)
        last_second = by_second(part.start_seconds + part.duration_seconds - FRAME / 2)
        assert nearest_index(decoded[0][1], range(32)) == first_second
        assert nearest_index(decoded[-1][1], range(32)) == last_second
        # every frame shows the second of the input it stands for
        for k, (_, rgb, _) in enumerate(decoded[::12]):
            when = part.start_seconds + 12 * k / 24
            assert nearest_index(rgb, range(32)) == by_second(when + 1e-6)


def test_boundaries_move_to_the_colour_changes_within_the_window(parts31):
    # every second is a new colour here, so each boundary lands on a whole second
    for part in parts31[1:]:
        assert part.start_seconds == pytest.approx(round(part.start_seconds))
        assert part.moved_to_scene_cut


@pytest.fixture(scope="module")
def shot_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shots")
    return make_colour_clip(
        folder / "in.mp4",
        seconds=14,
        width=96,
        height=64,
        fps=30,
        audio=False,
        colour_index=shots([6.4]),
    )


def test_a_scene_cut_within_the_window_moves_the_boundary(shot_clip, tmp_path):
    parts = prepare_video(shot_clip, _equal_cuts(14, 2), _target(96, 64), tmp_path)
    first, second = parts
    assert first.moved_to_scene_cut and second.moved_to_scene_cut
    assert first.frames == 154  # ceil(6.4 * 24): the first grid frame showing the new shot
    assert second.start_seconds == pytest.approx(154 / 24)
    assert nearest_index(frames(first.path)[-1][1], range(3)) == 0
    assert nearest_index(frames(second.path)[0][1], range(3)) == 1


def test_a_scene_cut_outside_the_window_or_the_limits_leaves_the_boundary(shot_clip, tmp_path):
    narrow = prepare_video(
        shot_clip, _equal_cuts(14, 2), _target(96, 64), tmp_path / "a", scene_window_seconds=0.5
    )
    assert [p.frames for p in narrow] == [168, 168]
    assert not any(p.moved_to_scene_cut for p in narrow)
    limited = prepare_video(
        shot_clip, _equal_cuts(14, 2), _target(96, 64), tmp_path / "b", min_part_seconds=6.5
    )
    assert [p.frames for p in limited] == [168, 168]


@pytest.mark.parametrize("rotation", [90, -90])
def test_a_rotated_hevc_10_bit_mov_becomes_upright_h264_8_bit(tmp_path, rotation):
    source = make_colour_clip(
        tmp_path / "phone.mov",
        seconds=3.2,
        width=160,
        height=96,
        fps=30,
        codec="libx265",
        pix_fmt="yuv420p10le",
        container_format="mov",
        rotation=rotation,
    )
    facts = describe(source)
    assert (facts["video_codec"], facts["pix_fmt"], facts["rotation"]) == (
        "hevc",
        "yuv420p10le",
        rotation,
    )
    assert (facts["width"], facts["height"]) == (96, 160)  # displayed portrait
    (part,) = prepare_video(source, [Cut(0, 0, 3.2)], _target(96, 160), tmp_path / "out")
    out = describe(part.path)
    assert (out["video_codec"], out["pix_fmt"], out["rotation"]) == ("h264", "yuv420p", 0)
    assert (out["width"], out["height"]) == (96, 160)
    assert part.frames == round(3.2 * 24)
    rgb = frames(part.path)[0][1]
    # The stored picture's top-left mark: turned 90 degrees counterclockwise it is at the
    # bottom-left, clockwise (-90) at the top-right.
    corners = {
        "top-left": rgb[:8, :8],
        "top-right": rgb[:8, -8:],
        "bottom-left": rgb[-8:, :8],
        "bottom-right": rgb[-8:, -8:],
    }
    white = {name for name, region in corners.items() if region.min() > 200}
    assert white == ({"bottom-left"} if rotation == 90 else {"top-right"})


def test_640x360_at_15_fps_becomes_1280x720_at_24_fps(tmp_path):
    source = make_colour_clip(tmp_path / "small.mp4", seconds=3, width=640, height=360, fps=15)
    (part,) = prepare_video(source, [Cut(0, 0, 3)], _target(1280, 720), tmp_path / "out")
    out = describe(part.path)
    assert (out["width"], out["height"], out["fps"]) == (1280, 720, 24.0)
    assert part.frames == 72
    decoded = frames(part.path)
    assert len(decoded) == 72
    for k in (0, 23, 24, 47, 48, 71):  # frames repeated by timestamps: each shows its second
        assert nearest_index(decoded[k][1], range(4)) == k // 24


def test_pad_holds_the_last_frame_and_silence_to_3_s(tmp_path):
    source = make_colour_clip(tmp_path / "short.mp4", seconds=1.2, width=96, height=64, fps=30)
    (part,) = prepare_video(
        source, [Cut(0, 0, 1.2, pad_to_seconds=3.0)], _target(96, 64), tmp_path / "out"
    )
    assert part.frames == 72 and part.duration_seconds == pytest.approx(3.0)
    out = describe(part.path)
    assert out["frames"] == 72
    assert abs(out["audio_duration_seconds"] - 3.0) <= FRAME
    decoded = frames(part.path)
    assert nearest_index(decoded[28][1], range(3)) == 1  # the input's last frame (1.17 s)...
    assert nearest_index(decoded[-1][1], range(3)) == 1  # ...held to the end


def test_an_input_that_is_not_a_video_raises_media_unreadable(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    with pytest.raises(MediaUnreadable, match=r"notes\.mp4 is not a readable video"):
        prepare_video(text, [Cut(0, 0, 3)], _target(), tmp_path / "out")


def test_a_truncated_input_raises_media_unreadable_and_leaves_no_part(shot_clip, tmp_path):
    """The index (moov first) says 14 s; the media data stops near 5 s, as after a cut-short
    upload: the first part is written, then the bad data is named and every part removed."""
    whole = make_faststart_copy(shot_clip, tmp_path / "whole.mp4")
    cut_short = tmp_path / "short.mp4"
    cut_short.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.4)])
    cuts = [Cut(0, 0, 4), Cut(1, 4, 9), Cut(2, 9, 14)]
    with pytest.raises(MediaUnreadable, match=r"could not be decoded|may be truncated"):
        prepare_video(cut_short, cuts, _target(96, 64), tmp_path / "out", scene_window_seconds=0)
    assert not list((tmp_path / "out").glob("*"))


def test_an_impossible_plan_raises_media_plan_invalid(shot_clip, tmp_path):
    with pytest.raises(MediaPlanInvalid, match="out of order"):
        prepare_video(shot_clip, [Cut(0, 5, 9), Cut(1, 0, 5)], _target(96, 64), tmp_path)
    with pytest.raises(MediaPlanInvalid, match="after the end of the video"):
        prepare_video(shot_clip, [Cut(0, 20, 25)], _target(96, 64), tmp_path)
    with pytest.raises(MediaPlanInvalid, match="not even"):
        prepare_video(shot_clip, [Cut(0, 0, 5)], Target(97, 64, FPS, 1_000_000), tmp_path)


MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys
    from fractions import Fraction
    from pathlib import Path
    from dropcut_media.prepare import Cut, Target, prepare_video
    source, seconds, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
    count = max(1, round(seconds / 8))
    cuts = [Cut(i, seconds * i / count, seconds * (i + 1) / count) for i in range(count)]
    parts = prepare_video(source, cuts, Target(320, 240, Fraction(24), 2_000_000), out)
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss across exec.
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    peak = int(hwm.split()[1]) // 1024
    print(json.dumps({"parts": len(parts), "peak_mib": peak}))
    """
)


@pytest.mark.slow
def test_memory_stays_bounded_whatever_the_length(tmp_path):
    """Peak RSS (VmHWM) of a child process preparing 8 s (1 part) and 32 s (4 parts) of video to
    320x240 at 24 fps: holding the pictures would add ~2.7 MiB per second (115 KB a frame), 65
    MiB more for the longer clip (checked: the test fails when prepare keeps its pictures)."""
    peaks = {}
    for seconds in (8, 32):
        source = make_colour_clip(
            tmp_path / f"{seconds}.mp4", seconds=seconds, width=160, height=120, fps=30
        )
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(source), str(seconds), str(tmp_path / "o")],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[seconds] = json.loads(out.stdout.strip().splitlines()[-1])
    assert peaks[32]["parts"] == 4
    assert peaks[32]["peak_mib"] - peaks[8]["peak_mib"] < 30, peaks


def _audio_span(path: Path) -> tuple[float, float, int, int]:
    """(first sample's time, end of the last sample, sample rate, channels) of the audio."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        decoded = list(container.decode(stream))
    first, last = decoded[0], decoded[-1]
    end = float(last.time or 0.0) + last.samples / last.sample_rate
    return float(first.time or 0.0), end, first.sample_rate, len(first.layout.channels)


def test_b_frames_late_44k_stereo_audio_and_a_part_from_the_middle(tmp_path):
    """A B-frame input whose 44.1 kHz stereo audio starts 0.5 s late; one part from 5 s to 9 s
    (the decode starts by seeking): the picture starts at second 5, the audio is 4 s long."""
    source = make_colour_clip(
        tmp_path / "in.mp4",
        seconds=10,
        width=96,
        height=64,
        fps=25,
        preset="veryfast",
        audio_rate=44100,
        stereo=True,
        audio_start=0.5,
        audio_seconds=9.5,
    )
    (part,) = prepare_video(source, [Cut(0, 5, 9)], _target(96, 64), tmp_path / "out")
    assert part.start_seconds == 5 and part.frames == 96
    decoded = frames(part.path)
    assert decoded[0][2] and nearest_index(decoded[0][1], range(12)) == 5
    assert nearest_index(decoded[-1][1], range(12)) == 8
    start, end, rate, channels = _audio_span(part.path)
    assert (rate, channels) == (44100, 2)
    assert abs(start) <= FRAME and abs(end - 4.0) <= FRAME


def _loudness_by_tenth(path: Path) -> list[float]:
    """The RMS level of each tenth of a second of the audio."""
    import av
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


def test_late_audio_is_preceded_by_silence_and_keep_audio_false_drops_it(tmp_path):
    source = make_colour_clip(
        tmp_path / "in.mp4",
        seconds=4,
        width=96,
        height=64,
        fps=30,
        audio_start=1.0,
        audio_seconds=3.0,
    )
    (part,) = prepare_video(source, [Cut(0, 0, 4)], _target(96, 64), tmp_path / "a")
    facts = describe(part.path)
    assert abs(facts["audio_duration_seconds"] - 4.0) <= FRAME
    loudness = _loudness_by_tenth(part.path)
    assert max(loudness[:9]) < 0.01  # silence until the tone starts at 1.0 s...
    assert min(loudness[11:39]) > 0.1  # ...then the tone (0.3 amplitude: RMS 0.21)
    (silent,) = prepare_video(
        source, [Cut(0, 0, 4)], _target(96, 64), tmp_path / "b", keep_audio=False
    )
    assert not silent.has_audio and not describe(silent.path)["has_audio"]


def test_120_fps_drops_to_24_by_timestamps(tmp_path):
    source = make_colour_clip(tmp_path / "fast.mp4", seconds=3, width=96, height=64, fps=120)
    (part,) = prepare_video(source, [Cut(0, 0, 3)], _target(96, 64), tmp_path / "out")
    assert part.frames == 72
    decoded = frames(part.path)
    assert [nearest_index(decoded[k][1], range(4)) for k in (23, 24, 47, 48)] == [0, 1, 1, 2]


def test_an_ntsc_rate_given_as_a_float_is_exact(tmp_path):
    source = make_colour_clip(tmp_path / "ntsc.mp4", seconds=3, width=64, height=64, fps=29.97)
    target = Target(64, 64, 29.97, 1_000_000)  # type: ignore[arg-type]
    (part,) = prepare_video(source, [Cut(0, 0, 3.003)], target, tmp_path / "out")
    assert part.frames == 90
    assert describe(part.path)["fps"] == pytest.approx(30000 / 1001)


def test_every_decoded_picture_is_held_to_the_bounds_whatever_the_index_said(tmp_path):
    """Issue 26, item 6: Submit refuses a picture past the bounds by its index; Prepare checks
    each decoded one too, and leaves no part behind."""
    clip = make_sample_video(tmp_path / "clip.mp4", seconds=1.0, width=320, height=240)
    out = tmp_path / "parts"
    with pytest.raises(MediaUnreadable, match="a decoded picture is 320x240 px, larger than"):
        prepare_video(
            clip,
            _equal_cuts(1, 1),
            _target(),
            out,
            bounds=DecodeBounds(max_side=300, max_pixels=10**6),
        )
    assert list(out.glob("*.mp4")) == []
    fits = prepare_video(
        clip, _equal_cuts(1, 1), _target(), tmp_path / "ok", bounds=DecodeBounds(320, 76_800)
    )
    assert len(fits) == 1


def test_prepare_reads_the_video_track_it_is_told(tmp_path):
    two = make_two_video_tracks(tmp_path / "two.mp4")  # a 2 s preview, then the 8 s video
    (part,) = prepare_video(two, _equal_cuts(8, 1), _target(), tmp_path / "parts", video_track_id=2)
    assert describe(part.path)["duration_seconds"] == pytest.approx(8.0, abs=0.05)
    with pytest.raises(MediaUnreadable, match="no video track with the ID 7"):
        prepare_video(two, _equal_cuts(8, 1), _target(), tmp_path / "none", video_track_id=7)


def test_the_scene_cut_search_holds_its_pictures_to_the_bounds_too(tmp_path):
    """It decodes around each boundary before the parts are written (a split's usual path)."""
    from dropcut_media._av import open_input
    from dropcut_media.prepare import scene_cuts

    clip = make_sample_video(tmp_path / "clip.mp4", seconds=6.0, width=320, height=240)
    with open_input(clip) as container:
        video = container.streams.video[0]
        assert (
            scene_cuts(container, video, Fraction(2), Fraction(4), DecodeBounds(320, 76_800)) == []
        )
        with pytest.raises(MediaUnreadable, match="a decoded picture is 320x240"):
            scene_cuts(container, video, Fraction(2), Fraction(4), DecodeBounds(300, 10**6))
