"""API keys, from an environment variable or a file, handed out only as ``SecretStr``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import SecretStr, ValidationInfo

from llmmon.config.files import SECRET_FILE_LIMIT, check_regular, read_regular
from llmmon.config.types import is_offline

# The usual form of a variable's name. A name outside it is not repeated in messages: a value
# such as hf_AbC123... is a valid name too, and may be a key pasted into the wrong field.
_PLAIN_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


def require_env(name: str, info: ValidationInfo) -> str:
    """A validator's check that the variable ``name`` holds a value (offline: nothing to
    check). The message names the variable, never its value."""
    if is_offline(info) or os.environ.get(name, "").strip():
        return name
    if _PLAIN_ENV_NAME.fullmatch(name):
        raise ValueError(f"environment variable {name} is not set or empty")
    raise ValueError("names an environment variable that is not set or empty (the name is "
                     "not repeated: it is not in upper case, and may be a key)")


class ApiKey:
    """An API key from an environment variable (read once) or a file (re-read when it changes).

    A key file is re-read on change so that a rotated Kubernetes Secret takes effect without
    a restart; it must be a regular file of at most 64 KiB of UTF-8 (``files.read_regular``).
    The value is only ever handed out as a ``SecretStr``. A variable that is not set (a
    config validated offline) gives no key.
    """

    def __init__(self, *, env: str | None = None, path: Path | None = None) -> None:
        self._path = path
        self._stamp: tuple[int, int, int, int] | None = None
        value = os.environ.get(env, "").strip() if env else ""
        self._value = SecretStr(value) if value else None

    def __repr__(self) -> str:
        return "ApiKey(**********)"

    def get(self) -> SecretStr | None:
        if self._path is None:
            return self._value
        # A stat (and, when the file changed, a read of at most 64 KiB of a regular file):
        # microseconds on the event loop. A FIFO, a device, a file too large or not UTF-8
        # raise FileProblem (an OSError naming the file and why), and so does a file gone.
        stat = check_regular(self._path, SECRET_FILE_LIMIT)
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)
        if stamp != self._stamp:
            self._value = SecretStr(read_regular(self._path, SECRET_FILE_LIMIT).strip())
            self._stamp = stamp
        return self._value
