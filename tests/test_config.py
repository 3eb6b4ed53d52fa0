"""Configuration: strict validation, durations, defaults, environment overrides, secrets."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from llmmon.config import (
    ConfigError,
    Expect,
    NameFilter,
    format_duration,
    parse_duration,
    regex_search,
)
from llmmon.config.regex import BUILTIN, compile_regex
from llmmon.config.settings import Settings, SettingsData, describe_errors, load_settings
from llmmon.config.types import looks_secret
from llmmon.probe.checks import passes
from llmmon.providers import PROVIDERS
from llmmon.providers.openai import OpenAIConfig

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
         "endpoints[0] (local).interval: must be a duration"),
        ({"endpoints": [{**ENDPOINT, "timeout": "-5s"}]}, "endpoints[0] (local).timeout:"),
        ({"endpoints": [{**ENDPOINT, "timeout": "0s"}]},
         "endpoints[0] (local).timeout: must be a positive"),
        ({"endpoints": [{**ENDPOINT, "provider": "bogus"}]},
         "endpoints[0] (local).provider: must be one of openai, anthropic, ollama, tgi"),
        ({"endpoints": [{k: v for k, v in ENDPOINT.items() if k != "provider"}]},
         "endpoints[0] (local).provider: is required"),
        ({"endpoints": [{**ENDPOINT, "colour": "red"}]},
         "endpoints[0] (local).colour: unknown key"),
        ({"endpoints": [ENDPOINT, ENDPOINT]}, "endpoint names must be unique: local"),
        ({"endpoints": [{**ENDPOINT, "url": "ftp://x"}]},
         "endpoints[0] (local).url: must be an http"),
        ({"endpoints": [{**ENDPOINT, "url": "http://u:p@h/v1"}]},
         "endpoints[0] (local).url: must not carry credentials"),
        ({"endpoints": [{**ENDPOINT, "name": "has space"}]}, "endpoints[0].name:"),
        ({"endpoints": [{**ENDPOINT, "max_tokens": 0}]}, "endpoints[0] (local).max_tokens:"),
        ({"endpoints": [{**ENDPOINT, "model": None}]}, "endpoints[0] (local).model:"),
        ({"endpoints": [{**ENDPOINT, "api_key_env": "LLMMON_TEST_UNSET_VAR"}]},
         "endpoints[0] (local).api_key_env: environment variable LLMMON_TEST_UNSET_VAR is not set "
         "or empty"),
        ({"endpoints": [{**ENDPOINT, "api_key_file": "/nonexistent/key"}]},
         "endpoints[0] (local).api_key_file: is not a readable file"),
        ({"endpoints": [{**ENDPOINT, "prompts": [{"name": "a", "text": "x"},
                                                 {"name": "a", "text": "y"}]}]},
         "endpoints[0] (local).prompts: prompt names must be unique"),
        ({"endpoints": [{**ENDPOINT, "prompts": []}]}, "endpoints[0] (local).prompts:"),
        ({"listen": "nowhere"}, "listen: must be HOST:PORT"),
        ({"samplers": {"gpu": {"enabled": "sometimes"}}}, "samplers.gpu.enabled:"),
        ({"samplers": {"host": {"interval": "5 parsecs"}}}, "samplers.host.interval:"),
        ({"samplers": {"process": {"targets": [{"name": "v"}]}}},
         "samplers.process.targets[0] (v): give exactly one of cmdline, cmdline_regex"),
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
    assert found == ["endpoints[0] (local): set api_key_env or api_key_file, not both"]


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
    assert "endpoints[0] (local).interval" in done.stderr
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


# --- offline validation, names in paths, messages --------------------------------------

MISSING = "/nonexistent/llmmon-test"


@pytest.mark.parametrize(
    ("extra", "online"),
    [
        ({"api_key_env": "LLMMON_TEST_UNSET_VAR"},
         "api_key_env: environment variable LLMMON_TEST_UNSET_VAR is not set or empty"),
        ({"api_key_file": f"{MISSING}/key"}, "api_key_file: is not a readable file"),
        ({"tls_config": {"ca_file": f"{MISSING}/ca.pem"}},
         "tls_config.ca_file: is not a readable file"),
        ({"headers": {"X-A": {"env": "UNSET_HEADER_VAR"}}},
         "headers.X-A.env: environment variable UNSET_HEADER_VAR is not set or empty"),
        ({"headers": {"X-A": {"file": f"{MISSING}/hdr"}}},
         "headers.X-A.file: is not a readable file"),
    ],
)
def test_offline_reaches_every_secret_and_file_check(tmp_path: Path, extra: dict[str, object],
                                                     online: str) -> None:
    """The offline context reaches the nested validators: each check that fails normally is
    skipped offline; a variable that is not set then gives no key (instead of failing)."""
    assert problems(tmp_path, {"endpoints": [{**ENDPOINT, **extra}]}) == \
        [f"endpoints[0] (local).{online}"]
    endpoint = load_settings(tmp_path / "c.yaml", offline=True).endpoints[0]
    if "api_key_env" in extra:
        assert endpoint.api_key() is None
    if "UNSET_HEADER_VAR" in str(extra):
        assert endpoint.extra_headers() == {}


def test_models_read_the_offline_flag_from_the_validation_context() -> None:
    """Offline is pydantic's validation context, so a model validated on its own takes it."""
    data = {**ENDPOINT, "api_key_env": "LLMMON_TEST_UNSET_VAR"}
    with pytest.raises(ValidationError):
        OpenAIConfig.model_validate(data)
    assert OpenAIConfig.model_validate(data, context={"offline": True}).api_key() is None


