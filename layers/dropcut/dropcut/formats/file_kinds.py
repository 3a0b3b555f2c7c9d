"""What a file is when it is not the MP4/MOV video it was named as: its kind by magic bytes, so a
refusal can say "the file is a PNG image" instead of only "not a video" (dropcut.formats.probe), and the
image formats a reference image may have (dropcut.services.validation)."""

from __future__ import annotations

import codecs
from typing import Literal

# ftyp major brands of HEIF still images (iPhone photos), which share the MP4 box format.
HEIF_BRANDS = {
    b"heic": "heic",
    b"heix": "heic",
    b"heim": "heic",
    b"heis": "heic",
    b"hevc": "heic",
    b"hevx": "heic",
    b"mif1": "heic",
    b"msf1": "heic",
    b"avif": "avif",
    b"avis": "avif",
}
IMAGE_SNIFF_BYTES = 12  # "RIFF" + size + "WEBP" is the longest signature sniff_image checks

_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1aE\xdf\xa3", "mkv", "a Matroska (MKV) or WebM video"),
    (b"FLV\x01", "flv", "a Flash (FLV) video"),
    (b"0&\xb2u\x8ef\xcf\x11", "wmv", "a Windows Media (ASF/WMV) file"),
    (b"\x00\x00\x01\xba", "mpeg", "an MPEG program stream"),
    (b"OggS", "ogg", "an Ogg media file"),
    (b"fLaC", "flac", "a FLAC audio file"),
    (b"ID3", "mp3", "an MP3 audio file"),
    (b"II*\x00", "tiff", "a TIFF image"),
    (b"MM\x00*", "tiff", "a TIFF image"),
    (b"%PDF-", "pdf", "a PDF document"),
    (b"PK\x03\x04", "zip", "a ZIP archive"),
    (b"\x1f\x8b", "gzip", "a gzip archive"),
)
_IMAGE_NOUNS = {
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "webp": "a WebP image",
}


def sniff_image(head: bytes) -> Literal["jpeg", "png", "webp", "gif"] | None:
    """The image format the first IMAGE_SNIFF_BYTES bytes announce, by magic bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def identify(head: bytes, *, whole_file: bool) -> tuple[str | None, str | None]:
    """The kind of file `head` (its first bytes; the whole file when `whole_file`) starts like
    (a short tag such as "png", "mkv", "text") and its noun for a user; (None, None) if unknown."""
    image = sniff_image(head[:IMAGE_SNIFF_BYTES])
    if image is not None:
        return image, _IMAGE_NOUNS[image]
    if head.startswith(b"RIFF"):
        kind = head[8:12]
        if kind == b"AVI ":
            return "avi", "an AVI video"
        if kind == b"WAVE":
            return "wav", "a WAV audio file"
        return "riff", "a RIFF file"
    for magic, detected, noun in _SIGNATURES:
        if head.startswith(magic):
            if detected == "mkv" and b"webm" in head[:64]:
                return "webm", "a WebM video"
            return detected, noun
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:  # 188-byte TS packets
        return "ts", "an MPEG transport stream (.ts)"
    if looks_like_text(head, whole_file=whole_file):
        return "text", "text"
    return None, None


def looks_like_text(head: bytes, *, whole_file: bool) -> bool:
    """True when `head` decodes as printable UTF-8 text (a partial read may end mid-character)."""
    # An incremental decoder tolerates a character cut in half at the end of a partial read.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(head, final=whole_file)
    except UnicodeDecodeError:
        return False
    text = text.removeprefix("\ufeff")
    return bool(text) and all(char.isprintable() or char in "\t\n\r\f\v" for char in text)
