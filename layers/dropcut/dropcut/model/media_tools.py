"""What the workflow asks of media processing, without importing it.

Prepare and Stitch run on the media layer (PyAV; layers/media, package dropcut_media), which only
their functions carry. The steps in dropcut.steps take a MediaTools from their handler, so the
dropcut package never imports PyAV and the other functions' cold starts never pay for it
(dropcut_media.adapter is the implementation).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dropcut.observability import logger

if TYPE_CHECKING:
    from dropcut.model.plan import Plan

#: The name every media working directory starts with (under the function's /tmp).
WORK_PREFIX = "dropcut-work-"


def working_directory(work_dir: Path) -> tempfile.TemporaryDirectory[str]:
    """A fresh working directory under `work_dir` (removed when its `with` ends), after removing
    any left by an invocation that was killed (Lambda keeps /tmp between the invocations of one
    execution environment, and runs one at a time: whatever is there is stale)."""
    for stale in work_dir.glob(f"{WORK_PREFIX}*"):
        logger.warning("stale working directory removed", extra={"directory": stale.name})
        shutil.rmtree(stale, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=work_dir)


@dataclass(frozen=True)
class PreparedPart:
    """One video Prepare wrote: what the provider will be sent for one part of the job."""

    index: int
    path: Path
    #: Where it starts in the input and how long it is (s); a boundary may have moved to a scene cut.
    start_seconds: float
    duration_seconds: float
    moved_to_scene_cut: bool = False


@dataclass(frozen=True)
class StitchedVideo:
    """What Stitch made of the edited parts."""

    duration_seconds: float
    #: True when the parts were joined without re-encoding.
    remuxed: bool
    #: Where the sound comes from: "original" (the input's track), "parts" or "none".
    audio: str


class MediaTools(Protocol):
    """The media operations of Prepare and Stitch (implemented by dropcut_media.adapter)."""

    def prepare(
        self, source: Path, plan: Plan, out_dir: Path, *, keep_audio: bool
    ) -> list[PreparedPart]:
        """Write the plan's parts (or its one mezzanine) of `source` into `out_dir`, in order.
        Raises MediaUnreadable (dropcut.errors) when the input cannot be decoded."""
        ...

    def stitch(
        self,
        parts: Sequence[Path],
        output: Path,
        *,
        trim_to_seconds: float | None,
        audio_source: Path | None,
    ) -> StitchedVideo:
        """Join the edited `parts` in order into `output` (MP4 at the model's 24 fps), trimmed to
        `trim_to_seconds` when given, with `audio_source`'s audio under the whole video when given."""
        ...

    def contact_sheet(
        self, before: Path, after: Path, png_out: Path, *, times: Sequence[float]
    ) -> None:
        """A PNG of `before` and `after` frames at the same `times` (s)."""
        ...

    def check_decodes(self, video: Path) -> None:
        """Decode the first few pictures of `video`. Raises MediaUnreadable (dropcut.errors)
        when they do not decode."""
        ...
