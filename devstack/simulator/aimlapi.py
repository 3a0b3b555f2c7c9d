"""The aimlapi Kling O1 video-edit API (poll only), as the simulator speaks it.

``POST /v2/video/generations`` creates (``{"id": "<uuid4>:<model>", "status": "queued"}``);
``GET /v2/video/generations?generation_id=ID`` queries. Statuses ``queued -> generating ->
completed | error``. Errors use the NestJS-style body ``{"statusCode", "message", "error"}``.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

from devstack.simulator.core import Answer, ProviderApi, Task, TaskRequest
from devstack.simulator.urls import is_uri, valid_input_url

AIMLAPI_MODEL = "klingai/video-o1-video-to-video-edit"

# aimlapi error names are CamelCase; these do not follow from the snake_case code.
_ERROR_NAMES = {"generation_failed": "GenerationError"}


def aiml_error(status: int, message: str) -> Answer:
    """A NestJS-style error answer, as aimlapi's gateway gives: {"statusCode", "message", "error"}."""
    return Answer(
        status, {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase}
    )


class AimlApi(ProviderApi):
    """aimlapi: task ids, statuses, errors, create and query."""

    name = "aimlapi"
    status_words = ("queued", "generating", "completed", "error")
    unauthorized_message = "Unauthorized: invalid or missing API key"
    no_credits_message = "Insufficient credits"
    concurrency_message = "Too many concurrent generations"
    concurrency_retry_after = "1"

    def error(self, status: int, message: str | None = None) -> Answer:
        """aimlapi's error body; the default message is the status phrase."""
        return aiml_error(status, message or HTTPStatus(status).phrase)

    def new_task_id(self) -> str:
        """``<uuid4>:<model>``."""
        return f"{uuid.uuid4()}:{AIMLAPI_MODEL}"

    def error_code(self, code: str) -> str:
        """The CamelCase ``error.name`` (``video_download_failed`` -> ``VideoDownloadFailed``)."""
        return _ERROR_NAMES.get(code) or "".join(p.capitalize() for p in code.split("_"))

    def task_finished(self, t: Task) -> None:
        """Nothing: aimlapi is poll only."""

    def create(self, body: Any) -> Answer:
        """``POST /v2/video/generations``: check the body as aimlapi does, create the task."""
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")
        if body.get("model") != AIMLAPI_MODEL:
            raise _bad(f"model must be one of: {AIMLAPI_MODEL}")
        prompt = _check_prompt(body)
        video_url = _check_video_url(body)
        listed_image = _check_image_list(body)
        element_image = _check_elements(body)
        keep_audio = _check_keep_audio(body)
        request = TaskRequest(
            prompt=prompt,
            body=body,
            video_url=video_url,
            image_url=listed_image if listed_image is not None else element_image,
            keep_audio=keep_audio,
            aspect_ratio=None,
            callback_url=None,
        )
        t = self.engine.create_task(self.name, request)
        return Answer(200, {"id": t.id, "status": "queued"})

    def query(self, query: dict[str, list[str]]) -> Answer:
        """``GET /v2/video/generations?generation_id=ID`` (``query`` as ``parse_qs`` gives it)."""
        ids = query.get("generation_id")
        if not ids or not ids[0]:
            raise aiml_error(400, "generation_id is required")
        with self.engine.lock:
            t = self.engine.find(self.name, ids[0])
            if t is None:
                raise aiml_error(404, "Generation not found")
            return Answer(200, self.body(t))

    def body(self, t: Task) -> dict[str, Any]:
        """``{id, status}``, plus ``video.url`` and ``meta.usage`` or ``error.{name, message}``."""
        body: dict[str, Any] = {"id": t.id, "status": self.public_status(t)}
        if t.status == "completed":
            body["video"] = {"url": self.engine.result_url(t)}
            body["meta"] = {"usage": {"credits_used": t.credits}}
        elif t.status == "failed":
            body["error"] = {"name": t.error_code or "Error", "message": t.error_message or ""}
        return body


# ---- request checks (in the order aimlapi applies them; each raises a 400 answer) ------------


def _bad(message: str) -> Answer:
    """The 400 answer for an invalid request body."""
    return aiml_error(400, message)


def _check_prompt(body: dict[str, Any]) -> str:
    """``prompt``: a non-empty string of at most 2500 characters."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _bad("prompt is required and must be a string")
    if len(prompt) > 2500:
        raise _bad("prompt must be shorter than or equal to 2500 characters")
    return prompt


def _check_video_url(body: dict[str, Any]) -> Any:
    """``video_url``: required, an HTTPS URL or a data URI."""
    video_url = body.get("video_url")
    if video_url is None:
        raise _bad("video_url is required")
    if not valid_input_url(video_url, allow_data=True):
        raise _bad("video_url must be a HTTPS URL or a data URI")
    return video_url


def _check_image_list(body: dict[str, Any]) -> Any:
    """``image_list`` (optional): 1 to 7 URLs; the first one, or None without the field."""
    if "image_list" not in body:
        return None
    il = body["image_list"]
    if not isinstance(il, list) or not 1 <= len(il) <= 7:
        raise _bad("image_list must contain between 1 and 7 items")
    if not all(is_uri(u) for u in il):
        raise _bad("each value in image_list must be a URL address")
    return il[0]


def _check_elements(body: dict[str, Any]) -> Any:
    """``elements`` (optional): at most 4; the first one's ``frontal_image_url``, or None."""
    if "elements" not in body:
        return None
    els = body["elements"]
    if not isinstance(els, list) or len(els) > 4:
        raise _bad("elements must contain no more than 4 items")
    for i, el in enumerate(els):
        _check_element(i, el)
    return els[0]["frontal_image_url"] if els else None


def _check_element(i: int, el: Any) -> None:
    """``elements.<i>``: an object with a ``frontal_image_url`` and 1 to 4 reference URLs."""
    if not isinstance(el, dict):
        raise _bad(f"elements.{i} must be an object")
    if not is_uri(el.get("frontal_image_url")):
        raise _bad(f"elements.{i}.frontal_image_url must be a URL address")
    refs = el.get("reference_image_urls")
    if not isinstance(refs, list) or not 1 <= len(refs) <= 4:
        raise _bad(f"elements.{i}.reference_image_urls must contain 1 to 4 items")
    if not all(is_uri(u) for u in refs):
        raise _bad(f"each value in elements.{i}.reference_image_urls must be a URL")


def _check_keep_audio(body: dict[str, Any]) -> bool:
    """``keep_audio`` (optional, default false): a boolean."""
    keep_audio = body.get("keep_audio", False)
    if not isinstance(keep_audio, bool):
        raise _bad("keep_audio must be a boolean value")
    return keep_audio
