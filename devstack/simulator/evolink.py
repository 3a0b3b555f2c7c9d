"""The evolink Kling O1 video-edit API (poll or callback), as the simulator speaks it.

``POST /v1/videos/generations`` creates; ``GET /v1/tasks/{task_id}`` queries. Statuses
``pending -> processing -> completed | failed`` with ``progress`` 0..100. Errors are
``{"error": {code, message, type, param?, fallback_suggestion?}}``. When a task with a
``callback_url`` ends, its query body is POSTed there from a background thread, with retries
and the callback faults (lost, duplicate, out of order, slow).
"""

from __future__ import annotations

import copy
import json
import math
import secrets
import string
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from devstack.simulator.config import CALLBACK_FAULTS
from devstack.simulator.core import Answer, ProviderApi, Task, TaskRequest
from devstack.simulator.urls import is_private_host, is_uri, valid_input_url

EVOLINK_MODEL = "kling-o1-video-edit"
EVOLINK_ASPECT_RATIOS = ("16:9", "9:16", "1:1")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

EVOLINK_ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request parameter", None),
    401: ("authentication_error", "Invalid or expired token", None),
    402: (
        "insufficient_quota_error",
        "Insufficient quota",
        "https://ai.odkkk.com/apiv1/dashboard/billing",
    ),
    403: ("permission_error", "Access denied for this model", None),
    404: ("not_found_error", "Specified model not found", "kling-o1-video-edit"),
    429: ("rate_limit_error", "Rate limit exceeded", "retry after 60 seconds"),
    500: ("internal_server_error", "Internal server error", "try again later"),
    502: ("upstream_error", "Upstream AI service unavailable", "try different model"),
    503: ("service_unavailable_error", "Service temporarily unavailable", "retry after 30 seconds"),
}


def evo_error(
    status: int,
    message: str | None = None,
    *,
    param: str | None = None,
    code: int | str | None = None,
    type_: str | None = None,
    fallback: str | None = None,
) -> Answer:
    """An evolink error answer, with the documented type and fallback suggestion per status."""
    etype, emsg, efallback = EVOLINK_ERROR_TYPES.get(status, ("api_error", "Error", None))
    err: dict[str, Any] = {
        "code": status if code is None else code,
        "message": message or emsg,
        "type": type_ or etype,
    }
    if param:
        err["param"] = param
    fb = fallback if fallback is not None else efallback
    if fb and status in (402, 404, 429, 500, 502, 503) and not (status == 404 and param != "model"):
        err["fallback_suggestion"] = fb
    return Answer(status, {"error": err})


# ---- request checks (in the order evolink applies them; each raises a 400 answer) ------------


def _bad(message: str, param: str | None = None) -> Answer:
    """The 400 answer for an invalid request body, naming the offending ``param``."""
    return evo_error(400, message, param=param)


