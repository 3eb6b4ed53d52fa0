"""API keys, from an environment variable or a file, handed out only as ``SecretStr``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import SecretStr, ValidationInfo

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
    a restart. The value is only ever handed out as a ``SecretStr``. A variable that is not
    set (a config validated offline) gives no key.
    """

    def __init__(self, *, env: str | None = None, path: Path | None = None) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        value = os.environ.get(env, "").strip() if env else ""
        self._value = SecretStr(value) if value else None

    def __repr__(self) -> str:
        return "ApiKey(**********)"

    def get(self) -> SecretStr | None:
        if self._path is None:
            return self._value
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._value = SecretStr(self._path.read_text(encoding="utf-8").strip())
            self._stamp = stamp
        return self._value
