"""The Hugging Face Hub as wandown sees it: file metadata, its cache, auth and offline mode.

No UI and no decisions about the local disk layout live here.
"""

from wandown.hubhttp.messages import HubError
from wandown.huburl import FileRef, parse_hub_url
from wandown.remote.cache import MetadataCache, MetadataFileError, default_cache_path
from wandown.remote.client import MetadataClient, MetadataResult, RemoteFile
from wandown.remote.settings import HubSettings, hub_settings

__all__ = [
    "FileRef",
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
