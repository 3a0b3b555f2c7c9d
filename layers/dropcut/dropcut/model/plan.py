"""The plan for one input, made from its probe before anything is spent: send it as it is,
normalize it, split it, pad it, or refuse it; and what the provider will bill for it.

This module is the one home of the model's input limits used for planning (docs/providers.md,
"The model's own limits", from ../shared/providers/README.md): 3 to 10 s, each side 720 to
2,160 px, 24 to 60 fps, MP4 or MOV. The provider's own cap on the file (100 MB at evolink) is
`Provider.max_video_bytes`; whether it bills outside 3-10 s as the nearest bound is
`Provider.bills_outside_range`. Pure: no I/O, no media library.
"""

from __future__ import annotations

import itertools
import math
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from dropcut.errors import Problem

if TYPE_CHECKING:
    from dropcut.formats.probe import MediaInfo
    from dropcut.providers.base import Provider

#: The model's shortest and longest input video, seconds (docs/providers.md).
MIN_SECONDS = 3.0
MAX_SECONDS = 10.0
#: Each side of the displayed picture, pixels (docs/providers.md).
MIN_SIDE = 720
MAX_SIDE = 2160
#: Frame rates the model takes, frames per second (docs/providers.md).
MIN_FPS = 24
MAX_FPS = 60
#: The model's output frame rate, whatever the input's (docs/providers.md, "Output").
OUTPUT_FPS = 24
#: The shortest clip worth padding to MIN_SECONDS. Under half a second (12 frames at the
#: model's 24 fps) the padded clip would be over five sixths one held frame: hardly any motion
#: left to edit, billed as 3 s. Shorter clips are refused.
MIN_PAD_SECONDS = 0.5
#: Sample entries (codecs) sent as they are: H.264 and HEVC at 8 bits (the model decodes them;
#: anything else is re-encoded to H.264).
H264_CODECS = frozenset({"avc1", "avc3"})
HEVC_CODECS = frozenset({"hvc1", "hev1"})
#: A prepared file's share of the provider's size cap, for a MAX_SECONDS part (room for audio
#: and the encoder's overshoot), and the highest video bitrate worth spending on a 3-10 s clip.
SIZE_CAP_SHARE = 0.8
MAX_TARGET_BITRATE = 20_000_000
#: The most elongated picture dropcut letterboxes into the model's 3:1 (a 32:9 panorama is
#: 3.56:1); more elongated pictures are refused (their picture would be a thin strip).
MAX_LETTERBOX_ASPECT = 4.0
#: The most parts a plan may have: part ids end in two digits (-p00 to -p99).
MAX_PARTS = 100
#: MaxPartsPerJob's default (template.yaml; tests/unit/test_plan.py checks they agree): a clip
#: of 6 minutes, so that the ordinary clips of a few minutes go through; the estimate and the
#: budget guard the cost, not this.
DEFAULT_MAX_PARTS = 36
#: How close a measured rate must be to a whole or NTSC rate to be taken as it (the probe
#: rounds rates to 3 decimals).
_RATE_SNAP = 0.002
#: Tolerance for float noise in a measured frame rate (not a looser limit).
_EPSILON = 1e-6


class PlanKind(StrEnum):
    AS_IS = "as_is"
    NORMALIZE = "normalize"
    SPLIT = "split"
    PAD = "pad"
    REFUSE = "refuse"


class PartPlan(BaseModel):
    """One provider task: the span of the input it edits (seconds) and what it is billed."""

    model_config = ConfigDict(frozen=True)

    index: int
    start_seconds: float
    end_seconds: float
    #: By the provider's documented rule (None: it documents none).
    billed_seconds: float | None = None

    @property
    def seconds(self) -> float:
        return self.end_seconds - self.start_seconds


