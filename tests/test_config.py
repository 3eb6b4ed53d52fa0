"""Configuration: strict validation, durations, defaults, environment overrides, secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from llmmon.config import ConfigError, format_duration, parse_duration
from llmmon.config.settings import Settings, load_settings

SECRET = "sk-llmmon-test-PLANTED-0123456789abcdef"

ENDPOINT = {"name": "local", "provider": "openai", "url": "http://127.0.0.1:8000/v1",
            "model": "m"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Config tests see only the LLMMON_* variables they set themselves."""
    for name in [n for n in os.environ if n.startswith("LLMMON_")]:
        monkeypatch.delenv(name)


def load(tmp_path: Path, data: object) -> Settings:
    path = tmp_path / "c.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return load_settings(path)


def problems(tmp_path: Path, data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data)
    return info.value.problems


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"endpoints": [{**ENDPOINT, "interval": "banana"}]},
         "endpoints[0].interval: must be a duration"),
        ({"endpoints": [{**ENDPOINT, "timeout": "-5s"}]}, "endpoints[0].timeout:"),
        ({"endpoints": [{**ENDPOINT, "timeout": "0s"}]},
         "endpoints[0].timeout: must be a positive"),
        ({"endpoints": [{**ENDPOINT, "provider": "bogus"}]},
         "endpoints[0].provider: must be one of openai, anthropic, ollama, tgi"),
        ({"endpoints": [{k: v for k, v in ENDPOINT.items() if k != "provider"}]},
         "endpoints[0].provider: is required"),
        ({"endpoints": [{**ENDPOINT, "colour": "red"}]}, "endpoints[0].colour: unknown key"),
        ({"endpoints": [ENDPOINT, ENDPOINT]}, "endpoint names must be unique: local"),
        ({"endpoints": [{**ENDPOINT, "url": "ftp://x"}]}, "endpoints[0].url: must be an http"),
        ({"endpoints": [{**ENDPOINT, "url": "http://u:p@h/v1"}]},
         "endpoints[0].url: must not carry credentials"),
        ({"endpoints": [{**ENDPOINT, "name": "has space"}]}, "endpoints[0].name:"),
        ({"endpoints": [{**ENDPOINT, "max_tokens": 0}]}, "endpoints[0].max_tokens:"),
        ({"endpoints": [{**ENDPOINT, "model": None}]}, "endpoints[0].model:"),
        ({"endpoints": [{**ENDPOINT, "api_key_env": "LLMMON_TEST_UNSET_VAR"}]},
         "endpoints[0].api_key_env: names an environment variable that is not set"),
        ({"endpoints": [{**ENDPOINT, "api_key_file": "/nonexistent/key"}]},
         "endpoints[0].api_key_file: is not a readable file"),
        ({"endpoints": [{**ENDPOINT, "prompts": [{"name": "a", "text": "x"},
                                                 {"name": "a", "text": "y"}]}]},
         "endpoints[0].prompts: prompt names must be unique"),
        ({"endpoints": [{**ENDPOINT, "prompts": []}]}, "endpoints[0].prompts:"),
        ({"listen": "nowhere"}, "listen: must be HOST:PORT"),
        ({"samplers": {"gpu": {"enabled": "sometimes"}}}, "samplers.gpu.enabled:"),
        ({"samplers": {"host": {"interval": "5 parsecs"}}}, "samplers.host.interval:"),
        ({"samplers": {"process": {"targets": [{"name": "v"}]}}},
         "samplers.process.targets[0]: give exactly one of cmdline, cmdline_regex"),
        ({"samplers": {"host": {"interfaces": {"exclude": "(["}}}},
         "samplers.host.interfaces.exclude: is not a valid regular expression"),
        ({"defaults": {"interval": "soon"}}, "defaults.interval: must be a duration"),
        ({"surprise": 1}, "surprise: unknown key"),
        ("endpoints: [\n  - {name: a\n", "invalid YAML at line"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_invalid_configs_name_the_field_and_reason(tmp_path: Path, data: object,
                                                   fragment: str) -> None:
    """Each bad config is rejected with the field's path and the reason."""
    assert any(fragment in p for p in problems(tmp_path, data)), problems(tmp_path, data)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """A file with several mistakes lists every one of them."""
    found = problems(tmp_path, {"surprise": 1, "endpoints": [{**ENDPOINT, "interval": "x"}]})
    assert len(found) == 2


def test_error_messages_never_echo_input_values(tmp_path: Path) -> None:
    """Rejected values (which could be keys pasted in the wrong place) are not printed."""
    data = {"endpoints": [{**ENDPOINT, "interval": SECRET, "api_key": SECRET, "model": [SECRET],
                           "url": f"http://user:{SECRET}@host/v1", "provider": "openai"}],
            "listen": SECRET, "log_level": SECRET}
    found = problems(tmp_path, data)
    assert len(found) >= 5
    assert SECRET not in "\n".join(found)
    yaml_error = problems(tmp_path, f"listen: [{SECRET}\n")
    assert SECRET not in "\n".join(yaml_error)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h30m", 5400), ("1.5s", 1.5), (15, 15),
     ("1d", 86400)],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    """Prometheus-style durations and bare numbers of seconds are accepted."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10", "s", "5 s", "1m-2s", "ms", True, None, "1e3s", "-1s"])
def test_bad_durations_rejected(bad: object) -> None:
    """Durations without a unit, with junk or not positive are rejected."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@given(st.integers(min_value=1, max_value=10**9))
