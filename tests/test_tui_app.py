"""The interface's behaviour without a terminal: key table, commands, selection, the loop."""

from __future__ import annotations

import curses

import pytest

from tests.tui_fakes import FakeController, frame_text, needed_missing, synthetic_store, view
from wandown.state import Header, StatusStore
from wandown.status import Status
from wandown.tui import keys, loop, theme
from wandown.tui.app import App, next_limit
from wandown.tui.render import TABLE_TOP
from wandown.tui.rows import ALL_MODELS, OPTIONAL

MODELS = {"t2v": "Text to video", "i2v": "Image to video", "vace": "Vace"}


def small_store() -> StatusStore:
    files = [
        view("ckpts/umt5.safetensors", list(MODELS), role="core"),
        view("ckpts/shared.safetensors", ["t2v", "vace"], size=1000),
        view("ckpts/t2v.safetensors", ["t2v"], size=3000),
        view("ckpts/i2v.safetensors", ["i2v"], status=Status.EXISTS),
        view("ckpts/vace.safetensors", ["vace"], size=None),
        view("ckpts/tools/depth.pth", [], role="on_demand"),
    ]
    return StatusStore({f.dest: f for f in files}, Header(limit_kb=None), MODELS)


def make_app(store: StatusStore | None = None, preselect: set[str] | None = None) -> App:
    store = store or small_store()
    chosen = needed_missing(store) if preselect is None else preselect
    app = App(FakeController(store), preselect=chosen)
    app.resize(100, 20)
    return app


def press(app: App, *names: str) -> None:
    for name in names:
        app.handle(name)


def row_index(app: App, config: str, name: str) -> int:
    for index, row in enumerate(app.rows):
        if row.config == config and row.dest.endswith("/" + name):
            return index
    raise AssertionError(f"no row {config} {name}")


# ---- the key table


def test_a_key_bound_twice_fails_loudly():
    with pytest.raises(keys.DuplicateBinding, match="'d'"):
        keys.bind([("d", "download"), ("x", "cancel-row"), ("d", "select-all")])
    with pytest.raises(KeyError, match="no-such-command"):
        keys.bind([("z", "no-such-command")])


def test_the_seed_tools_keys_are_bound_as_documented():
    expected = {
        "KEY_UP": "cursor-up",
        "KEY_DOWN": "cursor-down",
        "\n": "toggle-row",
        "d": "download",
        "a": "select-all",
        "u": "unselect-all",
        "s": "toggle-view",
        "r": "reload",
        "p": "next-palette",
        "\x1b": "escape",
        "/": "filter",
        "?": "help",
        "c": "select-model",
        "+": "limit-up",
        "-": "limit-down",
        "x": "cancel-row",
        "KEY_PPAGE": "page-up",
        "KEY_NPAGE": "page-down",
        "KEY_HOME": "first-row",
        "KEY_END": "last-row",
        "MOUSE_CLICK": "mouse-click",
        "WHEEL_UP": "wheel-up",
        "WHEEL_DOWN": "wheel-down",
    }
    for key, command in expected.items():
        assert keys.KEYS[key] == command


def test_help_is_generated_from_the_tables():
    lines = dict(keys.help_lines())
    assert lines["Enter"] == keys.COMMANDS["toggle-row"][0]
    assert lines["+, ="] == keys.COMMANDS["limit-up"][0]
    assert lines["click"].endswith("(never selects)")
    bound = set(keys.KEYS.values())
    assert len(keys.help_lines()) == len(bound)


def test_mouse_events_become_named_keys():
    import curses

    assert keys.mouse_key(curses.BUTTON1_PRESSED) == "MOUSE_CLICK"
    assert keys.mouse_key(curses.BUTTON1_CLICKED) == "MOUSE_CLICK"
    assert keys.mouse_key(curses.BUTTON4_PRESSED) == "WHEEL_UP"
    assert keys.mouse_key(curses.BUTTON5_PRESSED) == "WHEEL_DOWN"
    assert keys.mouse_key(curses.BUTTON1_RELEASED) is None
    assert keys.mouse_key(curses.BUTTON3_PRESSED) is None


# ---- selection and navigation


