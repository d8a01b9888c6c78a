"""Run inside a child interpreter: import a Wan2GP tree and print its code-side facts as JSON.

Started by ``wandown.learn.runner`` as ``python -I -S -B child.py SOURCE INSTALL``, so only the
standard library and the Wan2GP tree import for real; everything else (torch, gradio,
huggingface_hub, ...) is a permissive stub. Hub calls are recorded and never made, the network
is refused, and nothing is written into the tree (no bytecode). Standard library only here.
"""

from __future__ import annotations

import abc
import ast
import builtins
import copy
import glob
import importlib
import importlib.abc
import importlib.machinery
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import traceback
import types
import urllib.request
from typing import Any

sys.dont_write_bytecode = True
RECORDED: list[dict[str, Any]] = []  # Hub and network calls, in the order they were attempted
LOCAL_TOPS: set[str] = set()
KEEP_KEYS = ("text_encoder_URLs", "text_encoder_folder", "VAE_URLs")
# Keys that decide files: kept when the handler adds them and the JSON does not set them.
FILE_KEYS = ("URLs", "URLs2", "modules", "preload_URLs", "loras", "loras_multipliers", "configs",
             "dtype", "source", "source2", "module_source", "module_source2")  # fmt: skip
ON_DEMAND_PREFIXES = ("ltx2_lora_",)
ON_DEMAND_KEYS = ("distill_lora_URL",)


class Refused(OSError):
    """What a recorded network call raises: the child never connects anywhere."""


# -- permissive stubs ------------------------------------------------------------------------


class _StubMeta(abc.ABCMeta):
    """A class that answers every attribute, call, index and operator with another stub.

    An ABCMeta, so that a class deriving from both a stub and ``abc.ABC`` has one metaclass.
    """

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        dotted = f"{cls.__dict__.get('_wandown_name', cls.__name__)}.{name}"
        return CURATED[dotted] if dotted in CURATED else _stub(dotted)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "_wandown_stub" not in cls.__dict__:
            return super().__call__(*args, **kwargs)
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]  # used as a decorator: keep the function
        return _stub(f"{cls.__name__}()")

    def register(cls, *args: Any, **kwargs: Any) -> Any:
        if "_wandown_stub" in cls.__dict__:  # transformers' AutoConfig.register(name, cls)
            return args[-1] if args else cls
        return super().register(*args, **kwargs)

    def __bool__(cls) -> bool:
        return False

    def __iter__(cls) -> Any:
        return iter(())

    def __len__(cls) -> int:
        return 0

    def __contains__(cls, item: Any) -> bool:
        return False

    def __getitem__(cls, key: Any) -> Any:
        return cls

    def __setitem__(cls, key: Any, value: Any) -> None:
        return None

    def __delitem__(cls, key: Any) -> None:
        return None

    def __int__(cls) -> int:
        return 0

    def __index__(cls) -> int:
        return 0

    def __float__(cls) -> float:
        return 0.0

    def __enter__(cls) -> Any:
        return cls

    def __exit__(cls, *exc: Any) -> None:
        return None

    def __lt__(cls, other: Any) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __or__(cls, other: Any) -> Any:
        return cls

    __ror__ = __and__ = __add__ = __radd__ = __sub__ = __mul__ = __rmul__ = __truediv__ = __or__

    def __neg__(cls) -> Any:
        return cls

    def __hash__(cls) -> int:
        return id(cls)

    def __eq__(cls, other: object) -> bool:
        return cls is other


def _stub(name: str) -> Any:
    short = name.rsplit(".", 1)[-1] or "stub"
    return _StubMeta(short, (), {"_wandown_stub": True, "_wandown_name": name})


def _capability(*args: Any, **kwargs: Any) -> tuple[int, int]:
    return (8, 0)


# Answers a stub cannot guess: a GPU's capability is unpacked into two numbers at import time.
CURATED: dict[str, Any] = {
    "torch.cuda.get_device_capability": _capability,
    "torch.cuda.is_available": lambda *a, **k: False,
    "torch.cuda.device_count": lambda *a, **k: 0,
}