def test_duration_format_round_trips(millis: int) -> None:
    """format_duration gives a string that parses back to the same number of milliseconds."""
    assert round(parse_duration(format_duration(millis / 1000)) * 1000) == millis


def test_missing_file_means_defaults() -> None:
    """No config file: no endpoints, host and GPU samplers on."""
    settings = load_settings(None)
    assert settings.endpoints == []
    assert settings.samplers.host.enabled is True
    assert settings.samplers.gpu.enabled == "auto"
    assert settings.listen == "0.0.0.0:9977"


def test_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    """A config file the user names but that does not exist is an error, not the defaults."""
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_defaults_are_inherited_unless_overridden(tmp_path: Path) -> None:
    """Endpoints take `defaults` for keys they do not set themselves."""
    settings = load(tmp_path, {"defaults": {"interval": "10s", "max_tokens": 8, "stream": False},
                               "endpoints": [ENDPOINT, {**ENDPOINT, "name": "b",
                                                        "interval": "1m"}]})
    a, b = settings.endpoints
    assert (a.interval, a.max_tokens, a.stream, a.timeout) == (10, 8, False, 20)
    assert (b.interval, b.max_tokens) == (60, 8)


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LLMMON_* variables override the file, nested with __."""
    monkeypatch.setenv("LLMMON_LISTEN", "127.0.0.1:1234")
    monkeypatch.setenv("LLMMON_SAMPLERS__GPU__INTERVAL", "7s")
    monkeypatch.setenv("LLMMON_SAMPLERS__HOST__ENABLED", "false")
    settings = load(tmp_path, {"listen": "0.0.0.0:1", "samplers": {"gpu": {"interval": "1s"}}})
    assert settings.listen == "127.0.0.1:1234"
    assert settings.samplers.gpu.interval == 7
    assert settings.samplers.host.enabled is False


def test_bad_environment_values_name_the_field(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value from the environment is reported under the field it overrides."""
    monkeypatch.setenv("LLMMON_SAMPLERS__GPU__INTERVAL", "banana")
    monkeypatch.setenv("LLMMON_LISTN", "typo")
    found = problems(tmp_path, {})
    assert "samplers.gpu.interval: must be a duration such as 500ms, 30s, 2m or 1h30m" in found
    assert "environment variable LLMMON_LISTN: matches no setting" in found


def test_key_from_env_is_held_as_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key_env is read into a SecretStr that neither repr nor the dump reveals."""
    monkeypatch.setenv("MY_KEY", SECRET)
    settings = load(tmp_path, {"endpoints": [{**ENDPOINT, "api_key_env": "MY_KEY"}]})
    endpoint = settings.endpoints[0]
    key = endpoint.api_key()
    assert key is not None
    assert key.get_secret_value() == SECRET
    assert SECRET not in repr(settings) + str(settings.dump()) + repr(endpoint)


def test_key_file_is_reread_when_rotated(tmp_path: Path) -> None:
    """A rotated key file takes effect on the next probe, without a restart."""
    key_file = tmp_path / "key"
    key_file.write_text("first-key\n")
    settings = load(tmp_path, {"endpoints": [{**ENDPOINT, "api_key_file": str(key_file)}]})
    endpoint = settings.endpoints[0]
    assert endpoint.api_key().get_secret_value() == "first-key"  # type: ignore[union-attr]
    key_file.write_text("second-key-longer\n")
    os.utime(key_file, ns=(1, 10**18))  # a new mtime even on coarse-clock filesystems
    assert endpoint.api_key().get_secret_value() == "second-key-longer"  # type: ignore[union-attr]


def test_both_key_sources_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key_env and api_key_file together are ambiguous."""
    monkeypatch.setenv("MY_KEY", SECRET)
    key_file = tmp_path / "key"
    key_file.write_text("k")
    found = problems(tmp_path, {"endpoints": [{**ENDPOINT, "api_key_env": "MY_KEY",
                                               "api_key_file": str(key_file)}]})
    assert found == ["endpoints[0]: set api_key_env or api_key_file, not both"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMMON_")}
    return subprocess.run([sys.executable, "-m", "llmmon", *args], capture_output=True,
                          text=True, timeout=60, env={**base, **(env or {})})


def test_check_config_rejects_banana_without_leaking(tmp_path: Path) -> None:
    """check-config exits non-zero naming `interval`, and never prints the key."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"endpoints": [{**ENDPOINT, "interval": "banana",
                                                   "api_key_env": "PROBE_KEY"}]}))
    done = _cli("check-config", "-c", str(path), env={"PROBE_KEY": SECRET})
    assert done.returncode == 2
    assert "endpoints[0].interval" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_check_config_prints_effective_config_masked(tmp_path: Path) -> None:
    """A valid file prints the effective config: defaults filled in, no key values."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"endpoints": [{**ENDPOINT, "api_key_env": "PROBE_KEY"}]}))
    done = _cli("check-config", "-c", str(path), env={"PROBE_KEY": SECRET})
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    printed = yaml.safe_load(done.stdout)
    assert printed["endpoints"][0]["interval"] == "30s"
    assert printed["endpoints"][0]["api_key_env"] == "PROBE_KEY"
    assert printed["samplers"]["gpu"]["enabled"] == "auto"
