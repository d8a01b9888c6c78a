"""The screen as a pure function of state: lines of (x, text, role) segments.

Nothing here touches curses, so every layout is tested at any size without a terminal. Only the
visible slice of rows is formatted: the cost of a frame does not grow with the catalog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from wandown import diskplan
from wandown.hubhttp.urls import host_of
from wandown.state import FileView, ReclaimList, Snapshot
from wandown.status import ModelState, Status
from wandown.tui.models import ModelRow, describe_largest, largest_models
from wandown.tui.rows import Row
from wandown.tui.text import clip, clip_middle, display_width, fit
from wandown.tui.view import Glyphs, ViewState
from wandown.units import human_bytes, human_duration, human_speed, size_gb

MIN_WIDTH = 32
MIN_HEIGHT = 6
TABLE_TOP = 2  # header line, then column headings
CHROME_LINES = 4  # header, headings, status line, footer
SOURCE_WIDTH = 40  # the header's share for the Wan2GP folder's path

HEADINGS = {
    "check": "✓",
    "config": "Config",
    "file": "Model File",
    "size": "Size (GB)",
    "status": "Status",
    "dest": "Destination",
}
PROGRESS_STATUSES = frozenset({Status.DOWNLOADING, Status.VERIFYING, Status.HASHING})


class Segment(NamedTuple):
    """Text at a column of a line, drawn in a theme role."""

    x: int
    text: str
    role: str


Line = list[Segment]


class Column(NamedTuple):
    name: str
    x: int
    width: int
    right: bool = False


# (column, minimum width, drop order: lower drops first when the terminal is narrow; None stays)
_MINIMUMS = (
    ("check", 3, None),
    ("config", 6, 1),
    ("file", 16, None),
    ("size", 9, 2),
    ("status", 8, None),
    ("dest", 8, 0),
)
# Extra room is handed out in these steps, each growing one column up to a width.
_GROWTH = (
    ("status", 13),
    ("file", 30),
    ("config", 12),
    ("dest", 12),
    ("status", 14),
    ("file", 44),
    ("dest", 32),
    ("config", 24),
    ("file", 60),
    ("dest", 40),
)
# Wan2GP's weights are almost all .safetensors: when a name must be cut, that goes first.
_QUIET_SUFFIX = ".safetensors"


def table_height(height: int) -> int:
    """Return how many rows the table shows in a terminal of this height."""
    return max(0, height - CHROME_LINES)


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


def content_widths(rows: Sequence[Row], snapshot: Snapshot) -> dict[str, int]:
    """Return the widest Config, Model File and Destination cell over all rows.

    Walks every row, so it belongs with building the rows, not with drawing a frame.
    """
    widest = {"config": len(HEADINGS["config"]), "file": 0, "dest": len(HEADINGS["dest"])}
    files = snapshot.files
    for row in rows:
        file = files.get(row.dest)
        if file is None:
            continue
        widest["config"] = max(widest["config"], display_width(row.config))
        widest["file"] = max(widest["file"], display_width(file.file_name))
        widest["dest"] = max(widest["dest"], display_width(file.folder) + 1)
    return widest


def layout_columns(width: int, content: Mapping[str, int] | None = None) -> list[Column]:
    """Return the table's columns for a terminal width, dropping and shrinking as needed.

    ``content`` (see content_widths) keeps columns from growing past their widest cell, so
    the room goes where the text is; extra room then lets each column show all of its text.
    """
    kept = [(name, minimum, drop) for name, minimum, drop in _MINIMUMS]

    def needed() -> int:
        return sum(minimum for _, minimum, _ in kept) + len(kept) - 1

    for order in (0, 1, 2):
        if needed() <= width:
            break
        kept = [entry for entry in kept if entry[2] != order]
    widths = {name: minimum for name, minimum, _ in kept}
    spare = max(0, width - needed())
    steps = list(_GROWTH)
    if content:
        steps = [(name, min(target, content.get(name, target))) for name, target in steps]
        steps += [(name, content[name]) for name in ("file", "dest", "config") if name in content]
    for name, target in steps:
        if name in widths and spare > 0:
            grow = min(spare, max(0, target - widths[name]))
            widths[name] += grow
            spare -= grow
    last = kept[-1][0]
    widths[last] += spare
    columns, x = [], 0
    for name, _, _ in kept:
        columns.append(Column(name, x, widths[name], right=name == "size"))
        x += widths[name] + 1
    return columns


def status_text(view: FileView) -> str:
    """Return the Status cell: the status word, or percentage and speed while downloading."""
    fraction = view.fraction
    if view.status is Status.DOWNLOADING and fraction is not None:
        return f"{fraction * 100:.0f}% {human_speed(view.speed)}"
    if view.status in PROGRESS_STATUSES and fraction is not None and view.done:
        return f"{view.status.label} {fraction * 100:.0f}%"
    return view.status.label


def status_role(status: Status) -> str:
    return f"status.{status.value}"


def format_row(
    row: Row,
    view: FileView,
    columns: Sequence[Column],
    glyphs: Glyphs,
    selected: bool,
    cursor: bool,
) -> Line:
    """Return the segments of one table row."""
    segments: Line = []
    if cursor:
        last = columns[-1]
        segments.append(Segment(0, " " * (last.x + last.width), "row.cursor"))
    ellipsis = glyphs.ellipsis
    for column in columns:
        role = "normal"
        if column.name == "check":
            text = glyphs.checked if selected else glyphs.unchecked
            role = "row.selected" if selected else "normal"
        elif column.name == "config":
            text = fit(row.config, column.width, ellipsis=ellipsis)
        elif column.name == "file":
            text = clip_file_name(view.file_name, column.width, ellipsis)
            text += " " * (column.width - display_width(text))
        elif column.name == "size":
            text = fit(size_gb(view.size), column.width, right=True, ellipsis=ellipsis)
        elif column.name == "status":
            text = fit(status_text(view), column.width, ellipsis=ellipsis)
            role = status_role(view.status)
        else:
            fraction = view.fraction
            if view.status in PROGRESS_STATUSES and fraction is not None:
                segments.extend(progress_bar(column, fraction, glyphs))
                continue
            text = fit((view.folder or ".") + "/", column.width, ellipsis=ellipsis)
        segments.append(Segment(column.x, text, "row.cursor" if cursor else role))
    return segments


def clip_file_name(name: str, width: int, ellipsis: str = "…") -> str:
    """Fit a file name in width cells keeping what tells files apart: its start and its end."""
    if display_width(name) <= width:
        return name
    if name.endswith(_QUIET_SUFFIX):
        name = name[: -len(_QUIET_SUFFIX)]
        if display_width(name) <= width:
            return name
    return clip_middle(name, width, ellipsis)


def progress_bar(column: Column, fraction: float, glyphs: Glyphs) -> Line:
    """Return a bar filling a column in proportion to fraction."""
    done = round(column.width * max(0.0, min(1.0, fraction)))
    bar = [Segment(column.x, glyphs.bar_done * done, "progress.done")]
    if done < column.width:
        todo = glyphs.bar_todo * (column.width - done)
        bar.append(Segment(column.x + done, todo, "progress.todo"))
    return bar


def format_limit(limit_kb: float | None) -> str:
    """Describe a bandwidth limit given in KB/s, as the config file and --limit give it."""
    if limit_kb is None:
        return "unlimited"
    return f"{limit_kb:,.0f} KB/s"


def header_text(snapshot: Snapshot, glyphs: Glyphs) -> str:
    header = snapshot.header
    models = len(snapshot.models) or header.model_count
    sep = f" {glyphs.separator} "
    # A deep install path must not push online/offline and the limit off an 80-column screen.
    source = clip_middle(header.catalog_source or "catalog", SOURCE_WIDTH, glyphs.ellipsis)
    if len(header.hubs) > 1:
        each = ", ".join(
            f"{folder}{'' if kind == 'plain' else f' ({kind})'} {count:,}"
            for folder, kind, count in header.hubs
        )
        hub = f"{len(header.hubs)} hubs: {each} files; {header.hub_links:,} links available"
    elif header.hub:
        kind = header.hubs[0][1] if header.hubs else "plain"
        shown = header.hub if kind == "plain" else f"{header.hub} ({kind})"
        hub = f"hub {shown}: {header.hub_files:,} files, {header.hub_links:,} links available"
    else:
        hub = "no hub"
    code = f", code {header.code_origin}" if header.code_origin else ""
    # The hub's folder is the least useful part, so it goes last where a narrow screen cuts.
    parts = [
        f"wandown{sep}{source} ({models} model{'' if models == 1 else 's'}{code})",
        "online" if header.online else "offline",
        f"limit {format_limit(header.limit_kb)}",
        *([endpoints] if (endpoints := endpoints_text(snapshot)) else []),
        *([header.gpu] if header.gpu else []),
        hub,
    ]
    return " " + sep.join(parts)


def endpoints_text(snapshot: Snapshot) -> str:
    """Name the endpoints this run's downloads came from, with how many files each."""
    counts = Counter(view.endpoint for view in snapshot.files.values() if view.endpoint)
    if not counts:
        return ""
    return "from " + ", ".join(f"{host_of(url)} ({count})" for url, count in counts.most_common())


