"""The simulator's clock: moves tasks from queued to running to completed or failed, and edits.

A scheduler thread looks at every task each 20 ms (or when woken): a task leaves the queue after
``queue_seconds``, its edit runs in a worker pool, and it completes once the output exists and
its run time is over (or fails, by ``[sim:fail]`` or a media problem). Finished tasks are handed
to their API (``ProviderApi.task_finished``: evolink's callbacks). The edit itself (decoding,
restyling, encoding: CPU-bound Python and PyAV) runs in its own processes, so the process that
serves the simulator (and, in the local stack, moto) keeps its GIL for answering requests.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from devstack.simulator.core import Engine, Task
from devstack.simulator.editor import (
    EditSpec,
    MediaError,
    edit_video,
    fetch,
    probe_video_bytes,
    video_facts,
)
from devstack.simulator.limits import LIMIT_ERROR_CODE, limit_message, limit_problems


class Clock:
    """The scheduler thread and the edit workers of one ``Engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pool: ThreadPoolExecutor | None = None
        self._editors: ProcessPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the edit workers and the scheduler thread."""
        engine = self.engine
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="sim-edit")
        self._editors = self._edit_processes()
        engine.stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sim-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the scheduler (and every ``Engine.sleep``); drop edits not yet started."""
        self.engine.stopping.set()
        with self.engine.wake:
            self.engine.wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._editors is not None:
            self._editors.shutdown(wait=False, cancel_futures=True)
            self._editors = None

    @property
    def _workers(self) -> int:
        """Edits at once: as many fetching threads as edit processes."""
        return max(1, self.engine.config.edit_workers)

    def _edit_processes(self) -> ProcessPoolExecutor:
        # spawn, not fork: the serving process runs many threads (moto's executions among them).
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )

    def _edit(self, data: bytes, output: Path, spec: EditSpec) -> None:
        """`edit_video` in an edit process; a pool broken by a killed process is replaced."""
        editors = self._editors
        if editors is None:
            raise MediaError("internal_error", "the simulator is stopping")
        try:
            editors.submit(edit_video, data, output, spec).result()
        except BrokenProcessPool:
            if self._editors is editors:
                self._editors = self._edit_processes()
            raise

    def _run(self) -> None:
        engine = self.engine
        while not engine.stopping.is_set():
            with engine.wake:
                now = time.monotonic()
                finished = [t for t in list(engine.tasks.values()) if self._advance(t, now)]
                engine.wake.wait(timeout=0.02)
            for t in finished:
                engine.apis[t.api].task_finished(t)

    def _advance(self, t: Task, now: float) -> bool:
        """Move the task on if its time has come; True if it has just finished."""
        if t.status == "queued" and now >= t.created_mono + t.queue_seconds:
            t.status = "running"
            t.started_mono = now
            if t.directive == "" and self._pool is not None:
                t.edit_state = "running"
                self._pool.submit(self._run_edit, t)
        if t.status != "running" or t.directive == "never":
            return False
        assert t.started_mono is not None
        due = now >= t.started_mono + t.duration
        if t.edit_state == "error":
            t.status = "failed"
        elif t.directive == "fail" and due:
            t.status = "failed"
            t.error_code = self.engine.apis[t.api].error_code("generation_failed")
            t.error_message = t.fail_reason or "Simulated failure"
        elif t.edit_state == "done" and due:
            t.status = "completed"
            t.token = secrets.token_urlsafe(24)
            t.expires_at = now + float(self.engine.config.result_url_ttl_seconds)
            self.engine.tokens[t.token] = t
        if t.finished:
            t.finished_mono = now
        return t.finished

    def _run_edit(self, t: Task) -> None:
        engine = self.engine
        cfg = engine.config
        out_dir = engine.workdir / "results" / uuid.uuid4().hex
        try:
            data = fetch(
                t.video_url, max_bytes=cfg.max_video_bytes, timeout=cfg.fetch_timeout_seconds
            )
            if cfg.strict:
                problems = limit_problems(video_facts(data), t.api)
                if problems:
                    raise MediaError(LIMIT_ERROR_CODE, limit_message(problems, t.api))
            else:
                probe_video_bytes(data)
            image = None
            if t.image_url:
                image = fetch(
                    t.image_url,
                    max_bytes=cfg.max_image_bytes,
                    timeout=cfg.fetch_timeout_seconds,
                    what="image",
                )
            out_dir.mkdir(parents=True, exist_ok=True)
            output = out_dir / "output.mp4"
            self._edit(
                data,
                output,
                EditSpec(
                    prompt=t.prompt,
                    keep_audio=t.keep_audio,
                    aspect_ratio=t.aspect_ratio,
                    reference_image=image,
                ),
            )
        except MediaError as exc:
            self._edit_failed(t, exc.code, exc.message)
            return
        except Exception as exc:  # a bug in the simulator still ends the task
            self._edit_failed(t, "internal_error", f"{type(exc).__name__}: {exc}")
            return
        with engine.wake:
            t.output = output
            t.edit_state = "done"
            engine.wake.notify_all()

    def _edit_failed(self, t: Task, code: str, message: str) -> None:
        with self.engine.wake:
            t.edit_state = "error"
            t.error_code = self.engine.apis[t.api].error_code(code)
            t.error_message = message
            self.engine.wake.notify_all()


def _exit_with_parent(parent: int) -> None:
    """In an edit process: end it when the simulator's process is gone (killed, say), which a
    process pool's worker does not notice by itself: it would wait for work forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
