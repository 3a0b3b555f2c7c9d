"""`make demo`: the whole pipeline on the local stack. Sample videos go into the inbox with their
instructions; the edited videos, result manifests and before/after pictures come out."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from devstack.local_app import ROOT, LocalApp, local_app
from devstack.media import frame_at, make_sample_image, make_sample_video
from devstack.simulator import SimConfig

OUT = ROOT / "out" / "demo"
JOBS = [
    # (key, pattern, how the options arrive, options)
    ("inbox/demo/street.mp4", "bars", "metadata", {"prompt": "black and white film look"}),
    (
        "inbox/demo/square.mp4",
        "gradient",
        "manifest",
        {"prompt": "warm sepia tone, crop to a square", "aspect_ratio": "1:1", "keep_audio": True},
    ),
    (
        "inbox/demo/with logo.mp4",
        "bars",
        "manifest",
        {
            "prompt": "mirror the scene and add the reference logo",
            "images": ["inbox/demo/logo.png"],
        },
    ),
    ("inbox/demo/broken.mp4", "bars", "manifest", {"prompt": "", "keep_audio": "yes"}),
]


def before_after(input_path: Path, output_path: Path, picture: Path) -> None:
    """Frames from the input and the output at the same moment, side by side."""
    before = Image.fromarray(frame_at(input_path, 1.0))
    after = Image.fromarray(frame_at(output_path, 1.0))
    height = max(before.height, after.height)
    canvas = Image.new("RGB", (before.width + after.width + 8, height), "white")
    canvas.paste(before, (0, 0))
    canvas.paste(after, (before.width + 8, 0))
    canvas.save(picture)


def drop_inputs(app: LocalApp, work: Path) -> dict[str, Path]:
    make_sample_image(work / "logo.png", size=(96, 96), color=(255, 0, 255))
    app.put("inbox/demo/logo.png", (work / "logo.png").read_bytes())
    inputs = {}
    for index, (key, pattern, carrier, options) in enumerate(JOBS):
        path = make_sample_video(work / f"input-{index}.mp4", seconds=4.0, pattern=pattern)
        inputs[key] = path
        if carrier == "manifest":
            app.put_manifest(key, options)
            app.put(key, path.read_bytes())
        else:
            app.put(key, path.read_bytes(), metadata=options)
        print(f"  dropped s3://{app.bucket}/{key}  ({carrier}: {options.get('prompt')!r})")
    return inputs


def follow(app: LocalApp, keys: list[str], timeout: float = 240.0) -> None:
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in app.jobs():
            if job["key"] not in keys:
                continue
            progress = f", progress {job['progress']}%" if job.get("progress") is not None else ""
            line = f"{job['status']}" + (
                f" (task {job['task_state']}{progress}, {job.get('polls', 0)} polls)"
                if job.get("task_state")
                else ""
            )
            if seen.get(job["key"]) != line:
                seen[job["key"]] = line
                print(f"  {job['key']:<28} {line}", flush=True)
        done = [k for k, v in seen.items() if v.startswith(("succeeded", "failed"))]
        if len(done) == len(keys):
            return
        time.sleep(0.25)
    raise TimeoutError("the demo jobs did not all end in time")


def main() -> int:
    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "inputs"
    work.mkdir(exist_ok=True)
    print("dropcut demo: starting the provider simulator and the local stack (template.yaml)")
    config = SimConfig(task_seconds=4.0, queue_seconds=1.0)
    with local_app("evolink", {"PollInitialSeconds": "2", "PollMaxSeconds": "3"}, config) as app:
        print(
            f"  S3/Step Functions/DynamoDB at {app.stack.endpoint_url}, simulator at {app.simulator.url}"
        )
        inputs = drop_inputs(app, work)
        print("following the jobs:")
        follow(app, list(inputs))
        print("results:")
        failures = 0
        for key, input_path in inputs.items():
            ending = app.wait_for_ending(key, timeout=5)
            name = Path(key).stem.replace(" ", "_")
            if ending.succeeded:
                assert ending.output_key
                video = OUT / f"{name}.edited.mp4"
                body = app.s3.get_object(Bucket=app.bucket, Key=ending.output_key)["Body"].read()
                video.write_bytes(body)
                picture = OUT / f"{name}.before-after.png"
                before_after(input_path, video, picture)
                difference = np.abs(
                    frame_at(input_path, 1.0).astype(int).mean()
                    - frame_at(video, 1.0).astype(int).mean()
                )
                print(f"  OK   {key} -> s3://{app.bucket}/{ending.output_key}")
                print(
                    f"       {video.relative_to(ROOT)}  {picture.relative_to(ROOT)}  "
                    f"(mean brightness change {difference:.1f})"
                )
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


if __name__ == "__main__":
    sys.exit(main())