class Totals(NamedTuple):
    """The footer's sums over all files, computed once per snapshot and selection."""

    selected: int
    selected_bytes: int
    unknown_sizes: bool
    speed: float
    eta: float | None
    disk: diskplan.DiskPlan = diskplan.DiskPlan()


def totals(snapshot: Snapshot, selected: Collection[str]) -> Totals:
    """Sum the selection's size, the total speed, the time left and the disk plan.

    Sums are over destinations: a file that several ticked models share counts once.
    """
    files = snapshot.files
    chosen = [files[dest] for dest in selected if dest in files]
    sizes = [f.size for f in chosen if f.size is not None]
    speed = snapshot.total_speed
    remaining = sum(max(0, f.size - f.done) for f in files.values() if f.status.active and f.size)
    eta = remaining / speed if speed > 0 else None
    disk = disk_plan(snapshot, selected)
    return Totals(len(chosen), sum(sizes), len(sizes) < len(chosen), speed, eta, disk)


def disk_plan(snapshot: Snapshot, dests: Collection[str]) -> diskplan.DiskPlan:
    """Set what a start of dests would fetch against the disks the session last looked at."""
    files = snapshot.files
    needs = []
    for dest in dests:
        file = files.get(dest)
        if file is not None and file.device is not None and not file.status.active:
            needs.append((file.device, file.to_fetch))
    spaces = {space.device: space for space in snapshot.header.disks}
    return diskplan.plan(needs, spaces, snapshot.header.reserve)


