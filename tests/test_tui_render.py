"""Drawing as a pure function: layouts at many sizes, ASCII, progress, clipping, put()."""

from __future__ import annotations

import curses
import itertools

import pytest

from tests.tui_fakes import (
    FakeController,
    frame_roles,
    frame_text,
    needed_missing,
    synthetic_store,
    view,
)
from wandown.state import Header, StatusStore
from wandown.status import Status
from wandown.tui import render as render_module
from wandown.tui.app import App
from wandown.tui.render import (
    MIN_HEIGHT,
    MIN_WIDTH,
    clip_file_name,
    format_limit,
    layout_columns,
    render,
    status_text,
    totals,
)
from wandown.tui.rows import build_rows
from wandown.tui.screen import put
from wandown.tui.text import clip, clip_middle, display_width, fit
from wandown.tui.view import ViewState

LONG_NAME = "wan2.2_text2video_14B_high_quanto_mbf16_int8.safetensors"


def app_at(width: int, height: int, ascii_only: bool = False, files: int = 300) -> App:
    store = synthetic_store(files)
    app = App(FakeController(store), ascii_only=ascii_only, preselect=needed_missing(store))
    app.resize(width, height)
    return app


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (40, 10), (32, 6), (200, 60)])
def test_every_line_fits_and_the_chrome_is_in_place(width, height):
    app = app_at(width, height)
    lines = app.frame()
    text = frame_text(lines, width)
    assert len(lines) == height
    for line in lines:
        for segment in line:
            assert segment.x + display_width(segment.text) <= width, segment
    assert text[0].startswith(" wandown")
    assert "Model File" in text[1] and "Status" in text[1]
    assert "selected" in text[-1]
    assert sum(1 for row in text[2:-2] if row.startswith("[✓]")) == height - 4
    assert frame_roles(lines)[0] == {"header"}
    assert "row.cursor" in frame_roles(lines)[2]


def test_80_columns_keep_every_column_and_a_readable_file_name():
    columns = {c.name: c for c in layout_columns(80)}
    assert list(columns) == ["check", "config", "file", "size", "status", "dest"]
    assert columns["file"].width >= 30
    assert sum(c.width for c in columns.values()) + len(columns) - 1 == 80
    text = frame_text(app_at(80, 24).frame(), 80)
    assert "Config" in text[1] and "Size (GB)" in text[1] and "Destinati…" in text[1]
    assert "all models" in text[2]
    assert "wan2.2_model_00" in text[3] and "mbf16_int8" in text[3]


@pytest.mark.parametrize("width", range(MIN_WIDTH, 201, 7))
def test_columns_never_overlap_and_fill_the_width(width):
    columns = layout_columns(width)
    for left, right in itertools.pairwise(columns):
        assert left.x + left.width < right.x
    last = columns[-1]
    assert last.x + last.width == width
    assert "file" in {c.name for c in columns}


def test_narrow_terminals_drop_destination_then_config_then_size():
    assert [c.name for c in layout_columns(60)][-1] == "dest"
    assert [c.name for c in layout_columns(50)] == [
        "check",
        "config",
        "file",
        "size",
        "status",
    ]
    assert [c.name for c in layout_columns(40)] == ["check", "file", "size", "status"]
    assert [c.name for c in layout_columns(32)] == ["check", "file", "status"]


@pytest.mark.parametrize(("width", "height"), [(20, 5), (MIN_WIDTH - 1, 24), (80, MIN_HEIGHT - 1)])
def test_too_small_shows_one_line_instead_of_a_table(width, height):
    lines = app_at(width, height).frame()
    text = frame_text(lines, width)
    assert text[0].startswith("terminal too small")
    assert all(not line for line in text[1:])


def test_zero_sized_terminal_renders_nothing():
    assert app_at(0, 0).frame() == []


def test_ascii_mode_uses_no_unicode_at_all():
    app = app_at(80, 24, ascii_only=True)
    app.controller.store.update(app.rows[1].dest, status=Status.DOWNLOADING, done=1, size=4)
    app.refresh()
    text = "\n".join(frame_text(app.frame(), 80))
    assert text.isascii()
    assert "[x]" in text and "#" in text
    assert "✓" not in text


