"""Turn Wan2GP's definitions into file records, following the rules of Wan2GP's own loader.

The rules (references, modules, variants, destinations) are described in the Wan2GP catalog
facts that ship with the project's test material; each function below names the rule it follows.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandown import huburl
from wandown.catalog.borrow import code_for, unlearned_finetunes
from wandown.catalog.codedefaults import CodeData, CodeDefaults, ModelFeature, RepoFolder
from wandown.catalog.corefiles import core_folders
from wandown.catalog.definitions import Definition, WanSettings
from wandown.catalog.records import ROLES, FileRecord, ModelInfo
from wandown.catalog.variants import (
    file_name,
    loaded_file_dtype,
    pick_variant,
    policy_dtype,
    strip_suffix,
)

HUB_HOST = "huggingface.co"
MAX_CHAIN = 10
REFERENCE_KEYS = (
    "URLs",
    "URLs2",
    "preload_URLs",
    "loras",
    "loras_multipliers",
    "text_encoder_URLs",
    "modules",
    "configs",
)
# LoRAs a model fetches into its LoRA folder when a setting asks for them (ltx2.py's system LoRAs,
# longcat_main.py's distill LoRA): offered as feature groups, never needed by default.
ON_DEMAND_FEATURES = {"distill_lora_URL": "distill-lora"}
ON_DEMAND_PREFIXES = {"ltx2_lora_": "ltx2-system-loras"}
DEFAULT_LORA_DIR = "loras"
CKPTS = "ckpts"
MAX_NAME_BYTES = 255  # NAME_MAX on Linux file systems
MAX_PATH_BYTES = 4000  # below PATH_MAX (4096), leaving room for the Wan2GP folder itself
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass
class _Draft:
    """A record while the builder still adds to it; frozen into a FileRecord at the end."""

    dest: str
    url: str
    repo: str | None
    revision: str | None
    path: str | None
    role: str
    needed_by: set[str] = field(default_factory=set)
    listed_by: set[str] = field(default_factory=set)
    mirrors: list[str] = field(default_factory=list)
    seen_at: list[str] = field(default_factory=list)
    features: set[str] = field(default_factory=set)

    def freeze(self) -> FileRecord:
        return FileRecord(
            self.dest,
            self.url,
            self.repo,
            self.revision,
            self.path,
            self.role,
            frozenset(self.needed_by),
            frozenset(self.listed_by),
            tuple(self.mirrors),
            tuple(self.seen_at),
            frozenset(self.features),
        )


class Problem(Exception):
    """A definition that cannot be followed; reported for its model and skipped."""


@dataclass(frozen=True)
class CheckpointRoot:
    """One of Wan2GP's checkpoint roots (files_locator.py ~110-193).

    ``place`` is the root as Wan2GP joins it (relative to the Wan2GP folder, or absolute);
    ``prefix`` the destination prefix wandown writes under: relative inside the Wan2GP folder
    ("" for the folder itself), absolute outside it; None for a root no file can be put in.
    """

    place: str
    prefix: str | None


@functools.lru_cache(maxsize=4096)
def parse_hub_url(url: str) -> tuple[str, str, str] | None:
    """Return (repo, revision, path) of a Hub ``/<repo>/resolve/<rev>/<path>`` URL.

    The rule is huburl.parse_hub_url's (it also refuses dataset URLs, bad repo ids
    and paths that would leave the models folder); this keeps the catalog's tuple and cache.
    """
    ref = huburl.parse_hub_url(url)
    return (ref.repo, ref.revision, ref.path) if ref is not None else None


def is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


@functools.lru_cache(maxsize=8192)  # a catalog names the same folders thousands of times
def name_problem(name: str) -> str | None:
    """Say why name cannot be one file or folder name on disk, or None when it can."""
    if name in ("", ".", ".."):
        return "it names no file" if name != ".." else "it would leave the Wan2GP folder"
    if "/" in name or "\\" in name:
        return "it holds a slash"
    if _CONTROL.search(name):
        return "it holds a control character"
    try:
        encoded = os.fsencode(name)
    except UnicodeError:  # LC_ALL=C without UTF-8 mode: file names are ASCII here
        return "this system's file name encoding cannot hold it (use a UTF-8 locale)"
    if len(encoded) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return None


@functools.lru_cache(maxsize=8192)
def safe_dest(*parts: str) -> str:
    """Join destination parts; refuse anything that would leave the Wan2GP root or that cannot
    be a path (a control character, an over-long part, a last part that is no file name)."""
    joined = posixpath.join(*[p.replace("\\", "/") for p in parts if p])
    segments = joined.split("/")
    if joined.startswith("/") or ".." in segments or not segments[-1] or ":" in segments[0]:
        raise Problem(f"refused destination '{joined}': it would leave the Wan2GP folder")
    for segment in segments[:-1]:
        problem = name_problem(segment) if segment not in ("", ".") else None
        if problem:
            raise Problem(f"refused destination '{joined}': {problem}")
    problem = name_problem(segments[-1])
    if problem is None and len(joined.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        problem = f"it is longer than {MAX_PATH_BYTES} bytes"
    if problem:
        raise Problem(f"refused destination '{joined}': {problem}")
    return posixpath.normpath(joined)


class _Builder:
    """Walks every model once, collecting records keyed by destination."""

    def __init__(
        self,
        definitions: dict[str, Definition],
        code: CodeData,
        settings: WanSettings,
        root: Path | None = None,
    ):
        self.definitions = definitions
        self.code = code
        self.settings = settings
        self.root = root  # where folders are looked for; None: no folder exists yet
        self.notices: list[str] = []
        self.roots = [checkpoint_root(place, root) for place in settings.checkpoints_paths]
        self.ckpts = self._primary_checkpoint_root()
        self.lora_root = self._lora_root()
        self.records: dict[str, _Draft] = {}
        self.models: dict[str, ModelInfo] = {}
        self.problems: dict[str, list[str]] = {}  # per model id, kept in its ModelInfo at the end
        self._effective: dict[str, dict[str, Any]] = {}
        self._code_for: dict[str, CodeDefaults | None] = {}
        self._root_of: dict[str | None, str] = {}  # one look at the disk per folder and build
        for model_id, definition in definitions.items():
            defaults, source = code_for(model_id, definitions, code)
            self._code_for[model_id] = defaults
            self.models[model_id] = ModelInfo(
                model_id, definition.name, definition.architecture, source
            )
            rewritten = defaults.rewritten if defaults is not None else {}
            self._effective[model_id] = {
                **self._code_keys(defaults),
                **definition.model,
                **rewritten,  # values the handler rewrites in the definition itself
            }

    def _primary_checkpoint_root(self) -> str:
        """Return where new checkpoint files go: Wan2GP's first root, when it can hold files."""
        where = _settings_file(self.settings)
        usable = [r.prefix for r in self.roots if r.prefix is not None]
        first = self.roots[0]
        chosen = first.prefix if first.prefix is not None else (usable[0] if usable else CKPTS)
        if first.prefix is None:
            self.notices.append(
                f"{where}: the first checkpoints path '{first.place}' cannot be used (it names "
                f"no folder wandown can write); new files go to {chosen or '.'}/ instead"
            )
        if CKPTS not in usable:
            seen = "" if chosen != CKPTS else "; wandown's downloads there would be invisible to it"
            self.notices.append(
                f"{where}: 'ckpts' is not one of the checkpoints_paths "
                f"({', '.join(self.settings.checkpoints_paths)}): Wan2GP does not look in "
                f"ckpts/{seen} (new files go to {chosen or '.'}/)"
            )
        return chosen

    def _lora_root(self) -> str:
        """Return the LoRA root as a destination prefix (wgp.py get_lora_root ~2474-2481)."""
        place = self.settings.loras_root
        found = checkpoint_root(place, self.root).prefix
        if found is None:
            where = _settings_file(self.settings)
            self.notices.append(
                f"{where}: loras_root '{place}' names no folder wandown can write; LoRAs go to "
                f"{DEFAULT_LORA_DIR}/ instead, which Wan2GP will not see"
            )
            return DEFAULT_LORA_DIR
        return found

    @staticmethod
    def _code_keys(defaults: CodeDefaults | None) -> dict[str, Any]:
        if defaults is None:
            return {}
        keys: dict[str, Any] = dict(defaults.injected)
        keys["text_encoder_URLs"] = list(defaults.text_encoder_urls)
        if defaults.text_encoder_folder is not None:
            keys["text_encoder_folder"] = defaults.text_encoder_folder
        if defaults.vae_urls:
            keys["VAE_URLs"] = list(defaults.vae_urls)
        return keys

    # -- references (rule 3) --------------------------------------------------------------

    def resolve(self, model_id: str, key: str, chain: tuple[str, ...] = ()) -> Any:
        """Return the value of key for model_id, following string references to other ids."""
        value = self._effective[model_id].get(key)
        if not isinstance(value, str) or key not in REFERENCE_KEYS:
            return value
        if value in self.definitions:
            chain = chain or (model_id,)
            if value in chain:
                raise Problem(f"{key}: reference cycle {' -> '.join((*chain, value))}")
            if len(chain) > MAX_CHAIN + 1:
                raise Problem(
                    f"{key}: reference chain deeper than {MAX_CHAIN}: {' -> '.join(chain)}"
                )
            return self.resolve(value, key, (*chain, value))
        path = " -> ".join((*chain, value)) if chain else f"{model_id} -> {value}"
        raise Problem(f"{key}: dangling reference to unknown model '{value}' ({path})")

    def resolve_list(self, model_id: str, key: str) -> list[str]:
        value = self.resolve(model_id, key)
        return [] if value is None else self._url_list(value, key)

    # -- modules (rule 4) -----------------------------------------------------------------

    def module_lists(self, item: Any, chain: tuple[str, ...] = ()) -> list[tuple[int, list[str]]]:
        """Return (phase, variants) for the lists one ``modules`` item stands for.

        Phase 2 is the ``URLs2`` half of a dict module, loaded with a two-phase model's second
        transformer; everything else is phase 1.
        """
        if isinstance(item, list):
            return [(1, self._url_list(item, "modules"))]
        if isinstance(item, dict):
            if "URLs" not in item or "URLs2" not in item:
                raise Problem("modules: a module given as a dict needs both URLs and URLs2")
            return [
                (1, self._url_list(item["URLs"], "modules")),
                (2, self._url_list(item["URLs2"], "modules")),
            ]
        if not isinstance(item, str):
            raise Problem(f"modules: unexpected item {item!r}")
        module_id, _, sub_key = item.partition("#")
        if module_id not in self.definitions:
            raise Problem(f"modules: unknown module id '{module_id}'")
        if module_id in chain or len(chain) > MAX_CHAIN:
            raise Problem(f"modules: reference cycle {' -> '.join((*chain, module_id))}")
        value = self.resolve(module_id, "modules")
        if sub_key:
            if not isinstance(value, dict) or sub_key not in value:
                raise Problem(f"modules: '{module_id}' has no module named '{sub_key}'")
            return self.module_lists(value[sub_key], (*chain, module_id))
        if not isinstance(value, list) or len(value) != 1:
            raise Problem(f"modules: '{module_id}' must have exactly one module to be used by id")
        inner = value[0]
        if inner == module_id:
            raise _CodeOnlyModule(module_id)
        return self.module_lists(inner, (*chain, module_id))

    @staticmethod
    def _url_list(value: Any, key: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise Problem(f"{key}: expected a list of URLs, found {type(value).__name__}")

    # -- records ------------------------------------------------------------------------

    def add(
        self,
        model_id: str | None,
        entry: str,
        role: str,
        dest: str,
        needed: bool,
        seen_at: Iterable[str] = (),
        feature: str | None = None,
    ) -> None:
        url, _ = strip_suffix(entry)
        parsed = parse_hub_url(url)
        repo, revision, path = parsed if parsed else (None, None, None)
        record = self.records.get(dest)
        if record is None:
            record = _Draft(dest, url, repo, revision, path, role)
            self.records[dest] = record
        elif record.url != url and url not in record.mirrors:
            if parsed and parsed[2] == record.path:
                record.mirrors.append(url)
            else:
                self.notices.append(
                    f"{dest}: listed with two different URLs ({record.url} and {url}); "
                    "keeping the first"
                )
        if ROLES.index(role) < ROLES.index(record.role) and (needed or not record.needed_by):
            record.role = role
        record.seen_at.extend(p for p in seen_at if p != dest and p not in record.seen_at)
        if feature is not None:
            record.features.add(feature)
        if model_id is not None:
            record.listed_by.add(model_id)
            if needed:
                record.needed_by.add(model_id)

    def entry_dest(
        self, model_id: str, entry: str, folder: str | None, lora: bool
    ) -> tuple[str, list[str]]:
        """Return where an entry goes (its ``|dir`` suffix, the LoRA folder or a checkpoint
        root) and the other places Wan2GP finds it.

        A LoRA is looked for in the LoRA folder only; a checkpoint file in every root
        (files_locator.locate_file); a text encoder (folder given) as ``folder/name``, then as
        ``name`` in every root, and placed in the first root already holding its folder.
        """
        url, suffix = strip_suffix(entry)
        if _CONTROL.search(url) or " " in url:
            raise Problem("refused URL: it holds a space or a control character")
        name = file_name(entry)
        problem = name_problem(name)
        if problem:
            raise Problem(f"refused file name '{name}': {problem}")
        lora_dir = self.lora_dir(model_id)
        if suffix == "%lora_dir" and not lora:
            return under(lora_dir, safe_dest(name)), []
        if lora:
            return under(lora_dir, safe_dest(suffix or "", name)), []
        rel = safe_dest(folder or "", suffix or "", name)
        dest = under(self.root_for(folder), rel)
        seen = [posixpath.join(r.place, rel) for r in self.roots]
        if folder:
            seen += [posixpath.join(r.place, safe_dest(suffix or "", name)) for r in self.roots]
        return dest, seen

    def root_for(self, folder: str | None) -> str:
        """Return the destination prefix of the first root already holding folder, else the
        first root's (files_locator.get_smart_download_root)."""
        known = self._root_of.get(folder)
        if known is None:
            known = self._root_of[folder] = self._find_root(folder)
        return known

    def _find_root(self, folder: str | None) -> str:
        folder = posixpath.normpath(folder) if folder else None
        if folder and folder != "." and self.root is not None:
            for candidate in self.roots:
                if _is_folder(self.root / candidate.place / folder):
                    return candidate.prefix if candidate.prefix is not None else self.ckpts
        return self.ckpts

    def lora_dir(self, model_id: str) -> str:
        """Return the model's LoRA folder: its handler's folder under the LoRA root."""
        defaults = self._code_for.get(model_id)
        folder = (defaults.lora_dir if defaults else None) or DEFAULT_LORA_DIR
        if folder == DEFAULT_LORA_DIR:
            return self.lora_root
        family = folder.removeprefix(f"{DEFAULT_LORA_DIR}/")
        return posixpath.join(self.lora_root, family) if family != folder else folder

    def add_entries(
        self,
        model_id: str,
        entries: Iterable[str],
        role: str,
        needed: set[str] | bool,
        folder: str | None = None,
        key: str = "",
        feature: str | None = None,
        lora: bool | None = None,
    ) -> None:
        """Add URL entries; a LoRA (role lora, or lora=True) goes to the model's LoRA folder."""
        in_lora_folder = role in ("lora", "on_demand") if lora is None else lora
        for entry in entries:
            if not is_remote(strip_suffix(entry)[0]):
                self.report(model_id, f"'{entry}' is a local path, not a URL; not downloaded")
                continue
            try:
                dest, seen_at = self.entry_dest(model_id, entry, folder, lora=in_lora_folder)
            except Problem as exc:
                where = self.definition_files(model_id)
                self.report(model_id, f"{where}'{key or role}': {exc} (from '{entry}')")
                continue
            is_needed = needed if isinstance(needed, bool) else entry in needed
            self.add(model_id, entry, role, dest, is_needed, seen_at, feature)

    def add_variants(
        self,
        model_id: str,
        entries: list[str],
        role: str,
        quantization: str,
        needed: bool = True,
        folder: str | None = None,
        key: str = "",
        dtype: str | None = None,
    ) -> str | None:
        """Add every variant; return the one Wan2GP loads (None when not needed)."""
        chosen = dtype or self.model_dtype(model_id)
        pick = pick_variant(entries, quantization, chosen) if needed else None
        self.add_entries(model_id, entries, role, {pick} if pick else set(), folder, key)
        return pick

    def model_dtype(self, model_id: str) -> str:
        """Return the dtype model_id runs in: its architecture's dtype key, else the policy."""
        arch = self.definitions[model_id].architecture or model_id
        arch_model = self._effective.get(arch, {})
        arch_dtype = arch_model.get("dtype")
        return policy_dtype(
            self.settings.transformer_dtype_policy,
            self.settings.bf16_supported,
            arch_dtype if isinstance(arch_dtype, str) else None,
        )

    def definition_files(self, model_id: str) -> str:
        """Name the files model_id was read from, for a notice: "defaults/x.json: "."""
        sources = self.definitions[model_id].sources
        return "".join(f"{source}: " for source in sources[-1:])

    def add_repo_folder(
        self, model_id: str | None, group: RepoFolder, role: str, feature: str | None = None
    ) -> None:
        for url, dest, seen_at in self.repo_folder_files(group):
            self.add(model_id, url, role, dest, feature is None, seen_at, feature)

    def repo_folder_files(self, group: RepoFolder) -> Iterator[tuple[str, str, list[str]]]:
        """Yield (url, destination, places Wan2GP finds it) for each file of a repo folder
        (shared/utils/download.py process_files_def: the first root already holding the target
        folder, or the source folder, else the first root)."""
        target = group.target_folder or None
        prefix = self.root_for(target or group.source_folder or None)
        for name in group.files:
            repo_path = posixpath.join(group.source_folder, name)
            url = f"https://{HUB_HOST}/{group.repo}/resolve/main/{repo_path}"
            try:
                rel = safe_dest(target or "", repo_path)
                dest = under(prefix, rel)
            except Problem as exc:
                self.notices.append(f"code-side file {url}: {exc}")
                continue
            yield url, dest, [posixpath.join(r.place, rel) for r in self.roots]

    def report(self, model_id: str, message: str) -> None:
        problems = self.problems.setdefault(model_id, [])
        if message not in problems:
            problems.append(message)
            self.notices.append(f"model {model_id}: {message}")

    # -- one model ----------------------------------------------------------------------

    def add_model(self, model_id: str) -> None:
        """Collect every file of one model; a broken key is reported and the rest still read."""
        model = self._effective[model_id]
        transformer = self.settings.transformer_quantization
        main: list[str | None] = []
        for key, local_source in (("URLs", "source"), ("URLs2", "source2")):
            self._guarded(
                model_id,
                functools.partial(
                    self._add_main, model_id, key, transformer, local_source not in model, main
                ),
            )
        self._guarded(model_id, lambda: self.add_modules(model_id, main[0] if main else None))
        for key, role in (("preload_URLs", "preload"), ("VAE_URLs", "vae"), ("loras", "lora")):
            self._guarded(model_id, functools.partial(self._add_listed, model_id, key, role))
        self._guarded(
            model_id,
            lambda: self.add_variants(
                model_id,
                self.resolve_list(model_id, "text_encoder_URLs"),
                "text_encoder",
                self.settings.text_encoder_quantization,
                folder=self.text_encoder_folder(model_id),
                key="text_encoder_URLs",
            ),
        )
        self._guarded(model_id, lambda: self.add_on_demand(model_id))
        self._guarded(model_id, lambda: self.add_config_choices(model_id))
        defaults = self._code_for[model_id]
        if defaults is not None:
            for group in defaults.repo_folders:
                self.add_repo_folder(model_id, group, "repo_file")

    def _add_main(
        self, model_id: str, key: str, quantization: str, needed: bool, picked: list[str | None]
    ) -> None:
        entries = self.resolve_list(model_id, key)
        self.add_variants(model_id, entries, "main", quantization, needed=needed, key=key)
        if key == "URLs":  # the file Wan2GP loads, sourced locally or not, sets the modules' dtype
            picked.append(pick_variant(entries, quantization, self.model_dtype(model_id)))

    def _add_listed(self, model_id: str, key: str, role: str) -> None:
        self.add_entries(model_id, self.resolve_list(model_id, key), role, True, key=key)

    def _guarded(self, model_id: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Problem as exc:
            self.report(model_id, str(exc))

    def text_encoder_folder(self, model_id: str) -> str | None:
        folder = self._effective[model_id].get("text_encoder_folder")
        return folder if isinstance(folder, str) else None

    def add_modules(self, model_id: str, main_file: str | None) -> None:
        """Add the modules, picked with the dtype of the main file (wgp.py ~3997-4024)."""
        modules = self.resolve(model_id, "modules")
        if modules is None:
            return
        if not isinstance(modules, list):
            raise Problem("modules: expected a list")
        for item in modules:
            try:
                lists = self.module_lists(item)
            except _CodeOnlyModule as exc:
                self.report(
                    model_id,
                    f"module '{exc.module_id}' names itself; its files are listed only in "
                    "Wan2GP's code and cannot be downloaded from this catalog",
                )
                continue
            except Problem as exc:
                self.report(model_id, str(exc))
                continue
            model = self._effective[model_id]
            dtype = self.module_dtype(model_id, main_file)
            for phase, variants in lists:
                # module_source(2): the module comes from a local file, as source does for URLs
                local = "module_source" if phase == 1 else "module_source2"
                self.add_variants(
                    model_id,
                    variants,
                    "module",
                    self.settings.transformer_quantization,
                    needed=local not in model,
                    key="modules",
                    dtype=dtype,
                )

    def module_dtype(self, model_id: str, main_file: str | None) -> str:
        """Return the modules' dtype: the architecture's dtype key, else the quanto main file's."""
        arch = self.definitions[model_id].architecture or model_id
        if isinstance(self._effective.get(arch, {}).get("dtype"), str):
            return self.model_dtype(model_id)
        return loaded_file_dtype(main_file, self.model_dtype(model_id))

    def add_on_demand(self, model_id: str) -> None:
        """Offer the LoRAs a model fetches on demand, in its LoRA folder, as feature groups."""
        model = self._effective[model_id]
        for key, value in model.items():
            feature = ON_DEMAND_FEATURES.get(key) or next(
                (name for prefix, name in ON_DEMAND_PREFIXES.items() if key.startswith(prefix)),
                None,
            )
            if feature is None:
                continue
            entries = [value] if isinstance(value, str) else value
            if isinstance(entries, list):
                strings = [e for e in entries if isinstance(e, str)]
                self.add_entries(
                    model_id, strings, "feature", False, key=key, feature=feature, lora=True
                )

    def add_config_choices(self, model_id: str) -> None:
        """Offer each model-config choice's files as a feature group: ``config/<id>/<choice>``."""
        defaults = self._code_for[model_id]
        if defaults is None:
            return
        for choice, facts in sorted(defaults.config_choices.items()):
            feature = f"config/{model_id}/{feature_slug(choice)}"
            for group in facts.repo_folders:
                self.add_repo_folder(model_id, group, "feature", feature)
            for key, urls in sorted(facts.urls.items()):
                folder = self.text_encoder_folder(model_id) if key == "text_encoder_URLs" else None
                self.add_entries(model_id, list(urls), "feature", False, folder, key, feature)

    def add_features(self) -> None:
        """Add the files of Wan2GP's run-time features, each a named group nobody needs yet."""
        for feature, groups in sorted(self.code.features.items()):
            for group in groups:
                self.add_repo_folder(None, group, "feature", feature)
        for feature, uses in sorted(self.code.model_features.items()):
            if uses.model_id in self.definitions:
                action = functools.partial(self.add_model_feature, feature, uses)
                self._guarded(uses.model_id, action)

    def add_model_feature(self, feature: str, uses: ModelFeature) -> None:
        """A feature that loads a model: that model's files and the LoRAs it adds on demand."""
        for record in self.records.values():
            if uses.model_id in record.needed_by:
                record.features.add(feature)
        model = self._effective[uses.model_id]
        for key in uses.lora_keys:
            value = model.get(key)
            if isinstance(value, str):
                self.add_entries(
                    uses.model_id, [value], "feature", False, key=key, feature=feature, lora=True
                )


def feature_slug(text: str) -> str:
    """Return text as a feature name part: lower-case words joined by '-'."""
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return "-".join(words) or "choice"


class _CodeOnlyModule(Problem):
    def __init__(self, module_id: str):
        super().__init__(module_id)
        self.module_id = module_id


def build_records(
    definitions: dict[str, Definition],
    code: CodeData,
    settings: WanSettings,
    root: Path | None = None,
) -> tuple[list[FileRecord], dict[str, ModelInfo], list[str], str]:
    """Return every record (sorted by destination), the models, notices and the ckpts folder.

    root is the Wan2GP folder, whose checkpoint roots are looked at for existing folders.
    """
    builder = _Builder(definitions, code, settings, root)
    for model_id in sorted(definitions):
        builder.add_model(model_id)
        if builder.models[model_id].json_only:
            builder.notices.append(
                f"model {model_id}: unknown to wandown's code-side data and no model of its "
                "architecture is; listed from its JSON alone (text encoders, VAEs and "
                "tokenizers may be missing)"
            )
    sources = {model_id: info.code_defaults_from for model_id, info in builder.models.items()}
    builder.notices += unlearned_finetunes(definitions, sources, code.origin)
    every_model = set(definitions)
    for group in core_folders(code.core, settings):
        for url, dest, seen_at in builder.repo_folder_files(group):
            builder.add(None, url, "core", dest, False, seen_at)
            record = builder.records[dest]
            record.needed_by |= every_model
            record.listed_by |= every_model
            record.role = "core"
    builder.add_features()  # last: a feature that loads a model takes all it needs, core too
    records = [draft.freeze() for _, draft in sorted(builder.records.items())]
    models = {
        model_id: dataclasses.replace(info, problems=tuple(builder.problems.get(model_id, ())))
        for model_id, info in builder.models.items()
    }
    return records, models, builder.notices, builder.ckpts


def presence_places(root: Path, record: FileRecord) -> list[Path]:
    """Return every place a record counts as present, in Wan2GP's search order."""
    places = [root / record.dest]
    for seen in record.seen_at:
        place = root / seen
        if place not in places:
            places.append(place)
    return places


def checkpoint_root(place: str, root: Path | None) -> CheckpointRoot:
    """Return one checkpoint root (or the LoRA root) with its destination prefix.

    Inside the Wan2GP folder the prefix is relative to it; outside, absolute (Wan2GP's relative
    roots are taken from its folder, its working folder).
    """
    path = os.path.normpath(place)
    if not os.path.isabs(path) and root is not None:
        path = os.path.normpath(os.path.join(os.path.abspath(root), path))
    if os.path.isabs(path):
        base = os.path.normpath(os.path.abspath(root)) if root is not None else None
        if base is None or os.path.commonpath([path, base]) != base:
            return CheckpointRoot(place, _absolute_prefix(path))
        path = os.path.relpath(path, base)
    if path == ".":
        return CheckpointRoot(place, "")
    try:
        return CheckpointRoot(place, safe_dest(path, "x").rsplit("/", 1)[0])
    except Problem:
        return CheckpointRoot(place, None)


def _absolute_prefix(path: str) -> str | None:
    """Return an absolute root as a destination prefix, None when a part cannot be a name."""
    parts = [part for part in path.split("/") if part]
    if any(name_problem(part) for part in parts) or os.sep != "/":
        return None
    return "/" + "/".join(parts)


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for this file system, a folder that cannot be searched
        return False


def under(prefix: str, rel: str) -> str:
    """Join a root's destination prefix (relative, or absolute outside the Wan2GP folder) and a
    checked relative path."""
    return posixpath.join(prefix, rel) if prefix.startswith("/") else safe_dest(prefix, rel)


def _settings_file(settings: WanSettings) -> str:
    return str(settings.source) if settings.source is not None else "wgp_config.json"
