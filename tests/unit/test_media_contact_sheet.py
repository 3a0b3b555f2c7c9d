"""dropcut_media.contact_sheet: a before row and an after row of frames at the same times, as
displayed (rotation applied); and the media layer's packaging (pins, no numpy, standalone)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PIL import Image

from devstack.media_samples import colour_of, make_colour_clip
from dropcut_media.contact_sheet import GAP, LABEL_HEIGHT, ROW_TITLE_WIDTH, contact_sheet
from dropcut_media.errors import MediaPlanInvalid, MediaUnreadable

ROOT = Path(__file__).resolve().parents[2]


def _cell(sheet: Image.Image, row_top: int, column: int, width: int, height: int) -> tuple:
    """The colour at the centre of one thumbnail."""
    x = ROW_TITLE_WIDTH + column * (width + GAP) + width // 2
    y = row_top + LABEL_HEIGHT + height // 2
    return sheet.getpixel((x, y))


def _close(a: tuple, b: tuple) -> bool:
    return all(abs(x - y) <= 12 for x, y in zip(a, b, strict=False))


def test_the_rows_show_before_and_after_at_the_same_times(tmp_path):
    before = make_colour_clip(tmp_path / "in.mp4", seconds=6, width=160, height=120, fps=30)
    after = make_colour_clip(
        tmp_path / "out.mp4",
        seconds=6,
        width=160,
        height=120,
        fps=24,
        colour_index=lambda t: int(t) + 10,
    )
    png = tmp_path / "sheet.png"
    times = [0.5, 2.0, 4.99, 9.0]  # 9.0 is past the end: the last frame
    contact_sheet(before, after, png, times=times, thumb_width=80)
    sheet = Image.open(png)
    assert sheet.format == "PNG"
    assert sheet.width == ROW_TITLE_WIDTH + 4 * (80 + GAP) + GAP
    thumb_height = 60
    assert sheet.height == 2 * (LABEL_HEIGHT + thumb_height + GAP) + GAP
    second_row = GAP + LABEL_HEIGHT + thumb_height + GAP
    for column, second in enumerate([0, 2, 4, 5]):
        assert _close(_cell(sheet, GAP, column, 80, thumb_height), colour_of(second))
        assert _close(_cell(sheet, second_row, column, 80, thumb_height), colour_of(second + 10))


def test_a_rotated_input_is_shown_upright(tmp_path):
    phone = make_colour_clip(
        tmp_path / "phone.mov",
        seconds=1,
        width=96,
        height=64,
        fps=30,
        rotation=90,
        container_format="mov",
        audio=False,
    )
    upright = make_colour_clip(tmp_path / "out.mp4", seconds=1, width=64, height=96, fps=24)
    png = tmp_path / "sheet.png"
    contact_sheet(phone, upright, png, times=[0.5], thumb_width=64)
    sheet = Image.open(png).convert("RGB")
    # both rows are portrait thumbnails 64 x 96: the sheet is as tall as two of them
    assert sheet.height == 2 * (LABEL_HEIGHT + 96 + GAP) + GAP
    # the stored top-left mark, turned counterclockwise, is at the bottom-left of the thumbnail
    x, y = ROW_TITLE_WIDTH + 2, GAP + LABEL_HEIGHT + 96 - 3
    assert min(sheet.getpixel((x, y))) > 200


def test_bad_input_is_named(tmp_path):
    clip = make_colour_clip(tmp_path / "in.mp4", seconds=1, width=64, height=64, audio=False)
    with pytest.raises(MediaPlanInvalid):
        contact_sheet(clip, clip, tmp_path / "a.png", times=[])
    missing = tmp_path / "missing.mp4"
    with pytest.raises(MediaUnreadable, match=r"missing\.mp4"):
        contact_sheet(clip, missing, tmp_path / "b.png", times=[0.0])


# --- packaging -------------------------------------------------------------------------------


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    return pins


def test_the_media_layer_pins_what_the_tests_run_and_ships_no_numpy():
    layer = _pins(ROOT / "layers/media/requirements.txt")
    dev = _pins(ROOT / "requirements-dev.txt")
    assert set(layer) == {"av", "pillow"}
    for name, version in layer.items():
        assert version and dev[name] == version, name


def test_the_media_package_imports_only_the_standard_library_av_and_pil():
    allowed = {"av", "PIL", "dropcut_media"}
    for module in (ROOT / "layers/media/dropcut_media").glob("*.py"):
        if module.name == "adapter.py":
            continue  # dropcut.model.media_tools's implementation: the one module that knows dropcut
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in __import__("sys").stdlib_module_names, (
                    f"{module.name} imports {name}"
                )
