"""Check that a file is an MP4/MOV video by reading only the bytes that matter, through ranged reads.

An MP4/MOV keeps its index (the ``moov`` box) either before or after the media data (``mdat``),
which can be gigabytes. Walking the top-level boxes costs one 16-byte read per box beyond the
first 64 KiB, and the index is then fetched in one read, so checking an S3 object typically
takes three small ranged GETs instead of a download.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict

from dropcut.formats.boxes import (
    NotAVideo as NotAVideo,  # the probe's error, where callers expect it
)
from dropcut.formats.boxes import _Box, _children, _Fields, _plausible_fourcc, _signed32
from dropcut.formats.boxes import parse_box_header as parse_box_header
from dropcut.formats.file_kinds import HEIF_BRANDS, identify

RangeReader = Callable[[int, int], bytes]
"""read(offset, length) -> bytes; may return fewer bytes at the end of the file."""

HEAD_BYTES = 64 * 1024
MAX_TOP_LEVEL_BOXES = 10_000
#: Largest index (moov box) read whole: far above any real file's (a few MB for hours of video).
MAX_INDEX_BYTES = 32 * 1024 * 1024
#: Most ranged reads one probe makes (a real file takes 2 to 4; see _CountingReader).
MAX_READS = 64
#: The window read when small reads come close together (a run of tiny boxes).
READ_AHEAD_BYTES = 64 * 1024

BOX_HEADER_BYTES = 16  # 8, or 16 with a 64-bit size
# Boxes a playable file can start with: ISO files open with ftyp; old QuickTime files have none.
_FIRST_BOX_TYPES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


class MediaInfo(BaseModel):
    """What probe_video learnt about a video, and what reading it cost."""

    model_config = ConfigDict(frozen=True)

    container: Literal["mp4", "mov", "mkv", "webm"]
    brand: str
    size_bytes: int
    duration_seconds: float | None
    #: As displayed: the coded size turned by `rotation` (a portrait phone clip is taller).
    width: int | None
    height: int | None
    #: Clockwise degrees the player turns the picture (0, 90, 180, 270: the display matrix).
    rotation: int = 0
    #: The size the frames are stored at (the sample entry's).
    coded_width: int | None = None
    coded_height: int | None = None
    video_codec: str | None
    audio_codec: str | None
    #: Frames per second of the video track: its sample count over its media duration (stts,
    #: mdhd); for a fragmented file, its timescale over the default sample duration (trex).
    #: An average for a variable-rate clip; None when the index does not say.
    frame_rate: float | None = None
    #: Bits per luma sample (8, 10, ...) from the sample entry's avcC or hvcC; None when unknown.
    bit_depth: int | None = None
    #: Chroma subsampling ("4:2:0", "4:2:2", "4:4:4", "4:0:0") from avcC or hvcC; None: unknown.
    chroma: str | None = None
    #: How many video tracks the file has, and the track ID (tkhd) of the one described here:
    #: the one a player plays (enabled, then the longest, then the largest).
    video_tracks: int = 1
    video_track_id: int | None = None
    bytes_read: int
    reads: int


def probe_video(
    read: RangeReader,
    size: int,
    *,
    max_index_bytes: int = MAX_INDEX_BYTES,
    ranged: bool = True,
) -> MediaInfo:
    """Container, duration, size and codecs of an MP4/MOV of `size` bytes, read through `read`.

    Raises NotAVideo (with a sentence for the user) for anything that is not a playable MP4/MOV
    with a video track. Reads the first 64 KiB, 16 bytes per top-level box after that (a 64 KiB
    window when boxes come close together), and the index whole (refused above max_index_bytes);
    media data is never read, and at most MAX_READS reads are made. Boxes after the index are
    still walked, so a cut-short mdat after a front index is caught, except in fragmented files,
    whose many moof/mdat pairs would each cost a read. `ranged=False` (the bytes are in memory:
    dropcut.formats.stream_probe) reads exactly what is parsed, with no read cap.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, not {size}")
    if size == 0:
        raise NotAVideo("the file is empty (0 bytes)", detected="zero bytes")
    reader = _CountingReader(read, size, ranged=ranged)
    head = reader(0, HEAD_BYTES)
    if head[4:8] not in _FIRST_BOX_TYPES:
        raise _not_an_mp4(head, whole_file=len(head) == size)

    brand: bytes | None = None
    index: _Index | None = None
    offset = 0
    for _ in range(MAX_TOP_LEVEL_BOXES):
        if offset >= size:
            break
        found = _next_box(reader, head, offset, size, after_index=index is not None)
        if found is None:
            break  # padding or junk after a complete file does not stop it playing
        box, header = found
        if box.type == b"ftyp" and brand is None:
            brand = _major_brand(header, box)
        elif box.type == b"moov" and index is None:
            index = _read_index(reader, head, box, max_index_bytes, size)
            if index.fragmented:
                break  # the rest is moof/mdat pairs: checking them all would mean a read each
        offset = box.end
    else:
        if index is None:
            raise NotAVideo(
                f"the file is not a valid MP4/MOV video: it has more than {MAX_TOP_LEVEL_BOXES} "
                "boxes before its index"
            )
    if index is None:
        raise NotAVideo(
            "the file has no index (moov box): it is truncated or still being written",
            detected="truncated",
        )

    return _media_info(index, brand, size, reader)