def test_starts_with_nothing_ticked_unless_models_were_chosen():
    app = make_app(preselect=set())
    assert app.view.selected == set()
    assert "m shows the models" in frame_text(app.frame(), 100)[-2]
    chosen = make_app(preselect={"ckpts/t2v.safetensors", "ckpts/i2v.safetensors"})
    assert chosen.view.selected == {"ckpts/t2v.safetensors"}  # i2v's file is present


def test_starts_in_missing_only_with_the_chosen_missing_files_selected():
    app = make_app()
    assert not app.view.show_all
    assert app.view.selected == {
        "ckpts/umt5.safetensors",
        "ckpts/shared.safetensors",
        "ckpts/t2v.safetensors",
        "ckpts/vace.safetensors",
    }
    assert [row.config for row in app.rows] == [ALL_MODELS, "t2v", "t2v", "vace", "vace", OPTIONAL]


def test_enter_selects_a_file_on_every_row_that_shows_it():
    app = make_app()
    press(app, "u")
    first = row_index(app, "t2v", "shared.safetensors")
    other = row_index(app, "vace", "shared.safetensors")
    app.move_cursor_to(first)
    press(app, "\n")
    text = frame_text(app.frame(), 100)
    assert text[TABLE_TOP + first].startswith("[✓]")
    assert text[TABLE_TOP + other].startswith("[✓]")
    assert app.view.selected == {"ckpts/shared.safetensors"}
    press(app, "KEY_ENTER")
    assert app.view.selected == set()


def test_click_moves_the_cursor_and_never_selects():
    app = make_app()
    press(app, "u")
    app.mouse_y = TABLE_TOP + 3
    press(app, "MOUSE_CLICK")
    assert app.view.cursor == 3
    assert app.view.selected == set()
    app.mouse_y = 0  # the header: nothing happens
    press(app, "MOUSE_CLICK")
    assert app.view.cursor == 3
    app.mouse_y = TABLE_TOP + 15  # below the last row
    press(app, "MOUSE_CLICK")
    assert app.view.cursor == 3
    long = App(FakeController(synthetic_store(300)))
    long.resize(80, 24)
    long.mouse_y = 24 - 2  # the status line, with table rows scrolled out below it
    press(long, "MOUSE_CLICK")
    assert long.view.cursor == 0


def test_arrows_pages_home_end_and_wheel_move_and_scroll():
    store = synthetic_store(300)
    app = App(FakeController(store), preselect=needed_missing(store))
    app.resize(80, 24)
    page = 20
    press(app, "KEY_DOWN", "KEY_DOWN", "KEY_UP")
    assert app.view.cursor == 1
    press(app, "KEY_NPAGE")
    assert app.view.cursor == 1 + page - 1
    press(app, "KEY_END")
    assert app.view.cursor == len(app.rows) - 1
    assert app.view.top == len(app.rows) - page
    press(app, "KEY_HOME", "KEY_UP")
    assert (app.view.cursor, app.view.top) == (0, 0)
    press(app, "WHEEL_DOWN", "WHEEL_DOWN")
    assert (app.view.cursor, app.view.top) == (6, 6)
    press(app, "WHEEL_UP")
    assert (app.view.cursor, app.view.top) == (3, 3)
    assert len(app.view.selected) == 181  # nothing above changed the selection


def test_select_all_visible_select_model_and_unselect():
    app = make_app()
    press(app, "u")
    app.move_cursor_to(row_index(app, "vace", "vace.safetensors"))
    press(app, "c")
    assert app.view.selected == {
        "ckpts/umt5.safetensors",
        "ckpts/shared.safetensors",
        "ckpts/vace.safetensors",
    }
    assert "vace" in app.view.message
    press(app, "u", "/", "t", "2", "v", "\n", "a")
    assert app.view.selected == {"ckpts/shared.safetensors", "ckpts/t2v.safetensors"}
    on, index = app.current_row(), app.view.cursor
    press(app, "\x1b")  # clears the filter; the cursor stays on its row, which moved down
    assert on is not None and app.current_row() == on and app.view.cursor != index
    press(app, "KEY_HOME", "c")  # c on the 'all models' row explains itself
    assert "all models" in app.view.message


