"""The pieces that keep hostile input harmless: the hardened JSON reader and printable()."""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import pytest

from tests.tui_fakes import view
from wandown import jsonfile
from wandown.catalog.build import Problem, name_problem, safe_dest
from wandown.jsonfile import JSONFileError, decode, loads, move_aside, read_json
from wandown.listing import format_table, to_json
from wandown.plain import change_line, summary_lines
from wandown.safetext import printable
from wandown.status import Status
from wandown.tui.screen import put


@pytest.mark.parametrize(
    ("text", "line", "column", "reason"),
    [
        ("[" * 100_000, 1, 201, "nested deeper than 200 levels"),
        ('{"a":\n  {"b": 1' + "0" * 5000 + "}}", 2, 9, "a number longer than 40"),
        ('{"a": -Infinity}', 1, 7, "-Infinity is not a JSON number"),
        ("[NaN]", 1, 2, "NaN is not a JSON number"),
        ('{"a": 1,\n "b": }', 2, 7, "invalid JSON (Expecting value)"),
    ],
)
def test_refusals_carry_file_line_and_column(text, line, column, reason):
    with pytest.raises(JSONFileError) as raised:
        loads(text, "some.json")
    error = raised.value
    assert (error.line, error.column) == (line, column)
    assert reason in error.reason
    assert str(error).startswith(f"some.json:{line}:{column}: ")
    assert isinstance(error, ValueError)  # old `except ValueError` sites keep working


def test_what_is_fine_stays_fine():
    text = '{"[[[": "]]]{", "n": [1.5, -3, 18446744073709551615], "e": "\\"[", "u": "日本"}'
    assert loads(text) == json.loads(text)
    assert loads("[" * 200 + "]" * 200) == json.loads("[" * 200 + "]" * 200)
    assert decode(b'\xef\xbb\xbf{"bom": true}') == {"bom": True}


def test_out_of_range_float_and_bad_utf8_are_refused():
    with pytest.raises(JSONFileError, match="out of range"):
        loads("[1e999]")
    with pytest.raises(JSONFileError) as raised:
        decode(b'{"a":\n "\xff"}', "x.json")
    assert (raised.value.line, raised.value.column) == (2, 3)
    assert "not UTF-8" in raised.value.reason


def test_prescan_is_cheap_on_a_big_ordinary_file():
    big = json.dumps({str(i): {"a": "x" * 50, "b": [1, 2], "c": "[{"} for i in range(50_000)})
    start = time.perf_counter()
    assert len(loads(big)) == 50_000
    assert time.perf_counter() - start < 5


def test_read_json_refuses_big_files_and_fifos_and_moves_aside(tmp_path):
    big = tmp_path / "big.json"
    big.write_text("[" + "1," * 600 + "1]")
    with pytest.raises(JSONFileError, match="larger than"):
        read_json(big, max_bytes=1000)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(JSONFileError, match="not a regular file"):
        read_json(fifo)  # must not hang waiting for a writer
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "absent.json")
    assert move_aside(big) == tmp_path / "big.json.broken"
    assert not big.exists() and move_aside(big) is None
    assert jsonfile.MAX_DEPTH >= 64


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("evil\x1b[2J.bin", "evil\\x1b[2J.bin"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("del\x7f c1\x9b nul\x00", "del\\x7f c1\\x9b nul\\x00"),
        ("rtl\u202egnp.exe", "rtl\\u202egnp.exe"),
        ("undecodable\udcff", "undecodable\\udcff"),
        ("vidéo 日本.safetensors", "vidéo 日本.safetensors"),
    ],
)
def test_printable_escapes_controls_visibly_and_keeps_the_rest(raw, shown):
    assert printable(raw) == shown


def test_views_show_names_printable():
    rows = [(" ", "evil\x1bid", "x\ny.bin", "1.0", "Missing", "ckpts/")]
    table = format_table(rows)
    assert "\x1b" not in "".join(table) and "x\\ny.bin" in table[1]
    linked = view("ckpts/a.bin", status=Status.LINKED, link_source="/hub/\x1b]0;t\x07")
    assert change_line(linked).endswith("-> /hub/\\x1b]0;t\\x07")
    failed = view("ckpts/a.bin", status=Status.FAILED, message="server said \x1b[31mno\nforged")
    assert (
        summary_lines_for(failed)[-1] == "  failed: ckpts/a.bin: server said \\x1b[31mno\\nforged"
    )


def summary_lines_for(file_view):
    return summary_lines(SimpleNamespace(files={file_view.dest: file_view}), {file_view.dest})


def test_json_output_stays_exact_json_even_ascii_only():
    class Record:
        def to_json(self):
            return {"dest": "ckpts/vidéo\x1b\x9b\u202e.bin"}

    for ascii_only in (False, True):
        text = to_json([Record()], ascii_only=ascii_only)
        assert json.loads(text) == [{"dest": "ckpts/vidéo\x1b\x9b\u202e.bin"}]
        assert all(printable(line) == line for line in text.splitlines())
    assert to_json([Record()], ascii_only=True).isascii()


class RecordingWindow:
    def __init__(self, height: int, width: int):
        self.size = (height, width)
        self.writes: list[str] = []

    def getmaxyx(self):
        return self.size

    def addstr(self, y, x, text, attr=0):
        if "\x00" in text:
            raise ValueError("embedded null character")  # what curses does
        self.writes.append(text)


def test_curses_put_never_draws_a_raw_control_character():
    window = RecordingWindow(3, 40)
    put(window, 0, 0, "a\x00b\x1b[31mc")
    assert window.writes == ["a\\x00b\\x1b[31mc"]


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a/b", "a\\b", "a\x00b", "a\nb", "a\x9bb", "x" * 256]
)
def test_name_problem_refuses_what_cannot_be_one_file_name(name):
    assert name_problem(name) is not None


def test_safe_dest_keeps_ordinary_paths():
    assert (
        safe_dest("ckpts", "./umt5", "vidéo 日本.safetensors")
        == "ckpts/umt5/vidéo 日本.safetensors"
    )
    with pytest.raises(Problem):
        safe_dest("ckpts", "bad\x00dir", "x.bin")
    with pytest.raises(Problem):
        safe_dest("ckpts", "d" * 200 + "/" + "e" * 200, *(["f" * 250] * 16), "x.bin")