def _media_info(
    index: _Index, brand: bytes | None, size: int, reader: _CountingReader
) -> MediaInfo:
    video = _video_track(index)
    width, height = video.tkhd_width, video.tkhd_height
    if not (width and height):
        width, height = video.entry_width, video.entry_height
    coded = (video.entry_width or width, video.entry_height or height)
    if video.rotation in (90, 270):  # tkhd's size is before the rotation: shown turned
        width, height = height, width
    return MediaInfo(
        coded_width=coded[0] or None,
        coded_height=coded[1] or None,
        rotation=video.rotation,
        container="mov" if brand is None or brand == b"qt  " else "mp4",
        brand=(brand or b"").decode("latin-1").strip(),
        size_bytes=size,
        duration_seconds=_duration(video, index),
        width=width or None,
        height=height or None,
        video_codec=video.codec,
        audio_codec=index.audio.codec if index.audio is not None else None,
        frame_rate=_frame_rate(video, index),
        bit_depth=video.bit_depth,
        chroma=video.chroma,
        video_tracks=sum(1 for track in index.tracks if track.handler == b"vide"),
        video_track_id=video.track_id or None,
        bytes_read=reader.bytes_read,
        reads=reader.reads,
    )


class _CountingReader:
    """The caller's reader, clamped to the file, counted and bounded; a short answer means a
    short file. Small reads close together (a run of tiny boxes) are served from one window of
    READ_AHEAD_BYTES, so a file made of thousands of boxes costs a few reads, not one each."""

    def __init__(self, read: RangeReader, size: int, *, ranged: bool = True) -> None:
        self._read = read
        self._size = size
        self._ranged = ranged
        self.bytes_read = 0
        self.reads = 0
        self._window = (0, b"")
        self._last_small: int | None = None

    def __call__(self, offset: int, length: int) -> bytes:
        length = min(length, self._size - offset)
        if length <= 0:
            return b""
        start, window = self._window
        if start <= offset and offset + length <= start + len(window):
            return window[offset - start : offset - start + length]
        wanted = length
        if self._ranged and length < READ_AHEAD_BYTES:
            dense = (
                self._last_small is not None and 0 <= offset - self._last_small < READ_AHEAD_BYTES
            )
            self._last_small = offset
            if dense:
                wanted = min(READ_AHEAD_BYTES, self._size - offset)
        data = self._fetch(offset, wanted)
        if wanted > length:
            self._window = (offset, data)
        return data[:length]

    def _fetch(self, offset: int, length: int) -> bytes:
        if self._ranged and self.reads >= MAX_READS:
            raise NotAVideo(
                f"the file is not a valid MP4/MOV video: it has too many boxes to check "
                f"({MAX_READS} reads) before its index"
            )
        self.reads += 1
        self.bytes_read += length
        data = bytes(self._read(offset, length))[:length]
        if len(data) < length:
            raise NotAVideo(
                f"the file is truncated: it ends at byte {offset + len(data)}, "
                f"not at byte {self._size} as its size says",
                detected="truncated",
            )
        return data


