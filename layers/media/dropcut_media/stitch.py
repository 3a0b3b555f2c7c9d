"""Stitch: join the edited parts, in order, into one MP4 at the model's output frame rate.

Video: remuxed (packets copied, timestamps shifted) when every part has the same H.264 yuv420p
parameters at ``fps`` and no trim falls inside a group of pictures; otherwise re-encoded to
uniform parameters (the first part's displayed size, H.264 8-bit yuv420p, frame rate converted
by timestamps). Audio: the original input's track laid under the whole video (copied when AAC),
or the parts' own audio, each part's placed at its video's start and cut or padded to its
length, so the sound never drifts from the picture at a seam. Memory is bounded (streaming).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from dropcut_media._audio import AacWriter, SampleRouter
from dropcut_media._av import (
    FrameClock,
    FrameGrid,
    PictureConverter,
    add_aac_stream,
    add_h264_stream,
    audio_layout,
    audio_rate,
    exact_rate,
    fraction,
    mux,
    open_input,
    release_memory,
    rotation_of,
    stream_duration,
)
from dropcut_media.errors import MediaUnreadable, PartsIncompatible

#: How far (seconds) the source's AAC track may start after or end before the video and still be
#: copied as it is: two AAC frames at 44.1 kHz (the encoder's priming frame shifts the start).
COPY_SLACK = Fraction(2048, 44100)


@dataclass(frozen=True)
class StitchInfo:
    """The stitched video: ``duration_seconds`` = ``frames`` / ``fps``; ``remuxed``: the video
    packets were copied, not re-encoded; ``audio``: "original" (the input's track), "parts" (the
    parts' audio, joined) or "none"; ``audio_copied``: the audio packets were copied (an AAC
    original covering the whole video), not encoded; ``width``/``height``: its size."""

    path: Path
    duration_seconds: float
    frames: int
    fps: Fraction
    remuxed: bool
    audio: str
    audio_copied: bool = False
    width: int = 0
    height: int = 0


@dataclass
class _Part:
    """What one part holds, from its packets (no decoding)."""

    path: Path
    codec: str
    width: int
    height: int
    pix_fmt: str
    extradata: bytes | None
    time_base: Fraction
    rate: Fraction
    rotation: int
    frames: int
    duration: Fraction
    has_audio: bool
    first_pts: int = 0
    keyframes: set[int] = field(default_factory=set)  # frame indices (display order)
    regular: bool = True  # every frame lasts exactly 1/rate

    def signature(self) -> tuple[object, ...]:
        return (
            self.codec,
            self.width,
            self.height,
            self.pix_fmt,
            self.extradata,
            self.time_base,
            self.rate,
            self.rotation,
        )


def stitch_parts(
    parts: Sequence[Path],
    output: Path,
    *,
    fps: Fraction = Fraction(24),
    trim_to_seconds: float | None = None,
    audio_source: Path | None = None,
    audio_offset_seconds: float = 0.0,
) -> StitchInfo:
    """Join ``parts`` in order into ``output`` (an MP4, H.264 yuv420p at ``fps``).

    ``trim_to_seconds``: keep only that much of the joined video (a padded part's edit cut back
    to the input's length). ``audio_source``: lay that file's first audio track under the whole
    video as one continuous track, from ``audio_offset_seconds`` of it (seconds from its first
    video frame: the first part's start in the input), cut to the video's length, copied when
    AAC (packet granularity: <= 1024 samples, under one frame at 24 fps) and encoded to AAC
    otherwise; without it the parts' audio is kept when any part has some.

    Raises MediaUnreadable (a part cannot be read) and PartsIncompatible (no parts, or nothing
    left after the trim).
    """
    if not parts:
        raise PartsIncompatible("there are no parts to stitch")
    fps = exact_rate(fps)
    infos = [_read_part(Path(p)) for p in parts]
    total = sum(_frames_at(info, fps) for info in infos)
    limit = total if trim_to_seconds is None else min(total, round(Fraction(trim_to_seconds) * fps))
    if limit <= 0:
        raise PartsIncompatible(f"nothing is left after trimming to {trim_to_seconds} s")
    output.parent.mkdir(parents=True, exist_ok=True)
    video_tmp = output.with_name(output.name + ".video.tmp.mp4")
    audio_tmp = output.with_name(output.name + ".audio.tmp.m4a")
    try:
        remuxed = _can_remux(infos, fps, limit)
        if remuxed:
            frames = _remux_video(infos, video_tmp, limit)
            width, height = infos[0].width, infos[0].height
        else:
            frames, width, height = _encode_video(infos, video_tmp, fps, limit)
        duration = Fraction(frames) / fps
        audio, audio_file, offset = _audio(
            infos, audio_source, Fraction(audio_offset_seconds), duration, fps, audio_tmp
        )
        _final_mux(video_tmp, audio_file, offset, duration, output)
    finally:
        video_tmp.unlink(missing_ok=True)
        audio_tmp.unlink(missing_ok=True)
    return StitchInfo(
        path=output,
        duration_seconds=float(duration),
        frames=frames,
        fps=fps,
        remuxed=remuxed,
        audio=audio,
        audio_copied=audio_file is not None and audio_file != audio_tmp,
        width=width,
        height=height,
    )


# --- reading the parts --------------------------------------------------------------------------


def _read_part(path: Path) -> _Part:
    """A part's parameters and its video packets' layout (keyframes, regular timing)."""
    with open_input(path) as container:
        video = container.streams.video[0]
        ctx = video.codec_context
        rotation = rotation_of(container, video)
        swap = rotation % 180 != 0
        rate = fraction(video.average_rate or video.guessed_rate or 24)
        info = _Part(
            path=path,
            codec=ctx.name,
            width=ctx.height if swap else ctx.width,
            height=ctx.width if swap else ctx.height,
            pix_fmt=ctx.pix_fmt or "",
            extradata=bytes(ctx.extradata) if ctx.extradata else None,
            time_base=fraction(video.time_base or 1),
            rate=rate,
            rotation=rotation,
            frames=0,
            duration=Fraction(0),
            has_audio=bool(container.streams.audio),
        )
        header = stream_duration(video)
        pts: list[int] = []
        keys: list[int] = []
        try:
            for packet in container.demux(video):
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except av.FFmpegError as exc:
            raise MediaUnreadable(f"part {path.name} could not be read ({exc})") from exc
    if not pts:
        raise MediaUnreadable(f"part {path.name} has no video frames")
    pts.sort()
    step = (1 / rate) / info.time_base
    info.first_pts = pts[0]
    info.frames = len(pts)
    info.regular = step.denominator == 1 and all(b - a == step for a, b in itertools.pairwise(pts))
    order = {value: index for index, value in enumerate(pts)}
    info.keyframes = {order[k] for k in keys}
    info.duration = header if header else Fraction(len(pts)) / rate
    return info


def _frames_at(info: _Part, fps: Fraction) -> int:
    """How many frames the part gives at ``fps``: its own when regular at that rate, else its
    duration on the grid."""
    if info.regular and info.rate == fps:
        return info.frames
    return max(1, round(info.duration * fps))


def _can_remux(infos: list[_Part], fps: Fraction, limit: int) -> bool:
    """Every part H.264 yuv420p, unrotated, with the first part's parameters, regular at ``fps``,
    and the trim (if any) falling on a part's keyframe, so no group of pictures is cut."""
    first = infos[0].signature()
    if not all(
        info.signature() == first
        and info.codec == "h264"
        and info.pix_fmt == "yuv420p"
        and info.rotation == 0
        and info.regular
        and info.rate == fps
        for info in infos
    ):
        return False
    before = 0
    for info in infos:
        if before <= limit < before + info.frames:
            return (limit - before) in info.keyframes
        before += info.frames
    return True


# --- video --------------------------------------------------------------------------------------


def _remux_video(infos: list[_Part], output: Path, limit: int) -> int:
    """Copy the parts' video packets, shifted to follow each other; returns frames written."""
    written = 0
    with av.open(str(output), "w", format="mp4") as out:
        stream: VideoStream | None = None
        for info in infos:
            if written >= limit:
                break
            step = int((1 / info.rate) / info.time_base)
            keep = min(info.frames, limit - written)
            shift = written * step - info.first_pts
            with open_input(info.path) as container:
                video = container.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(video)
                for packet in container.demux(video):
                    if packet.pts is None or (packet.pts - info.first_pts) // step >= keep:
                        continue
                    packet.pts += shift
                    packet.dts = (packet.dts + shift) if packet.dts is not None else None
                    packet.stream = stream
                    out.mux(packet)
            written += keep
    return written


def _encode_video(
    infos: list[_Part], output: Path, fps: Fraction, limit: int
) -> tuple[int, int, int]:
    """Decode every part and encode one H.264 stream at ``fps`` (the first part's size);
    returns (frames, width, height)."""
    width, height = infos[0].width - infos[0].width % 2, infos[0].height - infos[0].height % 2
    written = 0
    with av.open(str(output), "w", format="mp4") as out:
        stream = add_h264_stream(out, width=width, height=height, fps=fps)
        for info in infos:
            if written >= limit:
                break
            want = min(_frames_at(info, fps), limit - written)
            with open_input(info.path) as container:
                for picture in _part_pictures(container, info, fps, want, width, height):
                    picture.pts = written
                    picture.time_base = 1 / fps
                    picture.pict_type = 0  # the encoder decides where keyframes go
                    mux(out, stream.encode(picture))
                    written += 1
            release_memory()  # the part's decoder is closed: give its frames' pages back
        mux(out, stream.encode(None))
    return written, width, height


def _part_pictures(
    container: InputContainer, info: _Part, fps: Fraction, want: int, width: int, height: int
) -> Iterator[VideoFrame]:
    """Exactly ``want`` converted pictures of one part on its own grid at ``fps`` (the last one
    held if the part runs short)."""
    video = container.streams.video[0]
    clock = FrameClock(video)
    grid = FrameGrid(fps, stop=want)
    convert = PictureConverter(width, height, info.rotation)
    last: VideoFrame | None = None
    converted: dict[int, VideoFrame] = {}

    def pictures(covered: list[tuple[int, VideoFrame]]) -> Iterator[VideoFrame]:
        nonlocal last
        for _index, frame in covered:
            key = id(frame)
            if key not in converted:
                converted.clear()
                converted[key] = convert(frame)
            last = converted[key]
            yield last

    try:
        for frame in container.decode(video):
            yield from pictures(grid.push(frame, clock.time(frame), clock.duration(frame)))
            if grid.full:
                break
    except av.FFmpegError as exc:
        raise MediaUnreadable(f"part {info.path.name} could not be decoded ({exc})") from exc
    yield from pictures(grid.end())
    if last is None:
        raise MediaUnreadable(f"part {info.path.name} has no decodable frames")
    for _ in range(grid.next, want):
        yield last


# --- audio --------------------------------------------------------------------------------------


def _audio(
    infos: list[_Part],
    source: Path | None,
    offset: Fraction,
    duration: Fraction,
    fps: Fraction,
    scratch: Path,
) -> tuple[str, Path | None, Fraction]:
    """Which audio goes under the video: ("original" | "parts" | "none", the file whose first
    audio track's packets are copied, the seconds of that file where the video's 0 is)."""
    if source is not None:
        with open_input(source) as container:
            if not container.streams.audio:
                return "none", None, Fraction(0)
            if _copyable(container, offset, duration):
                return "original", source, offset
        _encode_source_audio(source, offset, duration, scratch)
        return "original", scratch, Fraction(0)
    if not any(info.has_audio for info in infos):
        return "none", None, Fraction(0)
    _encode_parts_audio(infos, fps, duration, scratch)
    return "parts", scratch, Fraction(0)


def _copyable(container: InputContainer, offset: Fraction, duration: Fraction) -> bool:
    """The source's audio can be copied: AAC, and its track covers the whole span (within
    COPY_SLACK at either end), so the copy needs no silence added."""
    audio = container.streams.audio[0]
    length = stream_duration(audio)
    if audio.codec_context.name != "aac" or length is None:
        return False
    begins = -_video_origin_in_audio(container)  # the track's start, from the first frame
    return begins <= offset + COPY_SLACK and begins + length >= offset + duration - COPY_SLACK


def _video_origin_in_audio(container: InputContainer) -> Fraction:
    """Seconds from the audio track's start to the first video frame (0 if either is unknown)."""
    video, audio = container.streams.video[0], container.streams.audio[0]
    video_start = (video.start_time or 0) * fraction(video.time_base or 1)
    audio_start = (audio.start_time or 0) * fraction(audio.time_base or 1)
    return video_start - audio_start


def _decode_audio_into(path: Path, router: SampleRouter, origin_shift: Fraction) -> None:
    """Decode ``path``'s first audio track into ``router`` (times from its first video frame,
    minus ``origin_shift`` seconds)."""
    with open_input(path) as container:
        if not container.streams.audio:
            router.finish()
            return
        audio = container.streams.audio[0]
        clock = FrameClock(audio)
        origin = _video_origin_in_audio(container) + origin_shift
        try:
            for frame in container.decode(audio):
                router.push(frame, clock.time(frame) - origin)
                if router.complete:
                    break
        except av.FFmpegError as exc:
            raise MediaUnreadable(f"the audio of {path.name} could not be decoded ({exc})") from exc
        router.finish()


def _first_audio(paths: Sequence[Path]) -> tuple[int, str]:
    """The AAC rate and layout for audio taken from the first of ``paths`` that has some."""
    for path in paths:
        with open_input(path) as container:
            if container.streams.audio:
                audio = container.streams.audio[0]
                return audio_rate(audio.codec_context.sample_rate), audio_layout(audio)
    return 48000, "stereo"


def _encode_source_audio(source: Path, offset: Fraction, duration: Fraction, out: Path) -> None:
    rate, layout = _first_audio([source])
    total = round(duration * rate)
    with av.open(str(out), "w", format="mp4") as container:
        writer = AacWriter(
            container, add_aac_stream(container, rate=rate, layout=layout), rate=rate, layout=layout
        )
        router = SampleRouter(
            rate=rate,
            layout=layout,
            spans=[(0, total)],
            sink=lambda _i, chunk: writer.write(chunk),
            done=lambda _i: None,
        )
        _decode_audio_into(source, router, offset)
        writer.finish(total)


def _encode_parts_audio(infos: list[_Part], fps: Fraction, duration: Fraction, out: Path) -> None:
    """Each part's audio, placed at its video's start and cut or padded to its video's length."""
    rate, layout = _first_audio([info.path for info in infos if info.has_audio])
    total = round(duration * rate)
    with av.open(str(out), "w", format="mp4") as container:
        writer = AacWriter(
            container, add_aac_stream(container, rate=rate, layout=layout), rate=rate, layout=layout
        )
        frames_before = 0
        for info in infos:
            start = min(total, round(Fraction(frames_before) / fps * rate))
            frames_before += _frames_at(info, fps)
            end = min(total, round(Fraction(frames_before) / fps * rate))
            if end <= start:
                break
            if info.has_audio:
                router = SampleRouter(
                    rate=rate,
                    layout=layout,
                    spans=[(0, end - start)],
                    sink=lambda _i, chunk: writer.write(chunk),
                    done=lambda _i: None,
                )
                _decode_audio_into(info.path, router, Fraction(0))
            writer.fill_to(end)
        writer.finish(total)


# --- the final file -----------------------------------------------------------------------------


def _final_mux(
    video_file: Path, audio_file: Path | None, offset: Fraction, duration: Fraction, output: Path
) -> None:
    """Interleave the video packets and (if any) the audio packets of ``audio_file`` from
    ``offset`` seconds of it for ``duration`` seconds into ``output`` (moov first)."""
    with ExitStack() as stack:
        out = stack.enter_context(
            av.open(str(output), "w", format="mp4", options={"movflags": "+faststart"})
        )
        video_in = stack.enter_context(av.open(str(video_file)))
        vin = video_in.streams.video[0]
        vout = out.add_stream_from_template(vin)
        sources: list[Iterator[tuple[Fraction, Any]]] = [_timed(video_in.demux(vin), vout)]
        if audio_file is not None:
            audio_in = stack.enter_context(av.open(str(audio_file)))
            ain = audio_in.streams.audio[0]
            aout = out.add_stream_from_template(ain)
            sources.append(_shifted_audio(audio_in, ain, aout, offset, duration))
        for _when, packet in _merge(sources):
            out.mux(packet)


def _timed(packets: Iterator[Any], stream: Any) -> Iterator[tuple[Fraction, Any]]:
    """Packets (with a dts) re-assigned to ``stream``, each with its dts in seconds."""
    for packet in packets:
        if packet.dts is None:
            continue
        when = packet.dts * Fraction(packet.time_base)
        packet.stream = stream
        yield when, packet


def _shifted_audio(
    container: Any, ain: Any, aout: Any, offset: Fraction, duration: Fraction
) -> Iterator[tuple[Fraction, Any]]:
    """The audio packets covering [offset, offset + duration) seconds (from the file's first
    video frame when it has one), moved so that ``offset`` plays at 0."""
    origin = _video_origin_in_audio(container) if container.streams.video else Fraction(0)
    start = origin + offset
    base = Fraction(ain.time_base)
    shift = round(start / base) + (ain.start_time or 0)
    for when, packet in _timed(container.demux(ain), aout):
        length = (packet.duration or 0) * base
        relative = when - (ain.start_time or 0) * base - start
        if relative + length <= 0:
            continue
        if relative >= duration:
            break
        packet.pts = packet.pts - shift if packet.pts is not None else None
        packet.dts = packet.dts - shift
        yield relative, packet


def _merge(sources: list[Iterator[tuple[Fraction, Any]]]) -> Iterator[tuple[Fraction, Any]]:
    """The packets of several time-ordered streams, in time order (one packet held per stream)."""
    heads: list[tuple[Fraction, Any] | None] = [next(s, None) for s in sources]
    while True:
        live = [(head[0], i) for i, head in enumerate(heads) if head is not None]
        if not live:
            return
        _when, index = min(live)
        head = heads[index]
        assert head is not None
        yield head
        heads[index] = next(sources[index], None)
