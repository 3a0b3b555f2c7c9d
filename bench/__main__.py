"""`make bench`: every benchmark, each in its own process, then one table of the figures.

    python -m bench [--copy-mib N] [--burst CLIPS,LIMIT,TASK_SECONDS] [--media-seconds S]
                    [--backlog-sizes N,N,...]

Defaults keep the whole run to a few minutes on 2 shared cores: a 256 MiB result copy
(`python -m bench.result_copy` alone copies 1 GiB), and a calm burst of 60 clips, limit 10,
20 s tasks (the issue's 500 clips would take about 17 minutes of ideal time alone). The backlog's
admission (`python -m bench.backlog`) runs at 1,000, 10,000 and 100,000 queued jobs: about 5 CPU
minutes (13 wall on a loaded machine); `--backlog-sizes 1000,10000` for a quicker run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

from bench.backlog import SIZES as BACKLOG_SIZES
from bench.backlog import rows as backlog_rows


def _run(*args: str) -> Any:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", *args, "--json"], check=True, capture_output=True, text=True
    ).stdout
    print(f"  {' '.join(args)}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return json.loads(out.strip().splitlines()[-1])


def _media_rows(media: Any) -> list[tuple[str, str, str, str]]:
    rows = []
    for key, label in (
        ("prepare", "Prepare, 6 parts 1080p30 (40 Mb/s cap)"),
        ("stitch_remux", "Stitch, 6 parts 1080p24, remux + input audio"),
        ("stitch_reencode", "Stitch, same, re-encoded (trim inside a GOP)"),
    ):
        figure = media[key]
        rows.append(
            (
                "5 media",
                f"{label}: per input minute",
                f"{figure['per_input_minute']:.0f} s wall, {figure['cpu_per_input_minute']:.0f} s "
                f"CPU, peak RSS {figure['peak_mib']:.0f} MiB",
                "",
            )
        )
    return rows


def _rows(copy: Any, follow: Any, burst: Any, cold: Any) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    phases = {p["label"]: p for p in copy["phases"]}
    mib = copy["size_mib"]
    for label in ("download", "upload", "upload_stream", "copy"):
        rows.append(("1 copy", f"{label} ({mib} MiB)", f"{phases[label]['seconds']:.1f} s", ""))
    rows.append(
        (
            "1 copy",
            "copy / slower of download, upload_file",
            f"{copy['ratio_to_slower']:.2f}x",
            "<= 1.1x",
        )
    )
    rows.append(
        (
            "1 copy",
            "copy / slower of download, streamed upload",
            f"{copy['ratio_to_slower_stream']:.2f}x",
            "",
        )
    )
    rows.append(
        ("1 copy", "copy peak extra RSS", f"{copy['copy_extra_rss_mib']:.0f} MiB", "<= 64 MiB")
    )
    for mode in follow:
        if not mode["mode"].startswith("poll-no-estimate"):
            continue
        rows.append(
            (
                "2 poll",
                f"{mode['mode']}: local stack (1/15 time)",
                f"{mode['transitions']} transitions, {mode['checks']} checks",
                "",
            )
        )
        rows.append(
            (
                "2 poll",
                f"{mode['mode']}: deployed defaults, 240 s task",
                f"{mode['deployed_transitions']} transitions, end seen "
                f"{mode['deployed_late']} s late, waits {mode['deployed_waits']}",
                "<= 14, <= 15 s late" if mode["mode"].endswith("warm") else "",
            )
        )
    rows.append(
        (
            "3 burst",
            f"calm, {burst['inputs']} clips, limit {burst['limit']}, "
            f"{burst['task_seconds']:g} s tasks",
            f"{burst['seconds']:.0f} s / {burst['ideal_seconds']:.0f} s ideal = "
            f"{burst['time_vs_ideal']:.2f}x",
            "<= 1.2x",
        )
    )
    rows.append(
        ("3 burst", "429s we caused / all", f"{burst['429_over_limit']} / {burst['429_all']}", "0")
    )
    rows.append(
        (
            "3 burst",
            "hand-over (release -> next task created) p50 / p95",
            f"{burst['handover_p50']:.2f} s / {burst['handover_p95']:.2f} s",
            "",
        )
    )
    rows.append(
        (
            "3 burst",
            "task end at provider -> next task created p50 / p95",
            f"{burst['end_to_next_p50']:.2f} s / {burst['end_to_next_p95']:.2f} s",
            "",
        )
    )
    naive = cold["naive_seconds"]
    rows.append(
        (
            "4 init",
            "naive handler (boto3, httpx, Powertools, 2 clients), CPU",
            f"{naive * 1000:.0f} ms",
            "",
        )
    )
    functions = cold["functions"]
    for name, figure in functions.items():
        if name.endswith("+first use"):
            continue
        used = functions.get(f"{name}+first use")
        rows.append(
            (
                "4 init",
                f"{name}: init; init + the first call's build",
                f"{figure['seconds'] * 1000:.0f} ms = {figure['ratio']:.2f}x naive"
                + (f"; {used['seconds'] * 1000:.0f} ms = {used['ratio']:.2f}x" if used else ""),
                "<= 0.5x",
            )
        )
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copy-mib", default="256")
    parser.add_argument("--burst", default="60,10,20")
    parser.add_argument("--media-seconds", default="60")
    parser.add_argument(
        "--backlog-sizes",
        default=",".join(str(size) for size in BACKLOG_SIZES),
        help="queued jobs the backlog benchmark admits from (default %(default)s)",
    )
    args = parser.parse_args(argv)
    clips, limit, task_seconds = args.burst.split(",")
    started = time.monotonic()
    load_before = os.getloadavg()[1]
    print("running the benchmarks (one process each):", file=sys.stderr)
    copy = _run("bench.result_copy", "--size", args.copy_mib)
    follow = _run("bench.follow_modes")
    burst = _run("bench.burst", clips, "--calm", "--limit", limit, "--task-seconds", task_seconds)
    cold = _run("bench.cold_start", "--used")
    media = _run("bench.media", "--seconds", args.media_seconds)
    backlog = _run("bench.backlog", "--sizes", args.backlog_sizes)
    rows = _rows(copy, follow, burst, cold) + _media_rows(media) + backlog_rows(backlog)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\n{today}, {platform.machine()} Linux, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}; took {time.monotonic() - started:.0f} s; load "
        f"average (5 min) {load_before:.1f} before, {os.getloadavg()[1]:.1f} after\n"
    )
    print("| goal | figure | measured | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
