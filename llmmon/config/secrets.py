"""API keys, from an environment variable or a file, handed out only as ``SecretStr``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr


class ApiKey:
    """An API key from an environment variable (read once) or a file (re-read when it changes).

    A key file is re-read on change so that a rotated Kubernetes Secret takes effect without
    a restart. The value is only ever handed out as a ``SecretStr``.
    """

    def __init__(self, *, env: str | None = None, path: Path | None = None) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._value = SecretStr(os.environ[env].strip()) if env else None

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