def size_of_selection(known_bytes: int, some_unknown: bool) -> str:
    """Describe a total size when some sizes may be unknown: '3.2 GB', '3.2 GB+', 'size unknown'."""
    if some_unknown and not known_bytes:
        return "size unknown"
    return human_bytes(known_bytes) + ("+" if some_unknown else "")


def footer_text(view: ViewState, sums: Totals, width: int) -> str:
    glyphs = view.glyphs
    size = size_of_selection(sums.selected_bytes, sums.unknown_sizes)
    sep = f" {glyphs.separator} "
    parts = [f" {sums.selected} selected, {size}"]
    if sums.disk.volumes:
        parts.append(sums.disk.summary())
    parts += [
        f"{glyphs.down} {human_speed(sums.speed)}",
        f"ETA {human_duration(sums.eta)}",
        view.view_name + (f" /{view.filter_text}" if view.filter_text else ""),
    ]
    left = sep.join(parts)
    room = width - display_width(left)
    for hints in _FOOTER_HINTS:
        if view.models_view:
            hints = hints.replace("m models", "m files").replace("Enter select", "Enter model")
        if room >= display_width(hints) + 2:
            return left + " " * (room - display_width(hints)) + hints
    return left


_FOOTER_HINTS = (
    "Enter select  d download  m models  s view  / filter  R reclaim  ? help  Esc quit ",
    "Enter select  d download  m models  s view  / filter  ? help  Esc quit ",
    "Enter select  d download  m models  ? help  Esc quit ",
    "m models  ? help  Esc quit ",
    "? help  Esc quit ",
)