def _check_prompt(body: dict[str, Any]) -> str:
    """``prompt``: a non-empty string of at most 5000 characters."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _bad("prompt is required", "prompt")
    if len(prompt) > 5000:
        raise _bad("prompt must not exceed 5000 characters", "prompt")
    return prompt


def _check_video_urls(body: dict[str, Any]) -> Any:
    """``video_urls``: exactly one directly accessible video URL, returned."""
    vids = body.get("video_urls")
    if not isinstance(vids, list) or len(vids) != 1:
        raise _bad("video_urls must contain exactly 1 video URL", "video_urls")
    if not valid_input_url(vids[0], allow_data=False):
        raise _bad("video_urls[0] must be a directly accessible video URL", "video_urls")
    return vids[0]


def _check_image_urls(body: dict[str, Any]) -> Any:
    """``image_urls`` (optional): 1 to 4 image URLs; the first one, or None without the field."""
    if "image_urls" not in body:
        return None
    imgs = body["image_urls"]
    if not isinstance(imgs, list) or not 1 <= len(imgs) <= 4:
        raise _bad("image_urls supports 1 to 4 reference images", "image_urls")
    for u in imgs:
        _check_image_url(u)
    return imgs[0]


def _check_image_url(u: Any) -> None:
    """One of ``image_urls``: a URL (not a data URI) with an image extension, or none."""
    if not is_uri(u) or u.startswith("data:"):
        raise _bad("image_urls must contain image URLs", "image_urls")
    ext = Path(urllib.parse.urlsplit(u).path).suffix.lower()
    # no extension (e.g. an opaque key): the content is checked when fetched
    if ext and ext not in IMAGE_EXTENSIONS:
        raise _bad("image_urls supports .jpg, .jpeg, .png and .webp images", "image_urls")


def _check_options(body: dict[str, Any]) -> tuple[str | None, bool]:
    """``aspect_ratio`` (optional, one of the three) and ``keep_original_sound`` (optional,
    default false, a boolean)."""
    aspect = body.get("aspect_ratio")
    if aspect is not None and aspect not in EVOLINK_ASPECT_RATIOS:
        raise _bad("aspect_ratio must be one of 16:9, 9:16, 1:1", "aspect_ratio")
    keep = body.get("keep_original_sound", False)
    if not isinstance(keep, bool):
        raise _bad("keep_original_sound must be a boolean", "keep_original_sound")
    return aspect, keep


class EvolinkApi(ProviderApi):
    """evolink: task ids, statuses, errors, create, query and callbacks."""

    name = "evolink"
    status_words = ("pending", "processing", "completed", "failed")
    unauthorized_message = None
    no_credits_message = None
    concurrency_message = "Too many concurrent tasks"
    concurrency_retry_after = "60"

    def error(self, status: int, message: str | None = None) -> Answer:
        """evolink's error body for ``status``."""
        return evo_error(status, message)

    def new_task_id(self) -> str:
        """``task-unified-<unix seconds>-<8 random [a-z0-9]>``."""
        alphabet = string.ascii_lowercase + string.digits
        suffix = "".join(secrets.choice(alphabet) for _ in range(8))
        return f"task-unified-{int(time.time())}-{suffix}"

    # ---- requests -----------------------------------------------------------------------------

    def create(self, body: Any) -> Answer:
        """``POST /v1/videos/generations``: check the body as evolink does, create the task."""
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")
        model = body.get("model", EVOLINK_MODEL)
        if model != EVOLINK_MODEL:
            raise evo_error(404, param="model")
        prompt = _check_prompt(body)
        video_url = _check_video_urls(body)
        image_url = _check_image_urls(body)
        aspect, keep = _check_options(body)
        cb = body.get("callback_url")
        if cb is not None:
            self._check_callback_url(cb)
        request = TaskRequest(
            prompt=prompt,
            body=body,
            video_url=video_url,
            image_url=image_url,
            keep_audio=keep,
            aspect_ratio=aspect,
            callback_url=cb,
        )
        t = self.engine.create_task(self.name, request)
        with self.engine.lock:
            created = self._body(t, creation=True)
            created["status"] = "pending"
            created["progress"] = 0
            created["task_info"]["can_cancel"] = True
        return Answer(200, created)

    def _check_callback_url(self, cb: Any) -> None:
        param = "callback_url"
        if not isinstance(cb, str) or not cb:
            raise evo_error(400, "callback_url must be a string", param=param)
        if len(cb) > 2048:
            raise evo_error(400, "callback_url must not exceed 2048 characters", param=param)
        try:
            parts = urllib.parse.urlsplit(cb)
            host = parts.hostname
        except ValueError:
            host = None
            parts = None
        if parts is None or not host or parts.scheme not in ("http", "https"):
            raise evo_error(400, "callback_url must be a valid URL", param=param)
        if self.engine.config.allow_insecure_callbacks:
            return
        if parts.scheme != "https":
            raise evo_error(400, "callback_url must use HTTPS", param=param)
        if is_private_host(host):
            raise evo_error(
                400, "callback_url must not point to an internal IP address", param=param
            )

    def query(self, task_id: str) -> Answer:
        """``GET /v1/tasks/{task_id}``: 400 for a malformed id, 404 for an unknown one."""
        if not task_id.startswith("task-unified-"):
            raise evo_error(400, "Invalid task ID format", code="invalid_task_id", param="task_id")
        with self.engine.lock:
            t = self.engine.find(self.name, task_id)
            if t is None:
                raise evo_error(404, "Task not found", param="task_id", type_="not_found_error")
            return Answer(200, self.body(t))

    # ---- bodies -------------------------------------------------------------------------------

    def body(self, t: Task) -> dict[str, Any]:
        """The query body: status, progress, task_info, results or error, usage."""
        return self._body(t)

    def _body(self, t: Task, *, creation: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": t.id,
            "object": "video.generation.task",
            "created": t.created,
            "model": EVOLINK_MODEL,
            "status": self.public_status(t),
            "progress": self.engine.progress(t),
            "type": "video",
        }
        info: dict[str, Any] = {"can_cancel": t.status == "queued"}
        if creation:
            est = self.engine.config.estimated_time
            if est is None:
                est = math.ceil(t.queue_seconds + t.duration)
            info["estimated_time"] = int(est)
            info["video_duration"] = t.video_duration
        body["task_info"] = info
        if t.status == "completed":
            body["results"] = [self.engine.result_url(t)]
        elif t.status == "failed":
            body["error"] = {"code": t.error_code or "failed", "message": t.error_message or ""}
        body["usage"] = {
            "billing_rule": "per_second",
            "credits_reserved": t.credits,
            "user_group": "default",
        }
        return body

    # ---- callbacks ----------------------------------------------------------------------------

    def task_finished(self, t: Task) -> None:
        """POST the final body to the task's ``callback_url`` (if any), minding callback faults."""
        if not t.callback_url:
            return
        engine = self.engine
        fault = engine.take_fault(self.name, "callback", CALLBACK_FAULTS, t.prompt)
        with engine.lock:
            final = self.body(t)
        bodies: list[dict[str, Any]] = [final]
        delay = 0.0
        if fault is not None:
            kind = fault["kind"]
            if kind == "lost_callback":
                with engine.lock:
                    engine.counters["callbacks_dropped"] += 1
                    t.callbacks.append({"event": "dropped"})
                return
            if kind == "duplicate_callback":
                bodies = [final] * max(1, int(fault.get("count", 2)))
            elif kind == "out_of_order_callback":
                stale = copy.deepcopy(final)
                stale["status"] = "processing"
                stale["progress"] = 50
                stale.pop("results", None)
                stale.pop("error", None)
                bodies = [final, stale]
            elif kind == "slow":
                delay = float(fault.get("delay", 5.0))
        th = threading.Thread(
            target=self._deliver_all,
            args=(t, t.callback_url, bodies, delay, t.generation),
            name=f"sim-callback-{t.id}",
            daemon=True,
        )
        th.start()

    def _deliver_all(
        self, t: Task, url: str, bodies: list[dict[str, Any]], delay: float, generation: int
    ) -> None:
        if delay:
            self.engine.sleep(delay)
        for body in bodies:
            self._deliver(t, url, body, generation)

    def _deliver(self, t: Task, url: str, body: dict[str, Any], generation: int) -> None:
        engine = self.engine
        delays = [0.0, *engine.config.callback_retry_delays]
        payload = json.dumps(body).encode()
        for attempt, wait in enumerate(delays):
            if wait:
                engine.sleep(wait)
            if engine.stopping.is_set() or generation != engine.generation:
                return
            engine.count("callbacks_sent")
            status: int | None = None
            err: str | None = None
            try:
                resp = httpx.post(
                    url,
                    content=payload,
                    headers={"Content-Type": "application/json", "User-Agent": "dropcut-sim"},
                    timeout=engine.config.callback_timeout_seconds,
                )
                status = resp.status_code
            except httpx.HTTPError as exc:
                err = f"{type(exc).__name__}: {exc}"
            ok = status is not None and 200 <= status < 300
            with engine.lock:
                if generation != engine.generation:
                    return
                t.callbacks.append(
                    {
                        "attempt": attempt + 1,
                        "status": status,
                        "error": err,
                        "body_status": body["status"],
                    }
                )
                if ok:
                    engine.counters["callbacks_delivered"] += 1
                    return
        with engine.lock:
            if generation == engine.generation:
                engine.counters["callbacks_failed"] += 1