def test_s_toggles_show_all_and_back():
    app = make_app()
    press(app, "s")
    assert app.view.show_all and "Show All" in app.view.message
    assert "ckpts/i2v.safetensors" in {row.dest for row in app.rows}
    press(app, "s")
    assert not app.view.show_all
    assert "ckpts/i2v.safetensors" not in {row.dest for row in app.rows}


# ---- commands that reach the controller


def test_d_starts_selected_files_that_are_not_present_or_running():
    app = make_app()
    press(app, "s", "a")  # i2v exists, so select-all leaves it out
    app.view.selected.add("ckpts/i2v.safetensors")
    press(app, "d")
    started = app.controller.calls[-1]
    assert started[0] == "start"
    assert sorted(started[1]) == sorted(
        [
            "ckpts/umt5.safetensors",
            "ckpts/shared.safetensors",
            "ckpts/t2v.safetensors",
            "ckpts/vace.safetensors",
            "ckpts/tools/depth.pth",
        ]
    )
    assert started[1][0] == "ckpts/umt5.safetensors"  # in table order
    assert app.view.selected == {"ckpts/i2v.safetensors"}
    calls = list(app.controller.calls)
    press(app, "d")  # only a present file is selected: nothing reaches the controller
    assert app.controller.calls == calls
    assert "Nothing to start" in app.view.message


def test_finished_downloads_stay_in_missing_only():
    app = make_app()
    app.move_cursor_to(row_index(app, "t2v", "t2v.safetensors"))
    press(app, "u", "\n", "d")
    app.controller.store.update("ckpts/t2v.safetensors", status=Status.COMPLETE)
    app.refresh()
    assert "ckpts/t2v.safetensors" in {row.dest for row in app.rows}


def test_x_cancels_only_a_running_download():
    app = make_app()
    app.move_cursor_to(row_index(app, "t2v", "t2v.safetensors"))
    press(app, "x")
    assert "Missing" in app.view.message
    assert not [c for c in app.controller.calls if c[0] == "cancel"]
    app.controller.store.update("ckpts/t2v.safetensors", status=Status.DOWNLOADING)
    app.refresh()
    press(app, "x")
    assert app.controller.calls[-1] == ("cancel", "ckpts/t2v.safetensors")
    assert "partial is kept" in app.view.message


def test_plus_and_minus_change_the_limit_live():
    app = make_app()
    press(app, "+")
    assert not [c for c in app.controller.calls if c[0] == "set_limit"]
    press(app, "-")
    assert app.controller.calls[-1] == ("set_limit", 50_000)
    app.refresh()
    assert "limit 50,000 KB/s" in frame_text(app.frame(), 100)[0]
    press(app, "+")
    assert app.controller.calls[-1] == ("set_limit", 63_000)


def test_limit_steps():
    assert next_limit(None, faster=True) is None
    assert next_limit(None, faster=False) == 50_000
    assert next_limit(None, faster=False, speed=40_960_000) == 32_000
    assert next_limit(90_000, faster=True) == 120_000
    assert next_limit(90_000, faster=False) == 72_000
    assert next_limit(100, faster=False) == 100
    assert next_limit(1_900_000, faster=True) is None
    value = 100.0
    for _ in range(60):  # strictly rises until the limit is lifted
        raised = next_limit(value, faster=True)
        if raised is None:
            break
        assert raised > value
        value = raised
    else:
        raise AssertionError("never reached unlimited")


def test_r_reloads_with_a_cleared_cache_and_p_cycles_palettes():
    app = make_app()
    press(app, "r")
    assert app.controller.calls[-1] == ("reload", True)
    seen = []
    for _ in theme.PALETTE_NAMES:
        press(app, "p")
        seen.append(app.view.palette)
    assert sorted(seen) == sorted(theme.PALETTE_NAMES)


def test_escape_clears_the_filter_before_it_quits():
    app = make_app()
    press(app, "/", "v", "a", "c", "e")
    assert app.view.editing_filter and app.view.filter_text == "vace"
    assert {row.config for row in app.rows} == {"vace"}
    press(app, "\n")
    assert not app.view.editing_filter and app.view.filter_text == "vace"
    press(app, "\x1b")
    assert app.view.filter_text == "" and not app.view.quitting
    press(app, "/", "x", "KEY_BACKSPACE", "z", "\x1b")  # Escape while typing clears too
    assert app.view.filter_text == "" and not app.view.editing_filter
    press(app, "\x1b")
    assert app.view.quitting


