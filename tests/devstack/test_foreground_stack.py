"""`make stack`: a user starts the local app in one terminal and uses any S3 client from another."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3

from devstack.media import make_sample_video

ROOT = Path(__file__).resolve().parents[2]


def test_a_user_drops_a_video_with_a_plain_s3_client_and_gets_it_back(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.local_app",
            "--port",
            "0",
            "--simulator-port",
            "0",
            "--task-seconds",
            "1",
            "--param",
            "PollInitialSeconds=1",
            "--param",
            "PollMaxSeconds=1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'layers/dropcut'}:{ROOT}"},
    )
    try:
        banner = []
        while not any("Ctrl-C stops it." in line for line in banner):
            line = process.stdout.readline()
            assert line, "".join(banner)
            banner.append(line)
        text = "".join(banner)
        endpoint = re.search(r"AWS endpoint\s+(\S+)", text).group(1)
        bucket = re.search(r"media bucket\s+(\S+)", text).group(1)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        clip = make_sample_video(tmp_path / "clip.mp4", seconds=3.0)
        s3.upload_file(
            str(clip), bucket, "inbox/manual/clip.mp4", ExtraArgs={"Metadata": {"prompt": "sepia"}}
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix="outbox/manual/").get("Contents", [])
            if {o["Key"] for o in listed} >= {
                "outbox/manual/clip.edited.mp4",
                "outbox/manual/clip.edited.result.json",
            }:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no output within 60 s")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0
