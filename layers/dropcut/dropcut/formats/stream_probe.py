"""probe_video for a file that streams past once (a download being copied)."""

from __future__ import annotations

from dropcut.formats.probe import (
    BOX_HEADER_BYTES,
    HEAD_BYTES,
    MAX_INDEX_BYTES,
    MAX_TOP_LEVEL_BOXES,
    MediaInfo,
    parse_box_header,
    probe_video,
)


class StreamProbe:
    """probe_video for a file that streams past once (a download being copied): fed the chunks
    in order, it keeps only what probe_video reads (the first 64 KiB, each top-level box header,
    the index whole) and probes that when the stream ends. Memory: the index plus 64 KiB."""

    def __init__(self, max_index_bytes: int = MAX_INDEX_BYTES) -> None:
        self._max_index_bytes = max_index_bytes
        self._head = bytearray()
        self._headers: dict[int, bytes] = {}
        self._index_at: int | None = None
        self._index_end = 0
        self._index = bytearray()
        self._position = 0
        self._next_box: int | None = 0  # None: stop following boxes (junk, or "to the end")
        self._header = bytearray()  # what has arrived of the header at _next_box
        self._boxes = 0

    def feed(self, chunk: bytes) -> None:
        """The next bytes of the file."""
        start, end = self._position, self._position + len(chunk)
        if start < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - start]
        self._keep_index(chunk, start, end)
        while self._next_box is not None and self._next_box + len(self._header) < end:
            at = self._next_box + len(self._header)
            self._header += chunk[at - start : at - start + BOX_HEADER_BYTES - len(self._header)]
            if len(self._header) < BOX_HEADER_BYTES:
                break  # the header goes on in the next chunk
            self._follow_box(self._next_box, chunk, start, end)
        self._position = end

    def finish(self) -> MediaInfo:
        """Probe what was kept; raises NotAVideo as probe_video does for the whole file."""
        if self._next_box is not None and self._header:
            self._headers[self._next_box] = bytes(self._header)  # cut short by the end
        return probe_video(
            self._read, self._position, max_index_bytes=self._max_index_bytes, ranged=False
        )

    def _follow_box(self, at: int, chunk: bytes, start: int, end: int) -> None:
        header, self._header = bytes(self._header), bytearray()
        self._headers[at] = header
        box = parse_box_header(header, at, 1 << 63)
        self._boxes += 1
        if box is None or box.size < box.header_size or self._boxes > MAX_TOP_LEVEL_BOXES:
            self._next_box = None  # probe_video reads this header and decides
            return
        if box.type == b"moov" and self._index_at is None and box.size <= self._max_index_bytes:
            self._index_at, self._index_end = at, box.end
            self._index = bytearray(header[: box.size])
            self._keep_index(chunk, start, end)
        self._next_box = box.end
        # A box shorter than the header bytes held (an empty `free`): the next header has begun.
        self._header = bytearray(header[box.size :])

    def _keep_index(self, chunk: bytes, start: int, end: int) -> None:
        if self._index_at is None:
            return
        low = max(self._index_at + len(self._index), start)
        high = min(self._index_end, end)
        if low < high:
            self._index += chunk[low - start : high - start]

    def _read(self, offset: int, length: int) -> bytes:
        kept = [(0, self._head), *self._headers.items()]
        if self._index_at is not None:
            kept.append((self._index_at, self._index))
        for first, data in kept:
            if first <= offset and offset + length <= first + len(data):
                return bytes(data[offset - first : offset - first + length])
        raise ValueError(f"StreamProbe kept no bytes {offset}-{offset + length}")
