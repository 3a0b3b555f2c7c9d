"""What dropcut agrees to decode: bounds that keep Prepare and Stitch within their memory and
time on a hostile file (a pixel bomb, a frame flood, a codec nobody films with). Not the model's
limits (dropcut.model.plan converts whatever fits within these to the model's).

Submit refuses a video past them by its index, before anything is paid; Prepare checks every
decoded picture again (headers lie: dropcut_media.prepare). Sources: issue 26 items 6 and 7
(measured: a 16000x16000 PNG MOV of 19 MB took Prepare to 3,368 MiB), 8K UHD (7680x4320, 33.2
MP) and DCI 8K (8192x4320) as the largest pictures cameras record, 240 fps as the fastest phone
slow motion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropcut.errors import Problem

if TYPE_CHECKING:
    from dropcut.formats.probe import MediaInfo

#: The largest input dropcut takes (bytes): Prepare and Stitch hold it on their ephemeral
#: storage with its parts and the output; template.yaml sizes their EphemeralStorage from it
#: (tests/unit/test_media_limits.py checks that it fits).
MAX_INPUT_BYTES = 4 * 1024**3
#: What Prepare and Stitch need on disk beside the input: the parts (36 parts of at most
#: 10 s at 20 Mbit/s are 0.9 GB) or the edited parts and the output.
WORK_HEADROOM_BYTES = 1536 * 1024**2
#: The longest side of a picture dropcut decodes (px), coded or displayed.
MAX_DECODED_SIDE = 8192
#: The most pixels in one picture dropcut decodes (DCI 8K is 35.4 MP).
MAX_DECODED_PIXELS = 36_000_000
#: The highest frame rate dropcut decodes (frames a second; phones record 240 fps slow motion).
MAX_DECODED_FPS = 240.0
#: The video codecs (MP4/MOV sample entries) dropcut decodes: what cameras, phones, screen
#: recorders and editors write. Others (PNG or raw frames, a pixel bomb's usual carrier) are
#: refused at Submit.
DECODABLE_CODECS = frozenset(
    {
        "avc1", "avc3",  # H.264
        "hvc1", "hev1", "dvh1", "dvhe",  # HEVC, and Dolby Vision's HEVC
        "av01",  # AV1
        "vp08", "vp09",  # VP8, VP9
        "mp4v",  # MPEG-4 Part 2
        "apco", "apcs", "apcn", "apch", "ap4h", "ap4x",  # Apple ProRes
        "jpeg", "mjpa", "mjpb",  # Motion JPEG
        "AVdn", "AVdh",  # Avid DNxHD / DNxHR
    }
)  # fmt: skip
_SCALE_HINT = (
    "Scale it down to 4K or less, for example: "
    "ffmpeg -i input -vf scale=-2:2160 -c:v libx264 -c:a aac output.mp4"
)


def decode_problems(media: MediaInfo) -> list[Problem]:
    """What in `media` (Submit's probe of the index) is past what dropcut decodes: the file's
    size, the picture's sides or pixels, the frame rate, the codec. [] when everything is within
    bounds or unknown."""
    problems: list[Problem] = []
    if media.size_bytes > MAX_INPUT_BYTES:
        problems.append(
            Problem(
                "video",
                f"the file is {media.size_bytes / 1024**3:.1f} GiB, larger than dropcut takes",
                f"at most {MAX_INPUT_BYTES / 1024**3:g} GiB",
                "Cut it into shorter clips, or compress it, for example: "
                "ffmpeg -i input -c:v libx264 -crf 20 -c:a aac output.mp4",
            )
        )
    sizes = {(w, h) for w, h in ((media.width, media.height), (media.coded_width, media.coded_height)) if w and h}  # fmt: skip
    for width, height in sorted(sizes):
        if max(width, height) > MAX_DECODED_SIDE or width * height > MAX_DECODED_PIXELS:
            problems.append(
                Problem(
                    "video",
                    f"the picture is {width}x{height} px ({width * height / 1e6:.1f} MP), larger "
                    "than dropcut decodes",
                    f"at most {MAX_DECODED_SIDE} px a side and {MAX_DECODED_PIXELS / 1e6:g} MP",
                    _SCALE_HINT,
                )
            )
            break
    if media.frame_rate is not None and media.frame_rate > MAX_DECODED_FPS:
        problems.append(
            Problem(
                "video",
                f"the video has {media.frame_rate:g} frames a second, more than any camera makes",
                f"at most {MAX_DECODED_FPS:g} fps",
                "Convert it to a normal frame rate, for example: "
                "ffmpeg -i input -r 30 -c:v libx264 -c:a aac output.mp4",
            )
        )
    if media.video_codec is not None and media.video_codec not in DECODABLE_CODECS:
        problems.append(
            Problem(
                "video",
                f"the video codec '{media.video_codec}' is not one dropcut decodes",
                "H.264, HEVC, AV1, VP8, VP9, MPEG-4, ProRes, Motion JPEG or DNxHD",
                "Convert it to MP4 (H.264 video, AAC audio), for example: "
                "ffmpeg -i input -c:v libx264 -c:a aac output.mp4",
            )
        )
    return problems
