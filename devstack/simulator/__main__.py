"""Run the provider simulator in the foreground: ``python -m devstack.simulator --port 8765``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from devstack.simulator.server import SimConfig, Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.simulator",
        description="dropcut provider simulator (aimlapi + evolink Kling O1 video edit APIs)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--task-seconds", type=float, default=None)
    parser.add_argument("--queue-seconds", type=float, default=None)
    parser.add_argument("--api-key", action="append", default=None, help="accepted key (repeat)")
    parser.add_argument("--allow-insecure-callbacks", action="store_true")
    parser.add_argument(
        "--strict", action="store_true", help="fail inputs outside the model's documented limits"
    )
    args = parser.parse_args(argv)

    config = SimConfig(allow_insecure_callbacks=args.allow_insecure_callbacks, strict=args.strict)
    if args.task_seconds is not None:
        config.task_seconds = args.task_seconds
    if args.queue_seconds is not None:
        config.queue_seconds = args.queue_seconds
    if args.api_key:
        config.api_keys = set(args.api_key)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    sim = Simulator(config, host=args.host, port=args.port).start()
    print(f"dropcut simulator listening on {sim.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