def test_escape_while_busy_asks_first():
    app = make_app()
    press(app, "d")
    assert app.controller.busy()
    press(app, "\x1b")
    assert app.view.confirm_quit and not app.view.quitting
    assert "Quit now" in frame_text(app.frame(), 100)[-2]
    press(app, "n")
    assert not app.view.quitting and not app.view.confirm_quit
    assert app.view.message == "Not quitting; downloads continue."
    press(app, "\x1b", "y")
    assert app.view.quitting


def test_new_notices_show_on_the_status_line_and_selection_survives_reload():
    app = make_app()
    app.controller.store.add_notice("offline: using cached Hub metadata")
    app.refresh()
    assert app.view.message == "offline: using cached Hub metadata"
    store = app.controller.store
    kept = {d: f for d, f in store.snapshot().files.items() if d != "ckpts/t2v.safetensors"}
    store.replace_all(kept, Header(), MODELS)
    app.refresh()
    assert "ckpts/t2v.safetensors" not in app.view.selected
    assert "ckpts/shared.safetensors" in app.view.selected


def test_unknown_keys_say_where_help_is():
    app = make_app()
    press(app, "q")
    assert "press ? for the keys" in app.view.message
    press(app, "KEY_F(5)")
    assert app.view.message == ""


# ---- the loop, with a scripted screen


class ScriptedScreen:
    """Feeds keys to main_loop and records what it drew and how long it waited."""

    def __init__(self, app: App, script, size=(100, 20)):
        self.app = app
        self.script = list(script)
        self.size_value = size
        self.draws = 0
        self.timeouts: list[int] = []
        self.mouse = (5, TABLE_TOP + 2, keys._CLICKS)

    def size(self):
        return self.size_value

    def draw(self, lines, palette):
        self.draws += 1
        assert len(lines) == self.size_value[1]

    def read_key(self, timeout_ms):
        self.timeouts.append(timeout_ms)
        step = self.script.pop(0) if self.script else "\x1b"
        return step(self) if callable(step) else step

    def read_mouse(self):
        return self.mouse


def test_loop_redraws_only_on_change_and_waits_long_when_idle():
    app = make_app()
    screen = ScriptedScreen(app, [None, None, None, "KEY_DOWN", None])
    loop.main_loop(screen, app)
    assert screen.draws == 2  # the first frame, then after KEY_DOWN; timeouts draw nothing


def test_loop_ignores_mouse_events_that_are_neither_click_nor_wheel():
    app = make_app()
    screen = ScriptedScreen(app, ["KEY_MOUSE", None, "KEY_MOUSE"])
    screen.mouse = (5, TABLE_TOP + 2, curses.BUTTON1_RELEASED)
    loop.main_loop(screen, app)
    assert screen.draws == 1  # the first frame only; the closing Escape needs no frame
    assert app.view.cursor == 0 and app.view.quitting
    assert set(screen.timeouts) == {loop.IDLE_TICK_MS}
    assert app.view.quitting


def test_loop_ticks_fast_while_busy_and_redraws_on_store_changes():
    app = make_app()

    def progress(screen):
        app.controller.store.update("ckpts/t2v.safetensors", done=10)

    def resize(screen):
        screen.size_value = (60, 12)
        return "KEY_RESIZE"

    screen = ScriptedScreen(app, ["d", None, progress, None, resize, "KEY_MOUSE", None])
    screen.script.append(lambda s: "\x1b")
    screen.script.append("y")
    loop.main_loop(screen, app)
    assert loop.BUSY_TICK_MS in screen.timeouts
    assert screen.draws == 6  # first, d, the progress tick, resize, click, Escape's prompt
    assert app.width == 60 and app.view.cursor == 2


def test_theme_roles_resolve_in_every_palette_with_basic_colours_only():
    for palette in theme.PALETTE_NAMES:
        for role in theme.ROLES:
            look = theme.style(palette, role)
            assert look.fg in (*theme.COLOURS, "default")
            assert look.bg in (*theme.COLOURS, "default")
            assert set(look.attrs) <= set(theme.ATTRIBUTES)
            if palette == theme.MONOCHROME:
                assert (look.fg, look.bg) == ("default", "default")
    assert set(theme.PALETTES) >= {"default", "high-contrast", "monochrome"}
    for palette, table in theme.PALETTES.items():
        assert set(table) <= set(theme.ROLES), palette


