"""dropcut_media: the media layer's video work with PyAV (FFmpeg), apart from the dropcut package.

- prepare.prepare_video: rotation, size, frame rate and exact cuts (at scene cuts) -> MP4 parts
- stitch.stitch_parts: the edited parts joined (remuxed where possible), the input's audio laid under
- contact_sheet.contact_sheet: a before/after PNG
- inspect.describe: what a video file holds
- errors: the named exceptions (MediaUnreadable, MediaPlanInvalid, PartsIncompatible)

Submodules are imported on use (``from dropcut_media.prepare import prepare_video``), so a
handler pays only for what it calls.
"""
