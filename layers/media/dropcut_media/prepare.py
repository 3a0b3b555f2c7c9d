"""Prepare: turn any readable video into parts the model takes (one mezzanine or N exact parts).

One streaming pass decodes the input and writes every part (plus, when a part boundary may move
to a scene cut, one short seek-and-decode of a window around each boundary first). Memory is
bounded by the decoder's and encoders' own buffers and one pending frame: the video is never held.

The output timeline is a constant-rate frame grid at ``target.fps`` from the input's first video
frame: output frame k shows the latest input frame whose presentation time is at or before k/fps
(frames are dropped or repeated by timestamps). Every part is a whole number of grid frames and
starts with its own keyframe (one encoder per part), so the parts join back exactly.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.frame import AudioFrame
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image, ImageChops, ImageStat

from dropcut_media._audio import AacWriter, SampleRouter, take
from dropcut_media._av import (
    FrameClock,
    PictureConverter,
    add_aac_stream,
    add_h264_stream,
    audio_layout,
    audio_rate,
    exact_rate,
    fraction,
    main_video,
    mux,
    open_input,
    release_memory,
    rotation_of,
    stream_duration,
)
from dropcut_media.errors import MediaPlanInvalid, MediaUnreadable

#: A scene cut: the mean absolute difference of two consecutive 64x36 RGB pictures (all three
#: channels, so a cut between shots of equal brightness counts), on a 0-255 scale, at least this
#: much (camera motion gives ~5-20, a cut between shots 40+).
SCENE_THRESHOLD = 30.0
SCENE_PROBE_SIZE = (64, 36)
#: Video packets held back (see _Encoder._awaiting_audio): 5 s at 60 fps, so an input whose audio
#: stops early cannot make the queue grow without bound.
MAX_HELD_PACKETS = 300


@dataclass(frozen=True)
class Target:
    """The mezzanine's video: H.264 8-bit yuv420p in MP4.

    ``width``/``height``: even pixels, as displayed (the input's rotation is applied to the
    pixels; the picture is scaled to fit and centred on black bars if the aspect differs).
    ``fps``: the output's constant frame rate. ``max_bitrate``: bits/s, the encoder's VBV cap, so
    a part stays under the provider's size cap (size <= max_bitrate * seconds / 8 + the audio).
    """

    width: int
    height: int
    fps: Fraction
    max_bitrate: int


@dataclass(frozen=True)
class Cut:
    """One part to make: its 0-based ``index`` and nominal boundaries in seconds of the input's
    presentation time (from its first video frame); ``pad_to_seconds``: hold the last frame (and
    silence) until the part lasts this long."""

    index: int
    start_seconds: float
    end_seconds: float
    pad_to_seconds: float | None = None


@dataclass(frozen=True)
class PreparedPart:
    """A part written: ``start_seconds`` is where it starts in the input (seconds from its first
    video frame, on the output frame grid, after any move to a scene cut); ``duration_seconds``
    = ``frames`` / fps, padding included; ``moved_to_scene_cut``: a boundary of it moved;
    ``has_audio``: it carries an AAC track."""

    index: int
    path: Path
    start_seconds: float
    duration_seconds: float
    frames: int
    size_bytes: int
    moved_to_scene_cut: bool
    has_audio: bool = False


@dataclass
class _Span:
    """A cut on the output frame grid: frames [start, end) of the input's timeline, then held
    to ``total`` frames."""

    cut: Cut
    start: int
    end: int
    total: int
    moved: bool = False


def prepare_video(
    source: Path,
    cuts: Sequence[Cut],
    target: Target,
    out_dir: Path,
    *,
    scene_window_seconds: float = 1.0,
    min_part_seconds: float = 3.0,
    max_part_seconds: float = 10.0,
    keep_audio: bool = True,
    bounds: DecodeBounds | None = None,
    video_track_id: int | None = None,
) -> list[PreparedPart]:
    """Write one MP4 per cut into ``out_dir`` (``part-000.mp4``, ...) and describe them, in order.

    Each part: H.264 8-bit yuv420p at ``target`` (rotation applied, scaled and padded to the
    size, frame rate converted), starting with a keyframe; with ``keep_audio`` and an audio
    track in the input, that span's audio as AAC (sample-exact, silence where the input has none).
    A boundary shared by two consecutive cuts moves to the strongest scene cut within
    ``scene_window_seconds`` of it when both parts then last between ``min_part_seconds`` and
    ``max_part_seconds`` (the model's 3-10 s, providers/README.md "The model's own limits").

    ``bounds``: every decoded picture is checked against them (its real size: an index may lie).
    ``video_track_id``: the MP4 track ID of the video to read (a file with several video tracks:
    the one a player plays); None: the first video track.

    Raises MediaUnreadable (not a video, nothing decodes, a picture past ``bounds``) and
    MediaPlanInvalid (no cuts, cuts out of order or overlapping, a cut that starts after the
    video ends, an odd target size).
    """
    _check_plan(cuts, target)
    # A rate given as a float (29.97) becomes the fraction it stands for (30000/1001).
    target = replace(target, fps=exact_rate(target.fps))
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_input(source) as container:
        video = main_video(container, video_track_id)
        duration = stream_duration(video)
        if duration is None and container.duration is not None:
            duration = Fraction(container.duration, av.time_base)
        spans = _grid(cuts, target.fps, duration)
        if scene_window_seconds > 0 and len(spans) > 1:
            _move_to_scene_cuts(
                container,
                video,
                bounds,
                spans,
                target.fps,
                Fraction(scene_window_seconds),
                (Fraction(min_part_seconds), Fraction(max_part_seconds)),
            )
        encoder = _Encoder(
            container, video, spans, target, out_dir, keep_audio=keep_audio, bounds=bounds
        )
        try:
            encoder.run()
        except BaseException:
            encoder.close()
            for writer in encoder.writers:  # no half-written part is left behind
                writer.path.unlink(missing_ok=True)
            raise
        encoder.close()
    return encoder.results()


@dataclass(frozen=True)
class DecodeBounds:
    """The largest picture Prepare decodes (the caller's limits: dropcut.model.media_limits)."""

    max_side: int
    max_pixels: int

    def check(self, frame: VideoFrame) -> None:
        """Raise MediaUnreadable when a decoded picture is past the bounds."""
        width, height = frame.width, frame.height
        if max(width, height) > self.max_side or width * height > self.max_pixels:
            raise MediaUnreadable(
                f"a decoded picture is {width}x{height} px, larger than the "
                f"{self.max_side} px a side and {self.max_pixels / 1e6:g} MP dropcut decodes "
                "(the file's index said less)"
            )


def _check_plan(cuts: Sequence[Cut], target: Target) -> None:
    if not cuts:
        raise MediaPlanInvalid("no parts were asked for")
    if target.width < 16 or target.height < 16 or target.width % 2 or target.height % 2:
        raise MediaPlanInvalid(
            f"target size {target.width}x{target.height} is not even or too small"
        )
    if target.fps <= 0:
        raise MediaPlanInvalid(f"target frame rate {target.fps} is not positive")
    previous_end = 0.0
    for cut in cuts:
        if cut.start_seconds < previous_end - 1e-6 or cut.end_seconds <= cut.start_seconds:
            raise MediaPlanInvalid(
                f"part {cut.index} ({cut.start_seconds:.3f}-{cut.end_seconds:.3f} s) is empty, "
                "out of order or overlaps the one before"
            )
        previous_end = cut.end_seconds


def _grid(cuts: Sequence[Cut], fps: Fraction, duration: Fraction | None) -> list[_Span]:
    """The cuts on the output frame grid (nearest frame), clamped to the video's length."""
    last = round(duration * fps) if duration else None
    spans = []
    for cut in cuts:
        start = round(Fraction(cut.start_seconds) * fps)
        end = round(Fraction(cut.end_seconds) * fps)
        if last is not None:
            end = min(end, last)
        if end <= start:
            raise MediaPlanInvalid(
                f"part {cut.index} starts at {cut.start_seconds:.3f} s, at or after the end of "
                f"the video ({float(duration or 0):.3f} s)"
            )
        span = _Span(cut, start, end, 0)
        span.total = _total(span, fps)
        spans.append(span)
    return spans


def _total(span: _Span, fps: Fraction) -> int:
    """The span's frames once padded: its own, or more to reach its cut's pad_to_seconds."""
    frames = span.end - span.start
    if span.cut.pad_to_seconds is not None:
        frames = max(frames, round(Fraction(span.cut.pad_to_seconds) * fps))
    return frames


# --- scene cuts ---------------------------------------------------------------------------------


def _small_picture(frame: VideoFrame) -> Image.Image:
    w, h = SCENE_PROBE_SIZE
    plane = frame.reformat(width=w, height=h, format="rgb24").planes[0]
    return Image.frombuffer("RGB", (w, h), bytes(plane), "raw", "RGB", plane.line_size, 1)


def scene_cuts(
    container: InputContainer,
    video: VideoStream,
    low: Fraction,
    high: Fraction,
    bounds: DecodeBounds | None = None,
) -> list[tuple[Fraction, float]]:
    """(time, score) of each frame in [low, high] seconds that differs from the frame before by at
    least SCENE_THRESHOLD: the first frame of a new shot. Seeks to the keyframe before ``low``
    and decodes only to ``high`` (the caller's window)."""
    clock = FrameClock(video)
    seek_to = max(Fraction(0), low - 1)
    container.seek(
        int(seek_to / clock.time_base) + clock.origin, stream=video, backward=True, any_frame=False
    )
    found: list[tuple[Fraction, float]] = []
    previous: Image.Image | None = None
    for frame in container.decode(video):
        if bounds is not None:
            bounds.check(frame)
        now = clock.time(frame)
        if now > high:
            break
        if now < low - 1:
            continue
        picture = _small_picture(frame)
        if previous is not None and now >= low:
            score = sum(ImageStat.Stat(ImageChops.difference(picture, previous)).mean) / 3
            if score >= SCENE_THRESHOLD:
                found.append((now, score))
        previous = picture
    return found


def _move_to_scene_cuts(
    container: InputContainer,
    video: VideoStream,
    bounds: DecodeBounds | None,
    spans: list[_Span],
    fps: Fraction,
    window: Fraction,
    limits: tuple[Fraction, Fraction],
) -> None:
    """Move each boundary shared by two consecutive spans to the strongest scene cut within
    ``window`` of it, if both spans then last within ``limits`` (seconds)."""
    shortest, longest = limits
    for left, right in itertools.pairwise(spans):
        if left.end != right.start or left.total != left.end - left.start:
            continue  # not contiguous, or padded: nothing to move
        nominal = Fraction(left.end) / fps
        candidates = scene_cuts(container, video, nominal - window, nominal + window, bounds)
        best: int | None = None
        for when, _score in sorted(candidates, key=lambda c: (-c[1], abs(c[0] - nominal))):
            frame = math.ceil(when * fps)  # the first grid frame that shows the new shot
            if shortest <= Fraction(frame - left.start) / fps <= longest and (
                shortest <= Fraction(right.end - frame) / fps <= longest
            ):
                best = frame
                break
        if best is not None and best != left.end:
            left.end = right.start = best
            left.total = _total(left, fps)
            right.total = _total(right, fps)
            left.moved = right.moved = True
    container.seek(0)


# --- the encoding pass --------------------------------------------------------------------------


class _PartWriter:
    """One part's MP4: its H.264 stream, its AAC stream (if any), the last picture (to hold).

    The file and its encoders open with the part's first picture and are released on close.
    Audio that arrives before that (the input interleaves it a little ahead of the pictures)
    waits in a FIFO, so the next part's H.264 encoder (100+ MiB at 1080p) is not opened while
    this one still encodes: one encoder at a time, whatever the number of parts."""

    def __init__(self, span: _Span, path: Path, target: Target, audio: tuple[int, str] | None):
        self.span = span
        self.path = path
        self.target = target
        self.audio_format = audio
        self.container: OutputContainer | None = None
        self.video: VideoStream | None = None
        self._audio: AacWriter | None = None
        self.frames = 0
        self.last: VideoFrame | None = None
        self.video_done = False
        self.audio_done = audio is None
        self.audio_ended = False  # every sample of the span has been given
        self.early = av.AudioFifo()  # samples given before the file opened
        self.closed = False

    @property
    def has_audio(self) -> bool:
        return self.audio_format is not None

    def _open(self) -> tuple[OutputContainer, VideoStream]:
        """The part's file and its video stream, opened on first use."""
        if self.container is not None and self.video is not None:
            return self.container, self.video
        if self.closed:
            raise RuntimeError(f"{self.path.name} is already closed")
        self.container = av.open(
            str(self.path), "w", format="mp4", options={"movflags": "+faststart"}
        )
        self.video = add_h264_stream(
            self.container,
            width=self.target.width,
            height=self.target.height,
            fps=self.target.fps,
            max_bitrate=self.target.max_bitrate,
        )
        if self.audio_format is not None:
            rate, layout = self.audio_format
            stream = add_aac_stream(self.container, rate=rate, layout=layout)
            self._audio = AacWriter(self.container, stream, rate=rate, layout=layout)
            if self.early.samples:
                self._audio.write(take(self.early))
            if self.audio_ended:
                self._finish_audio()
        return self.container, self.video

    def write_audio(self, chunk: AudioFrame) -> None:
        """Samples of this part's span, in order (kept until the file opens)."""
        if self._audio is None:
            chunk.pts = None
            self.early.write(chunk)
        else:
            self._audio.write(chunk)

    def write(self, picture: VideoFrame) -> None:
        container, video = self._open()
        picture.pts = self.frames
        picture.time_base = 1 / self.target.fps
        picture.pict_type = 0  # AV_PICTURE_TYPE_NONE: the encoder decides (a decoded I forces one)
        mux(container, video.encode(picture))
        self.frames += 1
        self.last = picture

    def finish_video(self) -> None:
        """Hold the last picture to the span's total, then flush the video encoder."""
        if self.video_done:
            return
        container, video = self._open()
        while self.last is not None and self.frames < self.span.total:
            self.write(self.last)
        self.video_done = True
        self.last = None
        mux(container, video.encode(None))
        self._close_if_done()

    def finish_audio(self) -> None:
        """Every sample of the span has been given: pad with silence to the span's total length
        and flush the audio encoder (once the file is open)."""
        self.audio_ended = True
        if self._audio is not None:
            self._finish_audio()

    def _finish_audio(self) -> None:
        if self.audio_done or self._audio is None:
            return
        writer = self._audio
        writer.finish(round(Fraction(self.span.total) / self.target.fps * writer.rate))
        self.audio_done = True
        self._close_if_done()

    def _close_if_done(self) -> None:
        if self.video_done and self.audio_done:
            self.close()

    def close(self) -> None:
        """Write the file's index and release the encoders (also on an error)."""
        if not self.closed:
            self.closed = True
            if self.container is not None:
                self.container.close()
            self.container = self.video = self._audio = self.last = None
            release_memory()


class _Encoder:
    """The single decode pass: routes grid frames and audio samples to the parts' writers."""

    def __init__(
        self,
        container: InputContainer,
        video: VideoStream,
        spans: list[_Span],
        target: Target,
        out_dir: Path,
        *,
        keep_audio: bool,
        bounds: DecodeBounds | None = None,
    ) -> None:
        self.container = container
        self.bounds = bounds
        self.spans = spans
        self.target = target
        self.fps = target.fps
        self.video = video
        self.audio_in = (
            container.streams.audio[0] if keep_audio and container.streams.audio else None
        )
        self.clock = FrameClock(self.video)
        self.convert = PictureConverter(
            target.width, target.height, rotation_of(container, self.video)
        )
        audio = None
        if self.audio_in is not None:
            audio = (
                audio_rate(self.audio_in.codec_context.sample_rate),
                audio_layout(self.audio_in),
            )
        self.writers = [
            _PartWriter(span, out_dir / f"part-{span.cut.index:03d}.mp4", target, audio)
            for span in spans
        ]
        self.router: SampleRouter | None = None
        if audio is not None:
            rate = audio[0]
            self.router = SampleRouter(
                rate=rate,
                layout=audio[1],
                spans=[
                    (
                        round(Fraction(s.start) / self.fps * rate),
                        round(Fraction(s.end) / self.fps * rate),
                    )
                    for s in spans
                ],
                sink=lambda i, chunk: self.writers[i].write_audio(chunk),
                done=lambda i: self.writers[i].finish_audio(),
            )
        self.k = spans[0].start  # the next grid frame to emit
        self.part = 0  # the span that grid frame falls in (or the next one)
        self.pending: VideoFrame | None = (
            None  # the latest input frame: it covers grid frames until the next
        )
        self.pending_end = Fraction(0)  # when the pending frame's own display time ends
        self.pending_picture: VideoFrame | None = None

    @property
    def video_complete(self) -> bool:
        return self.part >= len(self.spans)

    def _seek_to_first_part(self) -> None:
        """Start decoding near the first part (from the keyframe at or before 1 s ahead of it)."""
        first = Fraction(self.spans[0].start) / self.fps
        if first > 2:
            target = int((first - 1) / self.clock.time_base) + self.clock.origin
            self.container.seek(target, stream=self.video, backward=True, any_frame=False)

    def run(self) -> None:
        self._seek_to_first_part()
        streams = [self.video] + ([self.audio_in] if self.audio_in is not None else [])
        audio_clock = FrameClock(self.audio_in) if self.audio_in is not None else None
        audio_origin = self._audio_origin()
        held: deque[Packet[Any]] = (
            deque()
        )  # video packets kept back while a finished part awaits audio

        def decode(packet: Packet[Any]) -> None:
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    self._video_frame(frame)
                elif self.router is not None and audio_clock is not None:
                    self.router.push(frame, audio_clock.time(frame) - audio_origin)

        try:
            for packet in self.container.demux(*streams):
                if packet.stream is self.video and (held or self._awaiting_audio()):
                    held.append(packet)
                else:
                    decode(packet)
                while held and (len(held) > MAX_HELD_PACKETS or not self._awaiting_audio()):
                    decode(held.popleft())
                if self.video_complete and (self.router is None or self.router.complete):
                    break
            while held:
                decode(held.popleft())
        except av.FFmpegError as exc:
            raise MediaUnreadable(f"the video could not be decoded ({exc})") from exc
        self._end_of_video()
        if self.router is not None:
            self.router.finish()

    def _awaiting_audio(self) -> bool:
        """A part's pictures are all written but its file waits for the rest of its audio (the
        input's audio may lag its video by a second). Its H.264 encoder's memory is freed only
        when the file closes, so the next part's encoder should not start before: the video
        packets (compressed, a few MiB a second at most) wait instead, up to MAX_HELD_PACKETS."""
        return any(w.video_done and not w.closed for w in self.writers)

    def _audio_origin(self) -> Fraction:
        """Seconds from the audio stream's start to the video's first frame (the timeline's 0)."""
        if self.audio_in is None:
            return Fraction(0)
        video_start = (self.video.start_time or 0) * fraction(self.video.time_base or 1)
        audio_start = (self.audio_in.start_time or 0) * fraction(self.audio_in.time_base or 1)
        return video_start - audio_start

    def _video_frame(self, frame: VideoFrame) -> None:
        if self.bounds is not None:
            self.bounds.check(frame)
        now = self.clock.time(frame)
        if self.pending is not None:
            self._emit_until(now)
        self.pending = frame
        self.pending_end = now + self.clock.duration(frame)
        self.pending_picture = None

    def _emit_until(self, until: Fraction) -> None:
        """Emit the pending frame for every grid frame before ``until`` (seconds)."""
        while not self.video_complete and Fraction(self.k) / self.fps < until:
            span = self.spans[self.part]
            if self.k >= span.end:
                self._finish_part(self.part)
                self.part += 1
                continue
            if self.k >= span.start:
                if self.pending_picture is None:
                    assert self.pending is not None  # _video_frame set it before emitting
                    self.pending_picture = self.convert(self.pending)
                self.writers[self.part].write(self.pending_picture)
            self.k += 1
        if not self.video_complete and self.k >= self.spans[self.part].end:
            self._finish_part(self.part)
            self.part += 1

    def _finish_part(self, index: int) -> None:
        writer = self.writers[index]
        if writer.frames == 0:
            raise MediaUnreadable(
                f"the video's pictures end at {float(self.k / self.fps):.2f} s, before part "
                f"{writer.span.cut.index} ({writer.span.cut.start_seconds:.2f} s), although its "
                "header says it lasts longer: the file may be truncated"
            )
        writer.finish_video()

    def _end_of_video(self) -> None:
        if self.pending is None:
            raise MediaUnreadable("no video frame could be decoded")
        self._emit_until(self.pending_end)
        while not self.video_complete:  # the video ended inside this part: it ends here
            span = self.spans[self.part]
            span.end = max(span.start, min(span.end, self.k))
            span.total = _total(span, self.fps)
            self._finish_part(self.part)
            self.part += 1

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def results(self) -> list[PreparedPart]:
        parts = []
        for writer in self.writers:
            span = writer.span
            parts.append(
                PreparedPart(
                    index=span.cut.index,
                    path=writer.path,
                    start_seconds=float(Fraction(span.start) / self.fps),
                    duration_seconds=float(Fraction(writer.frames) / self.fps),
                    frames=writer.frames,
                    size_bytes=writer.path.stat().st_size,
                    moved_to_scene_cut=span.moved,
                    has_audio=writer.has_audio,
                )
            )
        return parts
