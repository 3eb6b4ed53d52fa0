"""Hostile files and values in the configuration: key files that are FIFOs, devices, huge,
gone or not UTF-8; config files that are alias bombs, 3,000 levels deep, FIFOs or /dev/zero;
JSON 60,000 levels deep in an LLMMON_* variable; catastrophic regular expressions; a key
pasted where YAML reads it as a mapping key.

Each is made for real (os.mkfifo, a sparse file, the bytes of the bomb). Where the old
behaviour hung or took seconds to minutes, the case runs in a child process under a
timeout, so that a regression fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from llmmon.config import ConfigError
from llmmon.config.files import FileProblem
from llmmon.config.secrets import ApiKey
from llmmon.config.settings import load_settings
from llmmon.providers.openai import OpenAIConfig
from tests.conftest import Daemon, probe, sample, wait_for

PLANTED = "sk-llmmon-hostile-PLANTED-0123456789abcdef"
CLOSED = "http://127.0.0.1:9/v1"  # the discard port: nothing listens on loopback
ENDPOINT = {"name": "k", "provider": "openai", "url": CLOSED, "model": "m"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("LLMMON_")]:
        monkeypatch.delenv(name)


def child(code: str, *, env: dict[str, str] | None = None, timeout: float = 20
          ) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter; a hang or a stall past ``timeout`` fails."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMMON_")}
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], text=True,
                              capture_output=True, timeout=timeout, env={**base, **(env or {})})
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s: the old behaviour (a hang or a stall)")


def check_config(path: Path | str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    return child(f"import sys; from llmmon.cli import main; sys.exit(main(['check-config', "
                 f"'-c', {str(path)!r}]))", env=env)


# --- row 6: key files -------------------------------------------------------------------


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "key")
    return tmp_path / "key"


def _sparse(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    with path.open("wb") as f:
        f.truncate(300 << 20)  # 300 MB that take no disk
    return path


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_bytes(b"\xff\xfe" + PLANTED.encode())
    return path


KEY_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "fifo": (_fifo, "is not a regular file"),
    "dev-zero": (lambda _: Path("/dev/zero"), "is not a regular file"),
    "300 MB": (_sparse, "is larger than 64 KiB"),
    "not UTF-8": (_not_utf8, "is not UTF-8"),
}


@pytest.mark.parametrize("kind", list(KEY_FILES))
def test_a_key_file_llmmon_must_not_read_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """A FIFO (whose open blocked the event loop until SIGKILL), /dev/zero (read until
    MemoryError), 300 MB (sent as a 300 MB header) and invalid UTF-8: each is refused
    before or instead of being read, with the file and the reason, never the content."""
    make, reason = KEY_FILES[kind]
    path = make(tmp_path)
    done = child(f"""
        import time
        from pathlib import Path
        from llmmon.config.secrets import ApiKey
        start = time.perf_counter()
        try:
            ApiKey(path=Path({str(path)!r})).get()
        except OSError as exc:
            print(type(exc).__name__, exc)
        print(f"{{time.perf_counter() - start:.3f}}")
        """)
    assert done.returncode == 0, done.stderr
    message, seconds = done.stdout.splitlines()
    assert message == f"FileProblem {path}: {reason}"
    assert float(seconds) < 1
    assert PLANTED not in done.stdout + done.stderr


@pytest.mark.parametrize("kind", list(KEY_FILES))
def test_such_a_key_file_is_a_rejected_config(tmp_path: Path, kind: str) -> None:
    """The same files named by api_key_file or a header's file reject the config, naming
    the field and the reason (the FIFO without hanging check-config)."""
    make, reason = KEY_FILES[kind]
    path = make(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"endpoints": [
        {**ENDPOINT, "api_key_file": str(path), "headers": {"X-Key": {"file": str(path)}}}]}))
    done = check_config(config)
    assert done.returncode == 2, done.stderr
    assert f"endpoints[0] (k).api_key_file: {reason}" in done.stderr
    assert f"endpoints[0] (k).headers.X-Key.file: {reason}" in done.stderr
    assert "Traceback" not in done.stderr
    assert PLANTED not in done.stderr


async def test_a_key_file_that_turns_bad_fails_the_probe_unsent(tmp_path: Path) -> None:
    """A key file replaced by a FIFO, grown past 64 KiB, made invalid UTF-8 or deleted after
    the config was loaded: each probe fails (reason `protocol`, nothing sent) at once."""
    key = tmp_path / "key"
    key.write_text("first-key\n")
    endpoint = OpenAIConfig.model_validate({**ENDPOINT, "api_key_file": str(key)})
    assert endpoint.api_key().get_secret_value() == "first-key"  # type: ignore[union-attr]
    turns: list[Callable[[], None]] = [
        lambda: os.mkfifo(key),
        lambda: key.write_bytes(b"x" * (65 << 10)),
        lambda: key.write_bytes(b"\xc3\x28 bad"),
        lambda: None,  # gone
    ]
    for turn in turns:
        key.unlink(missing_ok=True)
        turn()
        start = time.perf_counter()
        result = await probe(endpoint)
        assert result.error == "protocol", result.detail
        assert result.status is None
        assert "cannot be read" in (result.detail or "")
        assert time.perf_counter() - start < 1
        with pytest.raises(FileProblem, match=str(key)):
            endpoint.api_key()
    key.write_text("second-key\n")  # and it recovers once the file is right again
    assert endpoint.api_key().get_secret_value() == "second-key"  # type: ignore[union-attr]


def test_a_good_key_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    """The bounded read keeps the re-read on change: an unchanged file is only stat'ed."""
    key = tmp_path / "key"
    key.write_text("k1\n")
    api_key = ApiKey(path=key)
    assert api_key.get().get_secret_value() == "k1"  # type: ignore[union-attr]
    start = time.perf_counter()
    for _ in range(1000):
        api_key.get()
    assert (time.perf_counter() - start) / 1000 < 0.001  # a stat: microseconds
    os.replace(tmp_path / "key", tmp_path / "old")  # rotated the way a Secret is: a new inode
    (tmp_path / "key").write_text("k2\n")
    assert api_key.get().get_secret_value() == "k2"  # type: ignore[union-attr]