class StubModule(types.ModuleType):
    """A heavy module Wan2GP imports: every attribute is a stub."""

    def __getattr__(self, name: str) -> Any:
        if name == "__version__":
            return "0.0.0"
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        dotted = f"{self.__name__}.{name}"
        value = CURATED[dotted] if dotted in CURATED else _stub(dotted)
        setattr(self, name, value)
        return value


def _record(kind: str, **facts: Any) -> None:
    RECORDED.append({"call": kind, **{k: v for k, v in facts.items() if v is not None}})


def _hf_hub_download(repo_id: str, filename: str, *args: Any, **kwargs: Any) -> str:
    subfolder = kwargs.get("subfolder") or ""
    _record("hf_hub_download", repo=repo_id, path="/".join(p for p in (subfolder, filename) if p))
    local_dir = kwargs.get("local_dir") or kwargs.get("cache_dir") or os.getcwd()
    return os.path.join(str(local_dir), subfolder, filename)


def _snapshot_download(repo_id: str, *args: Any, **kwargs: Any) -> str:
    patterns = kwargs.get("allow_patterns")
    _record("snapshot_download", repo=repo_id, patterns=patterns)
    return str(kwargs.get("local_dir") or os.getcwd())


def _refused_url(url: Any, *args: Any, **kwargs: Any) -> Any:
    _record("url", url=str(getattr(url, "full_url", url)))
    raise Refused("wandown learns Wan2GP offline: no network")


def _network_module(name: str) -> types.ModuleType:
    module = StubModule(name)
    if name == "huggingface_hub":
        module.hf_hub_download = _hf_hub_download  # type: ignore[attr-defined]
        module.snapshot_download = _snapshot_download  # type: ignore[attr-defined]
    if name in ("requests", "httpx"):
        for verb in ("get", "post", "head", "put", "request", "stream"):
            setattr(module, verb, _refused_url)
    return module


class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: whatever neither the standard library nor the tree holds."""

    NETWORK = ("huggingface_hub", "requests", "httpx", "urllib3", "aiohttp")

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        top = fullname.partition(".")[0]
        if top in LOCAL_TOPS:
            return None  # the tree's own module that does not exist: a real ImportError
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: Any) -> types.ModuleType:
        top = spec.name.partition(".")[0]
        module = _network_module(spec.name) if top in self.NETWORK else StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class NetworkFinder(StubFinder):
    """First on sys.meta_path: the Hub clients are recording stubs even when installed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.partition(".")[0] not in self.NETWORK:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)


def _refuse_sockets() -> None:
    def connect(self: socket.socket, address: Any) -> None:
        _record("connect", url=str(address))
        raise Refused("wandown learns Wan2GP offline: no network")

    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = connect  # type: ignore[method-assign, assignment]
    socket.create_connection = _refused_url  # type: ignore[assignment]
    urllib.request.urlopen = _refused_url
    urllib.request.urlretrieve = _refused_url


def _refuse_programs() -> None:
    """No program runs while learning: git, curl or nvidia-smi could reach out or take long."""

    def refused(args: Any, *rest: Any, **kwargs: Any) -> Any:
        command = args if isinstance(args, str) else " ".join(map(str, args))
        _record("program", url=command[:200])
        raise Refused(f"wandown learns Wan2GP without running programs: {command[:80]}")

    def refused_system(command: Any) -> int:
        _record("program", url=str(command)[:200])
        return 127

    subprocess.Popen = refused  # type: ignore[assignment, misc]
    os.system = refused_system
    for name in (
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "spawnv",
        "spawnve",
        "fork",
        "posix_spawn",
    ):
        if hasattr(os, name):
            setattr(os, name, refused)