def _read_index(
    reader: _CountingReader, head: bytes, box: _Box, max_bytes: int, size: int
) -> _Index:
    """The moov box, read whole (at most `max_bytes`) and parsed; raises NotAVideo for an index
    that is too big or has no video track."""
    if box.size > max_bytes:
        raise NotAVideo(
            f"the file's index (moov box) is {_human_bytes(box.size)}, over the "
            f"{_human_bytes(max_bytes)} limit"
        )
    index = _parse_moov(_read_box(reader, head, box), box)
    _video_track(index)  # before spending reads on the rest of the file
    if index.fragmented and index.duration_seconds is None:
        # No mvhd or mehd duration: the last fragment says where the file ends (via mfra).
        index.duration_seconds = _fragmented_duration(reader, size, index)
    return index


def _next_box(
    reader: _CountingReader, head: bytes, offset: int, size: int, *, after_index: bool
) -> tuple[_Box, bytes] | None:
    """The top-level box at `offset`, checked, and its header bytes; None for junk after a
    complete index.

    Raises NotAVideo for a cut-short or malformed box before the index is complete."""
    if offset + BOX_HEADER_BYTES <= len(head) or len(head) == size:
        header = head[offset : offset + BOX_HEADER_BYTES]
    else:
        header = reader(offset, BOX_HEADER_BYTES)
    box = parse_box_header(header, offset, size)
    if box is None or not _plausible_fourcc(box.type) or box.size < box.header_size:
        if after_index:
            return None
        if box is None:
            raise NotAVideo(
                f"the file is truncated: it ends {size - offset} bytes into a box header "
                f"at byte {offset}",
                detected="truncated",
            )
        raise NotAVideo(
            f"the file is not a valid MP4/MOV video: the data at byte {offset} "
            "is not an MP4/MOV box"
        )
    if box.end > size:
        raise NotAVideo(
            f"the file is truncated: box '{box.name}' at byte {offset} claims {box.size} bytes "
            f"but the file ends at {size}",
            detected="truncated",
        )
    return box, header


def _major_brand(header: bytes, ftyp: _Box) -> bytes:
    brand = header[ftyp.header_size : ftyp.header_size + 4]
    if ftyp.size < ftyp.header_size + 4 or len(brand) < 4:
        raise NotAVideo(
            "the file is not a valid MP4/MOV video: its ftyp box is too short",
            detected="truncated",
        )
    image = HEIF_BRANDS.get(brand)
    if image is not None:
        raise NotAVideo(
            f"the file is {'a HEIC' if image == 'heic' else 'an AVIF'} image, not an MP4/MOV video",
            detected=image,
        )
    return brand


def _read_box(reader: _CountingReader, head: bytes, box: _Box) -> bytes:
    """The whole box in at most one read, reusing what the first read already holds."""
    if box.end <= len(head):
        return head[box.offset : box.end]
    if box.offset < len(head):
        return head[box.offset :] + reader(len(head), box.end - len(head))
    return reader(box.offset, box.size)


@dataclass
class _Track:
    handler: bytes | None = None
    track_id: int = 0
    #: tkhd's track_enabled flag: a disabled track is not played.
    enabled: bool = True
    timescale: int = 0
    codec: str | None = None
    tkhd_width: int = 0
    tkhd_height: int = 0
    rotation: int = 0
    entry_width: int = 0
    entry_height: int = 0
    #: The media duration in `timescale` units (mdhd; 0 when unknown, as in fragmented files).
    media_duration: int = 0
    #: Samples (frames) listed in the time-to-sample table (stts), and their summed durations.
    sample_count: int = 0
    stts_duration: int = 0
    bit_depth: int | None = None
    chroma: str | None = None