@pytest.mark.parametrize("offline", [False, True])
def test_a_path_must_be_a_file_path_even_offline(tmp_path: Path, offline: bool) -> None:
    """An empty path is not a file, offline or not; a directory is not a readable file."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"endpoints": [{**ENDPOINT, "api_key_file": ""}]}))
    with pytest.raises(ConfigError) as info:
        load_settings(path, offline=offline)
    assert info.value.problems == ["endpoints[0] (local).api_key_file: is not a file path"]
    path.write_text(yaml.safe_dump({"endpoints": [{**ENDPOINT, "api_key_file": str(tmp_path)}]}))
    if offline:
        load_settings(path, offline=True)
    else:
        assert problems(tmp_path, path.read_text()) == \
            ["endpoints[0] (local).api_key_file: is not a readable file"]


def test_variable_names_that_may_be_keys_are_not_repeated() -> None:
    """An unset variable is named when it looks like one (upper case); a name such as
    hf_AbC... is also a key's shape, and is not repeated."""
    token = "hf_PLANTEDtoken0123456789abcdefABCDEF"
    errors = []
    for name in ("OPENAI_API_KEY_UNSET_HERE", token):
        with pytest.raises(ValidationError) as info:
            OpenAIConfig.model_validate({**ENDPOINT, "api_key_env": name})
        errors += describe_errors(info.value)
    assert errors[0] == "api_key_env: environment variable OPENAI_API_KEY_UNSET_HERE is not " \
                        "set or empty"
    assert errors[1].startswith("api_key_env: names an environment variable that is not set")
    assert token not in errors[1]


def test_list_items_are_named_only_by_well_formed_names() -> None:
    """A path names a list item by its `name` when that is a valid name; any other name
    (which could be anything pasted there) is left out."""
    data = {"endpoints": [{**ENDPOINT, "interval": "x"},
                          {**ENDPOINT, "name": f"{SECRET} !", "interval": "x"},
                          {**ENDPOINT, "name": 7, "interval": "x"}]}
    with pytest.raises(ValidationError) as info:
        SettingsData.model_validate(data)
    found = describe_errors(info.value, data)
    assert [line.split(":")[0] for line in found if "interval" in line] == [
        "endpoints[0] (local).interval", "endpoints[1].interval", "endpoints[2].interval"]
    assert SECRET not in "\n".join(found)


def test_dates_in_string_fields_say_to_quote_them() -> None:
    """A date or datetime where text belongs (YAML's reading of 2024-10-21) is explained;
    other wrong types keep pydantic's message."""
    data = {**ENDPOINT, "model": datetime.date(2024, 10, 21), "system": 5,
            "prompts": [{"name": "p", "text": datetime.datetime(2024, 10, 21, 10, 0)}]}
    with pytest.raises(ValidationError) as info:
        OpenAIConfig.model_validate(data)
    assert describe_errors(info.value, data) == [
        "model: YAML read this as a date; quote it",
        "system: Input should be a valid string",
        "prompts[0] (p).text: YAML read this as a date; quote it",
    ]


