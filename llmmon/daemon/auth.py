"""TLS and basic auth for llmmon's HTTP server, read from a file in the format of the
Prometheus exporter-toolkit's web configuration (``--web.config.file``), so an operator can
reuse the file their other exporters already use.

    tls_server_config:
      cert_file: /etc/llmmon/tls.crt                 # relative: to this file's directory
      key_file: /etc/llmmon/tls.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: /etc/llmmon/ca.crt             # optional
      min_version: TLS12                             # optional
    basic_auth_users:
      prometheus: $2y$10$...                         # bcrypt hash, never a password

Passwords are checked in one thread of their own (bcrypt costs ~100 ms by design), never in
asyncio's default executor, where the probes resolve names: a flood of wrong passwords then
takes at most one core and leaves the probes' measurements alone. Recent verdicts, failures
included, are remembered by a keyed digest of user and password (never the password)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import ssl
import sys
import threading
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from llmmon.config import ConfigError, StrictModel
from llmmon.config.settings import describe_errors, read_yaml
from llmmon.daemon.tls import ServerTLS

# Salt and digest of a hash no password is known for; a user that is not configured is
# checked against it, at the configured hashes' cost, so a wrong name costs as long as a
# wrong password.
_DUMMY_TAIL = "rYnYQT3TreY5c86kWgvApOiq8u1kC.jn7X5ku5ytQjAFJ75IkT.nS"
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_VERIFYING = ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven")
PASSED_CACHE, FAILED_CACHE = 64, 1024  # verdicts remembered; failures cannot evict successes
_MAX_PASSWORD = 72  # bytes; bcrypt refuses longer ones, as Go's does
BCRYPT_NICE = 10



def _yield_cpu() -> None:
    """The bcrypt thread gives way to the event loop and the name lookups the probes time
    (nice 10; on Linux the nice value is per thread), so that a flood of wrong passwords on a
    busy host delays logins, not measurements."""
    if sys.platform == "linux":
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BCRYPT_NICE)
        except OSError:
            pass


# The one thread every password check runs in, whichever web config (a reload makes a new one).
MAX_PENDING = 8  # bcrypt checks queued at once (each ~50-100 ms at cost 10)
_bcrypt_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmmon-bcrypt",
                                  initializer=_yield_cpu)


def hash_problems(path: Path, users: dict[str, str]) -> list[str]:
    """A line per user whose hash is not a whole bcrypt hash (the hash is never shown): one
    such as ``$2y$10$short`` would be taken, and every login then fail without a word."""
    return [f"{path}: basic_auth_users.{user}: must be a bcrypt hash ($2a$, $2b$ or $2y$, a "
            "cost from 04 to 31, 60 characters in all)" for user, hashed in users.items()
            if not ((m := _BCRYPT.fullmatch(hashed)) and 4 <= int(m.group(1)) <= 31)]


class TLSServerConfig(StrictModel):
    cert_file: Path
    key_file: Path
    client_auth_type: Literal[
        "NoClientCert", "RequestClientCert", "RequireAnyClientCert",
        "VerifyClientCertIfGiven", "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: Literal["TLS12", "TLS13"] = "TLS12"

    @model_validator(mode="after")
    def _client_auth(self) -> TLSServerConfig:
        kind = self.client_auth_type
        if kind == "RequireAnyClientCert":
            raise ValueError("client_auth_type RequireAnyClientCert (a certificate required but "
                             "never verified) is not supported: use RequireAndVerifyClientCert "
                             "with client_ca_file")
        if self.client_ca_file is not None and kind not in _VERIFYING:
            raise ValueError(f"client_ca_file is set but client_auth_type is {kind}, which lets "
                             "clients in without a verified certificate: use "
                             "RequireAndVerifyClientCert (or VerifyClientCertIfGiven)")
        if self.client_ca_file is None and kind in _VERIFYING:
            raise ValueError(f"client_auth_type {kind} needs client_ca_file, the CA that signs "
                             "the clients' certificates")
        return self


class WebConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)


class WebSecurity:
    """What the server needs from a web config: an SSL context and a credentials check."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        tls = config.tls_server_config
        self.tls = None if tls is None else ServerTLS(
            tls.cert_file, tls.key_file, tls.client_auth_type, tls.client_ca_file,
            tls.min_version)
        self._users = {u.encode(): h.encode() for u, h in config.basic_auth_users.items()}
        costs = Counter(h[4:6] for h in config.basic_auth_users.values())
        cost = max(costs, key=lambda c: (costs[c], c)) if costs else "10"
        self._dummy = f"$2b${cost}${_DUMMY_TAIL}".encode()
        self._key = os.urandom(32)  # keys the verdicts' digests: they mean nothing outside
        self._passed: OrderedDict[bytes, None] = OrderedDict()
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        # The bcrypt checks under way, by digest: the check, whether the user is known, and
        # how many requests wait for it.
        self._pending: dict[bytes, tuple[asyncio.Future[bool], bool, list[int]]] = {}

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return None if self.tls is None else self.tls.context

    async def authorized(self, header: str | None) -> bool:
        if not self._users:
            return True
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = (part.encode() for part in credentials)
        digest = hmac.digest(self._key, len(user).to_bytes(4, "big") + user + password,
                             hashlib.sha256)
        for seen, verdict in ((self._passed, True), (self._failed, False)):
            if digest in seen:
                seen.move_to_end(digest)
                return verdict
        if len(password) > _MAX_PASSWORD:
            self._remember(digest, False)
            return False
        return await self._check(digest, password, self._users.get(user))

    async def _check(self, digest: bytes, password: bytes, hashed: bytes | None) -> bool:
        """One bcrypt in the bcrypt thread, shared by every request that asks the same."""
        pending = self._pending.get(digest)
        if (pending is None or pending[0].cancelled()) and len(self._pending) >= MAX_PENDING:
            # A queue of fresh guesses would hold each asker's connection for seconds and
            # fill the server: beyond a few, a new guess is refused unchecked (not cached).
            return False
        if pending is None or pending[0].cancelled():
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(_bcrypt_pool, _check, password, hashed or self._dummy)
            pending = self._pending[digest] = (future, hashed is not None, [0])
            future.add_done_callback(lambda done: self._settle(digest, done))
        future, known, waiting = pending
        waiting[0] += 1
        try:
            return await asyncio.shield(future) and known
        finally:
            waiting[0] -= 1
            if not waiting[0] and not future.done():  # every asker went away: drop the work
                future.cancel()

    def _settle(self, digest: bytes, done: asyncio.Future[bool]) -> None:
        if (pending := self._pending.get(digest)) is None or pending[0] is not done:
            return
        del self._pending[digest]
        if not done.cancelled() and done.exception() is None:
            self._remember(digest, done.result() and pending[1])

    def _remember(self, digest: bytes, verdict: bool) -> None:
        seen, size = (self._passed, PASSED_CACHE) if verdict else (self._failed, FAILED_CACHE)
        seen[digest] = None
        if len(seen) > size:
            seen.popitem(last=False)


def _check(password: bytes, hashed: bytes) -> bool:
    import bcrypt  # here: 0.4 MiB that a daemon without users never needs

    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False  # checked at load: not reached with a well-formed hash


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def load_web_config(path: Path | None) -> WebSecurity:
    """Read and check a web config file; ``None`` means plain HTTP without auth. Relative
    certificate, key and CA paths are taken from the file's directory, as the exporter-toolkit
    takes them."""
    if path is None:
        return WebSecurity(WebConfig())
    data = read_yaml(path)
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{path}: {line}" for line in describe_errors(exc)]) from None
    if problems := hash_problems(path, config.basic_auth_users):
        raise ConfigError(problems)
    if (tls := config.tls_server_config) is not None:
        tls.cert_file, tls.key_file = path.parent / tls.cert_file, path.parent / tls.key_file
        if tls.client_ca_file is not None:
            tls.client_ca_file = path.parent / tls.client_ca_file
    try:
        return WebSecurity(config)
    except (OSError, ssl.SSLError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise ConfigError([f"{path}: tls_server_config: cannot load ({why})"]
                          ) from None
