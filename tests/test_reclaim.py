"""--reclaim end to end: a Wan2GP folder holding orphans, unused variants, stale partials and hub
copies beside needed files, Wan2GP's own source tree, links and a hub; then --yes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.wan2gp_fixtures import SHARED, real_install
from tests.world import BIG, LORA, OTHER_VARIANT, REPO, SMALL, build_world, payload
from wandown import cli
from wandown.catalog import load_catalog
from wandown.engine.partial import PartialState, save_state
from wandown.hub.sidecar import FileStat
from wandown.reclaim.plan import Kind, Places, plan
from wandown.reclaim.survey import Found, Survey


@pytest.fixture
def world(tmp_path, localhub):
    return build_world(tmp_path, localhub)


def plant(path: Path, data: bytes | int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload(str(path), data) if isinstance(data, int) else data)
    return path


def partial(folder: Path, name: str, data: bytes, size: int, sha256: str) -> list[Path]:
    part = plant(folder / ".wandown" / f"{name}.part", data)
    state = folder / ".wandown" / f"{name}.state"
    save_state(state, PartialState(url="http://x", size=size, sha256=sha256, blob_sha1=None))
    return [part, state]


def lay_out(world) -> dict[str, list[Path]]:
    """Fill the install with every kind of file; return what reclaim must list, by kind."""
    root, ckpts = world.root, world.root / "ckpts"
    big = world.served_file(BIG).read_bytes()
    lora = world.served_file(LORA).read_bytes()
    elsewhere = world.root.parent / "elsewhere"
    plant(elsewhere / "folder" / "hidden_orphan.safetensors", 5000)
    target = plant(elsewhere / "kept_target.safetensors", 7000)
    expected = {
        "orphan": [
            plant(ckpts / "old_model_14B.safetensors", 40_000),
            plant(ckpts / "old_folder" / "model.safetensors", 30_000),
            plant(ckpts / "old_folder" / "config.json", 120),
            plant(ckpts / "older" / "deep" / "model.safetensors", 1000),
            plant(root / "loras_i2v" / "old_lora.safetensors", 9000),
            plant(root / "orphan_in_root.safetensors", 8000),
        ],
        "variant": [plant(ckpts / OTHER_VARIANT, world.served_file(OTHER_VARIANT).read_bytes())],
        "partial": [
            *partial(ckpts, "gone_model.safetensors", b"g" * 20_000, 90_000, "0" * 64),
            *partial(ckpts, BIG, big[:50_000], len(big), hashlib.sha256(big).hexdigest()),
            *partial(ckpts / "pose", "yolox_l.onnx", b"p" * 50, 100, "1" * 64),
        ],
        "hub-copy": [plant(ckpts / SMALL, world.served_file(SMALL).read_bytes())],
    }
    os.symlink(target, ckpts / "linked_file.safetensors")
    os.symlink(elsewhere / "gone.safetensors", ckpts / "broken.safetensors")
    expected["orphan"] += [ckpts / "linked_file.safetensors", ckpts / "broken.safetensors"]
    plant(world.hub_dir / "a" / "small_copy.json", world.served_file(SMALL).read_bytes())

    # Never listed: needed files, a finetune's file, a good partial, software, links, outputs.
    plant(ckpts / BIG, big)  # needed and in place (its old partial above is stale)
    plant(root / "det_align" / "detface.pt", 100)  # needed, found in the "." checkpoint root
    ft = {
        "model": {
            "name": "ft",
            "architecture": "test_arch",
            "URLs": [f"https://huggingface.co/{REPO}/resolve/main/finetune_only.safetensors"],
        }
    }
    (root / "finetunes").mkdir()
    (root / "finetunes" / "ft.json").write_text(json.dumps(ft))
    plant(ckpts / "finetune_only.safetensors", 6000)
    partial(root / "loras", LORA, lora[:100_000], len(lora), hashlib.sha256(lora).hexdigest())
    plant(root / "wgp.py", b"# Wan2GP")
    plant(root / "models" / "wan" / "modules" / "model.py", b"# code")
    plant(root / "models" / "wan" / "weights" / "shipped.pth", 3000)
    plant(root / "models" / "wan" / "configs" / "config.json", 30)
    plant(ckpts / "custom_repo" / "modeling_custom.py", b"# remote code")
    plant(ckpts / "custom_repo" / "weights.safetensors", 3000)
    plant(root / ".git" / "lfs" / "objects" / "blob.bin", 3000)
    plant(root / "venv" / "pyvenv.cfg", b"home = /usr")
    plant(root / "venv" / "lib" / "torch.bin", 3000)
    plant(root / "outputs" / "video.safetensors", 3000)
    plant(root / "defaults" / "extra.json", b"{}")
    plant(ckpts / "old_folder" / "notes.md", b"notes")
    os.symlink(elsewhere / "folder", ckpts / "linked_folder")
    return expected


def reclaim(world, monkeypatch, capsys, *flags: str) -> tuple[int, str, str]:
    monkeypatch.setenv("HF_ENDPOINT", world.endpoint)
    monkeypatch.chdir(world.workdir)
    status = cli.main(["--reclaim", *flags])
    out = capsys.readouterr()
    return status, out.out, out.err


def every_entry(folder: Path) -> set[Path]:
    found = set()
    for top, dirs, files in os.walk(folder):  # never follows folder links
        found |= {Path(top) / name for name in files + dirs}
    return found


def test_reclaim_lists_each_kind_with_its_size_and_nothing_needed(world, monkeypatch, capsys):
    expected = lay_out(world)
    status, out, err = reclaim(world, monkeypatch, capsys, "--json")
    assert status == 0, err
    listed = json.loads(out)
    by_path = {world.root / item["path"]: item for item in listed["items"]}
    assert {
        kind: sorted(p for p, i in by_path.items() if i["kind"] == kind) for kind in expected
    } == {kind: sorted(paths) for kind, paths in expected.items()}
    for path, item in by_path.items():
        link = path.is_symlink()
        assert item["link"] is link
        assert item["size"] == (0 if link else path.stat().st_size), path
    assert listed["total"] == sum(item["size"] for item in listed["items"])
    assert by_path[world.root / "ckpts" / "broken.safetensors"]["broken_link"] is True
    assert "one you added?" in by_path[world.root / "loras_i2v" / "old_lora.safetensors"]["why"]
    assert by_path[world.root / "ckpts" / OTHER_VARIANT]["dest"] == f"ckpts/{OTHER_VARIANT}"
    copy = by_path[world.root / "ckpts" / SMALL]
    assert copy["hub_file"] == str(world.hub_dir / "a" / "small_copy.json")
    assert copy["dest"] == f"ckpts/{SMALL}"  # a needed file: linked, never deleted


def test_yes_removes_exactly_what_was_listed(world, monkeypatch, capsys):
    expected = lay_out(world)
    before = every_entry(world.root)
    status, out, err = reclaim(world, monkeypatch, capsys)
    assert status == 0, err
    assert "run again with --yes" in out
    assert every_entry(world.root) == before  # listing deletes nothing

    status, out, err = reclaim(world, monkeypatch, capsys, "--yes")
    assert status == 0, out + err
    gone = {p for kind, paths in expected.items() if kind != "hub-copy" for p in paths}
    after = every_entry(world.root)
    vanished = before - after
    # and the folders they left empty: .wandown/ ones, and the old model folder
    emptied = {world.root / "ckpts" / ".wandown", world.root / "ckpts" / "pose" / ".wandown"}
    older = world.root / "ckpts" / "older"
    assert vanished == gone | emptied | {older, older / "deep"}  # old_folder keeps its notes
    assert "removed the empty folder ckpts/older/deep" in out
    for path in gone:
        assert f"deleted {path.relative_to(world.root)}" in out
    copy = world.root / "ckpts" / SMALL
    assert os.readlink(copy) == str(world.hub_dir / "a" / "small_copy.json")
    assert f"linked ckpts/{SMALL} -> " in out
    assert (world.root.parent / "elsewhere" / "kept_target.safetensors").is_file()
    assert (world.root / "ckpts" / BIG).is_file()
    assert (world.root / "loras" / ".wandown" / f"{LORA}.part").is_file()

    status, out, _ = reclaim(world, monkeypatch, capsys)
    assert status == 0 and "nothing to reclaim" in out


def test_a_file_that_changes_after_listing_is_kept(world, monkeypatch, capsys, tmp_path):
    """The deleting step re-checks each file: a rewritten orphan stays."""
    from wandown import reclaim as reclaim_module

    orphan = plant(world.root / "ckpts" / "old.safetensors", 4000)
    find = reclaim_module.find

    def find_then_touch(*args, **kwargs):
        found = find(*args, **kwargs)
        orphan.write_bytes(b"rewritten by the user meanwhile")
        return found

    monkeypatch.setattr(reclaim_module, "find", find_then_touch)
    status, out, _ = reclaim(world, monkeypatch, capsys, "--yes")
    assert status == 1
    assert "kept ckpts/old.safetensors: it changed since it was listed" in out
    assert orphan.read_bytes() == b"rewritten by the user meanwhile"


def test_a_file_that_becomes_needed_after_listing_is_kept(world, monkeypatch, capsys):
    """The catalog is read again before deleting: a finetune added meanwhile keeps its file."""
    from wandown import reclaim as reclaim_module

    orphan = plant(world.root / "ckpts" / "new_finetune.safetensors", 4000)
    find = reclaim_module.find

    def find_then_add_a_finetune(*args, **kwargs):
        found = find(*args, **kwargs)
        url = f"https://huggingface.co/{REPO}/resolve/main/new_finetune.safetensors"
        model = {"model": {"name": "ft", "architecture": "test_arch", "URLs": [url]}}
        (world.root / "finetunes").mkdir()
        (world.root / "finetunes" / "ft.json").write_text(json.dumps(model))
        return found

    monkeypatch.setattr(reclaim_module, "find", find_then_add_a_finetune)
    status, out, _ = reclaim(world, monkeypatch, capsys, "--yes")
    assert status == 1
    assert "kept ckpts/new_finetune.safetensors: a model needs it now" in out
    assert orphan.is_file()


def test_a_hub_inside_the_wan2gp_folder_is_never_listed(world, monkeypatch, capsys):
    inner = world.root / "ckpts" / "my-hub"
    plant(inner / "a_model.safetensors", 5000)
    config = json.loads((world.workdir / "config.json").read_text())
    config["hub_directory"] = [str(world.hub_dir), str(inner)]
    (world.workdir / "config.json").write_text(json.dumps(config))
    status, out, err = reclaim(world, monkeypatch, capsys, "--json")
    assert status == 0, err
    assert json.loads(out)["items"] == []


def test_a_held_partial_is_never_listed(world, monkeypatch, capsys):
    from wandown.engine.partial import FileLock

    partial(world.root / "ckpts", "gone.safetensors", b"x" * 100, 200, "2" * 64)
    lock = FileLock(world.root / "ckpts" / ".wandown" / "gone.safetensors.lock")
    assert lock.try_acquire()
    try:
        status, out, _ = reclaim(world, monkeypatch, capsys, "--json")
    finally:
        lock.release()
    assert status == 0 and json.loads(out)["items"] == []


def test_json_and_yes_report_each_file_as_json(world, monkeypatch, capsys):
    orphan = plant(world.root / "ckpts" / "old" / "model.safetensors", 4000)
    status, out, err = reclaim(world, monkeypatch, capsys, "--json", "--yes")
    assert status == 0, err
    report = json.loads(out)
    assert report["results"] == [
        {
            "path": "ckpts/old/model.safetensors",
            "action": "deleted",
            "size": 4000,
            "detail": "orphan",
        },
        {"path": "ckpts/old", "action": "removed-folder", "size": 0, "detail": ""},
    ]
    assert (report["reclaimed"], report["deleted"], report["kept"]) == (4000, 1, 0)
    assert not orphan.exists()


def test_flags_that_do_not_fit(world, monkeypatch, capsys):
    monkeypatch.chdir(world.workdir)
    assert cli.main(["--list", "--yes"]) == 2
    assert "--yes goes with --dedupe or --reclaim" in capsys.readouterr().err


def test_subprocess_reclaim_lists_and_deletes(world):
    orphan = plant(world.root / "ckpts" / "old.safetensors", 4000)
    listed = world.run("--reclaim")
    assert listed.returncode == 0, listed.stderr
    assert "orphan" in listed.stdout and "ckpts/old.safetensors" in listed.stdout
    assert "1 file, 4.0 KB can be reclaimed: 1 orphan 4.0 KB" in listed.stdout
    done = world.run("--reclaim", "--yes")
    assert done.returncode == 0, done.stderr
    assert "deleted ckpts/old.safetensors (4.0 KB, orphan)" in done.stdout
    assert not orphan.exists()


# -- the planner alone (pure) --------------------------------------------------------------


def found(path: str, size: int = 10, link: str | None = None, broken: bool = False) -> Found:
    return Found(Path(path), (1, 1), FileStat(size, 0, 0, 1, 1), size, link, broken)


def test_kind_counts_read_as_words():
    assert Kind.ORPHAN.counted(1) == "1 orphan"
    assert Kind.PARTIAL.counted(3) == "3 partials"
    assert Kind.HUB_COPY.counted(2) == "2 hub copies"


def test_plan_never_lists_a_needed_place_and_keeps_on_demand_files():
    places = Places(
        needed=frozenset({"/w/ckpts/need.safetensors"}),
        variants={"/w/ckpts/var.safetensors": "ckpts/var.safetensors"},
        listed={
            f"/w/ckpts/{name}.safetensors": f"ckpts/{name}.safetensors"
            for name in ("need", "var", "od")
        },
        record_folders=frozenset({"/w/ckpts"}),
        working={},
    )
    survey = Survey(
        files=[
            found("/w/ckpts/need.safetensors"),
            found("/w/ckpts/var.safetensors"),
            found("/w/ckpts/od.safetensors"),
            found("/w/ckpts/x.safetensors"),
            found("/w/ckpts/need.safetensors.json"),
            found("/w/ckpts/need_link.safetensors", link="/hub/a", broken=True),
        ]
    )
    result = plan(survey, places, set(), {}, {}, Path("/w"))
    kinds = {item.path.name: item.kind for item in result.items}
    assert kinds == {
        "var.safetensors": Kind.VARIANT,
        "x.safetensors": Kind.ORPHAN,
        "need_link.safetensors": Kind.ORPHAN,
    }


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/wan2gp (the real definitions)")
def test_the_real_catalog_and_source_tree_list_only_the_leftovers(tmp_path, monkeypatch, capsys):
    """Every needed file of the 8681e9f catalog in place, Wan2GP's own sources in the root
    "." checkpoint root (with weight-like files planted in them): only the leftovers show."""
    root = real_install(tmp_path, "8681e9f")
    # Wan2GP's own tree, its files as links to ../shared (quick; a link is never followed).
    shutil.copytree(SHARED / "8681e9f" / "src", root, dirs_exist_ok=True, copy_function=os.symlink)
    plant(root / "models" / "wan" / "shipped_weights.pth", 100)
    plant(root / "preprocessing" / "dwpose" / "tiny.onnx", 100)
    catalog = load_catalog(root)
    for record in catalog.needed_records():
        plant(root / record.dest, 10)
    variant = next(r for r in catalog.records if r.role == "main" and not r.needed_by)
    leftovers = {
        plant(root / variant.dest, 20),
        plant(root / "ckpts" / "wan2.1_old_model_14B.safetensors", 30),
        plant(root / "loras_hunyuan" / "old_style.safetensors", 40),
    }
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"wan2gp_directory": str(root / "ckpts"), "hub_directory": ""}))
    monkeypatch.chdir(tmp_path)
    status = cli.main(["--reclaim", "--json", "--offline"])
    out = capsys.readouterr()
    assert status == 0, out.err
    items = json.loads(out.out)["items"]
    assert {root / item["path"] for item in items} == leftovers
    assert [i["kind"] for i in items if i["path"] == variant.dest] == ["variant"]


def test_a_ckpts_folder_on_another_disk_is_surveyed_by_its_own_name(world, monkeypatch, capsys):
    """ckpts as a link to a folder elsewhere: its needed files stay, its orphans show."""
    elsewhere = world.root.parent / "big-disk" / "ckpts"
    elsewhere.mkdir(parents=True)
    ckpts = world.path("ckpts")
    if ckpts.exists():
        ckpts.rmdir()
    ckpts.symlink_to(elsewhere)
    plant(elsewhere / BIG, world.served_file(BIG).read_bytes())
    plant(elsewhere / "old_model.safetensors", 1234)
    status, out, err = reclaim(world, monkeypatch, capsys, "--json")
    assert status == 0, err
    assert [(i["path"], i["kind"]) for i in json.loads(out)["items"]] == [
        ("ckpts/old_model.safetensors", "orphan")
    ]


def test_a_sparse_partial_counts_the_bytes_it_holds(world, monkeypatch, capsys):
    """A part file is written at its offsets: its size on disk, not its length, is reclaimed."""
    part = plant(world.root / "ckpts" / ".wandown" / "gone.safetensors.part", b"x" * 4096)
    os.truncate(part, 50_000_000)
    status, out, err = reclaim(world, monkeypatch, capsys, "--json")
    assert status == 0, err
    [item] = json.loads(out)["items"]
    assert item["kind"] == "partial"
    assert item["size"] == part.stat().st_blocks * 512 < 1_000_000
