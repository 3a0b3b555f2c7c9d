"""The MP4/MOV box primitives the probes share (ISO/IEC 14496-12, 4.2: a box is a 32-bit size,
a four-character type, an optional 64-bit size, then its payload): headers, bounded field reads,
children. Named errors for a file that is not a usable video live here too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class NotAVideo(Exception):
    """The bytes are not a usable MP4/MOV video; str(exc) is one plain-English sentence for a user."""

    def __init__(self, message: str, *, detected: str | None = None) -> None:
        super().__init__(message)
        #: What the file looks like instead ("png", "text", "truncated", "zero bytes", ...), if known.
        self.detected = detected


@dataclass(frozen=True)
class _Box:
    type: bytes
    offset: int  # of the header, in the file or in the buffer being parsed
    header_size: int
    size: int  # header included

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def payload(self) -> int:
        return self.offset + self.header_size

    @property
    def name(self) -> str:
        return self.type.decode("latin-1")


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def parse_box_header(header: bytes, offset: int, parent_end: int) -> _Box | None:
    """The box whose header starts `header`; None if too few bytes remain for a header."""
    if len(header) < 8:
        return None
    size = int.from_bytes(header[0:4], "big")
    box_type = header[4:8]
    if size == 1:
        if len(header) < 16:
            return None
        return _Box(box_type, offset, 16, int.from_bytes(header[8:16], "big"))
    if size == 0:  # the box runs to the end of the file (or of its parent)
        return _Box(box_type, offset, 8, parent_end - offset)
    return _Box(box_type, offset, 8, size)


def _plausible_fourcc(box_type: bytes) -> bool:
    return all(0x20 <= byte <= 0x7E for byte in box_type)


class _Fields:
    """Bounds-checked big-endian reads from one box, so a short box is NotAVideo, not IndexError."""

    def __init__(self, buf: bytes, box: _Box, file_offset: int) -> None:
        self._buf = buf
        self._box = box
        self._file_offset = file_offset  # of buf[0], for messages

    def uint(self, at: int, width: int) -> int:
        """The unsigned integer `at` bytes into the box's payload."""
        start = self._box.payload + at
        if start + width > self._box.end:
            raise NotAVideo(
                f"the file is truncated or damaged: its '{self._box.name}' box at byte "
                f"{self._file_offset + self._box.offset} is too short",
                detected="truncated",
            )
        return int.from_bytes(self._buf[start : start + width], "big")

    def fourcc(self, at: int) -> bytes:
        return self.uint(at, 4).to_bytes(4, "big")


def _children(buf: bytes, parent: _Box, file_offset: int) -> Iterator[_Box]:
    """The boxes inside `parent`; each step moves forward at least 8 bytes, so this ends."""
    position = parent.payload
    # QuickTime may end a list with a 4-byte zero terminator: fewer than 8 bytes are not a box.
    while position + 8 <= parent.end:
        box = parse_box_header(buf[position : position + 16], position, parent.end)
        if box is None or box.size < box.header_size or box.end > parent.end:
            raise NotAVideo(
                f"the file is truncated or damaged: the box at byte {file_offset + position} "
                f"runs past the end of its '{parent.name}' box",
                detected="truncated",
            )
        yield box
        position = box.end
