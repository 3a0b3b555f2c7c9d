"""plan_video: as is, normalize, split, pad or refuse, from the probe's facts alone; the split
rule as a property, the rest as tables."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from hypothesis import given
from hypothesis import strategies as st

from dropcut.formats.probe import MediaInfo
from dropcut.model.jobs import is_job_id, job_id_for
from dropcut.model.plan import (
    DEFAULT_MAX_PARTS,
    MAX_PARTS,
    MAX_SECONDS,
    MIN_SECONDS,
    Plan,
    PlanKind,
    plan_video,
    split_spans,
)
from dropcut.providers import AimlapiProvider, EvolinkProvider

MIB = 1024 * 1024
#: Within every limit: 5 s of 1280x720 H.264 8-bit at 30 fps, 10 MB.
IN_SPEC: dict[str, Any] = {
    "container": "mp4",
    "brand": "isom",
    "size_bytes": 10 * MIB,
    "duration_seconds": 5.0,
    "width": 1280,
    "height": 720,
    "rotation": 0,
    "video_codec": "avc1",
    "audio_codec": "mp4a",
    "frame_rate": 30.0,
    "bit_depth": 8,
    "bytes_read": 65536,
    "reads": 1,
}


def media(**changes: Any) -> MediaInfo:
    return MediaInfo.model_validate({**IN_SPEC, **changes})


def plan(
    max_parts: int = 12, normalize: bool = True, provider: Any = EvolinkProvider, **changes: Any
) -> Plan:
    return plan_video(media(**changes), provider, max_parts=max_parts, normalize=normalize)


# --- the split rule ---------------------------------------------------------------------------


@given(duration=st.floats(min_value=10.0, max_value=990.0, exclude_min=True))
def test_a_long_video_splits_into_equal_parts_of_3_to_10_s_that_cover_it(duration: float):
    planned = plan(max_parts=MAX_PARTS, duration_seconds=duration)
    assert planned.kind is PlanKind.SPLIT
    parts = planned.parts
    assert len(parts) == math.ceil(duration / 10)
    assert [part.index for part in parts] == list(range(len(parts)))
    assert parts[0].start_seconds == 0.0 and parts[-1].end_seconds == duration
    for before, after in itertools.pairwise(parts):
        assert before.end_seconds == after.start_seconds  # no gap, no overlap
    for part in parts:
        assert MIN_SECONDS <= part.seconds <= MAX_SECONDS + 1e-9
        assert part.seconds == pytest.approx(duration / len(parts), abs=1e-9)
        assert part.billed_seconds == pytest.approx(part.seconds, abs=1e-3)  # in 3-10 s
    assert planned.target is not None  # parts are always re-encoded


@given(duration=st.floats(min_value=0.001, max_value=10.0))
def test_up_to_10_s_is_one_span(duration: float):
    assert split_spans(duration) == [(0.0, duration)]


def test_exactly_10_s_is_one_part_and_just_over_is_two() -> None:
    assert plan(duration_seconds=10.0).kind is PlanKind.AS_IS
    split = plan(duration_seconds=10.001)
    assert split.kind is PlanKind.SPLIT and len(split.parts) == 2


# --- as is and normalize ----------------------------------------------------------------------


def test_within_every_limit_is_sent_as_it_is() -> None:
    planned = plan()
    assert planned.kind is PlanKind.AS_IS and not planned.needs_prepare
    assert planned.reasons == [] and planned.problems == [] and planned.target is None
    assert [(p.start_seconds, p.end_seconds, p.billed_seconds) for p in planned.parts] == [
        (0.0, 5.0, 5.0)
    ]
    assert (planned.billed_seconds, planned.credits) == (5.0, None)
    assert planned.billing == "evolink bills under 3 s as 3 s, over 10 s as 10 s"


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"video_codec": "avc3"}, []),
        ({"video_codec": "hvc1"}, []),  # 8-bit HEVC goes as it is
        ({"frame_rate": 24.0}, []),
        ({"frame_rate": 60.0}, []),
        ({"width": 720, "height": 2160}, []),
        ({"video_codec": "hvc1", "bit_depth": 10}, ["HEVC 10-bit"]),
        ({"bit_depth": 10}, ["H.264 10-bit"]),
        ({"bit_depth": None}, ["H.264 of unknown bit depth"]),
        ({"video_codec": "ap4h"}, ["the video codec 'ap4h' is not H.264 or HEVC"]),
        ({"rotation": 90, "width": 720, "height": 1280}, ["rotated 90 degrees"]),
        ({"width": 640, "height": 360}, ["640x360 is under the model's 720 px minimum side"]),
        ({"width": 3840, "height": 2160}, ["3840x2160 is over the model's 2160 px maximum side"]),
        ({"frame_rate": 15.0}, ["15 fps is under 24 fps"]),
        ({"frame_rate": 23.976}, ["23.976 fps is under 24 fps"]),
        ({"frame_rate": 120.0}, ["120 fps is over 60 fps"]),
        ({"frame_rate": None}, ["the frame rate is unknown"]),
        ({"size_bytes": 150 * MIB}, ["the file is 150 MB, over the provider's 100 MB"]),
        (
            {"video_codec": "hev1", "bit_depth": 10, "rotation": 90, "frame_rate": 120.0},
            ["HEVC 10-bit", "rotated 90 degrees", "120 fps is over 60 fps"],
        ),
    ],
)
def test_every_out_of_spec_fact_is_a_reason(changes: dict[str, Any], reasons: list[str]):
    planned = plan(**changes)
    assert planned.reasons == reasons
    assert planned.kind is (PlanKind.NORMALIZE if reasons else PlanKind.AS_IS)
    assert planned.needs_prepare is bool(reasons)
    assert (planned.target is not None) is bool(reasons)


@pytest.mark.parametrize(
    ("changes", "size", "rate"),
    [
        # 640x360 15 fps: scaled up so the short side is 720; the rate raised to 24
        ({"width": 640, "height": 360, "frame_rate": 15.0}, (1280, 720), (24, 1)),
        # a portrait phone clip, rotated: the target is the displayed picture
        (
            {"width": 1080, "height": 1920, "rotation": 90, "frame_rate": 30.0},
            (1080, 1920),
            (30, 1),
        ),
        # 4K: scaled down so the long side is 2160
        ({"width": 3840, "height": 2160, "frame_rate": 29.97}, (2160, 1216), (30000, 1001)),
        ({"width": 1920, "height": 1080, "frame_rate": 120.0}, (1920, 1080), (60, 1)),
        ({"width": 1280, "height": 720, "frame_rate": None}, (1280, 720), (24, 1)),
        ({"width": 1281, "height": 721, "frame_rate": 10.0}, (1280, 720), (24, 1)),  # even sides
        ({"width": 320, "height": 240, "frame_rate": 24.0, "bit_depth": 10}, (960, 720), (24, 1)),
        # the widest picture that fits: 3:1
        ({"width": 2400, "height": 800, "frame_rate": 12.0}, (2160, 720), (24, 1)),
    ],
)
def test_the_target_lands_inside_every_limit(changes, size, rate):
    planned = plan(**changes)
    assert planned.kind is PlanKind.NORMALIZE
    target = planned.target
    assert target is not None
    assert (target.width, target.height) == size
    assert (target.fps_num, target.fps_den) == rate
    assert all(side % 2 == 0 and 720 <= side <= 2160 for side in size)
    # 80% of evolink's 100 MB over 10 s is 67 Mb/s: the 20 Mb/s cap binds
    assert target.max_bitrate == 20_000_000


def test_the_bitrate_keeps_a_10_s_part_under_a_small_cap() -> None:
    class SmallCap(EvolinkProvider):
        max_video_bytes = 10 * MIB

    target = plan(provider=SmallCap, frame_rate=15.0).target
    assert target is not None
    assert target.max_bitrate * MAX_SECONDS / 8 <= 0.8 * 10 * MIB


# --- pad --------------------------------------------------------------------------------------


def test_a_short_clip_is_padded_to_3_s_and_billed_3_s() -> None:
    planned = plan(duration_seconds=1.5)
    assert planned.kind is PlanKind.PAD and planned.needs_prepare
    assert planned.pad_to_seconds == 3.0
    assert [(p.start_seconds, p.end_seconds, p.billed_seconds) for p in planned.parts] == [
        (0.0, 1.5, 3.0)
    ]
    assert planned.billed_seconds == 3.0
    assert planned.reasons == [
        "1.5 s is under the model's 3 s: padded to 3 s by holding the last frame; "
        "the edit is trimmed back to 1.5 s"
    ]
    assert planned.target is not None


def test_a_short_out_of_spec_clip_is_padded_and_gives_every_reason() -> None:
    planned = plan(duration_seconds=2.0, width=320, height=240)
    assert planned.kind is PlanKind.PAD
    assert planned.reasons[1:] == ["320x240 is under the model's 720 px minimum side"]


# --- refuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"duration_seconds": 0.2}, "the video is 0.20 s"),
        ({"duration_seconds": None}, "the video's duration is unknown"),
        ({"duration_seconds": 0.0}, "the video's duration is unknown"),
        ({"width": None, "height": None}, "the video's picture size is unknown"),
        (
            {"width": 3000, "height": 700},
            "the picture is 3000x700 (4.3:1), more elongated than dropcut letterboxes",
        ),
    ],
)
def test_what_cannot_be_planned_is_refused(changes, message):
    planned = plan(**changes)
    assert planned.kind is PlanKind.REFUSE and not planned.needs_prepare
    assert [problem.message for problem in planned.problems] == [message]
    assert all(problem.limit and problem.hint for problem in planned.problems)
    assert planned.reasons == [message]
    assert planned.part_ids("job-x") == [] and planned.target is None


def test_no_video_at_all_is_refused() -> None:
    planned = plan_video(None, EvolinkProvider, max_parts=12, normalize=True)
    assert planned.kind is PlanKind.REFUSE and planned.duration_seconds is None


def test_half_a_second_is_the_shortest_padded_clip() -> None:
    assert plan(duration_seconds=0.5).kind is PlanKind.PAD
    assert plan(duration_seconds=0.49).kind is PlanKind.REFUSE


def test_more_parts_than_max_parts_is_refused_with_its_estimate() -> None:
    planned = plan(duration_seconds=135.0, max_parts=12)
    assert planned.kind is PlanKind.REFUSE
    assert planned.reasons[0] == "the plan needs 14 parts; MaxPartsPerJob is 12"
    assert planned.reasons[-1] == "estimate 135 billed seconds"
    assert len(planned.parts) == 14 and planned.billed_seconds == 135.0
    (problem,) = planned.problems
    assert "14 parts" in problem.message and "135 billed seconds" in problem.message
    assert "at most 12 parts (MaxPartsPerJob)" in problem.limit
    assert problem.hint == (
        "Cut the video into clips of at most 120 s (each its own job), or ask the operator to "
        "raise MaxPartsPerJob to 14 or more (a stack allows up to 100)."
    )
    assert plan(duration_seconds=120.0, max_parts=12).kind is PlanKind.SPLIT


def test_a_video_past_what_any_stack_takes_is_not_sent_to_the_operator() -> None:
    (problem,) = plan(duration_seconds=10_800.0, max_parts=36).problems  # 1,080 parts
    assert problem.hint == (
        "Cut the video into clips of at most 360 s (each its own job): a video of more than "
        "100 parts (1000 s) is never taken."
    )
    assert "operator" not in problem.hint


def test_the_default_takes_a_phone_clip_of_a_few_minutes() -> None:
    assert plan(duration_seconds=121.0, max_parts=DEFAULT_MAX_PARTS).kind is PlanKind.SPLIT
    assert plan(duration_seconds=300.0, max_parts=DEFAULT_MAX_PARTS).kind is PlanKind.SPLIT


def test_an_unknown_billing_rule_is_said_not_guessed() -> None:
    planned = plan(provider=AimlapiProvider, duration_seconds=25.0)
    assert planned.kind is PlanKind.SPLIT
    assert planned.billed_seconds is None
    assert all(part.billed_seconds is None for part in planned.parts)
    assert planned.billing == "aimlapi documents no billing rule (docs/providers.md)"


@pytest.mark.parametrize(
    ("changes", "would"),
    [
        ({"width": 640, "height": 360}, "normalized"),
        ({"duration_seconds": 25.0}, "split"),
        ({"duration_seconds": 2.0}, "padded"),
    ],
)
def test_normalize_inputs_off_refuses_what_it_would_have_converted(changes, would):
    planned = plan(normalize=False, **changes)
    assert planned.kind is PlanKind.REFUSE
    assert planned.reasons[0] == f"NormalizeInputs is off; the video would have been {would}"
    (problem,) = planned.problems
    assert problem.message.startswith("the video is outside the model's limits: ")
    assert "NormalizeInputs" in problem.limit and "NormalizeInputs to auto" in problem.hint
    assert planned.billed_seconds is not None  # the estimate of what would have run


def test_normalize_inputs_off_still_sends_what_fits() -> None:
    assert plan(normalize=False).kind is PlanKind.AS_IS


# --- units, the model, the template -----------------------------------------------------------


def test_unit_ids_are_the_job_id_or_its_parts() -> None:
    job_id = job_id_for("bucket", "inbox/clip.mp4", "v1")
    assert plan().part_ids(job_id) == [job_id]
    parts = plan(duration_seconds=31.0).part_ids(job_id)
    assert parts == [f"{job_id}-p00", f"{job_id}-p01", f"{job_id}-p02", f"{job_id}-p03"]
    assert all(is_job_id(unit) for unit in parts)
    assert not is_job_id(f"{job_id}-p100") and not is_job_id(f"{job_id}-x00")


def test_the_plan_survives_a_round_trip_through_json() -> None:
    planned = plan(duration_seconds=31.0, frame_rate=15.0)
    assert Plan.model_validate(planned.model_dump(mode="json")) == planned
    refused = plan(duration_seconds=0.2)
    assert Plan.model_validate(refused.model_dump(mode="json")) == refused


def test_max_parts_default_is_the_templates() -> None:
    template, _ = decode(str(Path(__file__).parents[2] / "template.yaml"))
    parameter = template["Parameters"]["MaxPartsPerJob"]
    assert parameter["Default"] == DEFAULT_MAX_PARTS
    assert parameter["MaxValue"] <= MAX_PARTS
    assert template["Parameters"]["NormalizeInputs"]["Default"] == "auto"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({}, "36"), ({"MaxPartsPerJob": "5"}, "5"), ({"MaxSegmentsPerJob": "7"}, "7")],
)
def test_max_parts_per_job_keeps_its_old_name_as_an_alias(
    overrides: dict[str, str], expected: str
) -> None:
    """A stack deployed with MaxSegmentsPerJob (the parameter's name before parts had one
    name) still deploys, and the old name wins when it is set."""
    from tests.unit.test_template import template_resolver

    resolver = template_resolver(overrides)
    template = resolver.template
    for name in ("SubmitFunction", "RetryFunction"):
        env = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert str(resolver.resolve(env["MAX_PARTS_PER_JOB"])) == expected, name


@pytest.mark.parametrize(
    ("chroma", "normalized"), [("4:2:0", False), ("4:2:2", True), ("4:4:4", True), (None, False)]
)
def test_anything_but_4_2_0_is_converted(chroma: str | None, normalized: bool) -> None:
    """Issue 26, item 14: an 8-bit 4:2:2 H.264 clip was sent as it is."""
    planned = plan(chroma=chroma)
    assert (planned.kind is not PlanKind.AS_IS) == normalized
    assert any(f"H.264 {chroma} (not 4:2:0)" in reason for reason in planned.reasons) == normalized


def test_a_file_with_several_video_tracks_sends_the_played_one_alone() -> None:
    planned = plan(video_tracks=2, video_track_id=2)
    assert planned.kind is PlanKind.NORMALIZE and planned.video_track_id == 2
    assert (
        "2 video tracks (track 2 is the one a player plays, and the one converted)"
        in planned.reasons
    )
    assert plan().video_track_id is None


@pytest.mark.parametrize(
    ("size", "target"),
    [((3840, 1080), (2160, 720)), ((1080, 3840), (720, 2160)), ((2880, 720), (2160, 720))],
)
def test_a_panorama_is_letterboxed_into_the_models_3_to_1(size, target) -> None:
    """Issue 26, item 13: a 32:9 panorama was refused ("Crop the video") though Prepare pads."""
    planned = plan(width=size[0], height=size[1], coded_width=size[0], coded_height=size[1])
    assert planned.kind is PlanKind.NORMALIZE
    assert planned.target is not None and (planned.target.width, planned.target.height) == target
    assert any("letterboxed" in reason for reason in planned.reasons)
    assert plan(width=size[0], height=size[1], normalize=False).kind is PlanKind.REFUSE
