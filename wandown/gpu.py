"""Whether the GPU Wan2GP runs on has fast bf16: with the "auto" dtype policy, Wan2GP loads the
fp16 files on a GPU of compute capability below 8 (wgp.py ~2511-2516, 8681e9f).

Asked of ``nvidia-smi`` (the GPU Wan2GP uses by default: the first one CUDA_VISIBLE_DEVICES lets
it see), on a Mac of ``system_profiler`` (Wan2GP's MPS patch, shared/mps/device_patch.py ~20-31,
gives M1 and M2 chips capability 7.0 and no bf16), or taken from config.json's ``gpu_bf16`` /
``--gpu-bf16``. Without an answer bf16 is assumed: Wan2GP itself needs a CUDA GPU (or Apple's MPS)
to start, and current GPUs have bf16.

nvidia-smi may take seconds to answer (up to its 5 s limit) while the interface waits for its
first frame, so its answer is kept in the cache folder (``gpu.json``), keyed on what it depends
on: the driver's version and its list of GPUs in /proc/driver/nvidia, and CUDA_VISIBLE_DEVICES.
Without that folder (no Linux driver loaded) nvidia-smi is asked each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wandown import fsutil, jsonfile

QUERY = ("nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader")
MAC_QUERY = ("system_profiler", "SPDisplaysDataType")
MAC_WITHOUT_BF16 = ("M1", "M2")
TIMEOUT_S = 5.0
BF16_FROM_MAJOR = 8
DRIVER = Path("/proc/driver/nvidia")  # the NVIDIA kernel module's version and GPUs
CACHE_NAME = "gpu.json"
Runner = Callable[[], str]


@dataclass(frozen=True)
class GpuAnswer:
    """The bf16 answer and where it came from, in words for the header and notices."""

    bf16: bool
    how: str  # "nvidia-smi", "mac", "config", "unknown"
    detail: str = ""  # the compute capability ("7.5"), the Mac's chip, or why it is unknown

    @property
    def label(self) -> str:
        """Return the header's short form: ``GPU bf16``, ``GPU fp16 (cc 7.5)``, ``GPU unknown``."""
        if self.how == "unknown":
            return "GPU unknown (bf16 assumed)"
        kind = "bf16" if self.bf16 else "fp16"
        where = {"nvidia-smi": f"cc {self.detail}", "mac": self.detail}.get(
            self.how, "set in config"
        )
        return f"GPU {kind} ({where})"


class DetectionError(Exception):
    """nvidia-smi is missing, failed, or said something else than compute capabilities."""


def _ask(command: tuple[str, ...]) -> str:
    """Return a tool's output, found on PATH; raise DetectionError when it gives none."""
    tool = command[0]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise DetectionError(f"no {tool} on PATH") from None
    except subprocess.TimeoutExpired:
        raise DetectionError(f"{tool} gave no answer in {TIMEOUT_S:g} s") from None
    except OSError as exc:
        raise DetectionError(f"{tool} cannot run ({exc.strerror})") from None
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        raise DetectionError(f"{tool} failed: {said[0] if said else done.returncode}")
    return done.stdout


def run_nvidia_smi() -> str:
    """Return nvidia-smi's compute capability lines; raise DetectionError."""
    return _ask(QUERY)


def run_system_profiler() -> str:
    """Return a Mac's display report, which names its chip; raise DetectionError."""
    return _ask(MAC_QUERY)


def mac_answer(report: str) -> GpuAnswer:
    """Return Wan2GP's MPS answer from the chip named in system_profiler's report."""
    chips = [line.partition(":")[2].strip() for line in report.splitlines() if "Chip" in line]
    chip = chips[0] if chips else ""
    if not chip:
        return GpuAnswer(True, "unknown", "system_profiler names no chip")
    return GpuAnswer(not any(name in chip for name in MAC_WITHOUT_BF16), "mac", chip)


def parse_capabilities(text: str) -> list[tuple[int, int]]:
    """Return one (major, minor) per GPU line (``8.6``); raise DetectionError on anything else."""
    found = []
    for line in text.splitlines():
        if not line.strip():
            continue
        major, dot, minor = line.strip().partition(".")
        if not (dot and major.isdigit() and minor.isdigit()):
            raise DetectionError(f"nvidia-smi said {line.strip()[:60]!r}, not a compute capability")
        found.append((int(major), int(minor)))
    if not found:
        raise DetectionError("nvidia-smi lists no GPU")
    return found


def visible_index(env: Mapping[str, str]) -> int:
    """Return the index of the GPU CUDA numbers 0: CUDA_VISIBLE_DEVICES' first entry if a number."""
    first = env.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def detect(
    run: Runner = run_nvidia_smi,
    env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    mac: Runner = run_system_profiler,
) -> GpuAnswer:
    """Ask nvidia-smi (a Mac: system_profiler); an unknown answer assumes bf16 and says why."""
    if platform == "darwin":
        try:
            return mac_answer(mac())
        except DetectionError as exc:
            return GpuAnswer(True, "unknown", str(exc))
    try:
        capabilities = parse_capabilities(run())
    except DetectionError as exc:
        return GpuAnswer(True, "unknown", str(exc))
    index = visible_index(os.environ if env is None else env)
    major, minor = capabilities[index] if index < len(capabilities) else capabilities[0]
    return GpuAnswer(major >= BF16_FROM_MAJOR, "nvidia-smi", f"{major}.{minor}")


def driver_key(driver: Path | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """Return a digest of what nvidia-smi's answer depends on; None without a loaded driver."""
    folder = DRIVER if driver is None else driver
    try:
        version = (folder / "version").read_text(encoding="utf-8", errors="replace")
        gpus = sorted(os.listdir(folder / "gpus"))
    except OSError:
        return None
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES", "")
    return hashlib.sha256("\0".join([version, *gpus, visible]).encode()).hexdigest()


def remembered(key: str, cache_file: Path) -> GpuAnswer | None:
    """Return the nvidia-smi answer kept for key, or None (none kept, another key, damaged)."""
    try:
        entry = jsonfile.read_json(cache_file)
    except (OSError, jsonfile.JSONFileError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    bf16, detail = entry.get("bf16"), entry.get("detail")
    if not isinstance(bf16, bool) or not isinstance(detail, str):
        return None
    return GpuAnswer(bf16, "nvidia-smi", detail)


def cached_detect(
    run: Runner = run_nvidia_smi, key: str | None = None, cache_file: Path | None = None
) -> GpuAnswer:
    """Return the answer kept for key, else ask nvidia-smi and keep a real answer for next time."""
    if key is None or sys.platform == "darwin":
        return detect(run)
    path = cache_file or fsutil.cache_dir() / CACHE_NAME
    known = remembered(key, path)
    if known is not None:
        return known
    answer = detect(run)
    if answer.how == "nvidia-smi":  # an unknown one may be passing (a busy or waking GPU)
        entry = {"key": key, "bf16": answer.bf16, "detail": answer.detail}
        with contextlib.suppress(OSError):
            fsutil.atomic_write_json(path, entry)
    return answer


def gpu_answer(
    setting: bool | None, run: Runner = run_nvidia_smi, key: str | None = None
) -> GpuAnswer:
    """Return the setting's answer when set (true/false), else the detected one.

    key (see driver_key) lets an earlier start's answer stand in for asking nvidia-smi again.
    """
    if setting is not None:
        return GpuAnswer(setting, "config")
    return cached_detect(run, key)