# --- row 7: config files and variables -------------------------------------------------


def _merge_bomb() -> str:
    """Nine merge-key levels that each merge the previous one six times: 421 bytes that
    PyYAML flattens into 6^8 * 2 = 3.4 million key pairs (13.7 s and 365 MB before)."""
    lines = ["a0: &a0 {x: 1, y: 2}"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * (6 if i < 9 else 5))}]}}")
    return "\n".join(lines) + "\n"


def _laughs() -> str:
    """The billion laughs, placed where the config's validation expands it (extra_body)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\nendpoints: [{name: k, provider: openai, url: 'http://x', " \
        "model: m, extra_body: {z: *l8}}]\n"


BAD_YAML = {
    "merge bomb": (_merge_bomb(), "aliases expand to more than 16 MiB"),
    "billion laughs": (_laughs(), "aliases expand to more than 16 MiB"),
    "alias cycle": ("a: &a [1, *a]\n", "an alias refers to a value that contains it"),
    "3000 deep, flow": ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper than 64"),
    "3000 deep, flow mapping": ("a: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
                                "nested deeper than 64"),
    "3000 deep, block": ("a:\n  " + "- " * 3000 + "x\n", "nested deeper than 64"),
    "deep through aliases": ("".join(f"l{i}: &l{i} [*l{i - 1}]\n" if i else "l0: &l0 [1]\n"
                                     for i in range(70)), "nested deeper than 64"),
    "5000-digit integer": ("listen: " + "9" * 5000 + "\n", "invalid YAML (ValueError)"),
}


@pytest.mark.parametrize("case", list(BAD_YAML))
def test_hostile_yaml_is_a_config_error_at_once(tmp_path: Path, case: str) -> None:
    """Alias bombs, cycles, depth and a huge number: each a `path: reason` problem, found
    in milliseconds and a few MiB, never a RecursionError or minutes of CPU."""
    text, reason = BAD_YAML[case]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    done = child(f"""
        import resource, time
        from pathlib import Path
        from llmmon.config import ConfigError
        from llmmon.config.settings import load_settings
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            load_settings(Path({str(path)!r}))
        except ConfigError as exc:
            print(*exc.problems, sep="\\n")
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(f"{{time.perf_counter() - start:.3f}} {{grown}}")
        """)
    assert done.returncode == 0, done.stderr
    *problems, figures = done.stdout.splitlines()
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: ")
    assert reason in problems[0]
    seconds, grown_kib = figures.split()
    assert float(seconds) < 2
    assert int(grown_kib) < 64 << 10


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "directory", "5 MB"])
def test_a_config_file_that_is_not_a_small_regular_file_is_refused(tmp_path: Path,
                                                                   special: str) -> None:
    """check-config on a FIFO hung, on /dev/zero read until MemoryError: now exit 2 and
    the reason."""
    path = tmp_path / "c.yaml"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "directory":
        path.mkdir()
    elif special == "5 MB":
        path.write_text("# " + "x" * (5 << 20) + "\n")
    else:
        path = Path(special)
    done = check_config(path)
    assert done.returncode == 2
    reason = {"fifo": "is not a regular file", "/dev/zero": "is not a regular file",
              "directory": "is a directory", "5 MB": "is larger than 4 MiB"}[special]
    assert f"  {path}: {reason}\n" in done.stderr
    assert "Traceback" not in done.stderr


def test_deep_json_in_a_variable_is_reported_by_name(tmp_path: Path) -> None:
    """LLMMON_ENDPOINTS 60,000 levels deep (RecursionError in pydantic-settings' json.loads
    before) is one problem naming the variable; the other variables are still checked."""
    path = tmp_path / "c.yaml"
    path.write_text("{}\n")
    done = check_config(path, env={"LLMMON_ENDPOINTS": "[" * 60_000 + "]" * 60_000,
                                   "LLMMON_DEFAULTS": '{"a": ' * 65 + "1" + "}" * 65,
                                   "LLMMON_LISTEN": "nowhere"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    problems = sorted(line.strip() for line in done.stderr.splitlines()[1:])
    assert problems == [
        "environment variable LLMMON_DEFAULTS: nested deeper than 64 levels",
        "environment variable LLMMON_ENDPOINTS: nested deeper than 64 levels",
        "listen: must be HOST:PORT, for example 0.0.0.0:9977 or [::]:9977"]


def test_json_nested_within_the_limit_still_loads(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit leaves real nesting alone: extra_body 60 levels deep from a variable."""
    body = '{"a": ' * 60 + "1" + "}" * 60
    monkeypatch.setenv("LLMMON_ENDPOINTS", f'[{{"name": "k", "provider": "openai", "url": '
                                           f'"{CLOSED}", "model": "m", "extra_body": {body}}}]')
    settings = load_settings(None)
    assert settings.endpoints[0].extra_body["a"]["a"]["a"]
    settings.dump()  # and it serialises (check-config prints it)


