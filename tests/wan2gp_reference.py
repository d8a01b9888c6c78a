"""Wan2GP's own download code, run on a test install: the reference the catalog is held to.

The functions are read out of ``../shared/wan2gp/8681e9f/src`` (never copied into the project) and
run with only what cannot run here replaced: torch's two dtypes, mmgp's quantization tokens, the
family handlers (their code-side files come from wandown's shipped data, which is not what is under
test), and the Hub calls, which are recorded instead of made. ``load_models`` itself runs, up to the
point where it hands the files to the handler: every file it would fetch is recorded with the
place it would write it to.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.wan2gp_fixtures import SHARED
from wandown.catalog.codedefaults import CodeData

SRC = SHARED / "8681e9f" / "src"
HUB = "https://huggingface.co"
WGP_FUNCTIONS = (
    "get_model_recursive_prop",
    "get_model_filename",
    "get_transformer_dtype",
    "get_base_model_type",
    "get_model_def",
    "get_lora_local_path",
    "download_models",
    "load_models",
    "query_core_shared_model_files",
)
MATANYONE_FUNCTIONS = (
    "_get_runtime_server_config",
    "normalize_matanyone_version",
    "get_selected_matanyone_version",
    "get_selected_matanyone_weight_name",
    "query_matanyone_download_def",
)


_LITERALS = (ast.Constant, ast.Name, ast.List, ast.Dict, ast.Tuple)


class HandedToHandler(Exception):
    """Raised where load_models calls the family handler's load_model: the downloads are done."""


def _functions(path: Path, names: tuple[str, ...], constants: bool = False) -> ast.Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    body: list[ast.stmt] = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name in names)
        or (constants and isinstance(node, ast.Assign) and isinstance(node.value, _LITERALS))
    ]
    return ast.Module(body=body, type_ignores=[])


def _files_locator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "wan2gp_files_locator", SRC / "shared" / "utils" / "files_locator.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class _Dtype:
    name: str


class _QuantRouter:
    """mmgp 3.7.12 with optimum-quanto: ``int8`` and ``fp8`` are their own only tokens."""

    @staticmethod
    def get_quantization_tokens(quantization: str) -> list[str]:
        return [quantization] if quantization in ("int8", "fp8") else []


@dataclass
class Fetches:
    """What Wan2GP fetched for one model: {(absolute path, url)}."""

    files: set[tuple[str, str]] = field(default_factory=set)

    def download_file(self, url: str, filename: str) -> None:
        self.files.add((os.path.abspath(filename), url.split("|")[0]))

    def hf_hub_download(
        self, repo_id: str, filename: str, local_dir: str, subfolder: str | None = None
    ) -> None:
        repo_path = f"{subfolder}/{filename}" if subfolder else filename
        place = os.path.join(local_dir, subfolder or "", filename)
        self.files.add((os.path.abspath(place), f"{HUB}/{repo_id}/resolve/main/{repo_path}"))

    def snapshot_download(self, **kwargs: Any) -> None:
        raise AssertionError(f"unexpected snapshot_download{kwargs}")


class _Handler:
    """A family handler: its LoRA folder and code-side files, from wandown's shipped data for
    the model being loaded, or from the real handlers' answers (``real_handlers``)."""

    def __init__(
        self, code: CodeData, models_def: dict[str, dict], real: dict[str, dict] | None = None
    ):
        self.code = code
        self.models_def = models_def
        self.real = real
        self.model_type = ""

    @property
    def defaults(self) -> Any:
        architecture = self.models_def[self.model_type].get("architecture")
        return self.code.for_model(self.model_type, architecture)[0]

    def get_lora_dir(self, lora_root: str) -> str:
        if self.real is not None:
            return str(self.real[self.model_type]["lora_dir"])
        folder = self.defaults.lora_dir or "loras"
        return os.path.join(lora_root, folder.removeprefix("loras").lstrip("/"))

    def query_model_files(self, compute_list: Any, base: str, model_def: Any) -> list[dict]:
        if self.real is not None:
            return list(self.real[self.model_type]["files"])
        return [
            {
                "repoId": group.repo,
                "sourceFolderList": [group.source_folder],
                "fileList": [list(group.files)],
                "targetFolderList": [group.target_folder],
            }
            for group in self.defaults.repo_folders
        ]

    def load_model(self, *args: Any, **kwargs: Any) -> None:
        raise HandedToHandler