def _duration(video: _Track, index: _Index) -> float | None:
    """The movie's duration (mvhd: its longest track), or the chosen video track's own (mdhd)
    when the file has several video tracks."""
    videos = sum(1 for track in index.tracks if track.handler == b"vide")
    if videos > 1 and video.timescale and video.media_duration:
        return video.media_duration / video.timescale
    return index.duration_seconds


def _played_first(track: _Track) -> tuple[bool, float, int]:
    seconds = track.media_duration / track.timescale if track.timescale else 0.0
    return track.enabled, seconds, track.tkhd_width * track.tkhd_height


def _frame_rate(video: _Track, index: _Index) -> float | None:
    """Frames per second: samples over media duration, or a fragmented file's default sample
    duration (ISO/IEC 14496-12, 8.4.2 mdhd, 8.6.1.2 stts, 8.8.3 trex); None when unknown."""
    if not video.timescale:
        return None
    duration = video.media_duration or video.stts_duration
    if video.sample_count and duration:
        return round(video.sample_count * video.timescale / duration, 3)
    default = index.trex_durations.get(video.track_id, 0)
    if index.fragmented and default:
        return round(video.timescale / default, 3)
    return None


@dataclass
class _Index:
    duration_seconds: float | None = None
    fragmented: bool = False
    #: Per track id: the default sample duration of its fragments (mvex/trex).
    trex_durations: dict[int, int] = field(default_factory=dict)
    tracks: list[_Track] = field(default_factory=list)

    @property
    def video(self) -> _Track | None:
        """The video track a player plays: an enabled one, then the longest, then the largest
        (the first of equals); a file's preview or alternate angle is another track."""
        videos = [t for t in self.tracks if t.handler == b"vide"]
        return max(videos, key=_played_first, default=None)

    @property
    def audio(self) -> _Track | None:
        return next((t for t in self.tracks if t.handler == b"soun"), None)


#: Largest mfra or moof read to find a fragmented file's duration.
MAX_FRAGMENT_INDEX_BYTES = 1024 * 1024


def _fragmented_duration(reader: _CountingReader, size: int, index: _Index) -> float | None:
    """A fragmented file's duration (s) from its last video fragment: the movie fragment random
    access box (mfra, found through the mfro box that ends the file) gives the last fragment's
    offset; its tfdt and trun give where it ends. None when the file has no mfra. Three reads.
    (ISO/IEC 14496-12, 8.8.9-8.8.13.)"""
    video = _video_track(index)
    tail = reader(size - 16, 16) if size >= 16 else b""
    if tail[4:8] != b"mfro" or not video.timescale:
        return None
    mfra_size = int.from_bytes(tail[12:16], "big")
    if not 16 < mfra_size <= min(size, MAX_FRAGMENT_INDEX_BYTES):
        return None
    mfra = reader(size - mfra_size, mfra_size)
    box = parse_box_header(mfra[:16], 0, len(mfra))
    if box is None or box.type != b"mfra":
        return None
    last_moof = max(
        (
            offset
            for tfra in _children(mfra, box, size - mfra_size)
            if tfra.type == b"tfra"
            for offset in _tfra_moofs(mfra, tfra, size - mfra_size, video.track_id)
        ),
        default=None,
    )
    if last_moof is None or last_moof + 16 > size:
        return None
    moof_box = parse_box_header(reader(last_moof, 16), 0, size - last_moof)
    if moof_box is None or moof_box.type != b"moof" or moof_box.size > MAX_FRAGMENT_INDEX_BYTES:
        return None
    moof = reader(last_moof, moof_box.size)
    end = _fragment_end(moof, replace(moof_box, offset=0), last_moof, video, index)
    return end / video.timescale if end else None


