"""Rows 9 and 12: web configs as exporter-toolkit reads them — whole bcrypt hashes, a client
CA only with a verifying policy, paths relative to the web config, the serving certificate
read again when its files change."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme
import yaml
from cryptography import x509

from llmmon.config import ConfigError
from llmmon.daemon.auth import load_web_config
from tests.conftest import LISTENING, Daemon, reported_port, wait_for


def _web(tmp_path: Path, content: dict[str, object]) -> Path:
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_web_config(path)
    return info.value.problems


GOOD = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()


@pytest.mark.parametrize("hashed", [
    "$2y$10$short",  # taken by the old check, then every login failed without a word
    "$2y$03$" + GOOD[7:],  # cost below bcrypt's least
    "$2y$32$" + GOOD[7:],  # and above its most
    GOOD[:-1],  # cut short
    GOOD + "x",
    GOOD[:10] + "!" + GOOD[11:],  # not bcrypt's alphabet
])
def test_malformed_bcrypt_hash_is_refused_naming_the_user_not_the_hash(
        tmp_path: Path, hashed: str) -> None:
    problems = _problems(_web(tmp_path, {"basic_auth_users": {"alice": GOOD, "bob": hashed}}))
    assert len(problems) == 1
    assert "basic_auth_users.bob: must be a bcrypt hash" in problems[0]
    assert hashed not in problems[0]
    assert "alice" not in problems[0]


async def test_well_formed_hashes_of_each_prefix_are_taken(tmp_path: Path) -> None:
    """$2a$, $2b$ and $2y$ (htpasswd's) all load and check."""
    users = {prefix: f"${prefix}$" + GOOD[4:] for prefix in ("2a", "2b", "2y")}
    security = load_web_config(_web(tmp_path, {"basic_auth_users": users}))
    for user in users:
        assert await security.authorized(_basic(user, "pw"))
        assert not await security.authorized(_basic(user, "wrong"))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("tls_extra", "fragment"),
    [
        # The exporter-toolkit's own refusal: a CA without a policy that checks against it.
        ({"client_ca_file": "ca.pem"}, "client_ca_file is set but client_auth_type is "
         "NoClientCert"),
        ({"client_ca_file": "ca.pem", "client_auth_type": "NoClientCert"},
         "client_ca_file is set but client_auth_type is NoClientCert"),
        ({"client_ca_file": "ca.pem", "client_auth_type": "RequestClientCert"},
         "client_ca_file is set but client_auth_type is RequestClientCert"),
        ({"client_auth_type": "RequireAndVerifyClientCert"},
         "RequireAndVerifyClientCert needs client_ca_file"),
        ({"client_auth_type": "VerifyClientCertIfGiven"},
         "VerifyClientCertIfGiven needs client_ca_file"),
        ({"client_auth_type": "RequireAnyClientCert"}, "RequireAnyClientCert"),
    ],
)
def test_client_ca_without_a_verifying_policy_is_refused(
        tmp_path: Path, tls_files: tuple[Path, Path, Path], tls_extra: dict[str, str],
        fragment: str) -> None:
    """A client CA with a policy that lets clients in unverified would look like mTLS and not
    be it: refused, as the exporter-toolkit refuses it, with the key named."""
    problems = _problems(_web(tmp_path, {"tls_server_config": {
        "cert_file": "tls.crt", "key_file": "tls.key", **tls_extra}}))
    assert any(p.startswith(f"{tmp_path / 'web.yaml'}: tls_server_config: ") and fragment in p
               for p in problems), problems


def test_daemon_refuses_to_start_with_a_client_ca_but_no_client_auth(
        tmp_path: Path, tls_files: tuple[Path, Path, Path],
        start_daemon: Callable[..., Daemon]) -> None:
    web = _web(tmp_path, {"tls_server_config": {
        "cert_file": "tls.crt", "key_file": "tls.key", "client_ca_file": "ca.pem"}})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"web_config_file": str(web)}))
    daemon = start_daemon("-c", str(config), wait_ready=False)
    assert daemon.proc.wait(30) == 2
    assert "client_auth_type" in daemon.log()