def test_no_color_starts_monochrome_and_unknown_palettes_are_refused():
    assert theme.initial_palette(None, {"NO_COLOR": "1"}) == "monochrome"
    assert theme.initial_palette(None, {"NO_COLOR": ""}) == "default"
    assert theme.initial_palette(None, {}) == "default"
    assert theme.initial_palette("high-contrast", {"NO_COLOR": "1"}) == "high-contrast"
    with pytest.raises(ValueError, match="choose one of"):
        theme.initial_palette("neon", {})
    assert loop.run(FakeController(small_store()), palette="neon") == 2


class FakeCursesColours:
    """Stand-ins for curses' colour calls, to see which pairs the theme asks for."""

    def __init__(self, monkeypatch, has_colors: bool, colours: int = 8, pairs: int = 64):
        import curses

        self.pairs: dict[int, tuple[int, int]] = {}
        monkeypatch.setattr(curses, "has_colors", lambda: has_colors)
        monkeypatch.setattr(curses, "start_color", lambda: None)
        monkeypatch.setattr(curses, "use_default_colors", lambda: None)
        monkeypatch.setattr(curses, "COLORS", colours, raising=False)
        monkeypatch.setattr(curses, "COLOR_PAIRS", pairs, raising=False)
        monkeypatch.setattr(curses, "init_pair", self.init_pair)
        monkeypatch.setattr(curses, "color_pair", lambda number: number << 8)

    def init_pair(self, number, fg, bg):
        self.pairs[number] = (fg, bg)


def test_curses_theme_makes_one_pair_per_colour_combination(monkeypatch):
    import curses

    fake = FakeCursesColours(monkeypatch, has_colors=True)
    colours = theme.CursesTheme("default")
    attrs = {role: colours.attr(role) for role in theme.ROLES}
    combos = {(s.fg, s.bg) for s in map(lambda r: theme.style("default", r), theme.ROLES)}
    assert len(fake.pairs) == len(combos)
    assert len(set(fake.pairs.values())) == len(fake.pairs)
    assert all(0 <= fg < 8 or fg == -1 for fg, _ in fake.pairs.values())
    assert attrs["status.failed"] & curses.A_BOLD
    colours.palette = "monochrome"
    assert colours.attr("header") == curses.A_REVERSE
    colours.palette = "high-contrast"  # back to colours: black on yellow, bold
    header = colours.attr("header")
    assert fake.pairs[(header & curses.A_COLOR) >> 8] == (curses.COLOR_BLACK, curses.COLOR_YELLOW)
    assert header & curses.A_BOLD


def test_curses_theme_without_colours_draws_monochrome(monkeypatch):
    import curses

    fake = FakeCursesColours(monkeypatch, has_colors=False)
    colours = theme.CursesTheme("default")
    assert colours.attr("row.cursor") == curses.A_REVERSE
    assert colours.attr("status.missing") == 0
    assert fake.pairs == {}


def test_curses_theme_stops_making_pairs_when_the_terminal_runs_out(monkeypatch):
    fake = FakeCursesColours(monkeypatch, has_colors=True, pairs=4)
    colours = theme.CursesTheme("default")
    for role in theme.ROLES:
        colours.attr(role)
    assert sorted(fake.pairs) == [1, 2, 3]


def test_selection_starts_from_the_first_loaded_catalog():
    store = StatusStore({}, Header(), {})
    app = App(FakeController(store), preselect={"ckpts/t2v.safetensors"})
    assert app.view.selected == set() and app.rows == []
    loaded = small_store().snapshot()
    store.replace_all(loaded.files, loaded.header, loaded.models)
    app.refresh()
    assert "ckpts/t2v.safetensors" in app.view.selected
    assert len(app.rows) == 6