class TargetVideo(BaseModel):
    """What Prepare writes: H.264 8-bit yuv420p in MP4, at this displayed size (rotation applied,
    even sides), frame rate (fps_num / fps_den) and at most `max_bitrate` bits per second."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    fps_num: int
    fps_den: int
    max_bitrate: int


class Plan(BaseModel):
    """What happens to one input, why, and what it will cost (an estimate)."""

    model_config = ConfigDict(frozen=True)

    # Defaults where a job record may drop the field (dropcut.aws.job_store.to_item drops None values).
    kind: PlanKind
    #: Plain English: why it is normalized, split, padded or refused (empty: as is).
    reasons: list[str] = []
    duration_seconds: float | None = None
    #: The parts (one unless split); a refused plan keeps the parts it would have had, if any.
    parts: list[PartPlan] = []
    #: What Prepare writes (None: the input is sent untouched, or the plan is refused).
    target: TargetVideo | None = None
    #: PAD: the length the single part is extended to (its edit is trimmed back after).
    pad_to_seconds: float | None = None
    #: The estimate: billed seconds of all parts, credits where a documented rule gives them.
    billed_seconds: float | None = None
    credits: float | None = None
    #: The billing rule applied, or why the bill is unknown.
    billing: str = ""
    #: REFUSE: every reason, as the refusal report shows them.
    problems: list[Problem] = []
    #: The input's video track Prepare reads (its tkhd track ID) when the file has several: the
    #: one a player plays (dropcut.formats.probe); None: the only one.
    video_track_id: int | None = None

    @property
    def needs_prepare(self) -> bool:
        """True when Prepare must write a file (normalize, split, pad) before any task."""
        return self.kind in (PlanKind.NORMALIZE, PlanKind.SPLIT, PlanKind.PAD)

    def part_ids(self, job_id: str) -> list[str]:
        """The provider tasks' ids: [job_id] for one part, job_id-p00, -p01, ... for a split
        (dropcut.model.jobs.JOB_ID_PATTERN), none for a refused plan."""
        if self.kind is PlanKind.REFUSE:
            return []
        if len(self.parts) == 1:
            return [job_id]
        return [f"{job_id}-p{part.index:02d}" for part in self.parts]


def recorded_plan(document: dict[str, Any] | None) -> Plan | None:
    """The plan a job record (JobRecord.plan) or report holds, or None when it has none."""
    return Plan.model_validate(document) if document is not None else None


def billed_seconds(provider: type[Provider], seconds: float | None) -> tuple[float | None, str]:
    """The seconds `provider` bills for one task on a clip of `seconds`, and the rule applied
    (or why the bill is unknown). evolink bills under 3 s as 3 s and over 10 s as 10 s
    (docs/providers.md); a provider that documents no rule gives None."""
    if not provider.bills_outside_range:
        return None, f"{provider.name} documents no billing rule (docs/providers.md)"
    rule = (
        f"{provider.name} bills under {MIN_SECONDS:g} s as {MIN_SECONDS:g} s, "
        f"over {MAX_SECONDS:g} s as {MAX_SECONDS:g} s"
    )
    if seconds is None:
        return None, rule + "; the duration is unknown"
    return round(_billed(seconds), 3), rule


def _billed(seconds: float) -> float:
    return min(max(seconds, MIN_SECONDS), MAX_SECONDS)


def duration_notice(provider: type[Provider], seconds: float) -> str | None:
    """What the user should know about the bill of a clip of `seconds` (None: nothing): a clip
    under the model's 3 s is padded to 3 s (PAD) and billed as such where `provider` documents
    that rule. A longer clip is split into parts within 3-10 s, so no part is billed for
    seconds it does not have."""
    if seconds >= MIN_SECONDS:
        return None
    if provider.bills_outside_range:
        return (
            f"the video is {seconds:.1f} s: it is padded to the model's {MIN_SECONDS:g} s and "
            f"{provider.name} bills it as {MIN_SECONDS:g} s"
        )
    return f"the video is {seconds:.1f} s: it is padded to the model's {MIN_SECONDS:g} s"


def split_spans(duration: float) -> list[tuple[float, float]]:
    """N = ceil(duration / MAX_SECONDS) spans of equal length covering [0, duration] (each
    between MIN_SECONDS and MAX_SECONDS when duration > MAX_SECONDS: at least half of it)."""
    count = max(1, math.ceil(duration / MAX_SECONDS))
    return list(itertools.pairwise([duration * i / count for i in range(count)] + [duration]))


def plan_video(
    media: MediaInfo | None, provider: type[Provider], *, max_parts: int, normalize: bool
) -> Plan:
    """The plan for a video the probe read (`media`; None: no video could be read).

    - REFUSE (problems say why): no duration or no video; shorter than MIN_PAD_SECONDS; an
      aspect ratio past MAX_LETTERBOX_ASPECT; more than `max_parts`
      parts (MaxPartsPerJob); or `normalize` is False (NormalizeInputs=off) and the input is
      not within every limit. A refused plan keeps the parts and estimate it would have had.
    - SPLIT: longer than MAX_SECONDS: ceil(d / 10) equal parts, each re-encoded to a target.
    - PAD: shorter than MIN_SECONDS: one part padded to MIN_SECONDS, re-encoded to a target.
    - NORMALIZE: within 3-10 s but out of another limit (every one listed in `reasons`).
    - AS_IS: within every limit; sent untouched.
    """
    if media is None or media.duration_seconds is None or not media.duration_seconds > 0:
        return _refused(
            media,
            provider,
            [
                Problem(
                    "video",
                    "the video's duration is unknown",
                    "a video whose index gives its duration",
                    "Re-encode it to MP4 (H.264), for example with ffmpeg -i input output.mp4.",
                )
            ],
        )
    duration = media.duration_seconds
    if duration < MIN_PAD_SECONDS:
        return _refused(
            media,
            provider,
            [
                Problem(
                    "video",
                    f"the video is {duration:.2f} s",
                    f"at least {MIN_PAD_SECONDS:g} s (the model takes {MIN_SECONDS:g} s; "
                    f"shorter clips are padded to it, down to {MIN_PAD_SECONDS:g} s)",
                    "Upload a longer clip.",
                )
            ],
        )
    target, size_problems = _target(media, provider)
    if target is None:
        return _refused(media, provider, size_problems)
    facts = out_of_spec(media, provider)
    chosen = _choose(media, provider, facts, target, max_parts=max_parts, normalize=normalize)
    if media.video_tracks > 1:
        return chosen.model_copy(update={"video_track_id": media.video_track_id})
    return chosen


def out_of_spec(media: MediaInfo, provider: type[Provider]) -> list[str]:
    """Every fact of the video outside the model's limits or the provider's size cap, in plain
    English (duration aside: splitting and padding answer that)."""
    facts = _format_facts(media)
    if media.container in ("mkv", "webm"):
        facts.append(
            f"a {'WebM' if media.container == 'webm' else 'Matroska (MKV)'} file: converted to MP4"
        )
    if media.video_tracks > 1:
        facts.append(
            f"{media.video_tracks} video tracks (track {media.video_track_id} is the one a "
            "player plays, and the one converted)"
        )
    if media.rotation:
        facts.append(f"rotated {media.rotation} degrees")
    if media.width and media.height:
        size = f"{media.width}x{media.height}"
        short, long = sorted((media.width, media.height))
        if long * MIN_SIDE > short * MAX_SIDE:
            facts.append(
                f"{size} is more elongated than the model's {MAX_SIDE // MIN_SIDE}:1: "
                "letterboxed (the edit has black bars on its long sides)"
            )
        if min(media.width, media.height) < MIN_SIDE:
            facts.append(f"{size} is under the model's {MIN_SIDE} px minimum side")
        if max(media.width, media.height) > MAX_SIDE:
            facts.append(f"{size} is over the model's {MAX_SIDE} px maximum side")
    rate = media.frame_rate
    if rate is None:
        facts.append("the frame rate is unknown")
    elif rate < MIN_FPS - _EPSILON:
        facts.append(f"{rate:g} fps is under {MIN_FPS} fps")
    elif rate > MAX_FPS + _EPSILON:
        facts.append(f"{rate:g} fps is over {MAX_FPS} fps")
    if media.size_bytes > provider.max_video_bytes:
        facts.append(
            f"the file is {_megabytes(media.size_bytes)}, over the provider's "
            f"{_megabytes(provider.max_video_bytes)}"
        )
    return facts


def _format_facts(media: MediaInfo) -> list[str]:
    """Why the video's coding is not what the model takes as is (H.264 or HEVC, 8 bits, 4:2:0)."""
    codec = media.video_codec or "unknown"
    depth = media.bit_depth
    if codec in H264_CODECS or codec in HEVC_CODECS:
        name = "H.264" if codec in H264_CODECS else "HEVC"
        facts = []
        if depth is None:
            facts.append(f"{name} of unknown bit depth")
        elif depth != 8:
            facts.append(f"{name} {depth}-bit")
        if media.chroma not in (None, "4:2:0"):
            facts.append(f"{name} {media.chroma} (not 4:2:0)")
        return facts
    return [f"the video codec '{codec}' is not H.264 or HEVC"]