# --- row 8: regular expressions from the config ----------------------------------------

CATASTROPHIC = "(a+)+$"
VICTIM = "a" * 40 + "!"  # Python's re: 2^40 steps; RE2: 41


def test_a_catastrophic_expect_regex_runs_in_linear_time() -> None:
    """expect.regex `(a+)+$` on an answer of 40 a's and a "!" (5.5 s at 27 a's, doubling
    with each more, on the event loop before) answers at once."""
    done = child(f"""
        from llmmon.config import Expect
        from llmmon.probe.checks import passes
        print(passes(Expect(regex={CATASTROPHIC!r}), {VICTIM!r}),
              passes(Expect(regex="^(A+)+!$", ignore_case=True), {VICTIM!r}))
        """, timeout=10)
    assert done.stdout.split() == ["False", "True"], done.stderr


def test_a_catastrophic_cmdline_regex_runs_in_linear_time() -> None:
    """cmdline_regex `^(a+)+$` against a real process whose command line is 40 a's and a
    "!" (a process names itself as it likes; 5.6 s per sampler tick at 27 a's before): one
    scan at once, the target not found; a pattern that does match finds it."""
    victim = subprocess.Popen([VICTIM, "60"], executable=shutil.which("sleep"))
    try:
        done = child("""
            from llmmon.samplers.process import ProcessSampler, ProcessTarget
            targets = [ProcessTarget(name="bad", cmdline_regex="^(a+)+$"),
                       ProcessTarget(name="good", cmdline_regex="^(a+)+! 60$")]
            readings = ProcessSampler(targets).sample() or []
            print(*[f"{labels[0]}={value:g}" for family, labels, value in readings
                    if family.name == "llmmon_target_process_up"])
            """, timeout=10)
    finally:
        victim.kill()
        victim.wait()
    assert done.stdout.split() == ["bad=0", "good=1"], done.stderr


def test_a_catastrophic_name_filter_runs_in_linear_time() -> None:
    """The host sampler's include/exclude patterns run the same way."""
    done = child(f"""
        from llmmon.config import NameFilter
        print(NameFilter(include={CATASTROPHIC!r}).admits({VICTIM!r}))
        """, timeout=10)
    assert done.stdout.split() == ["False"], done.stderr


@pytest.mark.parametrize(
    ("where", "pattern", "reason"),
    [("endpoints[0] (k).prompts[0] (p).expect.regex", r"(a)\1", "backreference"),
     ("endpoints[0] (k).prompts[0] (p).expect.regex", r"foo(?=bar)", "lookaround"),
     ("samplers.process.targets[0] (t).cmdline_regex", r"(?<!x)vllm", "lookaround"),
     ("samplers.host.interfaces.include", r"(\w)\1", "backreference")])