NOTHING_TICKED = (
    "Nothing ticked: m shows the models, Enter ticks a model's missing files "
    "(or start with --models ID)"
)


def disk_question(snapshot: Snapshot, dests: Collection[str]) -> str:
    """Ask before a start that does not fit: the shortfall and the largest ticked models."""
    disk = disk_plan(snapshot, dests)
    short = "; ".join(
        f"{human_bytes(v.shortfall)} short on {v.space.mount}: "
        f"{human_bytes(v.to_fetch)} to fetch, {human_bytes(v.space.free)} free, "
        f"{human_bytes(v.reserve)} kept"
        for v in disk.short
    )
    largest = describe_largest(largest_models(snapshot, dests))
    # The question first: a narrow terminal cuts the end of the line.
    return f"Does not fit, start anyway? (y/n)  {short} · largest: {largest}"


def model_details(row: ModelRow | None) -> tuple[str, str]:
    """Return the status line for the model under the cursor."""
    if row is None:
        return "", "statusline"
    missing = len(row.missing)
    text = f"{row.model_id}: {row.name}: {len(row.files)} files, {missing} missing"
    if row.linkable:
        text += f", {human_bytes(row.linkable)} linkable from the hub"
    if row.unknown_sizes:
        text += f", {row.unknown_sizes} of unknown size"
    return text + "  (Enter ticks or unticks its missing files)", "statusline"


def status_line(
    view: ViewState,
    snapshot: Snapshot,
    rows: Sequence[Row],
    model_rows: Sequence[ModelRow] = (),
) -> tuple[str, str]:
    """Return the status line's text and role: prompt, message, or the current row's details."""
    if view.editing_filter:
        return f"/{view.filter_text}_   (Enter keeps the filter, Esc clears it)", "statusline"
    if view.confirm_quit:
        return (
            "Downloads are running. Quit now and keep partial files for later? (y/n)",
            "statusline.error",
        )
    if view.confirm_start:
        return disk_question(snapshot, view.confirm_start), "statusline.error"
    if view.message:
        return view.message, "statusline.error" if view.message_is_error else "statusline"
    if not view.selected and not view.started and snapshot.files and not view.models_view:
        return NOTHING_TICKED, "statusline"
    if view.models_view:
        return model_details(model_rows[view.cursor] if view.cursor < len(model_rows) else None)
    if not rows:
        return "", "statusline"
    file = snapshot.files.get(rows[view.cursor].dest) if view.cursor < len(rows) else None
    if file is None:
        return "", "statusline"
    if file.status is Status.FAILED:
        return f"Failed: {file.message or 'no reason given'}  ({file.dest})", "statusline.error"
    details = file.dest
    if file.message:
        details += f"  {file.message}"
    elif file.link_source:
        details += f"  -> {file.link_source}"
    if file.endpoint and file.status is not Status.LINKED:
        details += f"  from {file.endpoint}"
        if file.failover:
            details += f" (failed over {file.failover})"
    needed = len(file.needed_by)
    if needed:
        details += f"  (needed by {needed} model{'s' if needed != 1 else ''})"
    return details, "statusline"