class _WriteGuard:
    """Refuse every write, removal or new folder inside the Wan2GP tree, and record it.

    Wan2GP's modules may create folders or caches when imported (ltx2_handler migrates LoRA
    folders, the plugin manager makes its folder); learning must leave the tree as it was.
    """

    def __init__(self, roots: list[str]):
        self.roots = [os.path.realpath(r) for r in roots]

    def inside(self, path: Any) -> bool:
        if isinstance(path, int):
            return False
        try:
            real = os.path.realpath(os.fsdecode(os.fspath(path)))
        except (TypeError, ValueError):
            return False
        return any(real == r or real.startswith(r + os.sep) for r in self.roots)

    def refuse(self, what: str, path: Any) -> None:
        _record("write", url=f"{what} {os.fsdecode(os.fspath(path))}")
        raise PermissionError(f"wandown learns Wan2GP read-only: {what} refused")

    def wrap_open(self, real: Any) -> Any:
        def guarded(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if any(c in mode for c in "wax+") and self.inside(file):
                self.refuse("write", file)
            return real(file, mode, *args, **kwargs)

        return Unbound(guarded)

    def wrap_os_open(self, real: Any) -> Any:
        changes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def guarded(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
            if flags & changes and self.inside(path):
                self.refuse("write", path)
            return real(path, flags, *args, **kwargs)

        return Unbound(guarded)

    def wrap_path_call(self, what: str, real: Any, allow_existing: bool = False) -> Any:
        def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
            if self.inside(path) and not (allow_existing and os.path.isdir(path)):
                self.refuse(what, path)
            return real(path, *args, **kwargs)

        return Unbound(guarded)

    def install(self) -> None:
        builtins.open = io.open = self.wrap_open(io.open)
        os.open = self.wrap_os_open(os.open)
        os.mkdir = self.wrap_path_call("mkdir", os.mkdir, allow_existing=True)
        os.makedirs = self.wrap_path_call("makedirs", os.makedirs, allow_existing=True)
        for name in ("remove", "unlink", "rmdir", "rename", "replace", "symlink", "link"):
            setattr(os, name, self.wrap_path_call(name, getattr(os, name)))
        shutil.rmtree = self.wrap_path_call("rmtree", shutil.rmtree)


class Unbound:
    """A guard that stays a plain function when a class keeps it as an attribute.

    Python 3.10's pathlib copies os.mkdir, io.open and friends into a class when it is imported;
    a Python function there would be bound as a method and get the accessor as its first argument.
    """

    def __init__(self, function: Any):
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs)


def install(root: str, install_root: str | None = None) -> None:
    """Make root importable, everything else a stub, and the tree read-only."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.path.insert(0, root)
    plugins = os.path.join(root, "plugins")
    for folder in (root, plugins) if os.path.isdir(plugins) else (root,):
        for entry in os.listdir(folder):
            stem = entry[:-3] if entry.endswith(".py") else entry
            if entry.endswith(".py") or os.path.isdir(os.path.join(folder, entry)):
                LOCAL_TOPS.add(stem)
    wgp = StubModule("wgp")  # never the real one: importing wgp.py starts the app
    wgp.get_lora_root = lambda: "loras"  # type: ignore[attr-defined]
    wgp.server_config = {}  # type: ignore[attr-defined]
    sys.modules["wgp"] = wgp
    sys.meta_path.insert(0, NetworkFinder())
    sys.meta_path.append(StubFinder())
    _refuse_sockets()
    _refuse_programs()
    _WriteGuard([root, install_root or root]).install()


# -- what Wan2GP's code says --------------------------------------------------------------------


class _Args:
    """Wan2GP's parsed command line with no flag given."""

    def __getattr__(self, name: str) -> Any:
        return None


def family_handler_paths(root: str) -> list[str]:
    """Return wgp.py's own ``family_handlers`` list, read without importing wgp.py."""
    with open(os.path.join(root, "wgp.py"), encoding="utf-8") as source:
        tree = ast.parse(source.read(), "wgp.py")
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "family_handlers" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
    raise LookupError("wgp.py has no family_handlers list")


def wgp_function(root: str, name: str, namespace: dict[str, Any]) -> Any:
    """Return one top-level function of wgp.py, compiled alone into namespace."""
    with open(os.path.join(root, "wgp.py"), encoding="utf-8") as source:
        tree = ast.parse(source.read(), "wgp.py")
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            module = ast.Module(body=[node], type_ignores=[])
            exec(compile(module, "wgp.py", "exec"), namespace)
            return namespace[name]
    raise LookupError(f"wgp.py has no function {name}")


def _error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{exc.__class__.__name__}: {exc}{where}".replace("\n", " ")[:400]


def plugin_extensions(root: str, enabled: list[str]) -> tuple[list[Any], list[str], str | None]:
    """Return the enabled plugins' model extensions, found by Wan2GP's own plugin manager, and
    the enabled plugins that are neither system nor bundled ones (community plugins)."""
    if not os.path.isdir(os.path.join(root, "plugins")):
        return [], [], None
    try:
        plugins = importlib.import_module("shared.utils.plugins")
        manager = plugins.PluginManager(plugins_dir=os.path.join(root, "plugins"))
        extensions = list(manager.discover_plugin_model_extensions(enabled))
        own = {*getattr(plugins, "SYSTEM_PLUGINS", ()), *getattr(plugins, "BUNDLED_PLUGINS", ())}
        found = set(manager.discover_plugins())
        community = sorted(p for p in enabled if p in found and p not in own)
        return extensions, community, None
    except Exception as exc:
        return [], [], _error(exc)


def _read_wgp_config(root: str) -> dict[str, Any]:
    try:
        with open(os.path.join(root, "wgp_config.json"), encoding="utf-8") as config:
            data = json.load(config)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _repo_files(files_def: Any) -> list[dict[str, Any]]:
    """Turn process_files_def arguments into code_defaults.json's repo_files form."""
    groups = files_def if isinstance(files_def, list) else [files_def]
    result = []
    for group in groups:
        if not isinstance(group, dict):
            continue
        sources = list(group.get("sourceFolderList") or [])
        targets = list(group.get("targetFolderList") or [None] * len(sources))
        lists = list(group.get("fileList") or [])
        folders = [
            [str(source or ""), target or None, [str(f) for f in _names(files)]]
            for source, target, files in zip(sources, targets, lists, strict=False)
        ]
        result.append({"repo": str(group.get("repoId")), "folders": folders})
    return result


def _names(files: Any) -> list[Any]:
    return [files] if isinstance(files, str) else list(files or ())


def _recorded_files(start: int) -> list[dict[str, Any]]:
    """Hub downloads recorded since start, as repo_files."""
    result = []
    for call in RECORDED[start:]:
        if call["call"] == "hf_hub_download":
            folder, _, name = call["path"].rpartition("/")
            result.append({"repo": call["repo"], "folders": [[folder, None, [name]]]})
    return result


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda _: None))