def test_sigterm_becomes_an_exception_once_and_handlers_come_back():
    import os
    import signal

    from wandown.tui.screen import Terminated, terminal_signals

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    with pytest.raises(Terminated) as stop, terminal_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
        finally:
            os.kill(os.getpid(), signal.SIGHUP)  # ignored while the first one unwinds
    assert stop.value.signum == signal.SIGTERM
    assert "SIGTERM" in str(stop.value)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_an_unknown_terminal_gets_a_clear_message_and_a_clean_shutdown(monkeypatch, capsys):
    monkeypatch.setenv("TERM", "no-such-terminal-type")
    controller = FakeController(small_store())
    assert loop.run(controller) == 2
    error = capsys.readouterr().err
    assert "cannot start the interactive table" in error and "no-such-terminal-type" in error
    assert "--list" in error and "Traceback" not in error
    assert controller.calls[-1] == ("shutdown",)


def test_the_status_line_says_how_a_batch_ended_once_every_file_rests():
    app = make_app()
    started = ["ckpts/umt5.safetensors", "ckpts/shared.safetensors", "ckpts/t2v.safetensors"]
    app.view.selected = set(started)
    press(app, "d")
    store = app.controller.store
    store.update(started[0], status=Status.COMPLETE)
    store.update(started[1], status=Status.LINKED)
    app.refresh()
    assert app.view.message.startswith("Starting 3 files")
    store.update(started[2], status=Status.FAILED, message="HTTP 404")
    app.refresh()
    assert app.view.message == (
        "Finished 3 files: 1 complete, 1 linked, 1 failed;"
        " the Status column of failed rows says why"
    )
    assert app.view.message_is_error
    press(app, "u")
    store.update(started[2], status=Status.MISSING)
    app.refresh()
    assert app.view.message == "Selection cleared"  # said once, not on every later change
    app.view.selected = {started[2]}
    press(app, "d")
    store.update(started[2], status=Status.COMPLETE)
    app.refresh()
    assert app.view.message == "Finished 1 file: 1 complete" and not app.view.message_is_error


def test_a_batch_a_reload_took_away_ends_without_a_summary():
    app = make_app()
    app.view.selected = {"ckpts/t2v.safetensors"}
    press(app, "d")
    store = app.controller.store
    kept = {d: f for d, f in store.snapshot().files.items() if d != "ckpts/t2v.safetensors"}
    store.replace_all(kept, store.snapshot().header, MODELS)
    app.refresh()
    assert "Finished" not in app.view.message


def test_c_on_a_feature_row_ticks_the_whole_feature_and_nothing_is_ticked_before():
    files = [
        view("ckpts/t2v.safetensors", ["t2v"], size=3000),
        view("ckpts/mmaudio/v1-44.pth", [], role="feature", feature="mmaudio"),
        view("ckpts/DFN5B/clip.bin", [], role="feature", feature="mmaudio"),
        view("ckpts/rife/flownet.pkl", [], role="feature", feature="rife"),
    ]
    app = make_app(StatusStore({f.dest: f for f in files}, Header(limit_kb=None), MODELS))
    assert not {d for d in app.view.selected if "t2v" not in d}  # features start unticked
    app.move_cursor_to(row_index(app, "feature:mmaudio", "v1-44.pth"))
    press(app, "u", "c")
    assert app.view.selected == {"ckpts/mmaudio/v1-44.pth", "ckpts/DFN5B/clip.bin"}
    assert "feature mmaudio" in app.view.message
    press(app, "u", "/", *"feature:rife", "\n", "a")  # or filter by the name and tick all
    assert app.view.selected == {"ckpts/rife/flownet.pkl"}


def test_a_bare_a_ticks_the_models_files_and_leaves_optional_features_out():
    files = [
        view("ckpts/t2v.safetensors", ["t2v"], size=3000),
        view("ckpts/mmaudio/v1-44.pth", [], role="feature", feature="mmaudio"),
        view("ckpts/rife/flownet.pkl", [], role="feature", feature="rife"),
    ]
    app = make_app(StatusStore({f.dest: f for f in files}, Header(limit_kb=None), MODELS), set())
    press(app, "a")
    assert app.view.selected == {"ckpts/t2v.safetensors"}
    assert "left out 2 files of optional features" in app.view.message
    press(app, "/", *"rife", "\n", "a")  # with a filter, a ticks what the filter shows
    assert app.view.selected == {"ckpts/t2v.safetensors", "ckpts/rife/flownet.pkl"}