def render(
    view: ViewState,
    snapshot: Snapshot,
    rows: Sequence[Row],
    width: int,
    height: int,
    help_lines: Sequence[tuple[str, str]] = (),
    sums: Totals | None = None,
    content: Mapping[str, int] | None = None,
    model_rows: Sequence[ModelRow] = (),
) -> list[Line]:
    """Return the whole screen: one list of segments per line, ``height`` lines.

    In the Models view (``view.models_view``) the table shows ``model_rows`` instead of rows.

    ``view.cursor`` and ``view.top`` must already be clamped (see rows.clamp_view). ``sums``
    may be passed in from a cache; it is computed here otherwise. ``content`` is the cached
    content_widths of the rows.
    """
    lines: list[Line] = [[] for _ in range(max(0, height))]
    glyphs = view.glyphs
    if too_small(width, height):
        if lines:
            message = f"terminal too small: need {MIN_WIDTH}x{MIN_HEIGHT}"
            lines[0] = [Segment(0, clip(message, width, glyphs.ellipsis), "statusline.error")]
        return lines

    def full(text: str, role: str) -> Line:
        return [Segment(0, fit(text, width, ellipsis=glyphs.ellipsis), role)]

    lines[0] = full(header_text(snapshot, glyphs), "header")
    if view.models_view:
        draw_models(lines, view, model_rows, width, height)
    else:
        draw_files(lines, view, snapshot, rows, width, height, content)
    text, role = status_line(view, snapshot, rows, model_rows)
    lines[height - 2] = full(" " + text, role)
    if sums is None:
        sums = totals(snapshot, view.selected)
    lines[height - 1] = full(footer_text(view, sums, width), "footer")
    if view.reclaim_open:
        overlay_reclaim(lines, snapshot.reclaim, width, height, glyphs, view.reclaim_top)
    if view.help_open and help_lines:
        overlay_help(lines, help_lines, width, height, glyphs, view.help_top)
    return lines


def draw_files(
    lines: list[Line],
    view: ViewState,
    snapshot: Snapshot,
    rows: Sequence[Row],
    width: int,
    height: int,
    content: Mapping[str, int] | None,
) -> None:
    """Draw the Files table's headings and its visible rows into lines."""
    glyphs = view.glyphs
    columns = layout_columns(width, content)
    headings = []
    for column in columns:
        title = glyphs.check_heading if column.name == "check" else HEADINGS[column.name]
        if column.name == "check":
            title = title.center(column.width)
        headings.append(
            Segment(
                column.x,
                fit(title, column.width, right=column.right, ellipsis=glyphs.ellipsis),
                "heading",
            )
        )
    lines[1] = headings

    visible = table_height(height)
    if rows:
        files = snapshot.files
        for offset, row in enumerate(rows[view.top : view.top + visible]):
            index = view.top + offset
            file = files.get(row.dest)
            if file is None:
                continue
            lines[TABLE_TOP + offset] = format_row(
                row, file, columns, glyphs, row.dest in view.selected, index == view.cursor
            )
    else:
        text = fit(empty_table_text(view, snapshot), width, ellipsis=glyphs.ellipsis)
        lines[TABLE_TOP] = [Segment(0, text, "statusline")]


# (column, heading, minimum width, drop order: lower drops first; None stays)
_MODEL_COLUMNS = (
    ("check", "✓", 3, None),
    ("name", "Model", 10, None),
    ("id", "Id", 8, 3),
    ("family", "Family", 8, 0),
    ("total", "Size", 8, 4),
    ("present", "Present", 8, 1),
    ("linkable", "Hub", 8, 2),
    ("to_fetch", "Fetch", 8, None),
    ("state", "State", 7, None),
)
_MODEL_NUMBERS = frozenset({"total", "present", "linkable", "to_fetch"})


