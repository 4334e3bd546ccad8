"""User-facing errors. The CLI prints their message as one line and exits with code 2.

Raise these for bad input (unknown task or knob, malformed config or data file, missing or corrupt
checkpoint, an output folder holding another run); the message names the field or file.
`short_repr` shows a bad value in such a message.
"""

from __future__ import annotations

from typing import Any


class ReasonlabError(Exception):
    """Bad input: the message is shown to the user as it is, on one line."""


class ConfigError(ReasonlabError):
    """An unknown or invalid config field, YAML file or `--set` override."""


class CheckpointError(ReasonlabError):
    """A missing, corrupt or incompatible checkpoint."""


class RunFolderError(ReasonlabError):
    """An output folder that already holds a different run."""


class DataError(ReasonlabError):
    """A malformed data file: the message names the file, the line and the field."""


def short_repr(value: Any) -> str:
    """repr(value), cut to 40 characters for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
