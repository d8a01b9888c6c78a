"""The interface's behaviour without a terminal: keys in, view state and controller calls out.

The controller is the interface's only way to reach the rest of wandown (see Controller); the
curses loop feeds App key names and draws App.frame(), so everything here is tested with a fake
controller and no screen.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from wandown import state
from wandown.needs import FEATURE_PREFIX
from wandown.state import Snapshot, StatusStore
from wandown.status import ACTIVE, PRESENT, Status, tally
from wandown.tui import keys, theme
from wandown.tui.models import ModelRow, filter_model_rows, model_rows
from wandown.tui.render import (
    TABLE_TOP,
    Line,
    Totals,
    content_widths,
    disk_plan,
    format_limit,
    help_room,
    reclaim_room,
    render,
    size_of_selection,
    table_height,
    totals,
)
from wandown.tui.rows import Row, all_rows, clamp_view, filter_rows, rows_stale, sort_by_size
from wandown.tui.view import ViewState
from wandown.units import human_bytes


class Controller(Protocol):
    """What the interface may ask of the rest of wandown; every call returns at once."""

    store: StatusStore

    def start(self, dests: Sequence[str]) -> None: ...

    def cancel(self, dest: str) -> None: ...

    def set_limit(self, kb: float | None) -> None: ...

    def reload(self, reset_cache: bool) -> None: ...

    def find_reclaim(self) -> None: ...

    def reclaim(self) -> None: ...

    def busy(self) -> bool: ...

    def shutdown(self) -> None: ...


KB = 1024  # the engine's and the config file's KB (bandwidth_limit_kb)
LIMIT_STEP = 1.25
LIMIT_MIN_KB = 100.0
LIMIT_MAX_KB = 2_000_000.0  # above 2 GB/s '+' lifts the limit
LIMIT_START_KB = 50_000.0  # where '-' starts from unlimited when nothing is downloading


def next_limit(limit_kb: float | None, faster: bool, speed: float = 0.0) -> float | None:
    """Return the bandwidth limit one step up or down, in KB/s; None is unlimited.

    Steps are x1.25 rounded to two significant digits. From unlimited, '-' starts just under
    the current total speed (``speed`` in bytes/s), or at 50,000 KB/s when idle.
    """
    if limit_kb is None:
        if faster:
            return None
        base = speed / KB if speed > 0 else LIMIT_START_KB * LIMIT_STEP
        return max(LIMIT_MIN_KB, _round_down(base / LIMIT_STEP))
    if faster:
        raised = _round_up(limit_kb * LIMIT_STEP)
        return None if raised > LIMIT_MAX_KB else max(raised, LIMIT_MIN_KB)
    return max(LIMIT_MIN_KB, _round_down(limit_kb / LIMIT_STEP))


def _round_up(value: float) -> float:
    scale: float = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / scale) * scale


def _round_down(value: float) -> float:
    scale: float = 10 ** (math.floor(math.log10(value)) - 1)
    return math.floor(value / scale) * scale


class App:
    """The view state plus the rows built from the latest snapshot, and the commands on them."""

    def __init__(
        self,
        controller: Controller,
        palette: str = "default",
        ascii_only: bool = False,
        preselect: Collection[str] = (),
        ask_disk: bool = True,
    ):
        self.controller = controller
        self._preselect = frozenset(preselect)
        self.ask_disk = ask_disk
        self.view = ViewState(palette=palette, ascii_only=ascii_only)
        self.snapshot: Snapshot | None = None
        self.rows: list[Row] = []
        self._all_rows: list[Row] = []
        self.model_rows: list[ModelRow] = []
        self._models_version = -1  # the snapshot the model rows were summed from
        self._other_place = (0, 0)  # the other view's cursor and top, for m to return to
        self.width = 80
        self.height = 24
        self.mouse_y: int | None = None
        self._totals: tuple[tuple[int, frozenset[str]], Totals] | None = None
        self._preselected = False
        self._content: dict[str, int] | None = None
        self._batch: set[str] = set()  # started, and not yet reported as finished
        self.refresh()

    # ---- state from the store

    def refresh(self) -> bool:
        """Take a new snapshot if the store changed; return True when there was one."""
        store = self.controller.store
        if self.snapshot is not None and store.version == self.snapshot.version:
            return False
        new = store.snapshot()
        old, self.snapshot = self.snapshot, new
        if not self._preselected and new.files:
            # Only the chosen models' missing files (selection.start_selection) start ticked.
            self._preselected = True
            self.view.selected = {
                dest
                for dest in self._preselect
                if dest in new.files and new.files[dest].status is Status.MISSING
            }
        if old is not None:
            self.view.selected &= new.files.keys()
            if new.notices[-1:] != old.notices[-1:]:
                self.view.say(new.notices[-1])
        if rows_stale(old, new):
            self.rebuild_rows()
        elif self.view.models_view:
            self.rebuild_rows()  # a model's sums move with every file that lands
        self._report_finished_batch()
        return True

    def _report_finished_batch(self) -> None:
        """Once every started file has come to rest, say how they ended."""
        assert self.snapshot is not None
        files = self.snapshot.files
        statuses = [files[dest].status for dest in self._batch if dest in files]
        if not self._batch or any(status.active for status in statuses):
            return
        self._batch.clear()
        if not statuses:  # a reload dropped them all
            return
        failed = Status.FAILED in statuses
        advice = "; the Status column of failed rows says why" if failed else ""
        self.view.say(f"Finished {tally(statuses)}{advice}", error=failed)

    def rebuild_rows(self, filter_only: bool = False) -> None:
        """Rebuild the row list, keeping the cursor on the same row when it still exists.

        ``filter_only`` reuses the unfiltered rows, so typing a filter stays fast.
        """
        assert self.snapshot is not None
        if self.view.models_view:
            self._rebuild_models()
            return
        current = self.current_row()
        if not filter_only:
            self._all_rows = all_rows(self.snapshot, self.view.show_all, self.view.started)
            if self.view.by_size:
                self._all_rows = sort_by_size(self._all_rows, self.snapshot)
            self._content = content_widths(self._all_rows, self.snapshot)
        self.rows = filter_rows(self._all_rows, self.view.filter_text)
        if current is not None:
            for index, row in enumerate(self.rows):
                if row.key == current.key:
                    self.view.cursor = index
                    break
        self._clamp()

    def _rebuild_models(self) -> None:
        """Sum the models again (cheap: one pass over the files) and keep the cursor's model."""
        assert self.snapshot is not None
        current = self.current_model()
        rows = model_rows(self.snapshot, self.view.show_all, self.view.started, self.view.by_size)
        self.model_rows = filter_model_rows(rows, self.view.filter_text)
        self._models_version = self.snapshot.version
        if current is not None:
            for index, row in enumerate(self.model_rows):
                if row.key == current.key:
                    self.view.cursor = index
                    break
        self._clamp()

    def current_row(self) -> Row | None:
        """Return the Files row under the cursor (None in the Models view)."""
        if not self.view.models_view and 0 <= self.view.cursor < len(self.rows):
            return self.rows[self.view.cursor]
        return None

    def current_model(self) -> ModelRow | None:
        """Return the Models row under the cursor (None in the Files view)."""
        if self.view.models_view and 0 <= self.view.cursor < len(self.model_rows):
            return self.model_rows[self.view.cursor]
        return None

    @property
    def row_count(self) -> int:
        """Return how many rows the table in view has."""
        return len(self.model_rows) if self.view.models_view else len(self.rows)

    def working(self) -> bool:
        return self.controller.busy()

    # ---- screen

    @property
    def page_size(self) -> int:
        return max(1, table_height(self.height))

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._clamp()

    def frame(self) -> list[Line]:
        """Return the screen for the current size (see render.render)."""
        self._clamp()
        assert self.snapshot is not None
        key = (self.snapshot.version, frozenset(self.view.selected))
        if self._totals is None or self._totals[0] != key:
            self._totals = (key, totals(self.snapshot, self.view.selected))
        return render(
            self.view,
            self.snapshot,
            self.rows,
            self.width,
            self.height,
            keys.help_lines(),
            self._totals[1],
            self._content,
            self.model_rows,
        )

    def _clamp(self) -> None:
        self.view.cursor, self.view.top = clamp_view(
            self.view.cursor, self.view.top, self.row_count, self.page_size
        )

    # ---- input

    def handle(self, key: str) -> None:
        """React to one key name (see keys.KEYS); prompts and overlays take keys first."""
        view = self.view
        if key == "KEY_RESIZE":
            return
        if view.help_open:
            self._help_key(key)
            return
        if view.reclaim_open:
            self._reclaim_key(key)
            return
        if view.confirm_quit:
            view.confirm_quit = False
            if key in ("y", "Y"):
                view.quitting = True
            else:
                view.say("Not quitting; downloads continue.")
            return
        if view.confirm_start:
            held, view.confirm_start = view.confirm_start, ()
            if key in ("y", "Y"):
                self._start(list(held))
            else:
                view.say("Not started: untick models (m, Enter) or free space first")
            return
        view.say("")
        if view.editing_filter and key not in keys.FILTER_PASSTHROUGH:
            self._edit_filter(key)
            return
        command = keys.KEYS.get(key)
        if command is None:
            if len(key) == 1 and key.isprintable():
                view.say(f"'{key}' does nothing here; press ? for the keys")
            return
        keys.COMMANDS[command][1](self)

    def _help_key(self, key: str) -> None:
        """Scroll the help with Up/Down/wheel/PgUp/PgDn; any other key closes it."""
        steps = {"KEY_UP": -1, "WHEEL_UP": -3, "KEY_PPAGE": -10, "KEY_DOWN": 1, "WHEEL_DOWN": 3}
        steps["KEY_NPAGE"] = 10
        if key not in steps:
            self.view.help_open = False
            return
        last = max(0, len(keys.help_lines()) - help_room(self.height))
        self.view.help_top = max(0, min(last, self.view.help_top + steps[key]))

    def _reclaim_key(self, key: str) -> None:
        """Scroll the Reclaim list; y deletes what it lists, any other key closes it."""
        view = self.view
        assert self.snapshot is not None
        listed = self.snapshot.reclaim
        steps = {"KEY_UP": -1, "WHEEL_UP": -3, "KEY_PPAGE": -10, "KEY_DOWN": 1, "WHEEL_DOWN": 3}
        steps["KEY_NPAGE"] = 10
        if key in steps:
            count = len(listed.rows) if listed is not None else 0
            last = max(0, count - reclaim_room(self.height))
            view.reclaim_top = max(0, min(last, view.reclaim_top + steps[key]))
            return
        view.reclaim_open = False
        if key in ("y", "Y") and listed is not None and listed.ready and listed.rows:
            self.controller.reclaim()
            view.say(f"Reclaiming {len(listed.rows)} files ({human_bytes(listed.total)})")
        else:
            view.say("Reclaim closed; nothing was deleted")

    def _edit_filter(self, key: str) -> None:
        view = self.view
        if key in ("\n", "\r", "KEY_ENTER"):
            view.editing_filter = False
            return
        if key == "\x1b":
            view.editing_filter = False
            view.filter_text = ""
        elif key in ("KEY_BACKSPACE", "\x7f", "\b"):
            view.filter_text = view.filter_text[:-1]
        elif len(key) == 1 and key.isprintable():
            view.filter_text += key
        else:
            return
        self.rebuild_rows(filter_only=True)

    # ---- commands (bound in keys.COMMANDS)

    def move_cursor(self, step: int) -> None:
        self.move_cursor_to(self.view.cursor + step)

    def move_cursor_to(self, index: int) -> None:
        self.view.cursor = index
        self._clamp()

    def scroll(self, step: int) -> None:
        """Scroll the view and move the cursor with it, as a wheel turn does."""
        self.view.top += step
        self.view.cursor += step
        self._clamp()

    def click(self) -> None:
        """Move the cursor to the clicked row; a click never changes the selection."""
        if self.mouse_y is None:
            return
        index = self.view.top + self.mouse_y - TABLE_TOP
        if 0 <= self.mouse_y - TABLE_TOP < self.page_size and index < self.row_count:
            self.move_cursor_to(index)

    def toggle_row(self) -> None:
        if self.view.models_view:
            self.toggle_model()
            return
        row = self.current_row()
        if row is None:
            return
        if row.dest in self.view.selected:
            self.view.selected.discard(row.dest)
        else:
            self.view.selected.add(row.dest)

    def toggle_model(self) -> None:
        """Tick every missing file of the model under the cursor, or untick them all."""
        model = self.current_model()
        if model is None:
            return
        missing = self._missing(model.missing)
        if not missing:
            self.view.say(f"{model.model_id} is ready: every file it needs is in place")
        elif missing <= self.view.selected:
            kept = missing & self._needed_by_other_ticked_models(model.model_id)
            self.view.selected -= missing - kept
            text = f"Unticked {_files(len(missing - kept))} of {model.model_id}"
            if kept:
                text += f"; {len(kept)} stay ticked for other ticked models"
            self.view.say(text)
        else:
            self.view.selected |= missing
            self.view.say(f"Ticked {_files(len(missing))} of {model.model_id}")

    def _needed_by_other_ticked_models(self, model_id: str) -> set[str]:
        """Return the files of every other model whose missing files are all ticked."""
        assert self.snapshot is not None
        selected = self.view.selected
        kept: set[str] = set()
        for row in model_rows(self.snapshot, show_all=True):
            missing = self._missing(row.missing)
            if row.model_id != model_id and missing and missing <= selected:
                kept |= missing
        return kept

    def select_model(self) -> None:
        if self.view.models_view:
            model = self.current_model()
            if model is not None:
                self.view.selected |= self._missing(model.missing)
                self.view.say(f"Selected the missing files of {model.model_id}")
            return
        row = self.current_row()
        if row is None:
            return
        if row.config.startswith(FEATURE_PREFIX):
            feature = row.config[len(FEATURE_PREFIX) :]
            chosen = self._missing(d for d, f in self._files().items() if f.feature == feature)
            self.view.selected |= chosen
            self.view.say(f"Selected {len(chosen)} missing files of feature {feature}")
            return
        if row.model_id is None:
            self.view.say(f"c selects one model's files; this row is '{row.config}'")
            return
        chosen = self._missing(
            dest for dest, f in self._files().items() if row.model_id in f.needed_by
        )
        self.view.selected |= chosen
        self.view.say(f"Selected {len(chosen)} missing files that {row.model_id} needs")

    def select_all(self) -> None:
        if self.view.models_view:
            chosen = self._missing(d for model in self.model_rows for d in model.missing)
            what = f"{len(chosen)} files of {len(self.model_rows)} models"
        else:
            chosen = self._missing(row.dest for row in self.rows)
            what = f"{len(chosen)} files"
            optional = self._optional(chosen)
            if optional and not self.view.filter_text:
                # Features are large and asked for one by one: a bare 'a' means the models' files.
                chosen -= optional
                what = (
                    f"{len(chosen)} files; left out {len(optional)} files of optional features "
                    "(c on a feature row, or /feature:NAME then a)"
                )
        self.view.selected |= chosen
        self.view.say(f"Selected {what}")

    def _optional(self, dests: Iterable[str]) -> set[str]:
        """Return the dests that only a run-time feature wants: no model needs them."""
        files = self._files()
        return {d for d in dests if files[d].feature is not None and not files[d].needed_by}

    def unselect_all(self) -> None:
        self.view.selected.clear()
        self.view.say("Selection cleared")

    def download(self) -> None:
        """Start every selected file that is neither present nor already running."""
        files = self._files()
        waiting = PRESENT | ACTIVE
        ready = {d for d in self.view.selected if d in files and files[d].status not in waiting}
        if not ready:
            self.view.say("Nothing to start: select missing files with Enter, a or c")
            return
        order = {row.dest: i for i, row in reversed(list(enumerate(self.rows)))}
        dests = sorted(ready, key=lambda d: (order.get(d, len(order)), d))
        assert self.snapshot is not None
        if self.ask_disk and not disk_plan(self.snapshot, dests).fits:
            self.view.confirm_start = tuple(dests)  # the status line asks (render.disk_question)
            return
        self._start(dests)

    def _start(self, dests: list[str]) -> None:
        files = self._files()
        ready = set(dests)
        self.controller.start(dests)
        self.view.started |= ready
        self.view.selected -= ready
        self._batch |= ready
        sizes = [files[d].size for d in dests]
        known = sum(size for size in sizes if size is not None)
        size = size_of_selection(known, None in sizes)
        self.view.say(f"Starting {len(dests)} files ({size})")

    def cancel(self) -> None:
        if self.view.models_view:
            self.view.say("x cancels one file's download; press m for the Files view")
            return
        row = self.current_row()
        if row is None:
            return
        file = self._files()[row.dest]
        if not file.status.active:
            self.view.say(f"x cancels a running download; this file is {file.status.label}")
            return
        self.controller.cancel(row.dest)
        self.view.say(f"Cancelling {file.file_name}; its partial is kept for later")

    def change_limit(self, faster: bool) -> None:
        assert self.snapshot is not None
        current = self.snapshot.header.limit_kb
        limit = next_limit(current, faster, self.snapshot.total_speed)
        if limit == current:
            self.view.say(f"Bandwidth limit stays {format_limit(current)}")
            return
        self.controller.set_limit(limit)
        self.view.say(f"Bandwidth limit: {format_limit(limit)}")

    def toggle_view(self) -> None:
        self.view.show_all = not self.view.show_all
        self.rebuild_rows()
        self.view.say(f"View: {self.view.mode_name}")

    def toggle_models(self) -> None:
        """Switch between the Files and the Models table, each keeping its own place."""
        view = self.view
        place, self._other_place = self._other_place, (view.cursor, view.top)
        view.models_view = not view.models_view
        view.cursor, view.top = place
        self.rebuild_rows()
        view.say(f"View: {view.view_name}")

    def toggle_sort(self) -> None:
        self.view.by_size = not self.view.by_size
        self.rebuild_rows()
        self.view.say("Sorted by size, largest first" if self.view.by_size else "Sorted by name")

    def start_filter(self) -> None:
        self.view.editing_filter = True

    def reload(self) -> None:
        self.controller.reload(reset_cache=True)
        self.view.say("Reloading: Hub metadata cache cleared")

    def open_reclaim(self) -> None:
        """List what can go from the Wan2GP folder; y in the list deletes it."""
        if self.controller.busy():
            self.view.say("Reclaim waits until the running downloads end")
            return
        self.controller.find_reclaim()
        self.view.reclaim_open = True
        self.view.reclaim_top = 0

    def next_palette(self) -> None:
        self.view.palette = theme.next_palette(self.view.palette)
        self.view.say(f"Palette: {self.view.palette}")

    def show_help(self) -> None:
        self.view.help_open = True
        self.view.help_top = 0

    def escape(self) -> None:
        """Clear an active filter; otherwise quit, asking first while work runs."""
        if self.view.filter_text:
            self.view.filter_text = ""
            self.rebuild_rows(filter_only=True)
            self.view.say("Filter cleared")
        elif self.controller.busy():
            self.view.confirm_quit = True
        else:
            self.view.quitting = True

    # ---- helpers

    def _files(self) -> dict[str, state.FileView]:
        assert self.snapshot is not None
        return self.snapshot.files

    def _missing(self, dests: Iterable[str]) -> set[str]:
        files = self._files()
        return {d for d in dests if not files[d].status.present}


def _files(count: int) -> str:
    return f"{count} missing file{'' if count == 1 else 's'}"