def _tfra_moofs(mfra: bytes, tfra: _Box, file_offset: int, track_id: int) -> list[int]:
    """The moof offsets a tfra box lists for `track_id`."""
    fields = _Fields(mfra, tfra, file_offset)
    if fields.uint(4, 4) != track_id:
        return []
    wide = fields.uint(0, 1) == 1
    sizes = fields.uint(8, 4)
    entry = (16 if wide else 8) + sum(((sizes >> shift) & 3) + 1 for shift in (4, 2, 0))
    count = fields.uint(12, 4)
    if count * entry > tfra.size:
        raise NotAVideo("the file is damaged: its fragment index lists more than it holds")
    offset_at = 8 if wide else 4
    return [fields.uint(16 + i * entry + offset_at, offset_at) for i in range(count)]


def _fragment_end(moof: bytes, box: _Box, file_offset: int, video: _Track, index: _Index) -> int:
    """Where the video track's samples in this moof end, in its timescale (0: unknown)."""
    for traf in _children(moof, box, file_offset):
        if traf.type != b"traf":
            continue
        start, default, durations, ours = 0, index.trex_durations.get(video.track_id, 0), 0, False
        for child in _children(moof, traf, file_offset):
            fields = _Fields(moof, child, file_offset)
            flags = fields.uint(1, 3)
            if child.type == b"tfhd":
                ours = fields.uint(4, 4) == video.track_id
                at = 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                default = fields.uint(at, 4) if flags & 0x08 else default
            elif child.type == b"tfdt":
                start = fields.uint(4, 8) if fields.uint(0, 1) == 1 else fields.uint(4, 4)
            elif child.type == b"trun":
                durations += _trun_duration(fields, flags, default)
        if ours:
            return start + durations
    return 0


