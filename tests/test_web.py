"""TLS and basic auth from an exporter-toolkit style web config, over real sockets, read as
the exporter-toolkit reads it: relative paths from the file's directory, client CAs only
with a verifying client_auth_type, whole bcrypt hashes, certificates read again when their
files change."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml

from llmmon.config import ConfigError
from llmmon.daemon.auth import load_web_config
from tests.conftest import Daemon


def test_tls_and_basic_auth(tmp_path: Path, tls_files: tuple[Path, Path, Path],
                            start_daemon: Callable[..., Daemon]) -> None:
    """/metrics needs TLS and the right password; health probes need neither credential."""
    cert, key, ca = tls_files
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yaml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
        "basic_auth_users": {"prom": hashed},
    }))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"web_config_file": str(web)}))
    daemon = start_daemon("-c", str(config), scheme="https")
    verify = ssl.create_default_context(cafile=str(ca))
    assert daemon.get("/healthz", verify=verify).status_code == 200
    denied = daemon.get("/metrics", verify=verify)
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"].startswith("Basic")
    assert daemon.get("/metrics", verify=verify, auth=("prom", "wrong")).status_code == 401
    assert daemon.get("/metrics", verify=verify, auth=("nobody", "x")).status_code == 401
    for _ in range(3):  # the second and third hit the verified-credentials cache
        ok = daemon.get("/metrics", verify=verify, auth=("prom", "s3cret-pass"))
        assert ok.status_code == 200
        assert "llmmon_build_info" in ok.text
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{daemon.port}/healthz", timeout=5)
    assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"basic_auth_users": {"u": "plaintext"}}, "basic_auth_users.u: must be a bcrypt hash"),
        ({"basic_auth_users": {"u": "$2y$10$short"}}, "basic_auth_users.u: must be a bcrypt hash"),
        ({"tls_server_config": {"cert_file": "/nope.crt", "key_file": "/nope.key"}},
         "tls_server_config: cannot load"),
        ({"tls_server_config": {"cert_file": "/x"}}, "tls_server_config.key_file: is required"),
        ({"http_server_config": {}}, "http_server_config: unknown key"),
    ],
)
def test_bad_web_config_is_rejected(tmp_path: Path, content: dict[str, object],
                                    fragment: str) -> None:
    """Web config mistakes name the key, and a plaintext password is refused."""
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError) as info:
        load_web_config(path)
    assert any(fragment in p for p in info.value.problems), info.value.problems