def test_mtls_verifies_clients_against_the_relative_client_ca(
        tmp_path: Path, start_daemon: Callable[..., Daemon]) -> None:
    """RequireAndVerifyClientCert with paths relative to the web config's directory (the daemon
    runs elsewhere): a client without a certificate, or with one of another CA, is refused."""
    ca, other = trustme.CA(), trustme.CA()
    certs = tmp_path / "certs"
    certs.mkdir()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(certs / "tls.crt"))
    server.private_key_pem.write_to_path(str(certs / "tls.key"))
    ca.cert_pem.write_to_path(str(certs / "clients.pem"))
    web = certs / "web.yaml"
    web.write_text(yaml.safe_dump({"tls_server_config": {
        "cert_file": "tls.crt", "key_file": "./tls.key", "client_ca_file": "clients.pem",
        "client_auth_type": "RequireAndVerifyClientCert"}}))
    assert Path.cwd() != certs
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"web_config_file": str(web)}))
    daemon = start_daemon("-c", str(config), scheme="https", wait_ready=False)
    daemon.port = reported_port(daemon.proc, daemon.log_path, LISTENING, "the daemon", 20)

    def client(issuer: trustme.CA | None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        if issuer is not None:
            issuer.issue_cert("prometheus").configure_cert(context)
        return context

    def status(context: ssl.SSLContext) -> int | None:
        try:
            return daemon.get("/metrics", verify=context).status_code
        except (httpx.HTTPError, ssl.SSLError, OSError):
            return None

    wait_for(lambda: status(client(ca)) == 200, 20, "a client with a good certificate")
    assert status(client(None)) is None
    assert status(client(other)) is None
    assert daemon.stop() == 0


def _served_serial(port: int, ca_path: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        cert = tls.getpeercert()
    assert cert is not None
    return int(str(cert["serialNumber"]), 16)


def _serial(pem: bytes) -> int:
    return int(x509.load_pem_x509_certificate(pem).serial_number)


def test_certificate_is_read_again_when_its_files_change(
        tmp_path: Path, start_daemon: Callable[..., Daemon]) -> None:
    """Renewed files (cert-manager, a Secret's symlink swap) are served to new connections
    without a restart; a pair that does not load is logged and the previous one goes on."""
    ca = trustme.CA()
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    live = tmp_path / "live"

    def install(name: str) -> int:
        """Like a Kubernetes Secret: a new directory, swapped in by renaming a symlink."""
        cert = ca.issue_cert("127.0.0.1")
        version = tmp_path / name
        version.mkdir()
        cert.cert_chain_pems[0].write_to_path(str(version / "tls.crt"))
        cert.private_key_pem.write_to_path(str(version / "tls.key"))
        link = tmp_path / "live.tmp"
        link.symlink_to(version)
        os.replace(link, live)
        return _serial(cert.cert_chain_pems[0].bytes())

    first = install("v1")
    web = _web(tmp_path, {"tls_server_config": {"cert_file": "live/tls.crt",
                                                "key_file": "live/tls.key"}})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"web_config_file": str(web)}))
    daemon = start_daemon("-c", str(config), scheme="https")
    assert _served_serial(daemon.port, ca_path) == first

    second = install("v2")
    wait_for(lambda: _served_serial(daemon.port, ca_path) == second, 10,
             "the renewed certificate to be served")
    assert "TLS certificate reloaded" in daemon.log()

    # A key that does not belong to the certificate: the renewed pair keeps serving.
    broken = tmp_path / "v3"
    shutil.copytree(tmp_path / "v2", broken, symlinks=False)
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(broken / "tls.key"))
    link = tmp_path / "live.tmp"
    link.symlink_to(broken)
    os.replace(link, live)
    served: list[int] = []

    def logged() -> bool:  # the files are looked at as connections arrive
        served.append(_served_serial(daemon.port, ca_path))
        return "cannot be loaded" in daemon.log()

    wait_for(logged, 10, "the broken pair to be logged")
    assert set(served) == {second}
    assert daemon.log().count("cannot be loaded") == 1  # once per change, not per connection
    assert daemon.get("/healthz", verify=ssl.create_default_context(cafile=str(ca_path))
                      ).status_code == 200
    assert daemon.stop() == 0
