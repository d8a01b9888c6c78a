"""A Hugging Face Hub-compatible server for tests, the demo and air-gapped sites.

    with LocalHub(root) as hub:          # serves ROOT/<owner>/<repo>/... and models--*--* caches
        os.environ["HF_ENDPOINT"] = hub.url
        hub.set_fault("owner/repo", "model.safetensors", Fault(drop_after=1000, times=1))

Start reading at server.py (LocalHub), then routes.py (what each URL answers).
"""

from wandown.localhub.faults import Fault
from wandown.localhub.server import LocalHub, LocalHubError, RequestRecord

__all__ = ["Fault", "LocalHub", "LocalHubError", "RequestRecord"]