class Wan2GP:
    """Wan2GP's download code over one install (the current folder must be its root)."""

    def __init__(
        self,
        models_def: dict[str, dict],
        code: CodeData,
        server_config: dict,
        real: dict[str, dict] | None = None,
    ):
        self.fetches = Fetches()
        self.server_config = server_config
        fl = _files_locator()
        paths = server_config.get("checkpoints_paths") or fl.default_checkpoints_paths
        fl.set_checkpoints_paths(paths)
        self.handler = _Handler(code, models_def, real)
        architectures = {d.get("architecture") for d in models_def.values()}
        handlers = {a: self.handler for a in architectures if a}
        lora_root = server_config.get("loras_root") or "loras"
        wgp: dict[str, Any] = {
            "__builtins__": self._builtins(fl),
            "os": os,
            "fl": fl,
            "torch": types.SimpleNamespace(  # dtypes are objects, not strings, in wgp.py's tests
                float16=_Dtype("float16"),
                bfloat16=_Dtype("bfloat16"),
                float=_Dtype("float32"),
                set_default_device=lambda device: None,
            ),
            "quant_router": _QuantRouter(),
            "models_def": models_def,
            "model_types": models_def.keys(),
            "model_types_handlers": handlers,
            "server_config": server_config,
            "bfloat16_supported": server_config.get("_bf16_supported", True),
            "transformer_quantization": server_config.get("transformer_quantization", "int8"),
            "transformer_dtype_policy": server_config.get("transformer_dtype_policy", ""),
            "text_encoder_quantization": server_config.get("text_encoder_quantization", "int8"),
            "args": types.SimpleNamespace(
                save_quantized=False, perc_reserved_mem_max=0, vram_safety_coefficient=0, gpu=""
            ),
            "verbose_level": 0,
            "lm_decoder_engine": "",
            "download_file": self.fetches.download_file,
            "get_lora_dir": lambda model_type: self.handler.get_lora_dir(lora_root),
            "get_model_family": lambda *a, **k: "family",
            "compute_profile": lambda *a, **k: 1,
            "resolve_lm_decoder_engine": lambda *a, **k: "legacy",
            "model_unload_guard": _nothing,
        }
        matanyone: dict[str, Any] = {"__builtins__": builtins, "sys": sys, "os": os}
        matanyone.update(MATANYONE_V1="v1", MATANYONE_V2="v2")
        path = SRC / "preprocessing" / "matanyone" / "utils" / "model_assets.py"
        exec(compile(_functions(path, MATANYONE_FUNCTIONS, True), str(path), "exec"), matanyone)
        wgp["query_matanyone_download_def"] = matanyone["query_matanyone_download_def"]
        download: dict[str, Any] = {"__builtins__": self._builtins(fl), "os": os}
        path = SRC / "shared" / "utils" / "download.py"
        exec(compile(_functions(path, ("process_files_def",)), str(path), "exec"), download)
        wgp["process_files_def"] = download["process_files_def"]
        path = SRC / "wgp.py"
        exec(compile(_functions(path, WGP_FUNCTIONS), str(path), "exec"), wgp)
        self.wgp = wgp

    def _builtins(self, fl: types.ModuleType) -> dict[str, Any]:
        """Builtins whose import gives the recorder for huggingface_hub and the locator."""
        hub = types.SimpleNamespace(
            hf_hub_download=self.fetches.hf_hub_download,
            snapshot_download=self.fetches.snapshot_download,
        )
        real_import = builtins.__import__

        def imports(name: str, *args: Any, **kwargs: Any) -> Any:
            if name == "huggingface_hub":
                return hub
            if name == "shared.utils":
                return types.SimpleNamespace(files_locator=fl)
            return real_import(name, *args, **kwargs)

        return {**builtins.__dict__, "__import__": imports}

    def fetched_by(self, model_type: str) -> set[tuple[str, str]]:
        """Return what loading model_type fetches (core files included), or raise its error."""
        self.fetches.files = set()
        self.handler.model_type = model_type
        with suppress(HandedToHandler):
            self.wgp["load_models"](model_type)
        return self.fetches.files


@contextmanager
def _nothing() -> Iterator[None]:
    yield


HANDLERS_CHILD = Path(__file__).resolve().parent / "wan2gp_handlers.py"
LEARN_CHILD = Path(__file__).resolve().parent.parent / "wandown" / "learn" / "child.py"


def real_handlers(install: Path, lora_root: str = "loras") -> dict[str, dict]:
    """Return Wan2GP's own handlers' answers for every definition of install (its finetunes
    too): {model: {"model_def": merged as wgp.py merges, "files", "lora_dir"}}."""
    with tempfile.TemporaryDirectory(prefix="wan2gp-handlers-") as scratch:
        command = [sys.executable, "-I", "-S", "-B", str(HANDLERS_CHILD), str(LEARN_CHILD)]
        command += [str(SRC), str(install), lora_root]
        done = subprocess.run(command, cwd=scratch, capture_output=True, check=False)
    if done.returncode != 0:
        raise AssertionError(done.stderr.decode("utf-8", "replace")[-2000:])
    answer: dict[str, dict] = json.loads(done.stdout)
    return answer


def models_def_of(definitions: dict[str, Any], code: CodeData) -> dict[str, dict]:
    """Merge each definition over its handler's keys, as wgp.py init_model_def does."""
    merged = {}
    for model_id, definition in definitions.items():
        defaults, _ = code.for_model(model_id, definition.architecture)
        keys: dict[str, Any] = {}
        if defaults is not None:
            keys.update(defaults.injected)  # the handler's own keys (dtype, preload_URLs...)
            keys["text_encoder_URLs"] = list(defaults.text_encoder_urls)
            if defaults.text_encoder_folder is not None:
                keys["text_encoder_folder"] = defaults.text_encoder_folder
            if defaults.vae_urls:
                keys["VAE_URLs"] = list(defaults.vae_urls)
        merged[model_id] = {**keys, **definition.model}
    return merged
