"""PyAV plumbing shared by prepare, stitch and the contact sheet: opening, timing, rotation, the
picture conversion graph, and the H.264/AAC output streams."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.filter import Graph
from av.packet import Packet
from av.rational import AVRational
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from dropcut_media.errors import MediaUnreadable

#: x264 settings for every picture we encode: good quality for a model's input, fast enough for a
#: Lambda (about real time for 1080p on 2 vCPUs). CRF 18 is visually lossless for most footage;
#: the VBV cap (maxrate/bufsize) keeps a part under a provider's size cap.
X264_PRESET = "veryfast"
X264_CRF = "18"
AAC_BIT_RATE = 128_000
#: AAC's sample rates (ISO 14496-3); another input rate is resampled to 48 kHz.
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


@contextmanager
def open_input(path: Path) -> Iterator[InputContainer]:
    """An input container with at least one video stream; MediaUnreadable otherwise."""
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaUnreadable(f"{Path(path).name} is not a readable video ({exc})") from exc
    try:
        if not container.streams.video:
            raise MediaUnreadable(f"{Path(path).name} has no video stream")
        container.streams.video[0].thread_type = "AUTO"  # frame and slice threads
        yield container
    finally:
        container.close()


def main_video(container: InputContainer, track_id: int | None = None) -> VideoStream:
    """The video stream to read: the one whose MP4 track ID is `track_id` (the probe's choice of
    the track a player plays), else the first. MediaUnreadable when no stream has that ID."""
    if track_id is None:
        return container.streams.video[0]
    for stream in container.streams.video:
        if stream.id == track_id:
            stream.thread_type = "AUTO"
            return stream
    raise MediaUnreadable(f"the video has no video track with the ID {track_id}")


def fraction(value: AVRational | Fraction | int) -> Fraction:
    """An FFmpeg rational (a time base, a frame rate) as an exact Fraction: PyAV hands back
    Fractions at run time, its type stubs say AVRational."""
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(value.numerator, value.denominator)


def stream_duration(stream: Stream) -> Fraction | None:
    """A stream's duration from its header (seconds, exact), or None if it does not say."""
    if stream.duration is None or stream.time_base is None:
        return None
    return stream.duration * fraction(stream.time_base)


def rotation_of(container: InputContainer, stream: VideoStream) -> int:
    """The video stream's display rotation in degrees counterclockwise (-90, 0, 90, 180), read
    from the display matrix as FFmpeg's av_display_rotation_get does (0 without one). Mirror
    flips in the matrix are ignored (phones and cameras do not record them)."""
    raw = stream.codec_context.coded_side_data.get("display_matrix")
    if not raw or len(raw) < 36:
        return 0
    m = struct.unpack("<9i", raw[:36])
    scale0 = math.hypot(m[0], m[3])
    scale1 = math.hypot(m[1], m[4])
    if scale0 == 0 or scale1 == 0:
        return 0
    degrees = -math.degrees(math.atan2(m[1] / scale1, m[0] / scale0))
    rounded = round(degrees / 90) * 90
    return int(rounded - 360 if rounded > 180 else rounded)


def frame_rate(stream: VideoStream) -> Fraction:
    """The stream's average frame rate (its guessed rate, else 30, when the header lacks it)."""
    return fraction(stream.average_rate or stream.guessed_rate or 30)


def exact_rate(rate: Fraction | float | int) -> Fraction:
    """A frame rate as the small fraction it stands for: 29.97 -> 30000/1001 (an NTSC rate,
    within 0.001 of n * 1000/1001), 24 -> 24, 12.5 -> 25/2."""
    exact = Fraction(rate)
    ntsc = Fraction(round(exact * Fraction(1001, 1000)) * 1000, 1001)
    if exact.denominator != 1 and abs(ntsc - exact) < Fraction(1, 1000):
        return ntsc
    return exact.limit_denominator(1001)


class FrameClock:
    """Each decoded frame's presentation time in seconds (exact Fraction) from the stream's
    start, also for frames that carry no pts (the previous one plus its duration)."""

    def __init__(self, stream: VideoStream | AudioStream) -> None:
        self.time_base = fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
        self.origin = stream.start_time or 0
        self.audio = isinstance(stream, AudioStream)
        self.step = Fraction(0) if isinstance(stream, AudioStream) else 1 / frame_rate(stream)
        self.next: Fraction | None = None

    def time(self, frame: VideoFrame | AudioFrame) -> Fraction:
        if frame.pts is None:
            now = self.next if self.next is not None else Fraction(0)
        else:
            now = (frame.pts - self.origin) * self.time_base
        self.next = now + self.duration(frame)
        return now

    def duration(self, frame: VideoFrame | AudioFrame) -> Fraction:
        """A frame's display duration (its own, else one frame at the average rate; for audio,
        its samples at its sample rate)."""
        if isinstance(frame, AudioFrame):
            return Fraction(frame.samples, frame.sample_rate or 48000)
        if frame.duration:
            return frame.duration * self.time_base
        return self.step