class Learner:
    """Wan2GP's own loading steps, reduced to what decides files."""

    def __init__(self, root: str, install_root: str):
        self.root = install_root  # defaults/, finetunes/, wgp_config.json
        self.config = _read_wgp_config(install_root)
        self.handlers: dict[str, Any] = {}  # architecture -> handler
        self.family_of: dict[str, str] = {}  # architecture -> handler module path
        self.failed: dict[str, str] = {}  # handler module path -> why
        self.notices: list[str] = []
        self.models: dict[str, dict[str, Any]] = {}
        self.injected: dict[str, dict[str, Any]] = {}

    def map_handlers(self, paths: list[str]) -> None:
        for path in paths:
            try:
                handler = importlib.import_module(path).family_handler
                for architecture in handler.query_supported_types():
                    self.handlers.setdefault(architecture, handler)
                    self.family_of.setdefault(architecture, path)
            except Exception as exc:
                self.failed[path] = _error(exc)

    def definition_paths(self, plugin_roots: list[str]) -> list[str]:
        """Every definition file in Wan2GP's order: plugins', defaults/, finetunes/, sorted."""
        old = os.getcwd()
        os.chdir(self.root)
        try:
            found = set(glob.glob(os.path.join("defaults", "*.json")))
            for plugin_root in plugin_roots:
                found.update(glob.glob(os.path.join(plugin_root, "*.json")))
            return sorted([*found, *glob.glob(os.path.join("finetunes", "*.json"))])
        finally:
            os.chdir(old)

    def read_definitions(self, paths: list[str]) -> None:
        for path in paths:
            model_id = os.path.basename(path)[:-5]
            try:
                with open(os.path.join(self.root, path), encoding="utf-8") as source:
                    model = json.load(source).pop("model")
            except Exception as exc:
                self.notices.append(f"{path}: not read ({_error(exc)})")
                continue
            existing = self.models.get(model_id)
            if existing is not None:
                existing.update(model)  # wgp.py: a same-id finetune is not recomputed
                continue
            self.models[model_id] = self.init_model(model_id, model)

    def architecture(self, model_id: str, model: dict[str, Any]) -> str:
        value = model.get("architecture")
        return value if isinstance(value, str) and value else model_id

    def init_model(self, model_id: str, model: dict[str, Any]) -> dict[str, Any]:
        architecture = self.architecture(model_id, model)
        handler = self.handlers.get(architecture)
        if handler is None:
            return model
        before = copy.deepcopy(model)
        try:
            defaults = handler.query_model_def(architecture, model)
        except Exception as exc:
            self.fail_model(model_id, architecture, f"query_model_def: {_error(exc)}")
            return model
        rewritten = {k: v for k, v in model.items() if before.get(k, object()) != v}
        if defaults is None:
            defaults = {}
        injected = {
            key: value
            for key, value in defaults.items()
            if key in KEEP_KEYS
            or (
                key not in before
                and (
                    key in FILE_KEYS
                    or key in ON_DEMAND_KEYS
                    or key.startswith(("system_configs", *ON_DEMAND_PREFIXES))
                )
            )
        }
        self.injected[model_id] = {"keys": _jsonable(injected), "rewritten": _jsonable(rewritten)}
        merged = dict(defaults)
        merged.update(model)
        return merged

    def fail_model(self, model_id: str, architecture: str, why: str) -> None:
        family = self.family_of.get(architecture, architecture)
        self.failed.setdefault(family, why)
        self.models.pop(model_id, None)

    def facts(self, model_id: str, model: dict[str, Any]) -> dict[str, Any] | None:
        architecture = self.architecture(model_id, model)
        handler = self.handlers.get(architecture)
        if handler is None or self.family_of.get(architecture) in self.failed:
            return None
        start = len(RECORDED)
        # Wan2GP's default root: wgp_config's loras_root is applied by the catalog's settings,
        # to shipped and learned folders alike (an absolute root is no destination here)
        lora_root = "loras"
        lora_dir = handler.get_lora_dir(architecture, _Args(), lora_root)
        files = handler.query_model_files(_compute_list, architecture, model)
        injected = self.injected.get(model_id, {"keys": {}, "rewritten": {}})
        keys = injected["keys"]
        entry = {
            "architecture": architecture,
            "lora_dir": str(lora_dir).replace(os.sep, "/") if lora_dir else None,
            "text_encoder_URLs": _url_list(keys.get("text_encoder_URLs")),
            "text_encoder_folder": keys.get("text_encoder_folder"),
            "VAE_URLs": _url_list(keys.get("VAE_URLs")),
            "repo_files": _repo_files(files) + _recorded_files(start),
        }
        extra = {k: v for k, v in keys.items() if k not in entry}
        if extra:
            entry["injected"] = extra
        if injected["rewritten"]:
            entry["rewritten"] = injected["rewritten"]
        entry["config_choices"] = self.config_choices(handler, architecture, model, entry)
        return entry

    def config_choices(
        self, handler: Any, architecture: str, model: dict[str, Any], entry: dict[str, Any]
    ) -> dict[str, Any]:
        """Files each model-config choice adds: Wan2GP applies the choice over the definition."""
        have = {
            (group["repo"], folder[0], folder[1], name)
            for group in entry["repo_files"]
            for folder in group["folders"]
            for name in folder[2]
        }
        choices: dict[str, Any] = {}
        for key, value in model.items():
            if not (key.startswith("system_configs") or key == "configs"):
                continue
            if not isinstance(value, dict):
                continue
            for choice, overrides in value.items():
                if choice.startswith("_") or not isinstance(overrides, dict):
                    continue
                try:
                    files = handler.query_model_files(
                        _compute_list, architecture, {**model, **overrides}
                    )
                except Exception as exc:
                    self.notices.append(f"model config '{choice}': {_error(exc)}")
                    continue
                added = []
                for group in _repo_files(files):
                    for source, target, names in group["folders"]:
                        new = [n for n in names if (group["repo"], source, target, n) not in have]
                        if new:
                            folders = [[source, target, new]]
                            added.append({"repo": group["repo"], "folders": folders})
                urls = {
                    k: _url_list(v)
                    for k, v in overrides.items()
                    if k.endswith("URLs") and _url_list(v)
                }
                if added or urls:
                    choices[choice] = _jsonable({"repo_files": added, "urls": urls})
        return choices


