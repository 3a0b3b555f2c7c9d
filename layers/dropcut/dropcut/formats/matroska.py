"""Matroska and WebM files (an OBS recording, a browser's MediaRecorder file): the facts Submit
needs to plan a job, from ranged reads of the file's start, and of its end when the index gives
no duration (a live recording). Prepare converts them to MP4 (dropcut.model.plan).

Sources: RFC 8794 (EBML: element IDs and sizes as variable-length integers) and RFC 9559
(Matroska: the Segment, its SeekHead, Info, Tracks and Clusters); WebM is Matroska restricted to
VP8, VP9 and AV1 video with Vorbis or Opus audio.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from dropcut.formats.probe import MediaInfo, NotAVideo, RangeReader

#: The first four bytes of every EBML file (the EBML header's element ID).
MAGIC = b"\x1a\x45\xdf\xa3"
#: Read first: Info and Tracks sit at the start of files from FFmpeg, OBS and browsers.
HEAD_BYTES = 64 * 1024
#: Read from the end for a file whose Info gives no duration (its last Cluster's time).
TAIL_BYTES = 1024 * 1024
#: Largest Info or Tracks element read where the SeekHead points, past the head.
MAX_ELEMENT_BYTES = 1024 * 1024

_EBML, _DOC_TYPE, _SEGMENT = 0x1A45DFA3, 0x4282, 0x18538067
_SEEK_HEAD, _SEEK, _SEEK_ID, _SEEK_POSITION = 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC
_INFO, _TIMESTAMP_SCALE, _DURATION = 0x1549A966, 0x2AD7B1, 0x4489
_TRACKS, _TRACK_ENTRY, _TRACK_TYPE, _CODEC_ID = 0x1654AE6B, 0xAE, 0x83, 0x86
_DEFAULT_DURATION, _VIDEO, _PIXEL_WIDTH, _PIXEL_HEIGHT = 0x23E383, 0xE0, 0xB0, 0xBA
_CLUSTER, _CLUSTER_TIMESTAMP, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK = (
    0x1F43B675,
    0xE7,
    0xA3,
    0xA0,
    0xA1,
)
MAGIC_CLUSTER = _CLUSTER.to_bytes(4, "big")
_VIDEO_TRACK, _AUDIO_TRACK = 1, 2
_NANOSECONDS = 1_000_000_000

#: Matroska codec IDs as the MP4 sample entries the rest of dropcut names codecs by
#: (dropcut.model.media_limits); another ID is passed on as it is (and refused there).
VIDEO_CODECS = {
    "V_MPEG4/ISO/AVC": "avc1",
    "V_MPEGH/ISO/HEVC": "hvc1",
    "V_AV1": "av01",
    "V_VP8": "vp08",
    "V_VP9": "vp09",
    "V_MPEG4/ISO/ASP": "mp4v",
    "V_MJPEG": "jpeg",
    "V_PRORES": "apcn",
}
AUDIO_CODECS = {
    "A_AAC": "mp4a",
    "A_OPUS": "opus",
    "A_VORBIS": "vorbis",
    "A_MPEG/L3": "mp3",
    "A_FLAC": "flac",
    "A_AC3": "ac-3",
    "A_EAC3": "ec-3",
    "A_PCM/INT/LIT": "lpcm",
}

_Element = tuple[int, int, int]  # element ID, where its data starts, where it ends (in the buffer)


def is_matroska(head: bytes) -> bool:
    """True when `head` (the file's first bytes) starts an EBML file (Matroska or WebM)."""
    return head.startswith(MAGIC)


def probe_matroska(read: RangeReader, size: int) -> MediaInfo:
    """Container, duration, size, codecs and picture size of a Matroska or WebM file of `size`
    bytes, read through `read`: the first HEAD_BYTES, each Info or Tracks element the SeekHead
    places further on (MAX_ELEMENT_BYTES at most), and the last TAIL_BYTES when Info has no
    duration. Raises NotAVideo (not EBML, no video track, damaged)."""
    reads = [0, 0]

    def fetch(offset: int, length: int) -> bytes:
        data = read(offset, min(length, size - offset))
        reads[0] += 1
        reads[1] += len(data)
        return data

    head = fetch(0, HEAD_BYTES)
    if not is_matroska(head):
        raise NotAVideo("the file is not a Matroska or WebM video")
    doc_type, segment = _header(head)
    info, tracks = _segment_metadata(head, segment, size, fetch)
    if tracks is None:
        raise NotAVideo("the file's track list (Matroska Tracks) could not be found")
    video, audio = tracks
    if video is None:
        raise NotAVideo("the file has no video track", detected="audio" if audio else None)
    scale, duration = info
    seconds = duration * scale / _NANOSECONDS if duration else None
    if seconds is None:
        seconds = _last_cluster_seconds(fetch(max(0, size - TAIL_BYTES), TAIL_BYTES), scale)
    codec, width, height, frame_ns = video
    return MediaInfo(
        container="webm" if doc_type == "webm" else "mkv",
        brand=doc_type,
        size_bytes=size,
        duration_seconds=seconds,
        width=width or None,
        height=height or None,
        coded_width=width or None,
        coded_height=height or None,
        video_codec=VIDEO_CODECS.get(codec, codec),
        audio_codec=AUDIO_CODECS.get(audio, audio) if audio else None,
        frame_rate=round(_NANOSECONDS / frame_ns, 3) if frame_ns else None,
        bytes_read=reads[1],
        reads=reads[0],
    )


def _header(head: bytes) -> tuple[str, _Element]:
    """The DocType of the EBML header, and the Segment that follows it."""
    elements = _elements(head, 0, len(head))
    ebml = next(elements, None)
    if ebml is None or ebml[0] != _EBML:
        raise NotAVideo(
            "the Matroska/WebM file is damaged: its EBML header is unreadable", detected="truncated"
        )
    doc_type = next((_text(head, e) for e in _elements(head, ebml[1], ebml[2]) if e[0] == _DOC_TYPE), "")  # fmt: skip
    if doc_type not in ("matroska", "webm"):
        raise NotAVideo(f"the file is an EBML document of type {doc_type!r}, not a video")
    segment = next((e for e in elements if e[0] == _SEGMENT), None)
    if segment is None:
        raise NotAVideo(
            "the Matroska/WebM file is truncated: it has no Segment", detected="truncated"
        )
    return doc_type, segment


def _segment_metadata(
    head: bytes, segment: _Element, size: int, fetch: RangeReader
) -> tuple[tuple[int, float | None], tuple[tuple[str, int, int, int] | None, str | None] | None]:
    """((timestamp scale, duration), (video track, audio codec)) from the Segment's Info and
    Tracks: in the head, or where its SeekHead says."""
    info: tuple[int, float | None] = (1_000_000, None)
    tracks = None
    pointers: dict[int, int] = {}
    found_info = False
    for element in _elements(head, segment[1], segment[2]):
        kind = element[0]
        if kind == _CLUSTER:
            break
        if element[2] > len(head):
            continue  # runs past the head: read where the SeekHead points, below
        if kind == _SEEK_HEAD:
            pointers.update(_seek_positions(head, element, segment[1]))
        elif kind == _INFO:
            info, found_info = _info(head, element), True
        elif kind == _TRACKS:
            tracks = _tracks(head, element)
    for kind, position in pointers.items():
        if (kind == _INFO and found_info) or (kind == _TRACKS and tracks is not None):
            continue
        if kind not in (_INFO, _TRACKS) or not 0 <= position < size:
            continue
        buf = fetch(position, 16)
        header = next(_elements(buf, 0, len(buf)), None)
        if header is None or header[0] != kind:
            continue
        length = header[1] + min(header[2] - header[1], MAX_ELEMENT_BYTES)
        buf = fetch(position, length)
        element = (kind, header[1], min(len(buf), length))
        if kind == _INFO:
            info = _info(buf, element)
        else:
            tracks = _tracks(buf, element)
    return info, tracks


def _seek_positions(buf: bytes, seek_head: _Element, segment_start: int) -> dict[int, int]:
    """Each level-1 element the SeekHead points at: its ID -> its offset in the file."""
    found: dict[int, int] = {}
    for seek in _elements(buf, seek_head[1], seek_head[2]):
        if seek[0] != _SEEK:
            continue
        fields = {e[0]: buf[e[1] : e[2]] for e in _elements(buf, seek[1], seek[2])}
        if _SEEK_ID in fields and _SEEK_POSITION in fields:
            kind = int.from_bytes(fields[_SEEK_ID], "big")
            found.setdefault(kind, segment_start + int.from_bytes(fields[_SEEK_POSITION], "big"))
    return found


def _info(buf: bytes, info: _Element) -> tuple[int, float | None]:
    scale, duration = 1_000_000, None
    for kind, start, end in _elements(buf, info[1], info[2]):
        if kind == _TIMESTAMP_SCALE:
            scale = int.from_bytes(buf[start:end], "big") or scale
        elif kind == _DURATION and end - start in (4, 8):
            duration = struct.unpack(">f" if end - start == 4 else ">d", buf[start:end])[0]
    return scale, duration if duration and duration > 0 else None


def _tracks(buf: bytes, tracks: _Element) -> tuple[tuple[str, int, int, int] | None, str | None]:
    """The first video track (codec ID, width, height, ns a frame) and audio track's codec ID."""
    video, audio = None, None
    for entry in _elements(buf, tracks[1], tracks[2]):
        if entry[0] != _TRACK_ENTRY:
            continue
        fields = {e[0]: e for e in _elements(buf, entry[1], entry[2])}
        kind = _uint(buf, fields.get(_TRACK_TYPE))
        codec = _text(buf, fields[_CODEC_ID]) if _CODEC_ID in fields else ""
        if kind == _VIDEO_TRACK and video is None:
            picture = {e[0]: e for e in _elements(buf, *fields[_VIDEO][1:])} if _VIDEO in fields else {}  # fmt: skip
            video = (
                codec,
                _uint(buf, picture.get(_PIXEL_WIDTH)),
                _uint(buf, picture.get(_PIXEL_HEIGHT)),
                _uint(buf, fields.get(_DEFAULT_DURATION)),
            )
        elif kind == _AUDIO_TRACK and audio is None:
            audio = codec
    return video, audio


def _last_cluster_seconds(tail: bytes, scale: int) -> float | None:
    """The time (s) of the last block in the tail's last readable Cluster: the duration of a
    file whose Info has none (a live recording), to within one frame. None when none is found."""
    at = len(tail)
    for _ in range(8):  # the ID's bytes may also occur inside media data: try a few
        at = tail.rfind(MAGIC_CLUSTER, 0, at)
        if at < 0:
            return None
        try:
            cluster = next(_elements(tail, at, len(tail)))
            blocks = list(_elements(tail, cluster[1], cluster[2]))
        except (NotAVideo, StopIteration):
            continue
        base = next((_uint(tail, e) for e in blocks if e[0] == _CLUSTER_TIMESTAMP), None)
        if base is None:
            continue
        latest = max((_block_time(tail, e) for e in blocks), default=0)
        return (base + latest) * scale / _NANOSECONDS
    return None


def _block_time(buf: bytes, element: _Element) -> int:
    """A SimpleBlock's (or a BlockGroup's Block's) time relative to its Cluster; 0 otherwise."""
    kind, start, end = element
    if kind == _BLOCK_GROUP:
        block = next((e for e in _elements(buf, start, end) if e[0] == _BLOCK), None)
        return _block_time(buf, (_SIMPLE_BLOCK, block[1], block[2])) if block else 0
    if kind != _SIMPLE_BLOCK or end - start < 4:
        return 0
    _, track_length = _vint(buf, start)  # the track number, then a signed 16-bit time
    at = start + track_length
    return int.from_bytes(buf[at : at + 2], "big", signed=True) if at + 2 <= end else 0


def _elements(buf: bytes, start: int, end: int) -> Iterator[_Element]:
    """The elements from `start` to `end` of `buf`: (ID, data start, data end as declared, which
    may lie past the buffer: a head cuts the file short). An element of unknown size ends at
    `end`. Stops where the buffer does."""
    at = start
    while at < min(end, len(buf)):
        kind, id_length = _element_id(buf, at)
        size, size_length = _vint(buf, at + id_length)
        data = at + id_length + size_length
        if data > len(buf):
            return
        if size is None:
            yield kind, data, end
            return
        yield kind, data, data + size
        at = data + size


def _element_id(buf: bytes, at: int) -> tuple[int, int]:
    """An element ID (its marker bits kept, as the specification writes IDs) and its length."""
    if at >= len(buf) or buf[at] < 0x10:
        raise NotAVideo(
            "the Matroska/WebM file is damaged: an element ID is invalid", detected="truncated"
        )
    length = 9 - buf[at].bit_length()
    return int.from_bytes(buf[at : at + length], "big"), length


def _vint(buf: bytes, at: int) -> tuple[int | None, int]:
    """A variable-length size (None: unknown, all ones) and its length in bytes (1-8)."""
    if at >= len(buf) or buf[at] == 0:
        raise NotAVideo(
            "the Matroska/WebM file is damaged: an element size is invalid", detected="truncated"
        )
    length = 9 - buf[at].bit_length()
    value = int.from_bytes(buf[at : at + length], "big") & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), length


def _uint(buf: bytes, element: _Element | None) -> int:
    return int.from_bytes(buf[element[1] : element[2]], "big") if element else 0


def _text(buf: bytes, element: _Element) -> str:
    return buf[element[1] : element[2]].rstrip(b"\0").decode("ascii", "replace")
