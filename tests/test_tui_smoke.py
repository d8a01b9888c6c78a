"""Every named command, once, in every state the table can be in (visidata's command replay).

The commands come from keys.COMMANDS and the keys from keys.KEYS, so a new command or binding
is smoked here without anyone adding a line. After each one the App must still agree with a
from-scratch rebuild: the cursor on a row and on screen, the rows those of the current mode and
filter, the selection inside the catalog, and a frame that fits at 80x24 and at 40x10 and
equals a fresh render of the same state.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.tui_fakes import FakeController, needed_missing, synthetic_store
from wandown.state import Header, StatusStore
from wandown.tui import keys, theme
from wandown.tui.app import App
from wandown.tui.models import filter_model_rows, model_rows
from wandown.tui.render import TABLE_TOP, Line, content_widths, render
from wandown.tui.rows import all_rows, clamp_view, filter_rows, sort_by_size
from wandown.tui.text import display_width

SIZES = [(80, 24), (40, 10)]


def _app(store: StatusStore) -> App:
    app = App(FakeController(store), preselect=needed_missing(store))
    app.resize(*SIZES[0])
    app.mouse_y = TABLE_TOP + 1  # where a click would land, for mouse-click
    return app


def empty() -> App:
    return _app(StatusStore({}, Header(), {}))


def rows() -> App:
    app = _app(synthetic_store(80, 6))
    app.move_cursor_to(len(app.rows) // 2)
    return app


def downloading() -> App:
    app = rows()
    app.handle("d")
    app.refresh()
    app.move_cursor_to(0)  # a running download under the cursor, for cancel-row
    assert app.controller.busy()
    return app


def filtered() -> App:
    app = rows()
    for key in "/model_03\n":
        app.handle(key)
    assert app.view.filter_text == "model_03" and app.rows
    return app


def typing_filter() -> App:
    app = rows()
    for key in "/mod":
        app.handle(key)
    assert app.view.editing_filter
    return app


def nothing_matches() -> App:
    app = rows()
    for key in "/no such file\n":
        app.handle(key)
    assert app.rows == [] and app.snapshot is not None and app.snapshot.files
    return app


def help_open() -> App:
    app = rows()
    app.handle("?")
    return app


def models() -> App:
    app = rows()
    app.handle("m")
    assert app.view.models_view and app.model_rows
    app.move_cursor_to(2)
    return app


def models_by_size_filtered() -> App:
    app = models()
    for key in "o/model_0\n":
        app.handle(key)
    assert app.view.by_size and app.model_rows
    return app


def asking_to_quit() -> App:
    app = downloading()
    app.handle("\x1b")
    assert app.view.confirm_quit
    return app


STATES: dict[str, Callable[[], App]] = {
    "empty": empty,
    "rows": rows,
    "downloading": downloading,
    "filtered": filtered,
    "typing-filter": typing_filter,
    "nothing-matches": nothing_matches,
    "help-open": help_open,
    "asking-to-quit": asking_to_quit,
    "models": models,
    "models-by-size-filtered": models_by_size_filtered,
}


def assert_consistent(app: App) -> None:
    """Check the App as the next command would find it, then as the loop draws it at each size."""
    assert_cursor_on_screen(app)
    app.refresh()
    snapshot = app.snapshot
    assert snapshot is not None
    view = app.view
    assert view.selected <= snapshot.files.keys()
    assert view.palette in theme.PALETTE_NAMES
    unfiltered = all_rows(snapshot, view.show_all, view.started)
    if view.by_size:
        unfiltered = sort_by_size(unfiltered, snapshot)
    if view.models_view:
        models = model_rows(snapshot, view.show_all, view.started, view.by_size)
        assert app.model_rows == filter_model_rows(models, view.filter_text)
    else:
        assert app.rows == filter_rows(unfiltered, view.filter_text)
    for width, height in SIZES:
        app.resize(width, height)
        assert_cursor_on_screen(app)
        frame = app.frame()
        assert_fits(frame, width, height)
        fresh = render(
            view,
            snapshot,
            app.rows,
            width,
            height,
            keys.help_lines(),
            None,
            content_widths(unfiltered, snapshot),
            app.model_rows,
        )
        assert frame == fresh


def assert_cursor_on_screen(app: App) -> None:
    view, n_rows, page = app.view, app.row_count, app.page_size
    assert (view.cursor, view.top) == clamp_view(view.cursor, view.top, n_rows, page)
    if n_rows:
        assert 0 <= view.cursor < n_rows and view.top <= view.cursor < view.top + page


def assert_fits(frame: list[Line], width: int, height: int) -> None:
    assert len(frame) == height
    for line in frame:
        for segment in line:
            assert segment.x >= 0 and segment.x + display_width(segment.text) <= width, segment
            assert segment.text.isprintable(), segment


@pytest.mark.parametrize("command", list(keys.COMMANDS))
@pytest.mark.parametrize("state_name", list(STATES))
def test_every_command_by_name_in_every_state(state_name: str, command: str) -> None:
    app = STATES[state_name]()
    assert_consistent(app)
    keys.COMMANDS[command][1](app)
    assert_consistent(app)


@pytest.mark.parametrize("key", list(keys.KEYS))
@pytest.mark.parametrize("state_name", list(STATES))
def test_every_bound_key_in_every_state(state_name: str, key: str) -> None:
    app = STATES[state_name]()
    app.handle(key)
    assert_consistent(app)


@pytest.mark.parametrize("state_name", list(STATES))
def test_every_command_after_every_other(state_name: str) -> None:
    """Replay the whole table forward then backward, so each command meets the others' results."""
    app = STATES[state_name]()
    names = list(keys.COMMANDS)
    for command in names + names[::-1]:
        keys.COMMANDS[command][1](app)
        assert_consistent(app)
        app.view.quitting = False  # escape quits; the replay goes on as a new session would
