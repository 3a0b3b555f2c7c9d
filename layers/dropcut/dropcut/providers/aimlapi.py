"""AI/ML API adapter: POST/GET /v2/video/generations. Poll only: the API has no callback."""

from __future__ import annotations

from typing import Any, ClassVar

from dropcut.errors import Problem, ProviderBadResponse
from dropcut.providers.base import EditRequest, Provider, ProviderTask, TaskState
from dropcut.providers.http import require, retry_read, send

_STATES = {
    "queued": TaskState.QUEUED,
    "generating": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "error": TaskState.FAILED,
}


class AimlapiProvider(Provider):
    name: ClassVar[str] = "aimlapi"
    default_model: ClassVar[str] = "klingai/video-o1-video-to-video-edit"
    supports_callback: ClassVar[bool] = False
    max_prompt_chars: ClassVar[int] = 2500
    max_images: ClassVar[int] = 7
    max_elements: ClassVar[int] = 4

    def _provider_problems(self, request: EditRequest) -> list[Problem]:
        if request.aspect_ratio is not None:
            return [
                Problem(
                    "aspect_ratio",
                    "aimlapi keeps the input's aspect ratio and accepts no aspect_ratio",
                    "no aspect_ratio",
                    "Remove aspect_ratio, or use the evolink provider.",
                )
            ]
        return []

    def create_task(self, request: EditRequest) -> ProviderTask:
        self.check(request)
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "video_url": request.video_url,
            "keep_audio": request.keep_audio,
        }
        if request.image_urls:
            body["image_list"] = list(request.image_urls)
        if request.elements:
            body["elements"] = [
                {
                    "frontal_image_url": element.frontal_image_url,
                    "reference_image_urls": list(element.reference_image_urls),
                }
                for element in request.elements
            ]
        answer = send(
            self.name,
            self._client,
            "POST",
            self._url("/v2/video/generations"),
            json=body,
            headers=self._auth_headers(),
        )
        return self._task(answer)

    def get_task(self, task_id: str) -> ProviderTask:
        def query() -> ProviderTask:
            # httpx encodes params, so the ':' and '/' inside generation ids travel safely.
            answer = send(
                self.name,
                self._client,
                "GET",
                self._url("/v2/video/generations"),
                params={"generation_id": task_id},
                headers=self._auth_headers(),
            )
            return self._task(answer)

        s = self.settings
        return retry_read(
            query, attempts=s.read_attempts, base=s.read_backoff_base, cap=s.read_backoff_cap
        )

    def _task(self, body: dict[str, Any]) -> ProviderTask:
        task_id = require(self.name, body, "id", str)
        status = require(self.name, body, "status", str)
        if status not in _STATES:
            raise ProviderBadResponse(f"{self.name} answered an unknown status {status!r}")
        state = _STATES[status]
        video = body.get("video") or {}
        error = body.get("error") or {}
        usage = (body.get("meta") or {}).get("usage") or {}
        result_url = video.get("url") if isinstance(video, dict) else None
        if state is TaskState.SUCCEEDED and not isinstance(result_url, str):
            raise ProviderBadResponse(f"{self.name} reported completed without video.url")
        credits = usage.get("credits_used") if isinstance(usage, dict) else None
        return ProviderTask(
            task_id=task_id,
            state=state,
            provider_status=status,
            result_url=result_url,
            error_code=str(error.get("name")) if isinstance(error, dict) and error else None,
            error_message=str(error.get("message")) if isinstance(error, dict) and error else None,
            credits=float(credits) if isinstance(credits, int | float) else None,
        )
