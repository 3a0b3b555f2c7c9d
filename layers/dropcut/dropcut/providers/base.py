"""The one interface every provider adapter implements, and the normalized task it returns."""

from __future__ import annotations

import abc
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from dropcut.errors import Problem, ProviderAnswerLost, ProviderError, RequestInvalid
from dropcut.public_urls import address_problem, literal_address

if TYPE_CHECKING:
    import httpx

AspectRatio = Literal["16:9", "9:16", "1:1"]
#: Reference image files the providers take: jpg/jpeg/png/webp (evolink's page).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


#: Reference images plus elements the model takes with a video (docs/providers.md, "The
#: model's own limits": 4 with a video, 7 without; stricter than aimlapi's 7 images).
MAX_REFERENCES_WITH_VIDEO = 4


#: The HTTP statuses a provider documents as a refusal of a create: the request reached its
#: application, which created nothing (docs/providers.md: evolink's and Kling's errors 400, 401,
#: 402, 403, 404, 429; fal's validation errors 422). Every other answer may follow a created task.
CREATE_REFUSALS = frozenset({400, 401, 402, 403, 404, 422, 429})


def create_refused(error: Exception) -> bool:
    """True when a failed create provably created no task, so sending it again cannot pay twice.

    The one rule for a create, from how it failed (docs/exactly-once.md, "The create rule"):

    | the create ...                                           | a task may exist | claim   |
    |----------------------------------------------------------|------------------|---------|
    | was refused by dropcut's own checks (RequestInvalid)     | no               | release |
    | never connected (connect error or timeout, pool timeout) | no               | release |
    | was answered 429 or a documented refusal (CREATE_REFUSALS) | no             | release |
    | was answered 5xx or 408 (a gateway before a slow backend) | yes             | keep    |
    | was answered another 4xx the provider does not document  | yes              | keep    |
    | got no answer (read timeout, reset after sending)         | yes             | keep    |
    | was answered 2xx with a body that does not parse or has no id | yes         | keep    |
    | failed in any other way (a bug after the POST)           | yes              | keep    |
    """
    if isinstance(error, RequestInvalid):
        return True
    if not isinstance(error, ProviderError):
        return False
    return not error.delivered or (
        error.status in CREATE_REFUSALS and not isinstance(error, ProviderAnswerLost)
    )


class Element(BaseModel):
    """One element of an edit request: a frontal image and 1-4 more views, as URLs."""

    model_config = ConfigDict(frozen=True)

    frontal_image_url: str
    reference_image_urls: tuple[str, ...]


