"""User-facing errors.

Every problem a user can cause (bad config, bad data, failed download) raises a subclass of
:class:`ScsynthError` with a one-line message naming *what* is wrong and *where* (file, key, column).
The CLI and the workflow scripts print that line instead of a traceback.
"""

from __future__ import annotations


class ScsynthError(Exception):
    """Base class of every error scsynth raises on purpose."""


class ConfigError(ScsynthError):
    """A configuration value or registry entry is missing, unknown or of the wrong type."""


class DataError(ScsynthError):
    """Input data are unreadable or violate what a step needs (counts, labels, cells per class)."""


class DownloadError(ScsynthError):
    """A download failed after its retries, or its size or checksum does not match."""


class TrainingError(ScsynthError):
    """Training diverged (non-finite loss) or cannot resume from a checkpoint."""