def _compute_list(filename: Any) -> list[str]:
    if filename is None:
        return []
    return [str(filename)[str(filename).rfind("/") + 1 :]]


def _url_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# -- run-time features --------------------------------------------------------------------------


def _slug(text: str) -> str:
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return "-".join(words) or "feature"


def _call_query(handler: Any, name: str) -> Any:
    query = getattr(handler, name, None)
    if query is None:
        return None
    try:
        return query(enabled_only=False)
    except TypeError:
        return query()


def handler_files(handler: Any) -> list[dict[str, Any]]:
    """Files one post-processing handler fetches: its own download lists, else its download()."""
    start = len(RECORDED)
    for name in ("query_download_defs", "query_download_def"):
        result = _call_query(handler, name)
        if result:
            return _repo_files(result) + _recorded_files(start)
    collected: list[dict[str, Any]] = []

    def process_files(**files_def: Any) -> None:
        collected.extend(_repo_files(files_def))

    download = getattr(handler, "download", None)
    if download is not None:
        for args in ((process_files,), (None, process_files)):
            try:
                download(*args)
                break
            except TypeError:
                continue
    return collected + _recorded_files(start)


REGISTRIES = (
    ("postprocessing.spatial_upsamplers", "register_spatial_upsamplers", "_upsampler_handlers",
     "query_upsampler_def"),
    ("postprocessing.temporal_upsamplers", "register_temporal_upsamplers",
     "_temporal_upsampler_handlers", "query_temporal_upsampler_def"),
    ("postprocessing.audio_processors", "register_audio_processors",
     "_audio_processor_handlers", "query_audio_processor_def"),
)  # fmt: skip


