"""The Hugging Face Hub as wandown sees it: file metadata, its cache, auth and offline mode.

No UI and no decisions about the local disk layout live here.
"""

from wandown.remote.cache import MetadataCache, MetadataFileError, default_cache_path
from wandown.remote.client import HeadResult, MetadataClient, MetadataResult, RemoteFile
from wandown.remote.messages import HubError
from wandown.remote.settings import FileRef, HubSettings, hub_settings, parse_hub_url

__all__ = [
    "FileRef",
    "HeadResult",
    "HubError",
    "HubSettings",
    "MetadataCache",
    "MetadataClient",
    "MetadataFileError",
    "MetadataResult",
    "RemoteFile",
    "default_cache_path",
    "hub_settings",
    "parse_hub_url",
]
