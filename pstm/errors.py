"""Error types. Every error a user can cause derives from :class:`PstmError`.

Each also inherits the matching builtin so callers may catch either, and each message
says what is wrong, where, and how to fix it. The CLI and the workflow scripts print the
message (no traceback) and exit non-zero.
"""


class PstmError(Exception):
    """Base of every error pstm raises on purpose."""


class ConfigError(PstmError, ValueError):
    """The configuration is invalid (bad key, type, value or combination)."""


class InputDataError(PstmError, ValueError):
    """Input traces, headers or velocities are malformed."""


class InputFileNotFoundError(PstmError, FileNotFoundError):
    """An input file named in the configuration does not exist."""


class BackendUnavailableError(PstmError, RuntimeError):
    """A kernel backend was requested that cannot run on this machine."""


class PlanError(PstmError, ValueError):
    """The tile plan cannot satisfy the grid, memory budget or job limits."""


class DiskFullError(PstmError, OSError):
    """An output could not be written because the disk, a quota or a file-size limit is full."""
