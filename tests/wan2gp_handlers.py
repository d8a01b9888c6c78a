"""Run in a child interpreter: Wan2GP's own family handlers over one install's definitions.

The reference for finetunes (tests/wan2gp_reference.py): wgp.py's ``refresh_model_defs`` merge
(a new id: the handler's ``query_model_def`` under the JSON; a same id: ``update`` onto the
already-merged definition, nothing recomputed), then each handler's ``query_model_files`` and
``get_lora_dir`` with the merged definition, as ``download_models`` calls them. Only the stubs of
``wandown/learn/child.py`` are borrowed (torch and friends cannot import here); none of the
learner's own steps are. Prints {model: {"model_def", "files", "lora_dir"}} as JSON.

Usage: python -I -S -B wan2gp_handlers.py CHILD_PY SRC INSTALL LORA_ROOT
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import json
import os
import sys
from typing import Any


def _child(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("wandown_learn_child", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compute_list(filename: Any) -> list[str]:  # wgp.py download_models computeList
    if filename is None:
        return []
    return [filename[filename.rfind("/") + 1 :]]


class _Args:
    def __getattr__(self, name: str) -> Any:
        return None


def main(child_py: str, src: str, install: str, lora_root: str) -> dict[str, Any]:
    child = _child(child_py)
    child.install(src, install)
    handlers: dict[str, Any] = {}
    for path in child.family_handler_paths(src):
        handler = importlib.import_module(path).family_handler
        for architecture in handler.query_supported_types():
            handlers.setdefault(architecture, handler)
    paths = sorted(
        os.path.relpath(path, install)
        for folder in ("defaults", "finetunes")
        for path in glob.glob(os.path.join(install, folder, "*.json"))
    )
    models: dict[str, dict[str, Any]] = {}
    for path in paths:
        model_type = os.path.basename(path)[:-5]
        with open(os.path.join(install, path), encoding="utf-8") as source:
            model_def = json.load(source).pop("model")
        if model_type in models:
            models[model_type].update(model_def)
            continue
        architecture = model_def.get("architecture") or model_type
        handler = handlers.get(architecture)
        defaults = handler.query_model_def(architecture, model_def) if handler else None
        if defaults is not None:
            defaults.update(model_def)
            model_def = defaults
        models[model_type] = model_def
    answer = {}
    for model_type, model_def in models.items():
        architecture = model_def.get("architecture") or model_type
        handler = handlers.get(architecture)
        if handler is None:
            continue
        start = len(child.RECORDED)
        files = handler.query_model_files(_compute_list, architecture, model_def)
        files = files if isinstance(files, list) else [files]
        files += [
            {"repoId": c["repo"], "sourceFolderList": [os.path.dirname(c["path"])],
             "fileList": [[os.path.basename(c["path"])]]}
            for c in child.RECORDED[start:] if c["call"] == "hf_hub_download"
        ]  # fmt: skip
        answer[model_type] = {
            "model_def": model_def,
            "files": files,
            "lora_dir": handler.get_lora_dir(architecture, _Args(), lora_root),
        }
    return json.loads(json.dumps(answer, default=lambda _: None))


if __name__ == "__main__":
    out = sys.stdout
    sys.stdout = sys.stderr
    result = main(*sys.argv[1:5])
    out.write(json.dumps(result))
