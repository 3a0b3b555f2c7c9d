"""Fixes for moto 5.2.5 behaviours that differ from AWS and that dropcut depends on.

Each fix names the moto function it wraps; `install()` is idempotent. tests/devstack checks
that the wrapped functions still exist, so a moto upgrade that moves them fails loudly.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    """Apply every fix (once per process)."""
    global _installed
    if _installed:
        return
    _early_task_success_reaches_a_heartbeat_wait()
    _installed = True


def _early_task_success_reaches_a_heartbeat_wait() -> None:
    # On AWS, SendTaskSuccess may come while the waitForTaskToken task's own Lambda is still
    # running (our ArmCallback does that when the callback came first). moto creates the
    # heartbeat endpoint only after that Lambda returns, so an earlier success never wakes the
    # heartbeat wait: the task times out although it has an outcome. Wake it if there is one.
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = CallbackEndpoint.setup_heartbeat_endpoint

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign]