def test_an_unparsable_variable_does_not_hide_the_others(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A list or section variable that is not JSON is reported by name, and the other
    variables are still checked."""
    monkeypatch.setenv("LLMMON_ENDPOINTS", "[not json")
    monkeypatch.setenv("LLMMON_LISTEN", "nowhere")
    assert problems(tmp_path, {}) == [
        "environment variable LLMMON_ENDPOINTS: cannot be parsed (lists and sections are "
        "written as JSON)",
        "listen: must be HOST:PORT, for example 0.0.0.0:9977 or [::]:9977"]


def test_only_validates_the_named_settings(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`only` (what healthcheck reads) ignores the rest of the file and unknown variables,
    and still takes its settings from the environment."""
    monkeypatch.setenv("LLMMON_LISTN", "typo")
    monkeypatch.setenv("LLMMON_LISTEN", "127.0.0.1:1")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"endpoints": [{**ENDPOINT, "interval": "x"}]}))
    settings = load_settings(path, only=("listen", "web_config_file"))
    assert (settings.listen, settings.endpoints) == ("127.0.0.1:1", [])
    with pytest.raises(ConfigError):
        load_settings(path)


def test_variables_named_by_the_file_are_not_unknown_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An LLMMON_-prefixed variable that api_key_env or a header names is the file's own,
    not a mistyped setting."""
    monkeypatch.setenv("LLMMON_TEST_KEY", "k")
    monkeypatch.setenv("LLMMON_TEST_HDR", "h")
    settings = load(tmp_path, {"endpoints": [{**ENDPOINT, "api_key_env": "LLMMON_TEST_KEY",
                                              "headers": {"X-A": {"env": "LLMMON_TEST_HDR"}}}]})
    assert settings.endpoints[0].extra_headers() == {"X-A": "h"}


# --- bounded reads, YAML and patterns ---------------------------------------------------


def test_no_config_key_looks_like_a_pasted_key() -> None:
    """Unknown keys that look like API keys are cut in messages; no real key of any
    section (every provider's and sampler's) is long or random enough to be cut."""
    seen: set[type[BaseModel]] = set()
    names: set[str] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            names.update({name, field.alias or name})
            for kind in _classes(field.annotation):
                walk(kind)

    walk(SettingsData)
    for provider in PROVIDERS.values():
        walk(provider.config)
    assert len(names) > 60
    assert [n for n in names if looks_secret(n)] == []
    assert looks_secret(SECRET)
    assert looks_secret("hf_AbCdEfGhIjKlMnOp")


def _classes(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _classes(arg)


def test_any_failure_while_loading_is_a_config_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong while loading (here a RecursionError where the environment is
    read) ends as a ConfigError, which a reload rejects and check-config prints."""

    def overflow(*_: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("llmmon.config.settings.read_environment", overflow)
    path = tmp_path / "c.yaml"
    path.write_text("{}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.problems == [f"{path}: cannot be loaded (RecursionError)"]


def test_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    """The alias limit leaves what configs use anchors for alone: shared settings merged
    into each endpoint."""
    endpoints = "".join(f"  - {{<<: *base, name: e{i}}}\n" for i in range(50))
    settings = load(tmp_path, "endpoints:\n  - &base {name: e, provider: openai, url: "
                              "'http://127.0.0.1:8000/v1', model: m, interval: 7s, prompts: "
                              "[{name: p, text: 'Say hi.', expect: {contains: hi}}]}\n"
                              + endpoints)
    assert len(settings.endpoints) == 51
    assert {e.interval for e in settings.endpoints} == {7}


def test_key_files_are_capped_at_64_kib(tmp_path: Path) -> None:
    """A key file of 64 KiB loads; one byte more is a rejected config."""
    key = tmp_path / "key"
    key.write_text("k" * (64 << 10))
    assert load(tmp_path, {"endpoints": [{**ENDPOINT, "api_key_file": str(key)}]})
    key.write_text("k" * ((64 << 10) + 1))
    assert problems(tmp_path, {"endpoints": [{**ENDPOINT, "api_key_file": str(key)}]}) == \
        ["endpoints[0] (local).api_key_file: is larger than 64 KiB"]


def test_regexes_keep_their_meaning_under_re2() -> None:
    """RE2 runs the patterns; a `$` still matches before a final newline, as in Python's
    re, ignore_case still folds case, and named groups are still accepted."""
    assert regex_search(r"^5$", "5\n")
    assert not regex_search(r"^5$", "5\n\n")
    assert passes(Expect(regex=r"^PARIS\.?$", ignore_case=True), "Paris.\n")
    assert not passes(Expect(regex=r"^PARIS\.?$"), "Paris.\n")
    assert passes(Expect(regex=r"(?P<city>Paris)"), "It is Paris.")
    assert NameFilter(include=r"^eth\d+$", exclude=r"^eth1$").admits("eth0")
    assert not NameFilter(include=r"^eth\d+$", exclude=r"^eth1$").admits("eth1")


@pytest.mark.parametrize("pattern", sorted(BUILTIN))
@pytest.mark.parametrize("name", ["/proc", "/proc/1", "/procs", "/run", "/", "/data", "loop0",
                                  "loop", "ram12", "loops", "ram1x", "lo", "lo\n", "lo0",
                                  "eth0", "", "/sys/fs"])
def test_builtin_patterns_read_the_same_in_re_and_re2(pattern: str, name: str) -> None:
    """llmmon's own patterns run in Python's re (RE2 stays unloaded); they must find what RE2
    finds. regex_search's `$` rule makes RE2 accept a final newline too."""
    import re2  # type: ignore[import-untyped]

    assert compile_regex(pattern).__class__.__module__ == "re"
    by_re2 = re2.search(pattern, name) is not None or (
        name.endswith("\n") and re2.search(pattern, name[:-1]) is not None)
    assert regex_search(pattern, name) == by_re2


def test_re2_loads_with_the_first_pattern_of_a_users_config(tmp_path: Path) -> None:
    """The default config (the host sampler's filters included) runs without RE2, 2.4 MiB of
    every daemon; a pattern in the config loads it, and it runs there."""
    config = tmp_path / "c.yaml"
    code = ("import sys; from llmmon.config.settings import load_settings; "
            "from pathlib import Path; s = load_settings(Path(sys.argv[1])); "
            "from llmmon.samplers.host import HostConfig as H; "
            "h = H(); assert not h.interfaces.admits('lo') and h.interfaces.admits('eth0'); "
            "print('re2' in sys.modules)")
    endpoint = {"name": "a", "provider": "openai", "model": "m", "url": "http://127.0.0.1:1/v1"}
    for prompts, loaded in ((None, "False"), ([{"name": "p", "text": "2+3?",
                                                  "expect": {"regex": "5"}}], "True")):
        config.write_text(yaml.safe_dump({"endpoints": [
            {**endpoint, **({"prompts": prompts} if prompts else {})}]}))
        done = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True,
                              text=True, timeout=60)
        assert done.stdout.strip() == loaded, done.stderr


@pytest.mark.parametrize(("nice", "why"), [(-21, "greater than or equal to -20"),
                                           (20, "less than or equal to 19")])
def test_a_load_nice_value_outside_linuxs_range_names_the_field(tmp_path: Path, nice: int,
                                                                 why: str) -> None:
    assert problems(tmp_path, {"endpoints": [{**ENDPOINT, "load": {"nice": nice}}]}) == \
        [f"endpoints[0] (local).load.nice: Input should be {why}"]
    assert load(tmp_path, {"endpoints": [{**ENDPOINT, "load": {"nice": -20}}]})


def test_importing_the_daemon_builds_no_config_validator() -> None:
    """A config model's validator is built on first use: at import it would be compiled once
    on its own and again inside SettingsData's, which is all a file load uses (RSS)."""
    code = ("import pydantic, llmmon.cli, llmmon.daemon.runtime\n"
            "def walk(c):\n"
            "    for s in c.__subclasses__():\n"
            "        yield s; yield from walk(s)\n"
            "print(sorted(m.__name__ for m in walk(pydantic.BaseModel)\n"
            "             if m.__module__.startswith('llmmon') and m.__pydantic_complete__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_default_prompt_is_what_validation_would_make() -> None:
    """DEFAULT_PROMPT skips validation (model_construct); it must still pass it unchanged."""
    from llmmon.config.endpoints import DEFAULT_PROMPT
    from llmmon.config.prompts import Prompt

    data = DEFAULT_PROMPT.model_dump(by_alias=True)
    assert Prompt.model_validate(data) == DEFAULT_PROMPT
    assert DEFAULT_PROMPT.model_fields_set == {"name", "text"}
