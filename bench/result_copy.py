"""Benchmark: Finalize's copy of a large result (dropcut.aws.result_copy.copy_result_to_s3) against
its two halves alone, and the copy's peak extra memory.

A child process serves a real MP4, padded with devstack.media.pad_mdat to `--size` bytes (so
the stream probe's content check passes), over a loopback HTTP server, and runs moto server
(S3, ThreadedMotoServer on 127.0.0.1, as the dev stack does). This process then measures, one
after the other:

- download alone: the result streamed with the same httpx client settings, bytes discarded;
- upload alone: `upload_file` of the same bytes from disk, with dropcut's TransferConfig;
- upload alone, streamed: `upload_fileobj` of the same file as a non-seekable stream (the copy's
  own upload path: parts sent as bytes; upload_file sends each part from the file in 8 KiB
  writes, which is slower against moto on loopback);
- copy: `copy_result_to_s3` (download, probe, multipart upload at once).

Memory is the process's resident set (VmRSS from /proc/self/status, sampled every 5 ms by a
thread: it sees C buffers that tracemalloc misses) above its level when the phase began. The
servers live in the child, so moto's own copy of the object is not counted.

    python -m bench.result_copy [--size MIB] [--json]     (default 1024 MiB; make bench runs 256)
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import multiprocessing
import os
import socketserver
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
BUCKET = "bench-results"


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Samples VmRSS every `interval` s while open; `extra` is the peak above the start."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self.start = self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    @property
    def extra(self) -> int:
        return self.peak - self.start


def _serve(path: str, ready: Any) -> None:
    """Child process: moto server and a loopback HTTP server for the padded result."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    size = os.path.getsize(path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as source:
                while chunk := source.read(MIB):
                    self.wfile.write(chunk)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    host, port = moto.get_host_and_port()
    ready.send((f"http://{host}:{port}", f"http://127.0.0.1:{server.server_address[1]}/result"))
    server.serve_forever()


class _Unseekable(io.RawIOBase):
    """A file read as a stream (what the copy hands the transfer manager)."""

    def __init__(self, source: io.BufferedReader) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._source.read(size)


def _timed(label: str, run: Callable[[], int]) -> dict[str, Any]:
    with PeakRss() as rss:
        started = time.perf_counter()
        size = run()
        seconds = time.perf_counter() - started
    return {"label": label, "seconds": seconds, "bytes": size, "extra_rss": rss.extra}


def measure(size_mib: int, transfer: Any = None) -> dict[str, Any]:
    import boto3

    from devstack.media import make_sample_video, pad_mdat
    from dropcut.aws.result_copy import TRANSFER, ResultLimits, copy_result_to_s3
    from dropcut.providers.http import make_client

    transfer = transfer or TRANSFER

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    with tempfile.TemporaryDirectory() as scratch:
        sample = make_sample_video(Path(scratch) / "sample.mp4", seconds=1.0, width=160, height=120)
        result = pad_mdat(sample, Path(scratch) / "result.mp4", size_mib * MIB)
        ours, theirs = multiprocessing.Pipe()
        child = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(str(result), theirs), daemon=True
        )
        child.start()
        try:
            endpoint, url = ours.recv()
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            client = make_client()

            def download() -> int:
                count = 0
                with client.stream("GET", url) as response:
                    for chunk in response.iter_bytes():
                        count += len(chunk)
                return count

            def upload() -> int:
                s3.upload_file(str(result), BUCKET, "alone.mp4", Config=transfer)
                return result.stat().st_size

            def upload_stream() -> int:
                # The copy's own upload path: a non-seekable body read part by part.
                with open(result, "rb") as source:
                    s3.upload_fileobj(_Unseekable(source), BUCKET, "stream.mp4", Config=transfer)
                return result.stat().st_size

            def copy() -> int:
                limits = ResultLimits(max_bytes=4 * 1024 * MIB)
                return copy_result_to_s3(
                    client,
                    s3,
                    url,
                    BUCKET,
                    "copied.mp4",
                    limits,
                    allow_insecure=True,
                    transfer=transfer,
                )

            phases = [
                _timed("download", download),
                _timed("upload", upload),
                _timed("upload_stream", upload_stream),
                _timed("copy", copy),
            ]
        finally:
            child.kill()
            child.join()
    down, up, stream, both = (p["seconds"] for p in phases)
    return {
        "size_mib": size_mib,
        "transfer": {
            "multipart_chunksize_mib": transfer.multipart_chunksize // MIB,
            "max_concurrency": transfer.max_concurrency,
            "max_in_memory_upload_chunks": transfer.max_in_memory_upload_chunks,
        },
        "phases": phases,
        "ratio_to_slower": both / max(down, up),
        "ratio_to_slower_stream": both / max(down, stream),
        "copy_extra_rss_mib": phases[-1]["extra_rss"] / MIB,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="result size in MiB")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    parser.add_argument(
        "--transfer",
        metavar="CHUNK_MIB,CONCURRENCY,IN_MEMORY",
        help="try another TransferConfig instead of dropcut's (tuning)",
    )
    args = parser.parse_args(argv)
    transfer = None
    if args.transfer:
        from dropcut.aws.result_copy import transfer_config

        chunk, concurrency, in_memory = (int(v) for v in args.transfer.split(","))
        transfer = transfer_config(chunk * MIB, concurrency, in_memory)
    figures = measure(args.size, transfer)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"result copy of {args.size} MiB, transfer {figures['transfer']}")
    for phase in figures["phases"]:
        rate = phase["bytes"] / MIB / phase["seconds"]
        print(
            f"  {phase['label']:9s} {phase['seconds']:6.1f} s  {rate:6.0f} MiB/s  "
            f"peak extra RSS {phase['extra_rss'] / MIB:5.0f} MiB"
        )
    print(
        f"  copy / slower half = {figures['ratio_to_slower']:.2f}x (goal <= 1.1x); "
        f"against the streamed upload {figures['ratio_to_slower_stream']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
