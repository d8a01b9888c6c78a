"""Regenerate the shipped data from a Wan2GP tree: ``python -m wandown.learn --write-data SRC``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wandown import fsutil
from wandown.catalog.codedefaults import DATA_NAME
from wandown.learn import install_root_of, to_data
from wandown.learn.runner import LearnError, run_child

DATA = Path(__file__).resolve().parent.parent / "data" / DATA_NAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wandown.learn",
        description="Learn Wan2GP's code-side facts from a source tree and write wandown's data.",
    )
    parser.add_argument(
        "--write-data", metavar="SRC", required=True, type=Path, help="a Wan2GP source tree"
    )
    parser.add_argument(
        "--definitions", metavar="DIR", type=Path, help="the folder holding defaults/"
    )
    parser.add_argument("--commit", default="", help="the Wan2GP commit SRC is")
    parser.add_argument("--output", type=Path, default=DATA, help="where to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    source = args.write_data.resolve()
    if not (source / "wgp.py").is_file():
        print(f"error: {source} holds no wgp.py: give a Wan2GP source tree", file=sys.stderr)
        return 2
    definitions = (args.definitions or install_root_of(source)).resolve()
    if not (definitions / "defaults").is_dir():
        print(f"error: {definitions} holds no defaults/ folder: use --definitions", file=sys.stderr)
        return 2
    try:
        answer = run_child(source, definitions)
    except LearnError as exc:
        print(f"error: could not learn {source}: {exc}", file=sys.stderr)
        return 1
    if answer.get("failed_families"):
        for family, why in sorted(answer["failed_families"].items()):
            print(f"error: family {family} did not load: {why}", file=sys.stderr)
        return 1
    for note in answer.get("notices", ()):
        print(f"warning: {note}", file=sys.stderr)
    text = json.dumps(to_data(answer, args.commit), indent=1, sort_keys=True) + "\n"
    fsutil.atomic_write_bytes(args.output, text.encode("utf-8"))
    models = len(answer.get("models") or {})
    print(f"wrote {args.output}: {models} models, {len(answer.get('features') or {})} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