class EditRequest(BaseModel):
    """What to ask the provider for, independent of any provider's wire format."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    video_url: str
    image_urls: tuple[str, ...] = ()
    elements: tuple[Element, ...] = ()
    keep_audio: bool = False
    aspect_ratio: AspectRatio | None = None
    callback_url: str | None = None


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ProviderTask(BaseModel):
    """A provider task mapped onto one shape, whatever API it came from."""

    task_id: str
    state: TaskState
    provider_status: str
    progress: int | None = None
    result_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    credits: float | None = None
    estimated_seconds: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in (TaskState.SUCCEEDED, TaskState.FAILED)


class ProviderSettings(BaseModel):
    """Where and how to reach one provider account. The key is a SecretStr: never in a repr or log."""

    base_url: str
    api_key: SecretStr
    model: str | None = None
    #: Local stacks serve presigned URLs and callbacks over http://127.0.0.1; real providers refuse them.
    allow_insecure_urls: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    read_attempts: int = Field(default=3, ge=1, le=6)
    read_backoff_base: float = 0.5
    read_backoff_cap: float = 4.0


def is_public_https(url: str, *, allow_insecure: bool) -> str | None:
    """Why `url` is not an acceptable public https URL, or None when it is. Checks its form
    only (no lookup: dropcut.public_urls resolves names where dropcut itself connects)."""
    parts = urlsplit(url)
    if allow_insecure and parts.scheme in ("http", "https") and parts.hostname:
        return None
    if parts.scheme != "https":
        return "must be an https URL"
    host = (parts.hostname or "").rstrip(".")
    if not host or host == "localhost" or host.endswith(".localhost"):
        return "must name a public host"
    address = literal_address(host)
    return address_problem(address) if address is not None else None


class Provider(abc.ABC):
    """A provider adapter: validates, creates, queries. Creates are never retried inside the adapter."""

    name: ClassVar[str]
    default_model: ClassVar[str]
    supports_callback: ClassVar[bool]
    supports_cancel: ClassVar[bool] = False
    max_prompt_chars: ClassVar[int]
    max_images: ClassVar[int]
    #: Elements the provider's API takes (0: it documents none).
    max_elements: ClassVar[int] = 0
    #: The provider's cap on an input video's size (evolink's page; Kling's own is 200 MB).
    #: The model's other input limits live in dropcut.model.plan (docs/providers.md).
    max_video_bytes: ClassVar[int] = 100 * 1024 * 1024
    #: Whether the provider documents billing a clip outside the model's 3-10 s as the nearest
    #: bound (dropcut.model.plan.billed_seconds applies the rule).
    bills_outside_range: ClassVar[bool] = False
    max_image_bytes: ClassVar[int] = 10 * 1024 * 1024
    #: How long a completed task's result link lives (s): evolink's page says 24 hours; aimlapi
    #: documents none and serves results from the same kind of CDN, so 24 hours too.
    result_link_seconds: ClassVar[int] = 24 * 3600
    image_formats: ClassVar[frozenset[str]] = frozenset({"jpeg", "png", "webp"})

    def __init__(self, settings: ProviderSettings, client: httpx.Client):
        self.settings = settings
        self.model = settings.model or self.default_model
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.settings.base_url!r}, model={self.model!r})"

    @classmethod
    def prompt_problems(cls, prompt: str) -> list[Problem]:
        """The prompt's broken limits: empty, or longer than max_prompt_chars characters."""
        if not prompt.strip():
            return [Problem("prompt", "the prompt is empty", "1+ characters", "Write a prompt.")]
        if len(prompt) > cls.max_prompt_chars:
            return [
                Problem(
                    "prompt",
                    f"the prompt has {len(prompt)} characters",
                    f"at most {cls.max_prompt_chars} characters for {cls.name}",
                    "Shorten the prompt.",
                )
            ]
        return []

    @classmethod
    def reference_problems(cls, images: int, elements: int, field: str = "images") -> list[Problem]:
        """Too many reference images (named `field`) or elements for this provider, or more
        than the model takes with a video in all (MAX_REFERENCES_WITH_VIDEO)."""
        found = []
        if images > cls.max_images:
            found.append(
                Problem(
                    field,
                    f"{images} reference images",
                    f"at most {cls.max_images} for {cls.name}",
                    "Keep the most important reference images.",
                )
            )
        if elements > cls.max_elements:
            found.append(
                Problem(
                    "elements",
                    f"{elements} elements"
                    if cls.max_elements
                    else f"{cls.name} documents no elements ({elements} given)",
                    f"at most {cls.max_elements} for {cls.name}",
                    "Remove the elements, or use a provider that takes them (aimlapi).",
                )
            )
        if not found and images + elements > MAX_REFERENCES_WITH_VIDEO:
            found.append(
                Problem(
                    field if not elements else "elements",
                    f"{images} reference images and {elements} elements",
                    f"at most {MAX_REFERENCES_WITH_VIDEO} in all with a video (the model's limit)",
                    "Keep the most important references.",
                )
            )
        return found

    def problems(self, request: EditRequest) -> list[Problem]:
        """Every documented limit `request` breaks for this provider (empty when it is acceptable)."""
        found = [
            *self.prompt_problems(request.prompt),
            *self.reference_problems(len(request.image_urls), len(request.elements), "image_urls"),
        ]
        allow_insecure = self.settings.allow_insecure_urls
        video_problem = is_public_https(request.video_url, allow_insecure=allow_insecure)
        if video_problem and not request.video_url.startswith("data:"):
            found.append(Problem("video_url", f"the video URL {video_problem}", "https URL"))
        element_urls = [
            url
            for element in request.elements
            for url in (element.frontal_image_url, *element.reference_image_urls)
        ]
        for index, url in enumerate([*request.image_urls, *element_urls]):
            image_problem = is_public_https(url, allow_insecure=allow_insecure)
            if image_problem:
                found.append(Problem(f"image_urls[{index}]", f"the image URL {image_problem}"))
        if request.callback_url is not None:
            if not self.supports_callback:
                found.append(
                    Problem(
                        "callback_url",
                        f"{self.name} has no callback; dropcut polls it instead",
                        "no callback_url",
                    )
                )
            else:
                found.extend(self._callback_problems(request.callback_url))
        found.extend(self._provider_problems(request))
        return found

    def _callback_problems(self, url: str) -> list[Problem]:
        return []

    def _provider_problems(self, request: EditRequest) -> list[Problem]:
        return []

    def check(self, request: EditRequest) -> None:
        """Raise RequestInvalid listing every broken limit; before any HTTP call."""
        found = self.problems(request)
        if found:
            raise RequestInvalid(found)

    @abc.abstractmethod
    def create_task(self, request: EditRequest) -> ProviderTask:
        """Create a task (one POST, never retried here: a retried POST can pay twice). Whether a
        failure may have left a task behind is create_refused's call, not the adapter's."""

    @abc.abstractmethod
    def get_task(self, task_id: str) -> ProviderTask:
        """Query a task (a read: retried with bounded, jittered backoff on transient errors)."""

    def parse_callback(self, body: dict[str, Any]) -> ProviderTask:
        """Read a callback body (raises ProviderBadResponse); only providers with callbacks can."""
        raise NotImplementedError(f"{self.name} sends no callbacks")

    def cancel_task(self, task_id: str) -> None:
        """Cancel a task where the API documents a way to; neither current provider does."""
        raise NotImplementedError(f"{self.name} documents no way to cancel a task")

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key.get_secret_value()}"}

    def _url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + path


JsonObject = dict[str, Any]
