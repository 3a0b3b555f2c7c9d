"""EvoLink-style unified task API adapter: POST /v1/videos/generations, GET /v1/tasks/{id}."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from dropcut.errors import Problem, ProviderBadResponse, ProviderRejected
from dropcut.providers.base import (
    IMAGE_SUFFIXES,
    EditRequest,
    Provider,
    ProviderTask,
    TaskState,
    is_public_https,
)
from dropcut.providers.http import require, retry_read, send

_STATES = {
    "pending": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    # Callbacks fire on cancellation too; dropcut treats a cancelled task as failed.
    "cancelled": TaskState.FAILED,
}
TASK_ID_PREFIX = "task-unified-"
MAX_CALLBACK_URL_CHARS = 2048


class EvolinkProvider(Provider):
    name: ClassVar[str] = "evolink"
    default_model: ClassVar[str] = "kling-o1-video-edit"
    supports_callback: ClassVar[bool] = True
    max_prompt_chars: ClassVar[int] = 5000
    max_images: ClassVar[int] = 4
    bills_outside_range: ClassVar[bool] = True

    def _callback_problems(self, url: str) -> list[Problem]:
        found = []
        if len(url) > MAX_CALLBACK_URL_CHARS:
            found.append(
                Problem(
                    "callback_url",
                    f"the callback URL has {len(url)} characters",
                    f"at most {MAX_CALLBACK_URL_CHARS}",
                )
            )
        reason = is_public_https(url, allow_insecure=self.settings.allow_insecure_urls)
        if reason:
            found.append(Problem("callback_url", f"the callback URL {reason}", "public https URL"))
        return found

    def _provider_problems(self, request: EditRequest) -> list[Problem]:
        found = []
        for index, url in enumerate(request.image_urls):
            path = urlsplit(url).path.lower()
            if not path.endswith(IMAGE_SUFFIXES):
                found.append(
                    Problem(
                        f"image_urls[{index}]",
                        "the reference image is not a .jpg, .jpeg, .png or .webp file",
                        "jpg/jpeg/png/webp",
                        "Convert the image to JPEG, PNG or WebP.",
                    )
                )
        return found

    def create_task(self, request: EditRequest) -> ProviderTask:
        self.check(request)
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "video_urls": [request.video_url],
            "keep_original_sound": request.keep_audio,
        }
        if request.image_urls:
            body["image_urls"] = list(request.image_urls)
        if request.aspect_ratio:
            body["aspect_ratio"] = request.aspect_ratio
        if request.callback_url:
            body["callback_url"] = request.callback_url
        answer = send(
            self.name,
            self._client,
            "POST",
            self._url("/v1/videos/generations"),
            json=body,
            headers=self._auth_headers(),
        )
        return self.parse_task(answer)

    def get_task(self, task_id: str) -> ProviderTask:
        if not task_id.startswith(TASK_ID_PREFIX):
            raise ProviderRejected(
                f"{self.name} task ids start with {TASK_ID_PREFIX!r}; got {task_id[:40]!r}",
                code="invalid_task_id",
            )

        def query() -> ProviderTask:
            answer = send(
                self.name,
                self._client,
                "GET",
                self._url(f"/v1/tasks/{quote(task_id, safe='')}"),
                headers=self._auth_headers(),
            )
            return self.parse_task(answer)

        s = self.settings
        return retry_read(
            query, attempts=s.read_attempts, base=s.read_backoff_base, cap=s.read_backoff_cap
        )

    def parse_callback(self, body: dict[str, Any]) -> ProviderTask:
        return self.parse_task(body)

    def parse_task(self, body: dict[str, Any]) -> ProviderTask:
        """Map a query answer (or a callback body, which has the same shape) onto ProviderTask."""
        task_id = require(self.name, body, "id", str)
        status = require(self.name, body, "status", str)
        if status not in _STATES:
            raise ProviderBadResponse(f"{self.name} answered an unknown status {status!r}")
        state = _STATES[status]
        results = body.get("results") or []
        result_url = results[0] if isinstance(results, list) and results else None
        if state is TaskState.SUCCEEDED and not isinstance(result_url, str):
            raise ProviderBadResponse(f"{self.name} reported completed without results")
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        info = body.get("task_info") if isinstance(body.get("task_info"), dict) else {}
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        progress = body.get("progress")
        estimate = info.get("estimated_time") if info else None
        credits = usage.get("credits_reserved") if usage else None
        return ProviderTask(
            task_id=task_id,
            state=state,
            provider_status=status,
            progress=progress if isinstance(progress, int) else None,
            result_url=result_url if isinstance(result_url, str) else None,
            error_code=str(error["code"]) if error and "code" in error else None,
            error_message=str(error.get("message")) if error else None,
            credits=float(credits) if isinstance(credits, int | float) else None,
            estimated_seconds=estimate if isinstance(estimate, int) else None,
        )