def model_columns(width: int) -> list[Column]:
    """Return the Models table's columns for a width: drop the least useful, grow the names."""
    kept = list(_MODEL_COLUMNS)

    def needed() -> int:
        return sum(entry[2] for entry in kept) + len(kept) - 1

    for order in range(5):
        if needed() <= width:
            break
        kept = [entry for entry in kept if entry[3] != order]
    widths = {name: minimum for name, _, minimum, _ in kept}
    spare = max(0, width - needed())
    for name, target in (("name", 30), ("id", 24), ("family", 14), ("name", 60), ("id", 40)):
        if name in widths and spare > 0:
            grow = min(spare, max(0, target - widths[name]))
            widths[name] += grow
            spare -= grow
    widths["name"] += spare
    columns, x = [], 0
    for name, _, _, _ in kept:
        columns.append(Column(name, x, widths[name], right=name in _MODEL_NUMBERS))
        x += widths[name] + 1
    return columns


def model_tick(row: ModelRow, selected: Collection[str], glyphs: Glyphs) -> str:
    """Return the check cell: all of a model's missing files ticked, some, or none."""
    ticked = sum(dest in selected for dest in row.missing)
    if row.missing and ticked == len(row.missing):
        return glyphs.checked
    return glyphs.partly if ticked else glyphs.unchecked


def format_model_row(
    row: ModelRow, columns: Sequence[Column], glyphs: Glyphs, tick: str, cursor: bool
) -> Line:
    """Return the segments of one Models table row."""
    segments: Line = []
    if cursor:
        last = columns[-1]
        segments.append(Segment(0, " " * (last.x + last.width), "row.cursor"))
    cells = {
        "check": tick,
        "name": row.name,
        "id": row.model_id,
        "family": row.family,
        "state": row.state.label,
    }
    for column in columns:
        role = "normal"
        if column.name in _MODEL_NUMBERS:
            size = getattr(row, column.name)
            text = human_bytes(size) if size or column.name == "total" else "-"
            if column.name == "total" and row.unknown_sizes:
                text += "+"
        else:
            text = cells[column.name]
        if column.name == "state":
            role = model_role(row.state)
        elif column.name == "check" and tick != glyphs.unchecked:
            role = "row.selected"
        text = fit(text, column.width, right=column.right, ellipsis=glyphs.ellipsis)
        segments.append(Segment(column.x, text, "row.cursor" if cursor else role))
    return segments


def model_role(state: ModelState) -> str:
    return f"model.{state.value}"


def draw_models(
    lines: list[Line], view: ViewState, rows: Sequence[ModelRow], width: int, height: int
) -> None:
    """Draw the Models table's headings and its visible rows into lines."""
    glyphs = view.glyphs
    columns = model_columns(width)
    titles = {name: title for name, title, _, _ in _MODEL_COLUMNS}
    titles["check"] = glyphs.check_heading
    lines[1] = [
        Segment(
            c.x,
            fit(
                titles[c.name].center(c.width) if c.name == "check" else titles[c.name],
                c.width,
                right=c.right,
                ellipsis=glyphs.ellipsis,
            ),
            "heading",
        )
        for c in columns
    ]
    visible = table_height(height)
    for offset, row in enumerate(rows[view.top : view.top + visible]):
        tick = model_tick(row, view.selected, glyphs)
        cursor = view.top + offset == view.cursor
        lines[TABLE_TOP + offset] = format_model_row(row, columns, glyphs, tick, cursor)
    if not rows:
        if view.filter_text:
            text = f" No model matches '{view.filter_text}'. Esc clears the filter."
        elif not view.show_all:
            text = " Every model is ready. Press s to show all models."
        else:
            text = " The catalog lists no models."
        lines[TABLE_TOP] = [Segment(0, fit(text, width, ellipsis=glyphs.ellipsis), "statusline")]


def empty_table_text(view: ViewState, snapshot: Snapshot) -> str:
    if view.filter_text:
        return f" No row matches '{view.filter_text}'. Esc clears the filter."
    if not snapshot.files:
        return " The catalog lists no files."
    if not view.show_all:
        return " Nothing missing: every needed file is present. Press s to show all files."
    return " No files to show."


