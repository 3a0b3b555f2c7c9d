"""`dropcut estimate`: Submit's checks on local files, with Submit's own code, before anything
is uploaded: the video by its content (dropcut.services.validation.check_video through a local-file
RangeReader), the options (dropcut.model.jobs.parse_job_spec, dropcut.services.validation.check_options), and
Submit's plan for the video (dropcut.model.plan.plan_video) with what the provider will bill where its
rule is documented (docs/providers.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropcut.errors import InputInvalid, Problem
from dropcut.formats.probe import MediaInfo, RangeReader
from dropcut.model.budget import DailyBudget
from dropcut.model.jobs import JobSpec, parse_job_spec
from dropcut.model.plan import Plan, PlanKind, plan_video
from dropcut.providers import Provider
from dropcut.public_urls import UrlRefused, check_public_https
from dropcut.services.validation import (
    audio_notice,
    check_options,
    check_video,
    video_name_problems,
)
from dropcut_cli.options import is_url

NO_PROMPT_NOTICE = (
    "no prompt given: the video's folder preset or the stack default gives it, "
    "or the video waits for its manifest"
)
NO_MANIFEST_PROMPT_NOTICE = (
    "the manifest has no prompt: Submit refuses it unless the folder's _preset.json gives one"
)


@dataclass(frozen=True)
class Estimate:
    """What Submit would find for one input, and what it would cost."""

    path: Path
    provider: str
    media: MediaInfo | None = None
    notices: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Submit's plan for the video (None when it is not a video that can be read).
    plan: Plan | None = None
    #: The daily budget's estimate (DailyBudget.estimate of each part) at the stack's
    #: CreditsPerBilledSecond; None without a stack to read the price from.
    credits: float | None = None

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    @property
    def billed_seconds(self) -> float | None:
        return self.plan.billed_seconds if self.plan is not None else None

    @property
    def billing(self) -> str:
        return self.plan.billing if self.plan is not None else ""

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "provider": self.provider,
            "accepted": not self.refused,
            "media": self.media.model_dump(mode="json") if self.media else None,
            "notices": self.notices,
            "problems": [problem.as_dict() for problem in self.problems],
            "plan": self.plan.model_dump(mode="json") if self.plan else None,
            "billed_seconds": self.billed_seconds,
            "billing": self.billing,
            "estimated_credits": self.credits,
        }


def file_reader(path: Path) -> RangeReader:
    """Ranged reads of a local file, as dropcut.aws.storage.s3_range_reader reads an S3 object."""

    def read(offset: int, length: int) -> bytes:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    return read


def estimate(
    path: Path,
    provider: type[Provider],
    document: Any,
    *,
    max_parts: int,
    normalize: bool,
    price: float | None = None,
) -> Estimate:
    """Check one local video and the job's options (a manifest document or None), and plan the
    video as Submit would with MaxPartsPerJob `max_parts` and NormalizeInputs `normalize`;
    a refused plan's problems are the estimate's. With `price` (the stack's
    CreditsPerBilledSecond), the credits its daily budget would reserve for the plan's parts."""
    problems: list[Problem] = video_name_problems(path.name)
    notices: list[str] = []
    checked = check_video(file_reader(path), path.stat().st_size, provider)
    problems.extend(checked.problems)
    notices.extend(checked.notices)
    spec = _spec(document, problems, notices)
    if spec is not None:
        if (notice := audio_notice(spec, checked.media)) is not None:
            notices.append(notice)
        problems.extend(check_options(provider, spec))
        problems.extend(_image_problems(spec))
    plan = None
    credits = None
    if checked.media is not None:
        plan = plan_video(checked.media, provider, max_parts=max_parts, normalize=normalize)
        if plan.kind is PlanKind.REFUSE:
            problems.extend(plan.problems)
        elif price is not None:
            budget = DailyBudget(limit=0, credits_per_second=price)
            credits = sum(budget.estimate(provider, part.seconds) for part in plan.parts)
    return Estimate(path, provider.name, checked.media, notices, problems, plan, credits)


def _spec(document: Any, problems: list[Problem], notices: list[str]) -> JobSpec | None:
    if document is None or not document:
        notices.append(NO_PROMPT_NOTICE)
        document = {"prompt": "-"}
    elif isinstance(document, dict) and "prompt" not in document:
        notices.append(NO_MANIFEST_PROMPT_NOTICE)
        document = {"prompt": "-", **document}
    try:
        return parse_job_spec(document)
    except InputInvalid as invalid:
        problems.extend(invalid.problems)
        return None


def _image_problems(spec: JobSpec) -> list[Problem]:
    """Image URLs through the address guard Submit uses; local images must exist (their content
    is checked by Submit once uploaded)."""
    found: list[Problem] = []
    for index, image in enumerate(spec.images):
        if is_url(image):
            try:
                check_public_https(image)
            except UrlRefused as refused:
                found.append(
                    Problem(
                        f"images[{index}]",
                        f"the image URL {refused}",
                        "an https URL of a public host",
                    )
                )
        elif not Path(image).is_file() and not image.startswith("inbox/"):
            found.append(Problem(f"images[{index}]", f"{image!r} is not a file", "an image file"))
    return found
