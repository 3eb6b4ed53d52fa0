"""The server's TLS context, whose certificate, key and client CA are read again when their
files change, as the exporter-toolkit does (it reads them on every handshake).

The HTTP server is handed one ``SSLContext`` when it starts. Every handshake on it calls its
``sni_callback`` (OpenSSL calls it whether or not the client sent a server name); there, at
most once a second, the files' stamps are compared, and when they changed a fresh context is
built and the connection is moved onto it. A certificate that cannot be loaded (a key written
after its certificate, say) is logged and the previous one goes on serving."""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path

from llmmon.config.files import check_regular

CERT_FILE_LIMIT = 16 << 20  # a certificate chain or CA bundle

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between looks at the files' stamps

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    # Python cannot ask for a certificate without verifying one it gets; an unverified
    # certificate proves nothing, so not asking loses nothing.
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}

Stamp = tuple[tuple[int, int, int] | None, ...]


class ServerTLS:
    """``context`` is the one to serve with; it stays the same object for the server's life."""

    def __init__(self, cert_file: Path, key_file: Path, client_auth_type: str,
                 client_ca_file: Path | None, min_version: str) -> None:
        self._files = (cert_file, key_file, client_ca_file)
        self._verify = CLIENT_AUTH[client_auth_type]
        self._min_version = TLS_VERSIONS[min_version]
        self._stamp = self._stamps()
        self.context = self._build()  # raises OSError or ssl.SSLError: a config error
        self.context.sni_callback = self._hello
        self._current = self.context
        self._checked = time.monotonic()

    def _build(self) -> ssl.SSLContext:
        cert_file, key_file, ca_file = self._files
        # OpenSSL opens what it is given, on the loop (the SNI callback runs there): a FIFO
        # or a device in place of a certificate must be refused before it is opened.
        for path in self._files:
            if path is not None:
                check_regular(path, CERT_FILE_LIMIT)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self._min_version
        context.load_cert_chain(cert_file, key_file)
        context.verify_mode = self._verify
        if ca_file is not None:
            context.load_verify_locations(ca_file)
        return context

    def _stamps(self) -> Stamp:
        stamps: list[tuple[int, int, int] | None] = []
        for path in self._files:
            try:
                st = os.stat(path) if path is not None else None
            except (OSError, ValueError):  # ValueError: a NUL in the path
                st = None
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino) if st else None)
        return tuple(stamps)

    def refresh(self, force: bool = False) -> None:
        """Rebuild the context when the files changed since the last look."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY:
            return
        self._checked = now
        stamp = self._stamps()
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a failure is logged once per change of the files
        try:
            fresh = self._build()
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("TLS certificate files changed but cannot be loaded (%s); the previous "
                        "certificate is kept", getattr(exc, "strerror", None) or exc)
            return
        self._current = fresh
        log.info("TLS certificate reloaded from %s", self._files[0])

    def _hello(self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
               context: ssl.SSLContext) -> None:
        try:
            self.refresh()
            if self._current is not self.context:
                conn.context = self._current
        except Exception:  # never fail a handshake over this: the old certificate serves
            log.exception("checking the TLS certificate files failed")