def _choose(
    media: MediaInfo,
    provider: type[Provider],
    facts: list[str],
    target: TargetVideo,
    *,
    max_parts: int,
    normalize: bool,
) -> Plan:
    duration = media.duration_seconds or 0.0
    pad_to: float | None = None
    if duration > MAX_SECONDS:
        kind = PlanKind.SPLIT
        spans = split_spans(duration)
        reasons = [
            f"{duration:.1f} s is over the model's {MAX_SECONDS:g} s: split into {len(spans)} "
            f"parts of {duration / len(spans):.2f} s, each re-encoded",
            *facts,
        ]
    elif duration < MIN_SECONDS:
        kind, spans, pad_to = PlanKind.PAD, [(0.0, duration)], MIN_SECONDS
        reasons = [
            f"{duration:.1f} s is under the model's {MIN_SECONDS:g} s: padded to "
            f"{MIN_SECONDS:g} s by holding the last frame; the edit is trimmed back to "
            f"{duration:.1f} s",
            *facts,
        ]
    else:
        kind, spans, reasons = (
            (PlanKind.NORMALIZE if facts else PlanKind.AS_IS),
            [(0.0, duration)],
            facts,
        )
    parts, total, billing = _estimate(provider, spans, pad_to)
    plan = Plan(
        kind=kind,
        reasons=reasons,
        duration_seconds=duration,
        parts=parts,
        target=target if kind is not PlanKind.AS_IS else None,
        pad_to_seconds=pad_to,
        billed_seconds=total,
        credits=None,
        billing=billing,
        problems=[],
    )
    if len(parts) > max_parts:
        return _too_many_parts(plan, max_parts)
    if not normalize and kind is not PlanKind.AS_IS:
        return _not_normalized(plan)
    return plan


