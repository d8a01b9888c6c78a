"""The Models view: one row per model, its sums, Enter on a model, and the disk question."""

from __future__ import annotations

import pytest

from tests.tui_fakes import FakeController, frame_roles, frame_text, view
from tests.wan2gp_fixtures import SHARED, real_install
from wandown.catalog import load_catalog, presence_of
from wandown.diskplan import Space
from wandown.loaded import Loaded
from wandown.remote import RemoteFile
from wandown.state import Header, StatusStore
from wandown.status import ModelState, Status
from wandown.tui import keys
from wandown.tui.app import App
from wandown.tui.models import model_rows
from wandown.tui.render import TABLE_TOP, model_columns, totals

GB = 1_000_000_000
MODELS = {"t2v": "Text to video", "i2v": "Image to video", "vace": "Vace 14B"}
FAMILIES = {"t2v": "t2v", "i2v": "i2v", "vace": "vace_14B"}
DISK = Space(7, "/mnt/models", 100 * GB)


def store(free: int = 100 * GB) -> StatusStore:
    files = [
        view("ckpts/umt5.safetensors", list(MODELS), role="core", size=10 * GB, device=7),
        view("ckpts/shared.safetensors", ["t2v", "vace"], size=20 * GB, device=7),
        view("ckpts/t2v.safetensors", ["t2v"], size=30 * GB, device=7, partial=5 * GB),
        view("ckpts/i2v.safetensors", ["i2v"], size=40 * GB, status=Status.EXISTS),
        view("ckpts/vace.safetensors", ["vace"], size=8 * GB, device=7, linkable=True),
        view("ckpts/tools/depth.pth", [], role="on_demand", size=1 * GB),
    ]
    header = Header(disks=(Space(7, "/mnt/models", free),), reserve=10 * GB)
    return StatusStore({f.dest: f for f in files}, header, MODELS, FAMILIES)


def models_app(free: int = 100 * GB, ask_disk: bool = True) -> App:
    app = App(FakeController(store(free)), ask_disk=ask_disk)
    app.resize(120, 20)
    app.handle("m")
    return app


def on_model(app: App, model_id: str) -> None:
    ids = [row.model_id for row in app.model_rows]
    app.move_cursor_to(ids.index(model_id))


def test_each_models_totals_are_the_sums_of_the_files_it_needs():
    rows = {row.model_id: row for row in model_rows(store().snapshot(), show_all=True)}
    t2v = rows["t2v"]
    assert (t2v.name, t2v.family) == ("Text to video", "t2v")
    assert t2v.total == (10 + 20 + 30) * GB
    assert t2v.present == 0 and t2v.linkable == 0
    assert t2v.to_fetch == (10 + 20 + 25) * GB  # the partial's 5 GB are not fetched again
    assert t2v.state is ModelState.MISSING
    vace = rows["vace"]
    assert vace.total == 38 * GB and vace.linkable == 8 * GB and vace.to_fetch == 30 * GB
    i2v = rows["i2v"]
    assert (i2v.total, i2v.present, i2v.state) == (50 * GB, 40 * GB, ModelState.PARTIAL)
    hidden = {row.model_id for row in model_rows(store().snapshot(), show_all=False)}
    assert hidden == {"t2v", "i2v", "vace"}  # none is ready yet


def test_a_shared_file_counts_once_in_what_d_would_do():
    app = models_app()
    on_model(app, "t2v")
    app.handle("\n")
    on_model(app, "vace")
    app.handle("\n")
    assert app.view.selected == {
        "ckpts/umt5.safetensors",
        "ckpts/shared.safetensors",
        "ckpts/t2v.safetensors",
        "ckpts/vace.safetensors",
    }
    sums = totals(app.snapshot, app.view.selected)
    assert sums.selected_bytes == (10 + 20 + 30 + 8) * GB
    assert sums.disk.to_fetch == (10 + 20 + 25) * GB  # vace's file is linked, not fetched
    app.resize(160, 20)
    footer = frame_text(app.frame(), 160)[-1]
    assert "55.0 GB to fetch · 100.0 GB free on /mnt/models" in footer
    assert "Models, Missing Only" in footer and "m files" in footer


def test_enter_on_a_model_ticks_its_missing_files_and_again_unticks_them():
    app = models_app()
    on_model(app, "i2v")
    app.handle("\n")
    assert app.view.selected == {"ckpts/umt5.safetensors"}  # its own file is present
    row = TABLE_TOP + app.view.cursor
    assert frame_text(app.frame(), 120)[row].startswith("[✓] Image to video")
    app.handle("\n")
    assert app.view.selected == set()
    on_model(app, "t2v")
    app.view.selected.add("ckpts/t2v.safetensors")
    assert frame_text(app.frame(), 120)[TABLE_TOP + app.view.cursor].startswith("[-]")
    app.handle("\n")  # some ticked: Enter ticks the rest
    assert len(app.view.selected) == 3


def test_unticking_a_model_keeps_the_files_other_ticked_models_need():
    app = models_app()
    for model_id in ("t2v", "vace"):
        on_model(app, model_id)
        app.handle("\n")
    on_model(app, "t2v")
    app.handle("\n")
    assert app.view.selected == {
        "ckpts/umt5.safetensors",
        "ckpts/shared.safetensors",
        "ckpts/vace.safetensors",
    }
    message = "Unticked 1 missing file of t2v; 2 stay ticked for other ticked models"
    assert app.view.message == message
    on_model(app, "vace")
    app.handle("\n")
    # i2v's one missing file is the core file: i2v shows ticked, so that file stays.
    assert app.view.selected == {"ckpts/umt5.safetensors"}


