"""One exception root, so the command line can turn any expected failure into a message."""


class WandownError(Exception):
    """An expected failure with a message meant for the user."""

    exit_code = 1


class ConfigError(WandownError):
    """The configuration file or a flag is unusable."""

    exit_code = 2


class CatalogError(WandownError):
    """The Wan2GP install cannot be read at all."""

    exit_code = 2


class RemoteError(WandownError):
    """The Hub answered with something wandown cannot use."""


class DownloadError(WandownError):
    """A file could not be fetched or verified."""


class UsageError(WandownError):
    """Flags that do not fit together, or a selection that names nothing."""

    exit_code = 2


class DiskSpaceError(WandownError):
    """The files to fetch do not fit a disk's free space minus the reserve; nothing started."""

    exit_code = 3