def test_download_shows_percentage_speed_and_bar_on_every_row_of_that_file():
    s = StatusStore(
        {
            "ckpts/shared.safetensors": view("ckpts/shared.safetensors", ["a", "b"]),
            "ckpts/other.safetensors": view("ckpts/other.safetensors", ["c"]),
        },
        Header(model_count=3),
        {"a": "A", "b": "B", "c": "C"},
    )
    s.update(
        "ckpts/shared.safetensors",
        status=Status.DOWNLOADING,
        done=1_000,
        size=4_000,
        speed=12_300_000.0,
    )
    snap = s.snapshot()
    rows = build_rows(snap, False)
    lines = render(ViewState(cursor=2), snap, rows, 100, 10)
    text = frame_text(lines, 100)
    shared = [line for line in text if "shared" in line]
    assert len(shared) == 2
    for line in shared:
        assert "25% 12.3 MB/s" in line
        assert "█" in line and "░" in line
    assert "progress.done" in frame_roles(lines)[2]
    assert "↓ 12.3 MB/s" in text[-1]


def test_failed_reason_is_on_the_status_line_of_the_selected_row():
    app = app_at(100, 20)
    dest = app.rows[3].dest
    app.controller.store.update(dest, status=Status.FAILED, message="checksum mismatch")
    app.refresh()
    app.move_cursor_to(3)
    lines = app.frame()
    assert "Failed: checksum mismatch" in frame_text(lines, 100)[-2]
    assert frame_roles(lines)[-2] == {"statusline.error"}
    app.move_cursor_to(4)
    assert "checksum" not in frame_text(app.frame(), 100)[-2]


def test_header_shows_source_hub_state_online_and_limit():
    text = frame_text(app_at(160, 20).frame(), 160)[0]
    for part in ["Wan2GP test catalog (12 models)", "online", "limit 90,000 KB/s", "/srv/hub"]:
        assert part in text
    assert "1,234 files, 56 links available" in text
    offline = StatusStore({}, Header(online=False, limit_kb=None), {})
    line = frame_text(render(ViewState(), offline.snapshot(), [], 120, 10), 120)
    assert "offline" in line[0] and "unlimited" in line[0] and "no hub" in line[0]
    assert "The catalog lists no files." in line[2]


def test_header_says_where_the_code_side_facts_came_from():
    for origin in ("learned", "shipped 8681e9f"):
        header = Header(catalog_source="/w/Wan2GP", model_count=3, code_origin=origin)
        store = StatusStore({}, header, {})
        shown = f"/w/Wan2GP (3 models, code {origin})"
        assert shown in frame_text(render(ViewState(), store.snapshot(), [], 120, 10), 120)[0]


def test_footer_sums_selection_speed_eta_and_mode():
    s = StatusStore(
        {
            "a/x.bin": view("a/x.bin", ["m"], size=3_000_000_000),
            "a/y.bin": view("a/y.bin", ["m"], size=None),
            "a/z.bin": view(
                "a/z.bin",
                ["m"],
                size=2_000_000,
                status=Status.DOWNLOADING,
                done=1_000_000,
                speed=100_000.0,
            ),
        },
        Header(model_count=1),
        {"m": "M"},
    )
    sums = totals(s.snapshot(), {"a/x.bin", "a/y.bin", "gone/file"})
    assert sums.selected == 2 and sums.selected_bytes == 3_000_000_000 and sums.unknown_sizes
    assert sums.eta == pytest.approx(10.0)
    view_state = ViewState(selected={"a/x.bin", "a/y.bin"}, filter_text="x")
    footer = frame_text(render(view_state, s.snapshot(), [], 120, 10), 120)[-1]
    assert "2 selected, 3.0 GB+" in footer
    assert "ETA 10s" in footer and "↓ 100.0 KB/s" in footer
    assert "Missing Only /x" in footer


def test_draw_formats_only_the_visible_rows(monkeypatch):
    app = app_at(120, 30, files=3000)
    assert len(app.rows) > 2000
    calls = []
    original = render_module.format_row

    def counting(row, *args, **kwargs):
        calls.append(row)
        return original(row, *args, **kwargs)

    monkeypatch.setattr(render_module, "format_row", counting)
    app.move_cursor_to(1500)
    app.frame()
    assert len(calls) == 26
    assert set(calls) <= set(app.rows[app.view.top : app.view.top + 26])
    assert app.rows[1500] in calls


def test_help_overlay_lists_every_binding_and_scrolls():
    app = app_at(80, 24)
    app.handle("?")
    text = "\n".join(frame_text(app.frame(), 80))
    assert "Keys" in text and "Enter" in text and "link or download the selected" in text
    assert "wheel down" not in text  # below the fold at 24 lines
    for _ in range(10):
        app.handle("KEY_DOWN")
    text = "\n".join(frame_text(app.frame(), 80))
    assert "wheel down" in text
    app.handle("q")
    assert "Keys" not in "\n".join(frame_text(app.frame(), 80))
    app.handle("?")  # opens again at the top
    assert "wheel down" not in "\n".join(frame_text(app.frame(), 80))


