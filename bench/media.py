"""Benchmark: the media layer's Prepare and Stitch on a 1080p30 H.264 input, wall time per input
minute, CPU time (all threads) and peak memory (the resident set's high-water mark, VmHWM, of a
child process: it sees FFmpeg's buffers). Wall time depends on what else the machine runs; the
CPU time does less.

The input is synthetic but not trivial to encode: a textured picture panning a few pixels per
frame, its tint changing every second, with a 48 kHz tone (`--seconds`, default 60). Then, each
in a fresh child process:

- prepare: 6 parts at the input's size and rate (1920x1080 at 30 fps is within the model's
  limits; a split keeps them), a 40 Mb/s cap, audio kept, boundaries free to move to scene cuts;
- stitch (remux): 6 edited-like parts (H.264 1920x1080 at 24 fps, what the model returns: made
  by a Prepare at 24 fps) joined with the input's audio laid under (copied);
- stitch (re-encode): the same parts trimmed 0.5 s short of the end (inside a group of
  pictures), which forces a re-encode of the whole: the worst case;
- contact sheet: 7 times across the input and the stitched output.

    python -m bench.media [--seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, FPS = 1920, 1080, 30
PARTS = 6

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from fractions import Fraction
    from pathlib import Path
    started = time.perf_counter()
    {body}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss across exec.
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(json.dumps({{
        "seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mib": int(hwm.split()[1]) / 1024,
        "result": result,
    }}))
    """
)

PREPARE = """
from dropcut_media.prepare import Cut, Target, prepare_video
source, out, seconds, fps = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
n = {parts}
cuts = [Cut(i, seconds * i / n, seconds * (i + 1) / n) for i in range(n)]
parts = prepare_video(source, cuts, Target({width}, {height}, Fraction(fps), 40_000_000), out)
result = [[str(p.path), p.frames, p.size_bytes, p.moved_to_scene_cut] for p in parts]
"""

STITCH = """
from dropcut_media.stitch import stitch_parts
parts = sorted(Path(sys.argv[1]).glob("part-*.mp4"))
trim = float(sys.argv[4]) if sys.argv[4] != "-" else None
info = stitch_parts(parts, Path(sys.argv[2]), audio_source=Path(sys.argv[3]), trim_to_seconds=trim)
result = {{"frames": info.frames, "remuxed": info.remuxed, "audio": info.audio}}
"""

SHEET = """
from dropcut_media.contact_sheet import contact_sheet
seconds = float(sys.argv[4])
times = [seconds * i / 6 for i in range(7)]
contact_sheet(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), times=times)
result = Path(sys.argv[3]).stat().st_size
"""


def make_input(path: Path, seconds: float) -> Path:
    """The synthetic 1080p30 H.264 (+AAC) input: a smooth random texture panning diagonally."""
    import av
    import numpy as np

    from devstack.media import TONE_RATE, _mux_tone
    from devstack.media_samples import colour_of

    rng = np.random.default_rng(14)
    coarse = rng.integers(0, 256, size=(HEIGHT // 24 + 8, WIDTH // 24 + 8, 3), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((32, 32, 1), dtype=np.uint8))  # blocks, then blurred
    texture = ((texture.astype(np.uint16) + np.roll(texture, 7, axis=(0, 1))) // 2).astype(np.uint8)
    count = round(seconds * FPS)
    with av.open(str(path), "w", format="mp4") as out:
        stream: Any = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        tone = out.add_stream("aac", rate=TONE_RATE, layout="mono")
        for i in range(count):
            dx, dy = (3 * i) % (texture.shape[1] - WIDTH), (2 * i) % (texture.shape[0] - HEIGHT)
            tint = np.array(colour_of(i // FPS), dtype=np.uint16)
            picture = (texture[dy : dy + HEIGHT, dx : dx + WIDTH] * tint // 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        _mux_tone(out, tone, count / FPS)
    return path


def _child(body: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", os.getcwd())}
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(body=textwrap.indent(body, "")), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child failed: {out.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["wall_seconds"] = time.monotonic() - started
    return figures


def measure(seconds: float) -> dict[str, Any]:
    from dropcut_media.inspect import describe

    with tempfile.TemporaryDirectory(prefix="bench-media-") as scratch:
        root = Path(scratch)
        started = time.monotonic()
        source = make_input(root / "input.mp4", seconds)
        made = time.monotonic() - started
        fmt = {"parts": PARTS, "width": WIDTH, "height": HEIGHT}
        prepare = _child(
            PREPARE.format(**fmt), str(source), str(root / "parts30"), str(seconds), str(FPS)
        )
        edited = _child(
            PREPARE.format(**fmt), str(source), str(root / "parts24"), str(seconds), "24"
        )
        remux = _child(
            STITCH.format(), str(root / "parts24"), str(root / "remux.mp4"), str(source), "-"
        )
        trim = f"{seconds - 0.5:.3f}"
        reencode = _child(
            STITCH.format(), str(root / "parts24"), str(root / "encode.mp4"), str(source), trim
        )
        sheet = _child(
            SHEET, str(source), str(root / "remux.mp4"), str(root / "sheet.png"), str(seconds)
        )
        facts = describe(root / "remux.mp4")
    minutes = seconds / 60
    return {
        "input": f"{seconds:g} s {WIDTH}x{HEIGHT} {FPS} fps H.264 + AAC",
        "input_seconds": seconds,
        "make_input_seconds": made,
        "prepare": _figures(prepare, minutes),
        "prepare_parts": len(prepare["result"]),
        "prepare_part_mib": [round(p[2] / 2**20, 1) for p in prepare["result"]],
        "prepare_moved": sum(1 for p in prepare["result"] if p[3]),
        "prepare_24fps": _figures(edited, minutes),
        "stitch_remux": _figures(remux, minutes) | {"remuxed": remux["result"]["remuxed"]},
        "stitch_reencode": _figures(reencode, minutes) | {"remuxed": reencode["result"]["remuxed"]},
        "contact_sheet": _figures(sheet, minutes),
        "output_duration": facts["duration_seconds"],
        "output_audio_duration": facts["audio_duration_seconds"],
    }


def _figures(child: dict[str, Any], minutes: float) -> dict[str, float]:
    return {
        "seconds": child["seconds"],
        "per_input_minute": child["seconds"] / minutes,
        "cpu_seconds": child["cpu_seconds"],
        "cpu_per_input_minute": child["cpu_seconds"] / minutes,
        "peak_mib": child["peak_mib"],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="input length (s)")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)
    figures = measure(args.seconds)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"media layer on {figures['input']} ({os.cpu_count()} cores)")
    for key, label in (
        ("prepare", f"prepare, {PARTS} parts 1080p30"),
        ("prepare_24fps", f"prepare, {PARTS} parts 1080p24"),
        ("stitch_remux", "stitch, remux + input audio"),
        ("stitch_reencode", "stitch, re-encode (trim)"),
        ("contact_sheet", "contact sheet, 7 times"),
    ):
        f = figures[key]
        print(
            f"  {label:30s} {f['seconds']:6.1f} s = {f['per_input_minute']:5.1f} s per input "
            f"minute (CPU {f['cpu_per_input_minute']:5.1f} s), peak RSS {f['peak_mib']:4.0f} MiB"
        )
    print(
        f"  parts (MiB): {figures['prepare_part_mib']}, {figures['prepare_moved']} moved to a "
        f"scene cut; output {figures['output_duration']:.3f} s, audio "
        f"{figures['output_audio_duration']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
