"""Whether the GPU Wan2GP runs on has fast bf16: with the "auto" dtype policy, Wan2GP loads the
fp16 files on a GPU of compute capability below 8 (wgp.py ~2511-2516, 8681e9f).

Asked of ``nvidia-smi`` (the GPU Wan2GP uses by default: the first one CUDA_VISIBLE_DEVICES lets
it see), on a Mac of ``system_profiler`` (Wan2GP's MPS patch, shared/mps/device_patch.py ~20-31,
gives M1 and M2 chips capability 7.0 and no bf16), or taken from config.json's ``gpu_bf16`` /
``--gpu-bf16``. Without an answer bf16 is assumed: Wan2GP itself needs a CUDA GPU (or Apple's MPS)
to start, and current GPUs have bf16.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

QUERY = ("nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader")
MAC_QUERY = ("system_profiler", "SPDisplaysDataType")
MAC_WITHOUT_BF16 = ("M1", "M2")
TIMEOUT_S = 5.0
BF16_FROM_MAJOR = 8
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


def gpu_answer(setting: bool | None, run: Runner = run_nvidia_smi) -> GpuAnswer:
    """Return the setting's answer when set (true/false), else the detected one."""
    if setting is not None:
        return GpuAnswer(setting, "config")
    return detect(run)