def test_status_text_and_limits():
    downloading = view("a/b.bin", ["m"], size=200, done=50, status=Status.DOWNLOADING, speed=2e6)
    assert status_text(downloading) == "25% 2.0 MB/s"
    assert status_text(view("a/b.bin", size=None, status=Status.DOWNLOADING)) == "Downloading"
    verifying = view("a/b.bin", size=200, done=100, status=Status.VERIFYING)
    assert status_text(verifying) == "Verifying 50%"
    assert status_text(view("a/b.bin", status=Status.CANCELLED)) == "Cancelled"
    assert format_limit(None) == "unlimited"
    assert format_limit(90_000) == "90,000 KB/s"


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("hello", 10, "hello"),
        ("hello world", 8, "hello w…"),
        ("hello", 1, "…"),
        ("hello", 0, ""),
        ("日本語テキスト", 7, "日本語…"),
        ("日本語", 6, "日本語"),
        ("日本語", 5, "日本…"),
        ("e\u0301cole", 5, "e\u0301cole"),
    ],
)
def test_clip_counts_display_width(text, width, expected):
    assert clip(text, width) == expected
    assert display_width(clip(text, width)) <= max(0, width)


def test_clip_middle_and_file_names_keep_both_ends():
    assert clip_middle("abcdefghijklmnopqrstuvwxyz", 11) == "abcde…vwxyz"
    assert clip_file_name(LONG_NAME, 80) == LONG_NAME
    assert clip_file_name(LONG_NAME, 44) == LONG_NAME.removesuffix(".safetensors")
    short = clip_file_name(LONG_NAME, 30)
    assert display_width(short) == 30
    assert short.startswith("wan2.2_text2vid") and short.endswith("mbf16_int8")
    assert clip_file_name("model.pth", 30) == "model.pth"
    assert fit("日本", 5, right=True) == " 日本"


class FakeWindow:
    """A curses window stand-in that records writes and fails on the bottom-right cell."""

    def __init__(self, height: int, width: int):
        self.size = (height, width)
        self.writes: list[tuple[int, int, str, int]] = []

    def getmaxyx(self):
        return self.size

    def addstr(self, y, x, text, attr=0):
        self.writes.append((y, x, text, attr))
        if y == self.size[0] - 1 and x + display_width(text) >= self.size[1]:
            raise curses.error("addwstr() returned ERR")


def test_put_clips_by_display_width_and_survives_the_corner():
    window = FakeWindow(5, 10)
    put(window, 0, 0, "short", 7)
    put(window, 1, 4, "a long line of text", 0)
    put(window, 2, 6, "日本語", 0)
    put(window, 4, 0, "x" * 10, 0)  # the bottom-right cell: curses.error is swallowed
    put(window, 9, 0, "off screen", 0)
    put(window, 0, -1, "off screen", 0)
    put(window, 3, 0, "", 0)
    assert window.writes[0] == (0, 0, "short", 7)
    assert window.writes[1] == (1, 4, "a lon…", 0)
    assert window.writes[2] == (2, 6, "日… ", 0)
    assert window.writes[3] == (4, 0, "x" * 10, 0)
    assert len(window.writes) == 4


def test_layout_gives_the_room_to_the_columns_with_text():
    columns = {c.name: c for c in layout_columns(120, {"config": 10, "file": 24, "dest": 30})}
    assert columns["file"].width == 24
    assert columns["config"].width == 10
    assert columns["dest"].width >= 30
    real = App(FakeController(synthetic_store(300)))
    real.resize(200, 10)
    text = frame_text(real.frame(), 200)
    assert "ckpts/umt5-xxl/" in text[2]  # nothing cut when there is room


@pytest.mark.parametrize("width", [32, 41, 57, 80, 133])
@pytest.mark.parametrize("height", [6, 7, 10, 24])
@pytest.mark.parametrize("mode", ["help", "filter", "confirm", "empty", "ascii"])
def test_every_mode_fits_every_size(width, height, mode):
    app = app_at(width, height, ascii_only=mode == "ascii")
    if mode == "help":
        app.handle("?")
    elif mode == "filter":
        app.handle("/")
        app.handle("日")
    elif mode == "confirm":
        app.view.confirm_quit = True
    elif mode == "empty":
        app.view.filter_text = "no such thing"
        app.rebuild_rows()
    lines = app.frame()
    assert len(lines) == height
    for line in lines:
        for segment in line:
            assert segment.x >= 0 and segment.x + display_width(segment.text) <= width, segment
