"""The ``--demo`` sandbox: a made-up Wan2GP install, its Hub on loopback, and a model hub.

Everything lives in one temporary folder and is generated on the spot, deterministically:

    wandown-demo-XXXX/
      config.json    wandown's settings for the sandbox (a low bandwidth limit, so progress shows)
      Wan2GP/        defaults/ and finetunes/ in Wan2GP's real format; ckpts/ starts empty
      served/        <owner>/<repo>/<path>: every file the catalog lists, served by LocalHub
      model-hub/     the user's hub: one renamed copy, one Hugging Face cache, one decoy
      cache/         wandown's metadata cache and hash sidecars (WANDOWN_CACHE_DIR)

The command line then runs its normal modes on ``config.json`` with HF_ENDPOINT at the local
Hub; nothing in the interface or the engine knows it is a demo. The demo's models borrow real
architectures, so wandown's code-side data adds the usual text encoder, VAE and core files; those
are served from their real repo names (DeepBeepMeep/...) by the local Hub, never by huggingface.co.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from wandown.catalog import Catalog, load_catalog
from wandown.digests import SHA256, hash_file
from wandown.errors import WandownError
from wandown.fsutil import atomic_write_json
from wandown.localhub import LocalHub

MB = 1024 * 1024
BANDWIDTH_LIMIT_KB = 12000  # about 25 s for the ~300 MB a full demo downloads
BLOCK_SIZE = MB  # a file's contents repeat one random block of this size: fast, never all zero

DEMO_OWNER = "wandown-demo"
WAN21 = f"{DEMO_OWNER}/DemoWan2.1"
WAN22 = f"{DEMO_OWNER}/DemoWan2.2"
LORAS = f"{DEMO_OWNER}/DemoLoras"

T2V = "demo_t2v_14B_quanto_mbf16_int8.safetensors"
I2V = "demo_i2v_480p_14B_quanto_mbf16_int8.safetensors"
HIGH = "demo_t2v_A14B_high_quanto_mbf16_int8.safetensors"
LOW = "demo_t2v_A14B_low_quanto_mbf16_int8.safetensors"

# Sizes of the made-up files and of the code-side files worth a visible progress bar; other
# weights get 1-3 MB and small text files a few KB (see demo_size).
SIZES = {
    T2V: 128 * MB,
    "demo_t2v_14B_mbf16.safetensors": 32 * MB,
    I2V: 64 * MB,
    "demo_i2v_480p_14B_mbf16.safetensors": 16 * MB,
    "demo_vace_14B_module_quanto_mbf16_int8.safetensors": 32 * MB,
    "demo_vace_14B_module_mbf16.safetensors": 8 * MB,
    HIGH: 48 * MB,
    "demo_t2v_A14B_high_mbf16.safetensors": 12 * MB,
    LOW: 44 * MB,  # not HIGH's size: each hub file is a candidate for one wanted file only
    "demo_t2v_A14B_low_mbf16.safetensors": 11 * MB,
    "demo_clip_vision_h.safetensors": 6 * MB,
    "demo_t2v_causvid_lora.safetensors": 10 * MB,
    "demo_t2v_2_2_lightning_4steps_lora.safetensors": 5 * MB,
    "models_t5_umt5-xxl-enc-quanto_int8.safetensors": 12 * MB,
    "models_t5_umt5-xxl-enc-bf16.safetensors": 6 * MB,
    "models_clip_open-clip-xlm-roberta-large-vit-huge-14-bf16.safetensors": 8 * MB,
    "Wan2.1_VAE.safetensors": 5 * MB,
    "Wan2.1_VAE_upscale2x_imageonly_real_v1.safetensors": 3 * MB,
}
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".onnx", ".ckpt", ".model")
TEXT_SUFFIXES = (".json", ".yaml", ".txt")
# Served, hub and downloaded copies together, with room to spare.
NEEDED_SPACE = 1500 * MB
HASH_CACHE = "localhub-hashes.json"  # in the sandbox's cache folder

# The model hub's three planted files, relative to model-hub/.
PLAIN_COPY = "checkpoints/wan2.2/t2v_high_noise_int8.safetensors"
HF_CACHE = f"huggingface/hub/models--{DEMO_OWNER}--DemoWan2.2"
DECOY = f"downloads/{I2V}"

README = """\
This folder is a wandown demo sandbox; everything in it is made up and safe to delete.

  Wan2GP/     a small Wan2GP install (defaults/, finetunes/); downloads land in Wan2GP/ckpts/
  served/     what the demo's local Hub served (python -m wandown.localhub served)
  model-hub/  a model hub holding a renamed copy, a Hugging Face cache and a decoy
  cache/      wandown's metadata cache for this sandbox (WANDOWN_CACHE_DIR)

