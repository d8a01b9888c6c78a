"""Whether the GPU Wan2GP runs on has fast bf16: with the "auto" dtype policy, Wan2GP loads the
fp16 files on a GPU of compute capability below 8 (wgp.py ~2511-2516, 8681e9f).

Asked of ``nvidia-smi`` (the GPU Wan2GP uses by default: the first one CUDA_VISIBLE_DEVICES lets it
see), or taken from config.json's ``gpu_bf16`` / ``--gpu-bf16``. Without an answer bf16 is assumed:
Wan2GP itself needs a CUDA GPU (or Apple's MPS) to start, and current GPUs have bf16.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

QUERY = ("nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader")
TIMEOUT_S = 5.0
BF16_FROM_MAJOR = 8
Runner = Callable[[], str]


@dataclass(frozen=True)
class GpuAnswer:
    """The bf16 answer and where it came from, in words for the header and notices."""

    bf16: bool
    how: str  # "nvidia-smi", "config", "unknown"
    detail: str = ""  # e.g. "compute capability 7.5"

    @property
    def label(self) -> str:
        """Return the header's short form: ``GPU bf16``, ``GPU fp16 (cc 7.5)``, ``GPU unknown``."""
        if self.how == "unknown":
            return "GPU unknown (bf16 assumed)"
        kind = "bf16" if self.bf16 else "fp16"
        where = f"cc {self.detail}" if self.how == "nvidia-smi" else "set in config"
        return f"GPU {kind} ({where})"


class DetectionError(Exception):
    """nvidia-smi is missing, failed, or said something else than compute capabilities."""


def run_nvidia_smi() -> str:
    """Return nvidia-smi's compute capability lines, found on PATH; raise DetectionError."""
    try:
        done = subprocess.run(
            QUERY, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise DetectionError("no nvidia-smi on PATH") from None
    except subprocess.TimeoutExpired:
        raise DetectionError(f"nvidia-smi gave no answer in {TIMEOUT_S:g} s") from None
    except OSError as exc:
        raise DetectionError(f"nvidia-smi cannot run ({exc.strerror})") from None
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        raise DetectionError(f"nvidia-smi failed: {said[0] if said else done.returncode}")
    return done.stdout


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


def detect(run: Runner = run_nvidia_smi, env: Mapping[str, str] | None = None) -> GpuAnswer:
    """Ask nvidia-smi; an unknown answer assumes bf16 (and says why in detail)."""
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
