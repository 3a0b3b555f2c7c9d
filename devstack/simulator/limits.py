"""The Kling O1 edit model's own limits, as the simulator enforces them in strict mode.

Source: ``providers/README.md`` and ``docs/providers.md``, "The model's own limits" (Kling's
Omni-Video API documentation as integrators republish it): an input video is MP4 or MOV, 3 to
10 s long, 720 to 2,160 px on each side, 24 to 60 fps, at most 200 MB at Kling and 100 MB at
evolink (evolink's page: "Video size: up to 100MB"); an edit's output lasts as long as its input
and runs at 24 fps whatever the input's rate.

A task whose input breaks a limit ends failed (strict mode only). Neither provider documents the
business code of such a failure; the closest documented answer to a bad input is evolink's
``ErrorResponse`` for HTTP 400 (``providers/unified-kling-o1-video-edit.md``): ``type:
invalid_request_error``, ``message: Invalid request parameter``, ``param`` naming the field. The
failed task therefore carries ``error.code = "invalid_request_error"`` (aimlapi: ``error.name =
"InvalidRequestError"``) and a message starting "Invalid request parameter: <param>: ".
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

OUTPUT_FPS = Fraction(24)
MIN_SECONDS = 3.0
MAX_SECONDS = 10.0
MIN_SIDE = 720
MAX_SIDE = 2160
MIN_FPS = 24.0
MAX_FPS = 60.0
MB = 1024 * 1024
#: The input size cap per API: evolink's page says 100 MB; aimlapi says nothing, so Kling's 200 MB.
MAX_INPUT_BYTES = {"evolink": 100 * MB, "aimlapi": 200 * MB}
#: The failure code of an input outside the limits (snake_case; aimlapi shows it CamelCase).
LIMIT_ERROR_CODE = "invalid_request_error"
LIMIT_ERROR_MESSAGE = "Invalid request parameter"
#: The request field that names the input video, per API (the ``param`` of the message).
VIDEO_PARAM = {"evolink": "video_urls", "aimlapi": "video_url"}
# Slack for container rounding: a 3 s clip whose index says 2.9995 s is still a 3 s clip.
_SECONDS_SLACK = 0.01
_FPS_SLACK = 0.01


@dataclass(frozen=True)
class VideoFacts:
    """What the model checks about an input: duration (s), displayed size (px), frame rate
    (frames per second, the stream's average; None if unknown) and size in bytes."""

    seconds: float
    width: int
    height: int
    fps: float | None
    size_bytes: int


def limit_problems(facts: VideoFacts, api: str) -> list[str]:
    """Each way ``facts`` breaks the model's input limits for ``api``, as a plain sentence
    (empty when the input is within every limit)."""
    problems: list[str] = []
    if not MIN_SECONDS - _SECONDS_SLACK <= facts.seconds <= MAX_SECONDS + _SECONDS_SLACK:
        problems.append(
            f"duration {facts.seconds:.2f} s is outside {MIN_SECONDS:g}..{MAX_SECONDS:g} s"
        )
    for side, px in (("width", facts.width), ("height", facts.height)):
        if not MIN_SIDE <= px <= MAX_SIDE:
            problems.append(f"{side} {px} px is outside {MIN_SIDE}..{MAX_SIDE} px")
    if facts.fps is not None and not MIN_FPS - _FPS_SLACK <= facts.fps <= MAX_FPS + _FPS_SLACK:
        problems.append(f"frame rate {facts.fps:.3g} fps is outside {MIN_FPS:g}..{MAX_FPS:g} fps")
    cap = MAX_INPUT_BYTES.get(api, min(MAX_INPUT_BYTES.values()))
    if facts.size_bytes > cap:
        problems.append(f"size {facts.size_bytes} bytes is over {cap // MB} MB")
    return problems


def limit_message(problems: list[str], api: str) -> str:
    """The failed task's message for ``problems`` (see the module docstring)."""
    param = VIDEO_PARAM.get(api, "video")
    return f"{LIMIT_ERROR_MESSAGE}: {param}: " + "; ".join(problems)