To look at it again, from this folder (with wandown's folder as WANDOWN):
  PYTHONPATH=$WANDOWN python -m wandown.localhub served     # prints the URL it serves on
  HF_ENDPOINT=<URL> WANDOWN_CACHE_DIR=cache python $WANDOWN/wandown.py --config-file config.json
"""

# Environment variables a demo sets or hides for its duration, then puts back.
ISOLATED_ENV = (
    "WANDOWN_CACHE_DIR",
    "HF_ENDPOINT",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_OFFLINE",
)


class DemoError(WandownError):
    """The demo sandbox cannot be built."""

    exit_code = 2


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """A running demo: its folder, with wandown's config in it, and the local Hub's URL."""

    folder: Path
    endpoint: str

    @property
    def config_file(self) -> Path:
        return self.folder / "config.json"

    @property
    def wan2gp_root(self) -> Path:
        return self.folder / "Wan2GP"

    @property
    def served_dir(self) -> Path:
        return self.folder / "served"

    @property
    def hub_dir(self) -> Path:
        return self.folder / "model-hub"

    @property
    def cache_dir(self) -> Path:
        return self.folder / "cache"


def _url(repo: str, path: str) -> str:
    return f"https://huggingface.co/{repo}/resolve/main/{path}"


def _variants(repo: str, stem: str) -> list[str]:
    """Return a model's two variants, as Wan2GP lists them: bf16 first, then the int8 one."""
    return [
        _url(repo, f"{stem}_mbf16.safetensors"),
        _url(repo, f"{stem}_quanto_mbf16_int8.safetensors"),
    ]


def definitions() -> dict[str, dict[str, object]]:
    """Return the demo's definition files, by path relative to the Wan2GP root."""
    made_up = "Made up for the wandown demo: "
    return {
        "defaults/demo_t2v.json": {
            "model": {
                "name": "Demo Text2video 14B",
                "architecture": "t2v",
                "description": made_up + "a plain model with two variants of its main file.",
                "URLs": _variants(WAN21, "demo_t2v_14B"),
            }
        },
        "defaults/demo_i2v.json": {
            "model": {
                "name": "Demo Image2video 480p 14B",
                "architecture": "i2v",
                "description": made_up + "a model with a preloaded file.",
                "URLs": _variants(WAN21, "demo_i2v_480p_14B"),
                "preload_URLs": [_url(WAN21, "demo_clip_vision_h.safetensors")],
            }
        },
        "defaults/demo_t2v_2_2.json": {
            "model": {
                "name": "Demo Wan2.2 Text2video A14B",
                "architecture": "t2v_2_2",
                "description": made_up + "a two-phase model (high and low noise) with a LoRA.",
                "URLs": _variants(WAN22, "demo_t2v_A14B_high"),
                "URLs2": _variants(WAN22, "demo_t2v_A14B_low"),
                "loras": [_url(LORAS, "demo_t2v_2_2_lightning_4steps_lora.safetensors")],
                "loras_multipliers": [1],
                "group": "wan2_2",
            },
            "guidance_phases": 2,
            "switch_threshold": 875,
        },
        "defaults/demo_vace_14B.json": {
            "model": {
                "name": "Demo Vace 14B",
                "architecture": "vace_14B",
                "description": made_up + "a module on top of Demo Text2video's main file.",
                "modules": [_variants(WAN21, "demo_vace_14B_module")],
                "URLs": "demo_t2v",
            }
        },
        "defaults/demo_vace_14B_2_2.json": {
            "model": {
                "name": "Demo Wan2.2 Vace A14B",
                "architecture": "vace_14B_2_2",
                "description": made_up + "references to another model's files and module.",
                "modules": ["demo_vace_14B"],
                "URLs": "demo_t2v_2_2",
                "URLs2": "demo_t2v_2_2",
            },
            "guidance_phases": 2,
        },
        "finetunes/demo_t2v_causvid.json": {
            "model": {
                "name": "Demo Text2video CausVid (a user's finetune)",
                "architecture": "t2v",
                "description": made_up + "a finetune reusing Demo Text2video with a LoRA.",
                "URLs": "demo_t2v",
                "loras": [_url(LORAS, "demo_t2v_causvid_lora.safetensors")],
                "loras_multipliers": [1],
            },
            "num_inference_steps": 8,
        },
    }


def demo_size(path: str) -> int:
    """Return the size of a served file: a table entry, 1-3 MB of weights, or a few KB."""
    name = path.rsplit("/", 1)[-1]
    if name in SIZES:
        return SIZES[name]
    spread = int.from_bytes(hashlib.sha256(path.encode()).digest()[:4], "big")
    if name.lower().endswith(WEIGHT_SUFFIXES):
        return MB + spread % (2 * MB)
    return 2048 + spread % (30 * 1024)


def write_demo_file(target: Path, size: int, seed: str) -> None:
    """Write size deterministic bytes made from seed: one random block, repeated."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.name.endswith(TEXT_SUFFIXES):
        line = json.dumps({"wandown_demo": seed, "note": "made-up file"}) + "\n"
        data = (line * (size // len(line) + 1)).encode()[:size]
        target.write_bytes(data)
        return
    block = random.Random(seed).randbytes(min(size, BLOCK_SIZE))
    with open(target, "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.write(block[: size % len(block)])


def write_install(root: Path) -> Catalog:
    """Write the demo's Wan2GP install at root and return its catalog."""
    for rel, content in definitions().items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    # This made-up user keeps every demo model in Wan2GP's list, so all their files start ticked
    # (and the quick start's one d fetches them all); Enter in the Models view unticks one.
    settings = {"transformer_types": sorted(Path(rel).stem for rel in definitions())}
    (root / "wgp_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (root / "ckpts").mkdir(exist_ok=True)
    return load_catalog(root)


def write_served(catalog: Catalog, served: Path) -> None:
    """Make every file the catalog lists available under served/<owner>/<repo>/<path>."""
    for record in catalog.records:
        if record.repo is None or record.path is None:
            continue
        key = f"{record.repo}/{record.path}"
        write_demo_file(served / key, demo_size(record.path), key)


def plant_hub(hub_dir: Path, served: Path, commit_22: str) -> None:
    """Fill the model hub: a renamed copy, a Hugging Face cache entry and a decoy."""
    plain = hub_dir / PLAIN_COPY
    plain.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(served / WAN22 / HIGH, plain)

    # huggingface_hub's cache layout: blobs named by sha256, a snapshot of relative links.
    cache = hub_dir / HF_CACHE
    source = served / WAN22 / LOW
    blob_name = hash_file(source, [SHA256])[SHA256]
    (cache / "blobs").mkdir(parents=True)
    shutil.copyfile(source, cache / "blobs" / blob_name)
    snapshot = cache / "snapshots" / commit_22
    snapshot.mkdir(parents=True)
    os.symlink(os.path.join("..", "..", "blobs", blob_name), snapshot / LOW)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text(commit_22, encoding="ascii")

    # Same name and size as a needed file, other bytes: must be hashed and refused.
    write_demo_file(hub_dir / DECOY, demo_size(I2V), f"decoy {I2V}")


def build_sandbox(layout: Sandbox) -> None:
    """Lay the demo out in layout.folder (the endpoint is not needed yet)."""
    catalog = write_install(layout.wan2gp_root)
    write_served(catalog, layout.served_dir)
    # The cache's commit is the one the local Hub reports for the repo, as after a real download.
    unstarted = LocalHub(layout.served_dir, hash_cache=layout.cache_dir / HASH_CACHE)
    plant_hub(layout.hub_dir, layout.served_dir, unstarted.commit_of(WAN22))
    atomic_write_json(
        layout.config_file,
        {
            "_comment": "wandown demo sandbox: made-up files on a local Hub (loopback only)",
            "wan2gp_directory": "Wan2GP/ckpts",
            "hub_directory": "model-hub",
            "bandwidth_limit_kb": BANDWIDTH_LIMIT_KB,
        },
    )
    (layout.folder / "README.txt").write_text(README, encoding="utf-8")


@contextlib.contextmanager
def _isolated_env(cache: Path, token_path: Path) -> Iterator[None]:
    """Point wandown's cache into the sandbox and hide the user's Hub token and offline switch.

    The demo's Hub is on loopback and holds made-up files: the user's token has no business
    there, and HF_HUB_OFFLINE (meant for huggingface.co) would only leave the demo empty.
    """
    saved = {name: os.environ.get(name) for name in ISOLATED_ENV}
    try:
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
            os.environ.pop(name, None)
        os.environ["WANDOWN_CACHE_DIR"] = str(cache)
        os.environ["HF_TOKEN_PATH"] = str(token_path)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_space(base: Path) -> None:
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return
    if free < NEEDED_SPACE:
        raise DemoError(
            f"the demo needs about {NEEDED_SPACE // MB} MB free in {base} and only "
            f"{free // MB} MB are; point TMPDIR at a roomier folder"
        )


@contextlib.contextmanager
def demo_sandbox(keep: bool, notice: Callable[[str], None]) -> Iterator[Sandbox]:
    """Build a demo sandbox, serve it on loopback, and remove it on exit unless keep.

    While it is open, WANDOWN_CACHE_DIR and HF_ENDPOINT point into the sandbox and the user's
    Hub token is hidden; all are restored on exit, also after an error or Ctrl-C.
    """
    # Imported here: the command line is the demo's only caller and imports it on demand.
    from wandown.interrupts import interrupt_on_signals, signals_deferred

    base = Path(tempfile.gettempdir())
    _check_space(base)
    # SIGTERM or SIGHUP while the sandbox is built must still remove it; the CLI's run mode
    # installs the same handlers again for its own part.
    with interrupt_on_signals():
        folder: Path | None = None
        try:
            with signals_deferred():  # the folder is known to the cleanup below before a signal
                folder = Path(tempfile.mkdtemp(prefix="wandown-demo-", dir=base))
            layout = Sandbox(folder, endpoint="")
            with _isolated_env(layout.cache_dir, folder / "no-hf-token"):
                try:
                    build_sandbox(layout)
                except OSError as exc:
                    raise DemoError(
                        f"cannot build the demo sandbox in {folder}: {exc.strerror or exc}"
                    ) from None
                with LocalHub(layout.served_dir, hash_cache=layout.cache_dir / HASH_CACHE) as hub:
                    os.environ["HF_ENDPOINT"] = hub.url
                    fate = "kept" if keep else "removed"
                    notice(
                        f"demo: made-up models in {folder} ({fate} on exit), served by a local "
                        f"Hub at {hub.url} (loopback only; huggingface.co is never contacted)"
                    )
                    yield dataclasses.replace(layout, endpoint=hub.url)
        finally:
            if folder is not None and keep:
                notice(f"demo sandbox kept in {folder}")
            elif folder is not None:
                with signals_deferred():  # a second Ctrl-C or a hang-up must not leave half
                    shutil.rmtree(folder, ignore_errors=True)