def test_filter_show_all_select_all_unselect_and_sort_by_size_work_on_models():
    app = models_app()
    for key in "/vace\n":
        app.handle(key)
    assert [row.model_id for row in app.model_rows] == ["vace"]
    app.handle("a")
    assert app.view.selected == {
        "ckpts/umt5.safetensors",
        "ckpts/shared.safetensors",
        "ckpts/vace.safetensors",
    }
    app.handle("u")
    assert app.view.selected == set()
    app.handle("\x1b")
    app.handle("o")
    assert [row.model_id for row in app.model_rows] == ["t2v", "i2v", "vace"]  # 60, 50, 38
    app.handle("o")
    assert [row.model_id for row in app.model_rows] == ["i2v", "t2v", "vace"]
    app.controller.store.update("ckpts/umt5.safetensors", status=Status.COMPLETE)
    app.refresh()
    assert "i2v" not in {row.model_id for row in app.model_rows}  # now Ready: hidden
    app.handle("s")
    i2v = next(row for row in app.model_rows if row.model_id == "i2v")
    assert i2v.state is ModelState.READY


def test_m_toggles_back_to_the_files_view_where_it_was():
    app = App(FakeController(store()))
    app.resize(120, 20)
    app.move_cursor_to(2)
    files_row = app.current_row()
    app.handle("m")
    assert app.view.models_view and app.current_row() is None
    headings = frame_text(app.frame(), 120)[1]
    for title in ("Model", "Id", "Family", "Size", "Present", "Hub", "Fetch", "State"):
        assert title in headings
    app.handle("m")
    assert not app.view.models_view and app.current_row() == files_row
    assert "Destination" in frame_text(app.frame(), 120)[1]
    assert dict(keys.help_lines())["m"] == "switch between the Files and the Models view"


def test_the_state_column_draws_in_the_models_roles():
    app = models_app()
    on_model(app, "vace")  # the cursor row is drawn in its own role
    roles = set().union(*frame_roles(app.frame()))
    assert {"model.missing", "model.partial"} <= roles


def test_the_model_columns_fit_every_width():
    for width in range(32, 200, 7):
        columns = model_columns(width)
        assert columns[-1].x + columns[-1].width <= width
        assert [c.name for c in columns][:2] == ["check", "name"]


# -- the disk question ---------------------------------------------------------------------------


def test_d_asks_when_the_ticked_files_do_not_fit_and_y_starts_them():
    app = models_app(free=40 * GB)  # 30 GB room after the 10 GB reserve
    on_model(app, "t2v")
    app.handle("\n")
    assert "25.0 GB short" in frame_text(app.frame(), 120)[-1]
    app.handle("d")
    assert app.controller.calls == []  # nothing started before the answer
    app.resize(200, 20)
    question = frame_text(app.frame(), 200)[-2]
    assert question.startswith(" Does not fit, start anyway? (y/n)  25.0 GB short on /mnt/models")
    assert "55.0 GB to fetch, 40.0 GB free, 10.0 GB kept" in question
    assert "largest: Text to video 55.0 GB, Vace 14B 30.0 GB" in question
    app.handle("n")
    assert app.controller.calls == [] and "Not started" in app.view.message
    app.handle("d")
    app.handle("y")
    assert app.controller.calls[0][0] == "start"
    assert sorted(app.controller.calls[0][1]) == [
        "ckpts/shared.safetensors",
        "ckpts/t2v.safetensors",
        "ckpts/umt5.safetensors",
    ]


def test_d_starts_at_once_when_it_fits_or_with_force():
    for app in (models_app(), models_app(free=1 * GB, ask_disk=False)):
        on_model(app, "t2v")
        app.handle("\n")
        app.handle("d")
        assert app.controller.calls and app.controller.calls[0][0] == "start"


# -- the real catalog ----------------------------------------------------------------------------


def test_real_catalog_models_totals_are_sums_of_their_files_shared_once(tmp_path):
    if not (SHARED / "8681e9f" / "defaults").is_dir():
        pytest.skip("needs ../shared/wan2gp/8681e9f (the real Wan2GP definitions)")
    catalog = load_catalog(real_install(tmp_path, "8681e9f"))
    remote = {
        r.dest: RemoteFile(r.repo or "", "main", "c" * 40, r.path or "", 1000 + i, None, None)
        for i, r in enumerate(catalog.records)
    }
    loaded = Loaded(catalog, remote, {}, presence_of(catalog))
    snapshot = StatusStore(
        loaded.views(), Header(), loaded.model_names(), loaded.model_families()
    ).snapshot()
    rows = model_rows(snapshot, show_all=True)
    assert len(rows) == len(catalog.models) == 217
    for row in rows:
        needed = [r for r in catalog.records if row.model_id in r.needed_by]
        assert row.total == sum(remote[r.dest].size for r in needed)
        assert row.name == catalog.models[row.model_id].name
        assert row.family == (catalog.models[row.model_id].architecture or "")
    two = [row for row in rows if row.model_id in ("t2v", "i2v_2_2")]
    union = set(two[0].missing) | set(two[1].missing)
    assert len(union) < len(two[0].missing) + len(two[1].missing)  # they share files
    sums = totals(snapshot, union)
    assert sums.selected_bytes == sum(remote[d].size for d in union)