class PictureConverter:
    """Rotation (display matrix), scale to fit, pad to the exact size, 8-bit yuv420p: one FFmpeg
    filter graph, built on the first frame and again if the input's size or format changes.

    The picture keeps its aspect ratio (square pixels assumed after the sample aspect ratio is
    applied by scale): it is scaled to fit ``width`` x ``height`` and centred on black bars
    when the aspect ratios differ (exact fill when they match).
    """

    def __init__(self, width: int, height: int, rotation: int) -> None:
        self.width = width
        self.height = height
        self.rotation = rotation
        self._graph: Graph | None = None
        self._key: tuple[int, int, str] | None = None

    def _build(self, frame: VideoFrame) -> Graph:
        graph = av.filter.Graph()
        nodes = [
            graph.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format.name,
                time_base=frame.time_base or Fraction(1, 1000),
            )
        ]
        if self.rotation == 90:
            nodes.append(graph.add("transpose", "cclock"))
        elif self.rotation == -90:
            nodes.append(graph.add("transpose", "clock"))
        elif abs(self.rotation) == 180:
            nodes += [graph.add("hflip"), graph.add("vflip")]
        w, h = self.width, self.height
        nodes += [
            graph.add("scale", f"w={w}:h={h}:force_original_aspect_ratio=decrease:flags=bicubic"),
            graph.add("pad", f"w={w}:h={h}:x=(ow-iw)/2:y=(oh-ih)/2:color=black"),
            graph.add("setsar", "1"),
            graph.add("format", "yuv420p"),
            graph.add("buffersink"),
        ]
        graph.link_nodes(*nodes).configure()
        self._graph = graph
        self._key = (frame.width, frame.height, frame.format.name)
        return graph

    def __call__(self, frame: VideoFrame) -> VideoFrame:
        """The converted frame (a new VideoFrame; its pts and side data are not to be trusted)."""
        graph = self._graph
        if graph is None or self._key != (frame.width, frame.height, frame.format.name):
            graph = self._build(frame)
        graph.push(frame)
        converted = graph.vpull()
        return converted


def add_h264_stream(
    container: OutputContainer,
    *,
    width: int,
    height: int,
    fps: Fraction,
    max_bitrate: int | None = None,
) -> VideoStream:
    """An H.264 8-bit yuv420p (High profile) output stream at the constant rate ``fps``; with
    ``max_bitrate`` (bits/s) a VBV cap of that rate over a 2 s buffer."""
    stream = container.add_stream("libx264", rate=fps)
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.time_base = 1 / fps
    stream.codec_context.time_base = 1 / fps
    stream.codec_context.gop_size = max(1, round(2 * fps))
    options: dict[str, object] = {"preset": X264_PRESET, "crf": X264_CRF, "profile": "high"}
    if max_bitrate:
        options |= {"maxrate": str(int(max_bitrate)), "bufsize": str(int(2 * max_bitrate))}
    stream.options = options
    return stream


def audio_rate(rate: int | None) -> int:
    """The AAC output rate for an input rate (the same when AAC takes it, else 48 kHz)."""
    return rate if rate in AAC_RATES else 48000


def audio_layout(stream: AudioStream) -> str:
    """mono for a one-channel input, stereo otherwise (AAC's downmix of surround)."""
    return "mono" if stream.codec_context.channels == 1 else "stereo"


def add_aac_stream(container: OutputContainer, *, rate: int, layout: str) -> AudioStream:
    """An AAC-LC output stream (128 kb/s, FFmpeg's fast coder) at ``rate`` Hz, ``layout`` mono
    or stereo."""
    stream = container.add_stream("aac", rate=rate, layout=layout)
    stream.bit_rate = AAC_BIT_RATE
    # FFmpeg's "fast" coder: several times quicker than the default two-loop search, and at
    # 128 kb/s no audible difference for a model's input or an edit's soundtrack.
    stream.options = {"aac_coder": "fast"}
    return stream


def silence(samples: int, *, rate: int, layout: str) -> AudioFrame:
    """An AudioFrame of ``samples`` zero samples (fltp)."""
    frame = av.AudioFrame(format="fltp", layout=layout, samples=samples)
    frame.sample_rate = rate
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    return frame


def mux(container: OutputContainer, packets: Iterable[Packet[Any]]) -> None:
    """Write an encoder's packets into ``container``."""
    for packet in packets:
        container.mux(packet)


class FrameGrid:
    """Frame-rate conversion by timestamps: grid frame k (time k/fps from the stream's start)
    shows the latest input frame presented at or before k/fps. Push each decoded frame with its
    time; get back the grid indices the previous frame covers. Holds one frame."""

    def __init__(self, fps: Fraction, *, first: int = 0, stop: int | None = None) -> None:
        self.fps = fps
        self.next = first  # the next grid index to hand out
        self.stop = stop  # no grid index at or past this one
        self.pending: VideoFrame | None = None
        self.pending_end = Fraction(0)

    def push(
        self, frame: VideoFrame, now: Fraction, duration: Fraction
    ) -> list[tuple[int, VideoFrame]]:
        """(grid index, frame) for each grid frame the frame pushed before ``frame`` covers."""
        covered = self._until(now) if self.pending is not None else []
        self.pending = frame
        self.pending_end = now + duration
        return covered

    def end(self) -> list[tuple[int, VideoFrame]]:
        """The last frame's grid frames (it lasts its own duration)."""
        covered = self._until(self.pending_end) if self.pending is not None else []
        self.pending = None
        return covered

    @property
    def full(self) -> bool:
        return self.stop is not None and self.next >= self.stop

    def _until(self, until: Fraction) -> list[tuple[int, VideoFrame]]:
        covered: list[tuple[int, VideoFrame]] = []
        pending = self.pending
        assert pending is not None  # push and end call it with a frame pending
        while not self.full and Fraction(self.next) / self.fps < until:
            covered.append((self.next, pending))
            self.next += 1
        return covered


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return None


_LIBC = _libc()


def release_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim), after an encoder is
    closed: x264's buffers are freed in its threads' arenas, which glibc otherwise keeps, so
    each new part's encoder raised the peak (8 parts of 1080p: 279 MiB; trimmed: 243, as 1)."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)
