"""Small Wan2GP source trees of the project's own, for learning: handlers in Wan2GP's patterns.

``fake_wan2gp`` lays out ``wgp.py`` (with the ``family_handlers`` list wandown reads and a body
that must never run), family handlers importing torch and gradio, one injecting keys and picking
its files from the model's own URL, a plugin with its own definitions and handler, and the
run-time asset modules of a Deepy-like feature. Options break it in the ways learning must survive.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

HUB = "https://huggingface.co"

WGP = """\
family_handlers = [{handlers}]
raise SystemExit("wgp.py was run: learning must only read it")


def query_core_shared_model_files():
    return {{
        "repoId": "tester/core",
        "sourceFolderList": ["pose"],
        "fileList": [["pose.onnx"]],
    }}
"""

VIDEO_HANDLER = """\
import os

import gradio as gr
import torch
from torch import nn
from huggingface_hub import hf_hub_download

from shared.utils.hf import build_hf_url

major, minor = torch.cuda.get_device_capability(None)


class Block(nn.Module):
    @torch.no_grad()
    def forward(self, x):
        return x


class family_handler:
    @staticmethod
    def query_supported_types():
        return ["video", "video_edit"]

    @staticmethod
    def query_model_def(base_model_type, model_def):
        preload = model_def.get("preload_URLs")
        if isinstance(preload, list):  # ltx2_handler's rewrite of old-style LoRA preloads
            model_def["preload_URLs"] = [u + "|%lora_dir" if "lora" in u else u for u in preload]
        extra = {
            "text_encoder_URLs": [build_hf_url("tester/enc", "enc", "enc_bf16.safetensors")],
            "text_encoder_folder": "enc",
            "dtype": "fp16",
            "system_configs": {
                "_name": "VAE",
                "fast vae": {"name": "Fast VAE", "vae_file": "fast_vae.safetensors"},
            },
        }
        if base_model_type == "video_edit":
            vision = build_hf_url("tester/enc", "enc", "vision.safetensors")
            extra["preload_URLs"] = [vision + "|enc"]
        return extra

    @staticmethod
    def get_lora_dir(base_model_type, args, lora_root):
        return os.path.join(lora_root, "video")

    @staticmethod
    def query_model_files(computeList, base_model_type, model_def=None):
        first = os.path.basename(model_def["URLs"][0])
        folder = "big_tok" if "big" in first else "small_tok"  # Kiwi-Edit's pattern
        hf_hub_download(repo_id="tester/extras", filename="merges.txt", subfolder="bpe")
        return [
            {
                "repoId": "tester/video",
                "sourceFolderList": [folder, ""],
                "fileList": [["tokenizer.json"], [model_def.get("vae_file", "vae.safetensors")]],
            }
        ]
"""

PLUGIN_HANDLER = """\
import torch


class family_handler:
    @staticmethod
    def query_supported_types():
        return ["plugged"]

    @staticmethod
    def query_model_def(base_model_type, model_def):
        return {"text_encoder_URLs": [], "text_encoder_folder": "plug"}

    @staticmethod
    def get_lora_dir(base_model_type, args, lora_root):
        return lora_root + "/plugged"

    @staticmethod
    def query_model_files(computeList, base_model_type, model_def=None):
        return {"repoId": "tester/plug", "sourceFolderList": ["plug"], "fileList": [["p.json"]]}
"""

PLUGIN_MANAGER = """\
import json
import os
import sys
from dataclasses import dataclass

import gradio as gr

SYSTEM_PLUGINS = ["about"]
BUNDLED_PLUGINS = set()


@dataclass
class PluginModelExtension:
    plugin_id: str
    plugin_path: str
    model_handlers: list
    defaults_root: str
    profiles_root: str


class PluginManager:
    def __init__(self, plugins_dir="plugins"):
        self.plugins_dir = plugins_dir
        if plugins_dir not in sys.path:
            sys.path.insert(0, plugins_dir)

    def discover_plugins(self):
        return sorted(os.listdir(self.plugins_dir))

    def discover_plugin_model_extensions(self, enabled_plugins):
        found = []
        for plugin_id in self.discover_plugins():
            if plugin_id not in set(enabled_plugins) | set(SYSTEM_PLUGINS):
                continue
            path = os.path.join(self.plugins_dir, plugin_id)
            with open(os.path.join(path, "plugin_info.json")) as info:
                meta = json.load(info)
            if not meta.get("model_handlers"):
                continue
            handlers = [plugin_id + "." + h.lstrip(".") for h in meta["model_handlers"]]
            defaults = os.path.abspath(os.path.join(path, meta["defaults"]))
            found.append(PluginModelExtension(plugin_id, path, handlers, defaults, path))
        return found