class Features:
    """The run-time assets of Wan2GP's features, each a named group of repo files."""

    def __init__(self, root: str, config: dict[str, Any], notices: list[str]):
        self.root = root
        self.config = config
        self.notices = notices
        self.groups: dict[str, list[dict[str, Any]]] = {}
        self.core: list[dict[str, Any]] = []
        self.model_features: dict[str, dict[str, Any]] = {}  # a feature that loads a model

    def add(self, name: str, files: list[dict[str, Any]]) -> None:
        files = [group for group in files if group["folders"]]
        if files:
            self.groups.setdefault(name, []).extend(files)

    def guarded(self, what: str, action: Any) -> None:
        try:
            action()
        except Exception as exc:
            self.notices.append(f"feature {what}: not learned ({_error(exc)})")

    def learn(self) -> None:
        self.guarded("core", self.learn_core)
        self.guarded("prompt-enhancer", self.learn_prompt_enhancers)
        self.guarded(
            "deepy", self.learn_simple("deepy", "shared.deepy.assets", "query_deepy_download_defs")
        )
        self.guarded("speaker-separation", self.learn_simple(
            "speaker-separation", "preprocessing.speaker_separator.assets",
            "query_speaker_separator_download_def"))  # fmt: skip
        for registry in REGISTRIES:
            self.guarded(registry[0], lambda registry=registry: self.learn_registry(*registry))
        self.guarded("ltx2-upsampler", self.learn_ltx2_upsampler)

    def learn_ltx2_upsampler(self) -> None:
        """The LTX-2 upsampler loads a whole LTX-2 model and some of its system LoRAs."""
        runtime = importlib.import_module("postprocessing.ltx2_upsampler.runtime")
        for variant, model_type in runtime.MODEL_TYPES.items():
            keys = [str(key) for key in runtime.LORA_KEYS.get(variant, ())]
            name = f"ltx2-upsampler/{_slug(variant)}"
            self.model_features[name] = {"model": str(model_type), "lora_keys": keys}

    def learn_core(self) -> None:
        core = wgp_function(self.root, "query_core_shared_model_files",
                            {"server_config": self.config})  # fmt: skip
        self.core = _repo_files(core())
        assets = importlib.import_module("preprocessing.matanyone.utils.model_assets")
        self.core += _repo_files(assets.query_matanyone_download_def(self.config))

    def learn_prompt_enhancers(self) -> None:
        assets = importlib.import_module("shared.prompt_enhancer.assets")
        for group in _repo_files(assets.query_prompt_enhancer_download_defs()):
            for folder in group["folders"]:
                label = folder[1] or folder[0] or group["repo"].rsplit("/", 1)[-1]
                one = {"repo": group["repo"], "folders": [folder]}
                self.add(f"prompt-enhancer/{_slug(label)}", [one])

    def learn_simple(self, name: str, module: str, function: str) -> Any:
        def action() -> None:
            self.add(name, _repo_files(getattr(importlib.import_module(module), function)()))

        return action

    def learn_registry(self, module_name: str, register: str, handlers: str, query: str) -> None:
        from shared.utils import files_locator  # type: ignore[import-not-found]

        module = importlib.import_module(module_name)
        getattr(module, register)(dict(self.config), files_locator)
        for handler in getattr(module, handlers):
            name = type(handler).__name__
            try:
                handler_def = getattr(handler, query)()
                key = getattr(module, "_config_key_from_handler_def", None)
                name = key(handler_def, name) if key else name
                self.add(_slug(name), handler_files(handler))
            except Exception as exc:
                self.notices.append(f"feature {_slug(name)}: not learned ({_error(exc)})")


