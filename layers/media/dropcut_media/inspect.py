"""What a video file holds, read from its header (no decoding): for checks and tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from dropcut_media._av import open_input, rotation_of, stream_duration


def describe(path: Path) -> dict[str, Any]:
    """The facts of the video at ``path``, as plain data.

    Keys: ``duration_seconds`` (float: the video stream's, else the container's), ``width`` and
    ``height`` (int: as displayed, the rotation applied), ``coded_width``/``coded_height`` (as
    stored), ``fps`` (float: average frame rate, 0.0 if unknown), ``frames`` (int: from the index,
    0 if unknown), ``video_codec`` (e.g. "h264", "hevc"), ``pix_fmt`` (e.g. "yuv420p"),
    ``rotation`` (int degrees counterclockwise, as FFmpeg reads the display matrix: a phone held
    upright records -90 or 90), ``has_audio`` (bool), ``audio_codec`` (str or None),
    ``audio_duration_seconds`` (float or None), ``format`` (the container's names), ``size_bytes``.

    Raises MediaUnreadable if the file cannot be opened or has no video stream. The rotation is
    read from the first decoded frame's display matrix when the stream header does not carry it
    (PyAV exposes it on frames only), so one frame is decoded.
    """
    with open_input(path) as container:
        video = container.streams.video[0]
        ctx = video.codec_context
        rotation = rotation_of(container, video)
        swap = rotation % 180 != 0
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = stream_duration(video)
        if duration is None and container.duration is not None:
            duration = Fraction(container.duration, av.time_base)
        return {
            "duration_seconds": float(duration or 0.0),
            "width": ctx.height if swap else ctx.width,
            "height": ctx.width if swap else ctx.height,
            "coded_width": ctx.width,
            "coded_height": ctx.height,
            "fps": float(video.average_rate) if video.average_rate else 0.0,
            "frames": int(video.frames or 0),
            "video_codec": ctx.name,
            "pix_fmt": ctx.pix_fmt,
            "rotation": rotation,
            "has_audio": audio is not None,
            "audio_codec": audio.codec_context.name if audio is not None else None,
            "audio_duration_seconds": (
                float(stream_duration(audio) or 0.0) if audio is not None else None
            ),
            "format": container.format.name,
            "size_bytes": Path(path).stat().st_size,
        }