def _trun_duration(fields: _Fields, flags: int, default: int) -> int:
    """The summed sample durations of a trun box (per sample, or `default` each)."""
    count = fields.uint(4, 4)
    if not flags & 0x100:
        return count * default
    at = 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
    per_sample = 4 * sum(1 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
    return sum(fields.uint(at + i * per_sample, 4) for i in range(count))


def _video_track(index: _Index) -> _Track:
    if index.video is None:
        raise NotAVideo(
            "the file has no video track",
            detected="audio" if index.audio is not None else None,
        )
    return index.video


def _parse_moov(moov: bytes, box_in_file: _Box) -> _Index:
    """Duration and tracks from the index; `moov` is the whole box, header included."""
    root = replace(box_in_file, offset=0)
    file_offset = box_in_file.offset
    index = _Index()
    timescale = duration = fragment_duration = 0
    for box in _children(moov, root, file_offset):
        fields = _Fields(moov, box, file_offset)
        if box.type == b"mvhd":
            if fields.uint(0, 1) == 1:
                timescale, duration = fields.uint(20, 4), fields.uint(24, 8)
                unknown = 0xFFFF_FFFF_FFFF_FFFF
            else:
                timescale, duration = fields.uint(12, 4), fields.uint(16, 4)
                unknown = 0xFFFF_FFFF
            if duration == unknown:
                duration = 0
        elif box.type == b"mvex":
            index.fragmented = True
            for child in _children(moov, box, file_offset):
                child_fields = _Fields(moov, child, file_offset)
                if child.type == b"mehd":
                    width = 8 if child_fields.uint(0, 1) == 1 else 4
                    fragment_duration = child_fields.uint(4, width)
                elif child.type == b"trex":
                    index.trex_durations[child_fields.uint(4, 4)] = child_fields.uint(12, 4)
        elif box.type == b"trak":
            index.tracks.append(_parse_trak(moov, box, file_offset))
        elif box.type == b"cmov":
            raise NotAVideo(
                "the file's index is compressed (an old QuickTime format), which is not supported"
            )
    # Fragmented files may leave the mvhd duration 0 and give the total in mehd, if anywhere.
    total = duration or fragment_duration
    if timescale and total:
        index.duration_seconds = total / timescale
    return index


def _parse_trak(moov: bytes, trak: _Box, file_offset: int) -> _Track:
    track = _Track()
    for box in _children(moov, trak, file_offset):
        if box.type == b"tkhd":
            fields = _Fields(moov, box, file_offset)
            # width and height end the box: 16.16 fixed point, after fields whose size depends
            # on the version
            at = 88 if fields.uint(0, 1) == 1 else 76
            track.track_id = fields.uint(20 if fields.uint(0, 1) == 1 else 12, 4)
            track.enabled = bool(fields.uint(1, 3) & 0x000001)
            track.tkhd_width = round(fields.uint(at, 4) / 65536)
            track.tkhd_height = round(fields.uint(at + 4, 4) / 65536)
            # The display matrix {a, b, u, c, d, v, x, y, w} precedes them; a = cos, b = sin
            # of the rotation, 16.16 fixed point (ISO/IEC 14496-12, 8.3.2 and 6.2.2).
            a, b = _signed32(fields.uint(at - 36, 4)), _signed32(fields.uint(at - 32, 4))
            track.rotation = round(math.degrees(math.atan2(b, a)) / 90) * 90 % 360
        elif box.type == b"mdia":
            _parse_mdia(moov, box, file_offset, track)
    return track


def _parse_mdia(moov: bytes, mdia: _Box, file_offset: int, track: _Track) -> None:
    # QuickTime also puts a data-handler hdlr inside minf; only the one directly in mdia says
    # whether the track is video or sound.
    for box in _children(moov, mdia, file_offset):
        if box.type == b"hdlr":
            track.handler = _Fields(moov, box, file_offset).fourcc(8)
        elif box.type == b"mdhd":
            _parse_mdhd(_Fields(moov, box, file_offset), track)
    for minf in _children(moov, mdia, file_offset):
        if minf.type != b"minf":
            continue
        for stbl in _children(moov, minf, file_offset):
            if stbl.type != b"stbl":
                continue
            for table in _children(moov, stbl, file_offset):
                if table.type == b"stsd":
                    _parse_stsd(moov, table, file_offset, track)
                elif table.type == b"stts" and track.handler == b"vide":
                    _parse_stts(_Fields(moov, table, file_offset), track)


def _parse_mdhd(fields: _Fields, track: _Track) -> None:
    """The media timescale and duration (version 1: 64-bit times; all ones: unknown)."""
    if fields.uint(0, 1) == 1:
        track.timescale, track.media_duration = fields.uint(20, 4), fields.uint(24, 8)
        unknown = 0xFFFF_FFFF_FFFF_FFFF
    else:
        track.timescale, track.media_duration = fields.uint(12, 4), fields.uint(16, 4)
        unknown = 0xFFFF_FFFF
    if track.media_duration == unknown:
        track.media_duration = 0


def _parse_stts(fields: _Fields, track: _Track) -> None:
    """Sum the time-to-sample table: (sample count, sample delta) pairs after the entry count."""
    for entry in range(fields.uint(4, 4)):
        count = fields.uint(8 + entry * 8, 4)
        track.sample_count += count
        track.stts_duration += count * fields.uint(12 + entry * 8, 4)


def _parse_stsd(moov: bytes, stsd: _Box, file_offset: int, track: _Track) -> None:
    fields = _Fields(moov, stsd, file_offset)
    if fields.uint(4, 4) == 0:  # no sample entries
        return
    # The first sample entry starts 8 bytes in: its size, then its format fourcc (the codec).
    track.codec = fields.fourcc(12).decode("latin-1")
    if track.handler == b"vide":
        # A visual sample entry: 6 reserved + 2 data-reference + 16 bytes before width, height.
        track.entry_width = fields.uint(8 + 32, 2)
        track.entry_height = fields.uint(8 + 34, 2)
        with contextlib.suppress(NotAVideo):  # a damaged extension box: both stay unknown
            track.bit_depth, track.chroma = _entry_format(moov, stsd, file_offset)


#: A visual sample entry's fixed fields after its 8-byte header; its extension boxes follow
#: (ISO/IEC 14496-12, 12.1.3: reserved, data reference index, sizes, resolution, compressor
#: name, depth).
_VISUAL_ENTRY_FIELDS = 78
#: H.264 profile_idc values whose streams may be more than 8 bits deep when avcC does not say:
#: High 10, High 4:2:2 and High 4:4:4 Predictive (ITU-T H.264, A.2).
_AVC_DEEP_PROFILES = frozenset({44, 110, 122, 244})
#: profile_idc values whose avcC may end with chroma format and bit depths: ISO/IEC 14496-15,
#: 5.3.3.1 lists 100, 110, 122 and 144; FFmpeg (ff_isom_write_avcc) writes them for every
#: profile but 66, 77 and 88: 44 (CAVLC 4:4:4 Intra) and 244 (High 4:4:4 Predictive) too.
_AVC_HIGH_PROFILES = frozenset({44, 100, 110, 122, 144, 244})
#: The chroma subsampling without avcC's extension, by profile (ITU-T H.264, A.2): what the
#: profile allows at most; 4:2:0 for the others.
_AVC_PROFILE_CHROMA = {44: "4:4:4", 122: "4:2:2", 244: "4:4:4"}
#: chroma_format_idc (H.264 and HEVC alike) as its subsampling.
_CHROMA_FORMATS = {0: "4:0:0", 1: "4:2:0", 2: "4:2:2", 3: "4:4:4"}


def _entry_format(moov: bytes, stsd: _Box, file_offset: int) -> tuple[int | None, str | None]:
    """Bits per luma sample and chroma subsampling from the first sample entry's avcC or hvcC
    box ((None, None): neither)."""
    entry = parse_box_header(moov[stsd.payload + 8 : stsd.payload + 24], stsd.payload + 8, stsd.end)
    if entry is None or entry.end > stsd.end or entry.size < 8 + _VISUAL_ENTRY_FIELDS:
        return None, None
    extensions = _Box(
        entry.type, entry.offset + _VISUAL_ENTRY_FIELDS, 8, entry.size - _VISUAL_ENTRY_FIELDS
    )
    for child in _children(moov, extensions, file_offset):
        fields = _Fields(moov, child, file_offset)
        if child.type == b"hvcC":
            # chromaFormat and bitDepthLumaMinus8 in the low bits of bytes 16 and 17 (ISO/IEC
            # 14496-15, 8.3.3.1.2).
            return (fields.uint(17, 1) & 0x07) + 8, _CHROMA_FORMATS[fields.uint(16, 1) & 0x03]
        if child.type == b"avcC":
            return _avc_format(fields, child)
    return None, None


def _avc_format(fields: _Fields, avcc: _Box) -> tuple[int, str]:
    """avcC's bit_depth_luma_minus8 + 8 and chroma_format_idc where the box carries them, else
    what profile_idc implies."""
    profile = fields.uint(1, 1)
    at = 6
    for _ in range(fields.uint(5, 1) & 0x1F):  # sequence parameter sets
        at += 2 + fields.uint(at, 2)
    pps = fields.uint(at, 1)
    at += 1
    for _ in range(pps):
        at += 2 + fields.uint(at, 2)
    if profile in _AVC_HIGH_PROFILES and avcc.payload + at + 2 <= avcc.end:
        chroma = _CHROMA_FORMATS[fields.uint(at, 1) & 0x03]
        return (fields.uint(at + 1, 1) & 0x07) + 8, chroma
    return (10 if profile in _AVC_DEEP_PROFILES else 8), _AVC_PROFILE_CHROMA.get(profile, "4:2:0")


def _not_an_mp4(head: bytes, *, whole_file: bool) -> NotAVideo:
    """Name what the file is instead, when its first bytes are not an MP4/MOV box."""
    detected, noun = identify(head, whole_file=whole_file)
    if noun is None:
        return NotAVideo(
            "the file is not an MP4/MOV video (its first bytes are not an MP4/MOV header)"
        )
    return NotAVideo(f"the file is {noun}, not an MP4/MOV video", detected=detected)


def _human_bytes(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    if count < 1_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"