def _estimate(
    provider: type[Provider], spans: list[tuple[float, float]], pad_to: float | None
) -> tuple[list[PartPlan], float | None, str]:
    billing = ""
    parts = []
    for index, (start, end) in enumerate(spans):
        billed, billing = billed_seconds(provider, pad_to or end - start)
        parts.append(
            PartPlan(index=index, start_seconds=start, end_seconds=end, billed_seconds=billed)
        )
    known = provider.bills_outside_range
    # Summed before rounding: 14 parts of 9.643 s are billed 135 s, not 135.002.
    total = round(sum(_billed(pad_to or end - start) for start, end in spans), 3) if known else None
    return parts, total, billing


def _too_many_parts(plan: Plan, max_parts: int) -> Plan:
    estimate = _estimate_text(plan)
    return plan.model_copy(
        update={
            "kind": PlanKind.REFUSE,
            "target": None,
            "reasons": [
                f"the plan needs {len(plan.parts)} parts; MaxPartsPerJob is {max_parts}",
                *plan.reasons,
                estimate,
            ],
            "problems": [
                Problem(
                    "video",
                    f"the video is {plan.duration_seconds:.1f} s: the plan needs "
                    f"{len(plan.parts)} parts of at most {MAX_SECONDS:g} s ({estimate})",
                    f"at most {max_parts} parts (MaxPartsPerJob), "
                    f"{max_parts * MAX_SECONDS:g} s of video",
                    _too_many_parts_hint(len(plan.parts), max_parts),
                )
            ],
        }
    )


def _too_many_parts_hint(needed: int, max_parts: int) -> str:
    """Advice that can be followed: the operator can raise MaxPartsPerJob up to MAX_PARTS."""
    cut = f"Cut the video into clips of at most {max_parts * MAX_SECONDS:g} s (each its own job)"
    if needed <= MAX_PARTS:
        return (
            f"{cut}, or ask the operator to raise MaxPartsPerJob to {needed} or more (a stack "
            f"allows up to {MAX_PARTS})."
        )
    return f"{cut}: a video of more than {MAX_PARTS} parts ({MAX_PARTS * MAX_SECONDS:g} s) is never taken."