# -- the whole run ------------------------------------------------------------------------------


def read_sources(root: str) -> list[str]:
    """Every file of the tree this run read: imported modules and definitions."""
    root_abs = os.path.abspath(root)
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.abspath(path).startswith(root_abs + os.sep):
            files.add(os.path.relpath(os.path.abspath(path), root_abs))
    return sorted(files)


def learn(root: str, install_root: str) -> dict[str, Any]:
    learner = Learner(root, install_root)
    enabled = learner.config.get("enabled_plugins") or []
    enabled = [p for p in enabled if isinstance(p, str)] if isinstance(enabled, list) else []
    extensions, community, plugin_error = plugin_extensions(root, enabled)
    if plugin_error:
        learner.notices.append(f"plugins: not learned ({plugin_error})")
    paths = family_handler_paths(root)
    plugin_roots = []
    for extension in extensions:
        plugin_roots.append(extension.defaults_root)
        paths += [p for p in extension.model_handlers if p not in paths]
    learner.map_handlers(paths)
    definition_paths = learner.definition_paths(plugin_roots)
    learner.read_definitions(definition_paths)
    models: dict[str, Any] = {}
    for model_id, model in sorted(learner.models.items()):
        try:
            facts = learner.facts(model_id, model)
        except Exception as exc:
            learner.fail_model(model_id, learner.architecture(model_id, model), _error(exc))
            continue
        if facts is not None:
            models[model_id] = _jsonable(facts)
    features = Features(root, learner.config, learner.notices)
    features.learn()
    failed_archs = sorted(a for a, p in learner.family_of.items() if p in learner.failed)
    # a family that failed on one model falls back as a whole: no half-learned family
    models = {m: f for m, f in models.items() if f["architecture"] not in failed_archs}
    return {
        "models": models,
        "core": features.core,
        "features": features.groups,
        "model_features": features.model_features,
        "failed_families": learner.failed,
        "failed_architectures": failed_archs,
        "architectures": sorted(a for a in learner.handlers if a not in failed_archs),
        "definitions": [p.replace(os.sep, "/") for p in definition_paths],
        "sources": read_sources(root),
        "install_files": [p for p in definition_paths if not os.path.isabs(p)],
        "recorded": RECORDED,
        "notices": learner.notices,
        "community_plugins": community,
        "plugin_definitions": sorted(str(p) for p in plugin_roots),
    }


def main(argv: list[str]) -> int:
    out = sys.stdout
    sys.stdout = sys.stderr  # Wan2GP's prints must not mix with the answer
    root = os.path.abspath(argv[1])
    install_root = os.path.abspath(argv[2]) if len(argv) > 2 else root
    install(root, install_root)
    try:
        result = learn(root, install_root)
    except BaseException as exc:
        result = {"fatal": _error(exc)}
    out.write(json.dumps(result, sort_keys=True))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