def test_patterns_re2_cannot_run_are_rejected_naming_the_field(
        tmp_path: Path, where: str, pattern: str, reason: str) -> None:
    """Backreferences and lookarounds (which need backtracking) are a config error."""
    data = {"endpoints": [{**ENDPOINT, "prompts": [{"name": "p", "text": "x",
                                                    "expect": {"regex": "."}}]}]}
    if "expect" in where:
        data["endpoints"][0]["prompts"][0]["expect"]["regex"] = pattern  # type: ignore[index]
    elif "process" in where:
        data["samplers"] = {"process": {"targets": [{"name": "t", "cmdline_regex": pattern}]}}
    else:
        data["samplers"] = {"host": {"interfaces": {"include": pattern}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert [p for p in info.value.problems if p.startswith(where)] == [
        f"{where}: is not supported in RE2 syntax ({reason}): configured patterns run in "
        "linear time, without backreferences or lookarounds"]


# --- row 13: a key pasted as a YAML key -------------------------------------------------

PASTED = "sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678"


@pytest.mark.parametrize(
    ("text", "shown"),
    [(f"endpoints:\n  - name: k\n    provider: openai\n    url: {CLOSED}\n    model: m\n"
      f"    {PASTED}:\n", "endpoints[0] (k).sk-pro…: unknown key"),
     (f"{PASTED}:\nlisten: 0.0.0.0:1\n", "sk-pro…: unknown key"),
     ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789: 1\n", "hf_AbC…: unknown key"),
     ("samplers:\n  host:\n    k8Zq2Xv9Lm4Tn7Rb1Wc5Yd3P: on\n",
      "samplers.host.k8Zq2X…: unknown key"),
     (f"listen: !{PASTED} x\n", "could not determine a constructor for the tag '!sk-pro…'"),
     ("max_tokns: 5\n", "max_tokns: unknown key")],  # a typo is shown whole
)
def test_a_key_pasted_as_a_yaml_key_is_shown_cut(tmp_path: Path, text: str, shown: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    done = check_config(path)
    assert done.returncode == 2
    assert shown in done.stderr
    assert PASTED not in done.stderr
    assert "AbCdEfGhIj" not in done.stderr
    assert "k8Zq2Xv9Lm" not in done.stderr


# --- the daemon: reloads of hostile configs, a key file turned into a FIFO --------------


@pytest.fixture
def daemon(tmp_path: Path, start_daemon: Callable[..., Daemon]) -> Daemon:
    key = tmp_path / "key"
    key.write_text("a-key\n")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "endpoints": [{**ENDPOINT, "api_key_file": str(key), "interval": "1s", "timeout": "1s"}],
        "samplers": {"host": {"enabled": False}, "gpu": {"enabled": False}}}))
    return start_daemon("-c", str(config))


def _reload(daemon: Daemon, expect: float) -> None:
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: sample(daemon.metrics(), "llmmon_config_last_reload_successful") == expect,
             15, f"llmmon_config_last_reload_successful to be {expect:g}")


def test_hostile_reloads_are_rejected_and_the_daemon_goes_on(tmp_path: Path,
                                                             daemon: Daemon) -> None:
    """A bomb, a 3000-deep file, a FIFO and a pasted key in place of the config, each
    reloaded by SIGHUP: the reload is rejected (the gauge 0, the reason logged, the key cut),
    the daemon answers, and a good config is taken again afterwards."""
    config = tmp_path / "config.yaml"
    good = config.read_text()
    cases = [(_merge_bomb(), "aliases expand to more than 16 MiB"),
             ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper than 64 levels"),
             (None, f"{config}: is not a regular file"),
             (good.replace("endpoints:", f"{PASTED}: 1\nendpoints:"), "sk-pro…: unknown key")]
    for text, logged in cases:
        config.unlink()
        if text is None:
            os.mkfifo(config)
        else:
            config.write_text(text)
        _reload(daemon, 0)
        assert logged in daemon.log()
        config.unlink()
        config.write_text(good)
        _reload(daemon, 1)
    assert "reload rejected" in daemon.log()
    assert "Traceback" not in daemon.log()
    assert PASTED not in daemon.log()
    assert daemon.stop() == 0


def test_a_key_file_turned_into_a_fifo_does_not_stall_the_daemon(tmp_path: Path,
                                                                  daemon: Daemon) -> None:
    """The FIFO used to block the event loop in open(): scrapes hung and SIGTERM was
    ignored. Now each probe fails as `protocol`, scrapes are answered, SIGTERM ends it."""
    key = tmp_path / "key"
    key.unlink()
    os.mkfifo(key)

    def failed_for_the_key() -> bool:
        return (sample(daemon.metrics(), "llmmon_probe_errors_total", llm_endpoint="k",
                       reason="protocol") or 0) >= 2

    wait_for(failed_for_the_key, 15, "probes to fail for the key")
    start = time.monotonic()
    assert daemon.get("/metrics").status_code == 200
    assert time.monotonic() - start < 1
    assert daemon.stop(signal.SIGTERM, timeout=10) == 0
