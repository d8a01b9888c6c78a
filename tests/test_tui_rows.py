"""Rows as a pure function of a snapshot, and the scroll clamp."""

from __future__ import annotations

import pytest

from tests.tui_fakes import view
from wandown.state import Header, StatusStore
from wandown.status import Status
from wandown.tui.rows import (
    ALL_MODELS,
    OPTIONAL,
    VARIANT,
    build_rows,
    clamp_view,
    filter_rows,
    rows_stale,
)

MODELS = {"t2v": "Wan text to video", "i2v": "Wan image to video", "vace": "Vace 14B"}


def store(*views) -> StatusStore:
    return StatusStore({v.dest: v for v in views}, Header(model_count=len(MODELS)), MODELS)


def sample() -> StatusStore:
    return store(
        view("ckpts/umt5.safetensors", ["t2v", "i2v", "vace"], role="text_encoder"),
        view("ckpts/vae.safetensors", ["t2v"], role="core"),
        view("ckpts/t2v_14B.safetensors", ["t2v"]),
        view("ckpts/shared_lora.safetensors", ["vace", "i2v"], role="lora"),
        view("ckpts/i2v_14B.safetensors", ["i2v"], status=Status.EXISTS),
        view("ckpts/tools/depth.pth", [], role="on_demand"),
        view("ckpts/t2v_14B_fp16.safetensors", []),
    )


def shown(rows) -> list[tuple[str, str]]:
    return [(row.config, row.dest.rsplit("/", 1)[1]) for row in rows]


def test_rows_are_model_file_pairs_sorted_with_shared_files_once():
    rows = build_rows(sample().snapshot(), show_all=False)
    assert shown(rows) == [
        (ALL_MODELS, "umt5.safetensors"),
        (ALL_MODELS, "vae.safetensors"),
        ("i2v", "shared_lora.safetensors"),
        ("t2v", "t2v_14B.safetensors"),
        ("vace", "shared_lora.safetensors"),
        (OPTIONAL, "depth.pth"),
    ]


def test_show_all_adds_present_files_and_unpicked_variants():
    rows = build_rows(sample().snapshot(), show_all=True)
    names = shown(rows)
    assert ("i2v", "i2v_14B.safetensors") in names
    assert names[-1] == (VARIANT, "t2v_14B_fp16.safetensors")
    assert len(names) == 8


def test_missing_only_keeps_files_this_session_started():
    s = sample()
    s.update("ckpts/t2v_14B.safetensors", status=Status.COMPLETE)
    assert ("t2v", "t2v_14B.safetensors") not in shown(build_rows(s.snapshot(), False))
    kept = build_rows(s.snapshot(), False, keep={"ckpts/t2v_14B.safetensors"})
    assert ("t2v", "t2v_14B.safetensors") in shown(kept)


def test_filter_matches_every_word_in_model_name_file_or_folder():
    snap = sample().snapshot()
    assert shown(build_rows(snap, False, "LORA vace")) == [("vace", "shared_lora.safetensors")]
    assert shown(build_rows(snap, False, "image")) == [("i2v", "shared_lora.safetensors")]
    assert shown(build_rows(snap, False, "tools/")) == [(OPTIONAL, "depth.pth")]
    assert build_rows(snap, False, "nothing-like-this") == []
    rows = build_rows(snap, True)
    assert filter_rows(rows, "  ") == rows


def test_single_model_catalog_does_not_call_everything_all_models():
    one = StatusStore(
        {"ckpts/a.safetensors": view("ckpts/a.safetensors", ["solo"])},
        Header(model_count=1),
        {"solo": "Solo"},
    )
    assert shown(build_rows(one.snapshot(), False)) == [("solo", "a.safetensors")]


def test_progress_does_not_make_rows_stale_but_presence_and_needs_do():
    s = sample()
    before = s.snapshot()
    s.update("ckpts/t2v_14B.safetensors", status=Status.DOWNLOADING, done=10, speed=5.0)
    progress = s.snapshot()
    assert rows_stale(None, before)
    assert not rows_stale(before, progress)
    s.update("ckpts/t2v_14B.safetensors", status=Status.COMPLETE)
    assert rows_stale(progress, s.snapshot())
    later = s.snapshot()
    s.update("ckpts/t2v_14B.safetensors", needed_by=("t2v", "vace"))
    assert rows_stale(later, s.snapshot())


@pytest.mark.parametrize(
    ("cursor", "top", "n_rows", "height", "expected"),
    [
        (0, 0, 0, 20, (0, 0)),
        (5, 0, 100, 0, (0, 0)),
        (5, 0, 100, 20, (5, 0)),
        (25, 0, 100, 20, (25, 6)),
        (3, 10, 100, 20, (3, 3)),
        (-4, 0, 100, 20, (0, 0)),
        (500, 0, 100, 20, (99, 80)),
        (10, 90, 100, 20, (10, 10)),
        (95, 95, 100, 20, (95, 80)),
        (2, 7, 5, 20, (2, 0)),
    ],
)
def test_clamp_view_keeps_cursor_on_a_row_and_on_screen(cursor, top, n_rows, height, expected):
    assert clamp_view(cursor, top, n_rows, height) == expected


def test_clamp_view_holds_for_every_small_case():
    for n_rows in range(0, 12):
        for height in range(1, 6):
            for cursor in range(-2, 14):
                for top in range(-2, 14):
                    c, t = clamp_view(cursor, top, n_rows, height)
                    if n_rows == 0:
                        assert (c, t) == (0, 0)
                        continue
                    assert 0 <= c < n_rows
                    assert 0 <= t <= max(0, n_rows - height)
                    assert t <= c < t + height


def test_feature_files_get_one_row_each_under_their_feature_name():
    rows = build_rows(
        store(
            view("ckpts/t2v_14B.safetensors", ["t2v"]),
            view("ckpts/mmaudio/v1-44.pth", [], role="feature", feature="mmaudio"),
            view("loras/ltx2/system.safetensors", [], role="feature", feature="ltx2-system-loras"),
        ).snapshot(),
        show_all=False,
    )
    assert shown(rows) == [
        ("t2v", "t2v_14B.safetensors"),
        ("feature:ltx2-system-loras", "system.safetensors"),
        ("feature:mmaudio", "v1-44.pth"),
    ]
