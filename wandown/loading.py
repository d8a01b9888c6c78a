"""Loading: read the catalog, fetch (or recall) the Hub's metadata, scan the local hub.

Everything slow happens here, before the session publishes the result as one Loaded value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wandown.catalog import Catalog, FileRecord, load_catalog, presence_of
from wandown.config import Config
from wandown.fsutil import is_inside
from wandown.gpu import GpuAnswer, Runner, driver_key, gpu_answer, run_nvidia_smi
from wandown.hub import HubIndex, HubSet, ModelHubError, scan_hub
from wandown.learn import learned_code
from wandown.loaded import Loaded, ref_of
from wandown.remote import FileRef, MetadataClient, RemoteFile

Notice = Callable[[str], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Loader:
    """What a load reads from: the settings, the metadata client, where notices go."""

    config: Config
    client: MetadataClient
    offline: bool
    notice: Notice
    gpu_query: Runner = run_nvidia_smi  # tests hand in a fake nvidia-smi answer

    def reset_cache(self) -> None:
        """Forget the cached Hub metadata, and say so."""
        self.client.reset_cache()
        self.notice("cleared the Hub metadata cache")

    def load(
        self,
        progress: Progress | None = None,
        with_hub: bool = True,
        cancel: threading.Event | None = None,
        reset_cache: bool = False,
    ) -> Loaded:
        """Return the catalog with its Hub facts, its presence on disk and the hub index."""
        gpu = gpu_answer(self.config.gpu_bf16, self.gpu_query, driver_key())
        learned = learned_code(self.config.wan2gp_root)
        for message in learned.notices:
            self.notice(message)
        catalog = load_catalog(
            self.config.wan2gp_root,
            learned.code,
            config_dir=self.config.wan2gp_config_dir,
            bf16_supported=gpu.bf16,
        )
        for message in catalog.notices:
            self.notice(message)
        self._say_gpu(gpu, catalog.settings.transformer_dtype_policy)
        if reset_cache:
            self.reset_cache()
        remote, problems = self._fetch_metadata(catalog.records, progress, cancel)
        return Loaded(
            catalog=catalog,
            remote=remote,
            problems=problems,
            presence=presence_of(catalog),
            hub=self._scan_hub(self._checkpoint_roots(catalog)) if with_hub else None,
            hub_dirs=self.config.hub_directories,
            offline=self.offline,
            gpu=gpu,
        )

    def _say_gpu(self, gpu: GpuAnswer, policy: str) -> None:
        """Say what the GPU answer changes: only Wan2GP's "auto" dtype policy asks for it."""
        if policy != "":
            return
        if gpu.how == "unknown":
            self.notice(
                f"GPU: unknown ({gpu.detail}); assuming bf16 support as on current GPUs. If "
                "Wan2GP runs on a GPU older than RTX 30xx (compute capability below 8), set "
                "gpu_bf16 to false in config.json (or --gpu-bf16 no) to get its fp16 files"
            )
        elif gpu.how in ("nvidia-smi", "mac") and not gpu.bf16:
            what = f"compute capability {gpu.detail}" if gpu.how == "nvidia-smi" else gpu.detail
            self.notice(
                f"GPU: {what} has no fast bf16; Wan2GP's auto dtype policy loads fp16 files "
                "there, so those are listed"
            )

    def _fetch_metadata(
        self,
        records: tuple[FileRecord, ...],
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> tuple[dict[str, RemoteFile], dict[str, str]]:
        by_ref: dict[FileRef, list[FileRecord]] = {}
        for record in records:
            ref = ref_of(record)
            if ref is not None:
                by_ref.setdefault(ref, []).append(record)
        result = self.client.fetch(by_ref, progress=progress, cancel=cancel)
        for warning in result.warnings:
            self.notice(warning)
        remote: dict[str, RemoteFile] = {}
        problems: dict[str, str] = {}
        for ref, sharing in by_ref.items():
            found = result.files.get(ref)
            for record in sharing:
                if found is not None:
                    remote[record.dest] = found
                elif ref in result.errors:
                    problems[record.dest] = result.errors[ref]
        self._report_problems(result.errors)
        if result.unknown and self.offline:
            self.notice(
                f"offline: no cached metadata for {len(result.unknown)} files; they show as "
                "unknown (import metadata from a connected machine with --import-metadata)"
            )
        return remote, problems

    def _report_problems(self, errors: dict[FileRef, str]) -> None:
        """Say each distinct metadata problem once, with how many files it touches."""
        counts: dict[str, int] = {}
        for message in errors.values():
            counts[message] = counts.get(message, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        for message, count in ranked[:5]:
            files = "1 file" if count == 1 else f"{count} files"
            self.notice(f"no Hub metadata for {files}: {message}")
        if len(ranked) > 5:
            self.notice(f"... and {len(ranked) - 5} other problems (see the Status column)")
        order = self.client.settings.fetch_order
        if errors and len(order) > 1:
            truth = next(endpoint.url for endpoint in order if endpoint.truth)
            self.notice(
                f"files without metadata from the source of truth ({truth}) cannot come from the "
                "other endpoints either: nothing would verify their bytes. Bring the metadata "
                "with --import-metadata FILE (written by --export-metadata FILE on a machine "
                "that reaches it)"
            )

    @staticmethod
    def _checkpoint_roots(catalog: Catalog) -> list[Path]:
        """Return Wan2GP's checkpoint and LoRA roots: the hub scan keeps out of them."""
        settings = catalog.settings
        return [catalog.root / p for p in (*settings.checkpoints_paths, settings.loras_root)]

    def _scan_hub(self, roots: list[Path]) -> HubSet | None:
        """Scan every hub folder; one that cannot be used is left out with a notice."""
        indexes = [
            index
            for hub_dir in self.config.hub_directories
            if (index := self._scan(hub_dir, roots))
        ]
        if not indexes:
            return None
        hubs = HubSet(indexes)
        if not hubs.blake3_available:
            self.notice(
                "the blake3 package is missing: hub files are matched by sha256 only, InvokeAI "
                "records cannot confirm them and --dedupe is slower (./installd.sh installs it)"
            )
        return hubs

    def _scan(self, hub_dir: Path, roots: list[Path]) -> HubIndex | None:
        root = self.config.wan2gp_root
        off = "hub features are off" if len(self.config.hub_directories) == 1 else "it is left out"
        if is_inside(root, hub_dir) or is_inside(hub_dir, root):
            self.notice(
                f"the hub {hub_dir} and the Wan2GP folder {root} overlap; "
                f"{off}, since wandown never writes into a hub"
            )
            return None
        # Roots named inside the Wan2GP folder (ckpts, even as a link or bind mount into the hub)
        # are left to its own exclusion, so that the hub still sees what they lead to as its own;
        # only roots named outside it are kept out of the scan, and never one holding the hub.
        outside = [r for r in roots if not _named_inside(r, root) and not is_inside(hub_dir, r)]
        try:
            return scan_hub(hub_dir, notices=self.notice, exclude=[root, *outside])
        except ModelHubError as exc:
            self.notice(f"{exc}; {off}")
            return None


def _named_inside(path: Path, folder: Path) -> bool:
    """Tell whether path is folder or below it by its name alone, links not followed."""
    name, base = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([name, base]) == base