def _not_normalized(plan: Plan) -> Plan:
    would = {
        PlanKind.NORMALIZE: "normalized",
        PlanKind.SPLIT: "split",
        PlanKind.PAD: "padded",
    }[plan.kind]
    return plan.model_copy(
        update={
            "kind": PlanKind.REFUSE,
            "target": None,
            "reasons": [
                f"NormalizeInputs is off; the video would have been {would}",
                *plan.reasons,
            ],
            "problems": [
                Problem(
                    "video",
                    f"the video is outside the model's limits: {'; '.join(plan.reasons)}",
                    f"{MIN_SECONDS:g}-{MAX_SECONDS:g} s, sides {MIN_SIDE}-{MAX_SIDE} px, "
                    f"{MIN_FPS}-{MAX_FPS} fps, H.264 or 8-bit HEVC, no rotation "
                    "(NormalizeInputs is off: inputs are not converted)",
                    "Convert the clip to fit these limits, or ask the operator to set "
                    "NormalizeInputs to auto.",
                )
            ],
        }
    )


def _estimate_text(plan: Plan) -> str:
    if plan.billed_seconds is None:
        return f"estimate unknown: {plan.billing}"
    return f"estimate {plan.billed_seconds:g} billed seconds"


def _refused(media: MediaInfo | None, provider: type[Provider], problems: list[Problem]) -> Plan:
    duration = media.duration_seconds if media is not None else None
    _, billing = billed_seconds(provider, None)
    return Plan(
        kind=PlanKind.REFUSE,
        reasons=[problem.message for problem in problems],
        duration_seconds=duration,
        parts=[],
        target=None,
        pad_to_seconds=None,
        billed_seconds=None,
        credits=None,
        billing=billing,
        problems=problems,
    )


def _target(media: MediaInfo, provider: type[Provider]) -> tuple[TargetVideo | None, list[Problem]]:
    """The size, rate and bitrate Prepare would write; None and the problem when no scaling fits
    both sides into MIN_SIDE..MAX_SIDE."""
    width, height = media.width, media.height
    if not (width and height):
        return None, [
            Problem(
                "video",
                "the video's picture size is unknown",
                f"sides of {MIN_SIDE}-{MAX_SIDE} px",
                "Re-encode it to MP4 (H.264), for example with ffmpeg -i input output.mp4.",
            )
        ]
    short, long = min(width, height), max(width, height)
    if long > short * MAX_LETTERBOX_ASPECT:
        return None, [
            Problem(
                "video",
                f"the picture is {width}x{height} ({long / short:.1f}:1), more elongated than "
                "dropcut letterboxes",
                f"an aspect ratio of at most {MAX_LETTERBOX_ASPECT:g}:1 (the model takes "
                f"{MAX_SIDE // MIN_SIDE}:1; up to {MAX_LETTERBOX_ASPECT:g}:1 gets black bars)",
                "Crop the video to a less elongated picture.",
            )
        ]
    scale = 1.0
    if short < MIN_SIDE:
        scale = MIN_SIDE / short
    elif long > MAX_SIDE:
        scale = MAX_SIDE / long
    fps = _target_rate(media.frame_rate)
    bitrate = min(
        MAX_TARGET_BITRATE, int(provider.max_video_bytes * 8 * SIZE_CAP_SHARE / MAX_SECONDS)
    )
    return TargetVideo(
        width=_even_side(width * scale),
        height=_even_side(height * scale),
        fps_num=fps.numerator,
        fps_den=fps.denominator,
        max_bitrate=bitrate,
    ), []


def _even_side(pixels: float) -> int:
    """The nearest even number of pixels, kept inside MIN_SIDE..MAX_SIDE (both even)."""
    return min(MAX_SIDE, max(MIN_SIDE, 2 * round(pixels / 2)))


def _target_rate(rate: float | None) -> Fraction:
    """The input's rate clamped into MIN_FPS..MAX_FPS, as an exact fraction: whole rates and
    NTSC rates (n * 1000/1001, such as 29.97) snapped to, others to a denominator of at most
    1001; OUTPUT_FPS when unknown."""
    if rate is None:
        return Fraction(OUTPUT_FPS)
    if rate < MIN_FPS:
        return Fraction(MIN_FPS)
    if rate > MAX_FPS:
        return Fraction(MAX_FPS)
    for exact in (Fraction(round(rate)), Fraction(round(rate * 1.001) * 1000, 1001)):
        if abs(float(exact) - rate) < _RATE_SNAP:
            return exact
    return Fraction(rate).limit_denominator(1001)


def _megabytes(count: int) -> str:
    mib = count / (1024 * 1024)
    return f"{mib:.0f} MB" if mib == int(mib) else f"{mib:.1f} MB"
