"""TLS and basic auth for llmmon's HTTP server, read from a file in the format of the
Prometheus exporter-toolkit's web configuration (``--web.config.file``), so an operator can
reuse the file their other exporters already use.

    tls_server_config:
      cert_file: /etc/llmmon/tls.crt
      key_file: /etc/llmmon/tls.key
      client_auth_type: RequireAndVerifyClientCert   # optional
      client_ca_file: /etc/llmmon/ca.crt             # optional
      min_version: TLS12                             # optional
    basic_auth_users:
      prometheus: $2y$10$...                         # bcrypt hash, never a password
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from pathlib import Path
from typing import Literal

import bcrypt
from pydantic import Field, ValidationError

from llmmon.config import ConfigError, StrictModel
from llmmon.config.settings import describe_errors, read_yaml

# Checked when a user is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = b"$2b$10$rYnYQT3TreY5c86kWgvApOiq8u1kC.jn7X5ku5ytQjAFJ75IkT.nS"
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


class TLSServerConfig(StrictModel):
    cert_file: Path
    key_file: Path
    client_auth_type: Literal[
        "NoClientCert", "RequestClientCert", "RequireAnyClientCert",
        "VerifyClientCertIfGiven", "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


class WebConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)


class WebSecurity:
    """What the server needs from a web config: an SSL context and a credentials check."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.ssl_context = _ssl_context(config.tls_server_config)
        self._users = {u: h.encode() for u, h in config.basic_auth_users.items()}
        # bcrypt costs ~100 ms by design; cache successful checks (by digest, never the
        # password) so a scrape every few seconds does not burn a core.
        self._verified: set[bytes] = set()

    async def authorized(self, header: str | None) -> bool:
        if not self._users:
            return True
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = hashlib.sha256(user.encode() + b"\0" + password.encode()).digest()
        if any(hmac.compare_digest(digest, seen) for seen in self._verified):
            return True
        hashed = self._users.get(user, _DUMMY_HASH)
        ok = await asyncio.to_thread(_check, password.encode(), hashed)
        if ok and user in self._users:
            self._verified.add(digest)
            return True
        return False


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False  # not a bcrypt hash


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _ssl_context(tls: TLSServerConfig | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
    return context


def load_web_config(path: Path | None) -> WebSecurity:
    """Read and check a web config file; ``None`` means plain HTTP without auth."""
    if path is None:
        return WebSecurity(WebConfig())
    data = read_yaml(path)
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{path}: {line}" for line in describe_errors(exc)]) from None
    for user, hashed in config.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError([f"{path}: basic_auth_users.{user}: must be a bcrypt hash"])
    try:
        return WebSecurity(config)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"{path}: tls_server_config: cannot load ({exc.strerror or exc})"]
                          ) from None