"""

DEEPY_ASSETS = """\
def query_deepy_download_defs():
    return [{"repoId": "tester/deepy", "sourceFolderList": ["whisper"], "fileList": [["w.bin"]]}]
"""

HF_UTILS = """\
def build_hf_url(repo_id, *parts):
    return "https://huggingface.co/" + repo_id + "/resolve/main/" + "/".join(p for p in parts if p)
"""


def url(repo: str, path: str) -> str:
    return f"{HUB}/{repo}/resolve/main/{path}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _definition(root: Path, folder: str, model_id: str, model: dict) -> None:
    _write(root / folder / f"{model_id}.json", json.dumps({"model": model}))


def fake_wan2gp(
    root: Path,
    *,
    broken: str | None = None,
    with_plugin: bool = True,
    extra_handler: str | None = None,
) -> Path:
    """Lay out a small Wan2GP at root; broken is None, "import", "syntax" or "wgp"."""
    handlers = ["models.video.video_handler"]
    if broken in ("import", "syntax"):
        handlers.append("models.broken.broken_handler")
        body = "import models.no_such_module\n" if broken == "import" else "def oops(:\n"
        _write(root / "models" / "broken" / "broken_handler.py", body)
        _write(root / "models" / "broken" / "__init__.py", "")
    if extra_handler is not None:
        handlers.append("models.extra.extra_handler")
        _write(root / "models" / "extra" / "extra_handler.py", extra_handler)
        _write(root / "models" / "extra" / "__init__.py", "")
    wgp = WGP.format(handlers=", ".join(repr(h) for h in handlers))
    _write(root / "wgp.py", "family_handlers = [\n" if broken == "wgp" else wgp)
    _write(root / "models" / "__init__.py", "")
    _write(root / "models" / "video" / "__init__.py", "")
    _write(root / "models" / "video" / "video_handler.py", VIDEO_HANDLER)
    _write(root / "shared" / "__init__.py", "")
    _write(root / "shared" / "utils" / "__init__.py", "")
    _write(root / "shared" / "utils" / "hf.py", HF_UTILS)
    _write(root / "shared" / "utils" / "plugins.py", PLUGIN_MANAGER)
    _write(root / "shared" / "deepy" / "__init__.py", "")
    _write(root / "shared" / "deepy" / "assets.py", DEEPY_ASSETS)
    (root / "ckpts").mkdir(parents=True, exist_ok=True)
    _definition(root, "defaults", "video_small", {
        "name": "Small video", "architecture": "video",
        "URLs": [url("tester/video", "video_small_bf16.safetensors")],
        "preload_URLs": [url("tester/video", "old_style_lora.safetensors")],
    })  # fmt: skip
    _definition(root, "defaults", "video_edit", {
        "name": "Edit video", "architecture": "video_edit",
        "URLs": [url("tester/video", "video_edit_bf16.safetensors")],
    })  # fmt: skip
    # a finetune of a new id: its files come from the handler asked with its own keys
    _definition(root, "finetunes", "video_big_ft", {
        "name": "Big finetune", "architecture": "video",
        "URLs": [url("tester/video", "video_big_bf16.safetensors")],
    })  # fmt: skip
    if broken in ("import", "syntax"):
        _definition(root, "defaults", "broken_model", {
            "name": "Broken family", "architecture": "broken_arch",
            "URLs": [url("tester/broken", "broken_bf16.safetensors")],
        })  # fmt: skip
    if with_plugin:
        plugin = root / "plugins" / "myplug"
        _write(plugin / "__init__.py", "")
        _write(plugin / "plugin_info.json", json.dumps({
            "name": "My plug", "model_handlers": [".plug_handler"], "defaults": "./defaults",
            "profiles": "./profiles",
        }))  # fmt: skip
        _write(plugin / "plug_handler.py", PLUGIN_HANDLER)
        _definition(plugin, "defaults", "plugged_model", {
            "name": "Plugged", "architecture": "plugged",
            "URLs": [url("tester/plug", "plugged_bf16.safetensors")],
        })  # fmt: skip
        _write(root / "wgp_config.json", json.dumps({"enabled_plugins": ["myplug"]}))
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """Return {relative path: sha256 or 'dir' or 'link:...'} of everything under root."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = f"link:{os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
