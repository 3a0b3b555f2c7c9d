"""dropcut.model.media_tools.MediaTools on PyAV: what Prepare and Stitch call.

PyAV is imported inside each method, so a function that loads this module pays for PyAV only
when it really processes media (Prepare of an as-is job does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from dropcut.errors import MediaUnreadable
from dropcut.model.media_limits import MAX_DECODED_PIXELS, MAX_DECODED_SIDE
from dropcut.model.media_tools import PreparedPart, StitchedVideo
from dropcut.model.plan import Plan

#: The model's output frame rate (../shared/providers/README.md, "The model's own limits").
OUTPUT_FPS = Fraction(24)


class PyAvMediaTools:
    """MediaTools (dropcut.model.media_tools) implemented with dropcut_media's PyAV functions."""

    def prepare(
        self, source: Path, plan: Plan, out_dir: Path, *, keep_audio: bool
    ) -> list[PreparedPart]:
        from dropcut_media.errors import MediaError
        from dropcut_media.prepare import Cut, DecodeBounds, Target, prepare_video

        if plan.target is None:
            raise MediaUnreadable(f"the {plan.kind.value} plan has no target video")
        target = Target(
            width=plan.target.width,
            height=plan.target.height,
            fps=Fraction(plan.target.fps_num, plan.target.fps_den),
            max_bitrate=plan.target.max_bitrate,
        )
        cuts = [
            Cut(
                index=part.index,
                start_seconds=part.start_seconds,
                end_seconds=part.end_seconds,
                pad_to_seconds=plan.pad_to_seconds,
            )
            for part in plan.parts
        ]
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            made = prepare_video(
                source,
                cuts,
                target,
                out_dir,
                keep_audio=keep_audio,
                bounds=DecodeBounds(MAX_DECODED_SIDE, MAX_DECODED_PIXELS),
                video_track_id=plan.video_track_id,
            )
        except MediaError as error:
            raise MediaUnreadable(str(error)) from None
        return [
            PreparedPart(
                index=part.index,
                path=part.path,
                start_seconds=part.start_seconds,
                duration_seconds=part.duration_seconds,
                moved_to_scene_cut=part.moved_to_scene_cut,
            )
            for part in made
        ]

    def stitch(
        self,
        parts: Sequence[Path],
        output: Path,
        *,
        trim_to_seconds: float | None,
        audio_source: Path | None,
    ) -> StitchedVideo:
        from dropcut_media.errors import MediaError
        from dropcut_media.stitch import stitch_parts

        try:
            info = stitch_parts(
                parts,
                output,
                fps=OUTPUT_FPS,
                trim_to_seconds=trim_to_seconds,
                audio_source=audio_source,
            )
        except MediaError as error:
            raise MediaUnreadable(str(error)) from None
        return StitchedVideo(
            duration_seconds=info.duration_seconds, remuxed=info.remuxed, audio=info.audio
        )

    def contact_sheet(
        self, before: Path, after: Path, png_out: Path, *, times: Sequence[float]
    ) -> None:
        from dropcut_media.contact_sheet import contact_sheet

        contact_sheet(before, after, png_out, times=times)

    def check_decodes(self, video: Path) -> None:
        from dropcut_media.errors import MediaError
        from dropcut_media.inspect import check_decodes

        try:
            check_decodes(video)
        except MediaError as error:
            raise MediaUnreadable(str(error)) from None
