"""wandown: the smart model downloader for the Wan2GP video app."""

__version__ = "0.1.0"
