"""What a start loads before it shows anything: the downloader and urllib3 wait for a request.

Timings live in bench/first_frame.py (never timed assertions here); these tests pin what makes
them: an offline start reads the catalog without loading urllib3, its http.client and ssl, or
the download engine (nor email, the Reclaim view); the downloads themselves are test_download_cli's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.wan2gp_fixtures import make_install, url

PROJECT = Path(__file__).resolve().parent.parent
HEAVY = ("urllib3", "http.client", "ssl", "email", "blake3")
HEAVY += ("wandown.engine.core", "wandown.remote.http", "wandown.reclaim")

# Runs the real main() as wandown.py does, then says which heavy modules it had loaded.
PROBE = """
import json, sys
sys.path.insert(0, {project!r})
from wandown.cli import main
status = main(sys.argv[1:])
print(json.dumps({{"status": status, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def test_an_offline_list_loads_neither_urllib3_nor_the_engine(tmp_path: Path) -> None:
    root = make_install(tmp_path / "Wan2GP", {"m": {"URLs": [url("o/r", "m.safetensors")]}})
    probe = PROBE.format(project=str(PROJECT), heavy=HEAVY)
    argv = ["--list", "--offline", "--hub-dir", "", "--gpu-bf16", "yes"]
    argv += ["--wan2gp-dir", str(root / "ckpts"), "--config-file", str(tmp_path / "c.json")]
    env = {**os.environ, "WANDOWN_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "m.safetensors" in done.stdout
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said == {"status": 0, "loaded": []}