def overlay_help(
    lines: list[Line],
    help_lines: Sequence[tuple[str, str]],
    width: int,
    height: int,
    glyphs: Glyphs,
    first: int = 0,
) -> None:
    """Draw the key help as a box over the table, from entry ``first`` on."""
    key_width = max(display_width(key) for key, _ in help_lines)
    text_width = max(display_width(text) for _, text in help_lines)
    box_width = min(width - 2, key_width + text_width + 5)
    room = help_room(height)
    shown = list(help_lines[first : first + room])
    more = first + room < len(help_lines) or first > 0
    title = " Keys: Up/Down scroll, any other key closes " if more else " Keys (any key closes) "
    x = max(0, (width - box_width) // 2)
    y = max(1, (height - len(shown) - 2) // 2)
    title_cell = fit(title.center(box_width), box_width, ellipsis=glyphs.ellipsis)
    lines[y] = _overlay(lines[y], [Segment(x, title_cell, "help.key")])
    for offset, (key, text) in enumerate(shown, start=1):
        key_cell = fit(" " + key, key_width + 2, ellipsis=glyphs.ellipsis)
        rest = fit(" " + text, box_width - key_width - 2, ellipsis=glyphs.ellipsis)
        box = [Segment(x, key_cell, "help.key"), Segment(x + key_width + 2, rest, "help")]
        lines[y + offset] = _overlay(lines[y + offset], box)
    bottom = y + len(shown) + 1
    if bottom < height - 1:
        lines[bottom] = _overlay(lines[bottom], [Segment(x, " " * box_width, "help")])


def reclaim_title(listed: ReclaimList | None) -> str:
    """Say what the Reclaim view holds and the one question it asks."""
    if listed is None or not listed.ready:
        return " Reclaim: looking for what can go... (any key closes) "
    if not listed.rows:
        return " Reclaim: nothing to reclaim (any key closes) "
    count = len(listed.rows)
    return (
        f" Reclaim {count} file{'' if count == 1 else 's'}, {human_bytes(listed.total)}: "
        "y deletes them (hub copies become links), any other key keeps them "
    )


def reclaim_lines(listed: ReclaimList | None) -> list[str]:
    """Return one line per listed file: kind, the bytes it frees (or link), its place."""
    if listed is None:
        return []
    return [
        f" {row.kind:<8} {'link' if row.link else human_bytes(row.size):>9}  {row.path}"
        for row in listed.rows
    ]


def overlay_reclaim(
    lines: list[Line],
    listed: ReclaimList | None,
    width: int,
    height: int,
    glyphs: Glyphs,
    first: int = 0,
) -> None:
    """Draw the Reclaim list as a box over the table, from entry first on."""
    box_width = max(10, width - 4)
    x = 2
    shown = reclaim_lines(listed)[first : first + reclaim_room(height)]
    title = fit(reclaim_title(listed), box_width, ellipsis=glyphs.ellipsis)
    lines[1] = _overlay(lines[1], [Segment(x, title, "help.key")])
    for offset, text in enumerate(shown, start=2):
        cell = fit(text, box_width, ellipsis=glyphs.ellipsis)
        lines[offset] = _overlay(lines[offset], [Segment(x, cell, "help")])
    bottom = 2 + len(shown)
    if bottom < height - 2:
        lines[bottom] = _overlay(lines[bottom], [Segment(x, " " * box_width, "help")])


def reclaim_room(height: int) -> int:
    """Return how many Reclaim rows fit: below the header and title, above the status line."""
    return max(1, height - 5)


def help_room(height: int) -> int:
    """Return how many help entries fit at once: the header, footer, title and bottom stay."""
    return max(1, height - 4)


def _overlay(line: Line, box: Line) -> Line:
    """Put box segments over a line; the line's segments under the box are dropped."""
    start = box[0].x
    end = box[-1].x + display_width(box[-1].text)
    kept = [s for s in line if s.x + display_width(s.text) <= start or s.x >= end]
    return sorted(kept + box)
