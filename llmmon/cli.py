"""``llmmon run | probe | bench | compare | check-config | healthcheck | version``.

Exit codes: 0 success; 1 a probe failed (``probe``), every request failed (``bench``) or a
threshold was breached (``compare``); 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from llmmon import __version__
from llmmon.benchargs import add_bench_arguments, add_compare_arguments
from llmmon.config import ConfigError
from llmmon.config.settings import (
    Settings,
    check_settings,
    default_config_path,
    describe_errors,
    load_settings,
    parse_listen,
)
from llmmon.config.types import read_yaml
from llmmon.probecli import add_probe_arguments, adhoc_endpoint, probe_command

if TYPE_CHECKING:
    from llmmon.daemon.auth import WebConfig

EXIT_OK, EXIT_PROBE_FAILED, EXIT_CONFIG = 0, 1, 2
log = logging.getLogger("llmmon")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    if args.command == "version":
        print(f"llmmon {__version__}")
        return EXIT_OK
    path = args.config if args.config is not None else default_config_path()
    if args.command == "check-config":
        return _check_config(path, args.offline)
    if args.command == "healthcheck":
        return _healthcheck(path)
    if args.command in ("bench", "compare"):
        return _bench(args, path)
    if args.command == "probe" and args.url:
        endpoint = adhoc_endpoint(args)
        if isinstance(endpoint, list):
            _print_problems(None, endpoint)
            return EXIT_CONFIG
        return asyncio.run(probe_command(None, args, endpoint))
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        _print_problems(path, exc.problems)
        return EXIT_CONFIG
    if args.command == "run" and args.listen:
        try:
            parse_listen(args.listen)
        except ValueError as exc:
            print(f"--listen: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        settings.listen = args.listen
    if args.command == "probe":
        return asyncio.run(probe_command(settings, args))
    return _run(settings, path, args.demo, args.enable_lifecycle)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmmon", description="Prometheus exporter for LLM "
                                     "endpoints and the machines under them.")
    parser.add_argument("--version", action="version", version=f"llmmon {__version__}")
    sub = parser.add_subparsers(dest="command")

    def with_config(p: argparse.ArgumentParser, required: bool = False) -> None:
        p.add_argument("-c", "--config", type=Path, required=required,
                       help="YAML config file (default: $LLMMON_CONFIG, else "
                       "/etc/llmmon/config.yaml if present, else built-in defaults)")

    run = sub.add_parser("run", help="run the exporter daemon")
    with_config(run)
    run.add_argument("--listen", help="HOST:PORT to serve on (overrides the config)")
    run.add_argument("--demo", action="store_true",
                     help="also start a simulated LLM endpoint in-process and probe it")
    run.add_argument("--web.enable-lifecycle", dest="enable_lifecycle", action="store_true",
                     help="let POST /-/reload reload the configuration (behind the web "
                     "config's auth, at most about once a second); without it /-/reload "
                     "answers 403. SIGHUP always reloads")
    check = sub.add_parser("check-config", help="validate a config and print it, secrets masked")
    with_config(check, required=True)
    check.add_argument("--offline", action="store_true",
                       help="check the form only, for CI where secrets are not mounted: the "
                       "variables that api_key_env and headers name need not be set, key, CA "
                       "and web config files need not exist")
    probe = sub.add_parser("probe", help="probe endpoints once and print the measurements")
    with_config(probe)
    add_probe_arguments(probe)
    bench = sub.add_parser("bench", help="sweep an endpoint's load (concurrency or rate) and "
                           "write JSON, CSV, Markdown and HTML reports")
    with_config(bench)
    add_bench_arguments(bench)
    compare = sub.add_parser("compare", help="A/B endpoints on the same prompts, or two saved "
                             "bench runs, with confidence intervals and --fail-on gates")
    with_config(compare)
    add_compare_arguments(compare)
    health = sub.add_parser("healthcheck", help="exit 0 if the local daemon's /healthz answers "
                            "(for a container HEALTHCHECK; needs no curl)")
    with_config(health)
    sub.add_parser("version", help="print the version")
    return parser


def _bench(args: argparse.Namespace, path: Path | None) -> int:
    """bench and compare: from a config, ad hoc (--url), or (compare) from saved runs."""
    settings = None
    if not args.url and not getattr(args, "baseline", None):
        try:
            settings = load_settings(path)
        except ConfigError as exc:
            _print_problems(path, exc.problems)
            return EXIT_CONFIG
    from llmmon.benchcli import bench_command, compare_command  # the benchmark modules: only here

    command = bench_command if args.command == "bench" else compare_command
    return asyncio.run(command(settings, args))


def _print_problems(path: Path | None, problems: list[str]) -> None:
    print(f"invalid configuration{f' in {path}' if path else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _check_config(path: Path | None, offline: bool) -> int:
    """Every problem of the file, the environment and the web config at once; else the
    effective configuration."""
    settings, problems, values = check_settings(path, offline=offline)
    web = settings.web_config_file if settings else values.get("web_config_file")
    if isinstance(web, str | Path) and str(web):
        problems += _web_config_problems(Path(web), offline)
    if settings is None or problems:
        _print_problems(path, problems)
        return EXIT_CONFIG
    checked = "valid (offline: keys and files not looked at)" if offline else "valid"
    print(f"# {path}: {checked}. Effective configuration (API keys are never shown):")
    print(yaml.safe_dump(settings.dump(), sort_keys=False), end="")
    return EXIT_OK


def _read_web_config(path: Path) -> tuple[WebConfig | None, list[str]]:
    """The web config's form, without loading the certificates it names."""
    from llmmon.daemon.auth import WebConfig

    try:
        return WebConfig.model_validate(read_yaml(path)), []
    except ConfigError as exc:
        return None, exc.problems
    except ValidationError as exc:
        return None, [f"{path}: {line}" for line in describe_errors(exc)]


def _web_config_problems(path: Path, offline: bool) -> list[str]:
    from llmmon.daemon.auth import hash_problems, load_web_config

    if not offline:
        try:
            load_web_config(path)
        except ConfigError as exc:
            return exc.problems
        return []
    if not os.access(path, os.R_OK):
        return []  # offline: the file need not be there yet
    config, problems = _read_web_config(path)
    return problems + hash_problems(path, config.basic_auth_users if config else {})


def _healthcheck(path: Path | None) -> int:
    """Asks the local daemon's /healthz. Only ``listen`` and ``web_config_file`` are read, so
    that keys that cannot be read, or a broken endpoint, do not make a live daemon look dead."""
    import httpx

    settings, problems, _ = check_settings(path, offline=True,
                                           only=("listen", "web_config_file"))
    if settings is None:
        _print_problems(path, problems)
        return EXIT_CONFIG
    host, port = parse_listen(settings.listen)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    web = _read_web_config(settings.web_config_file)[0] if settings.web_config_file else None
    # A web config that cannot be read leaves the scheme open: try both.
    schemes = ["https" if web and web.tls_server_config else "http"] \
        if web or not settings.web_config_file else ["http", "https"]
    for scheme in schemes:
        url = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
        try:
            # Loopback to our own process: the certificate is for the service name, not this.
            if httpx.get(url, timeout=4, verify=False).status_code == 200:
                return EXIT_OK
        except httpx.HTTPError:
            pass
    return EXIT_PROBE_FAILED


def _raise_fd_limit() -> None:
    """The soft limit on open files up to the hard one, as Go programs do at start: a crowd
    of connections then meets the server's own cap, not EMFILE."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # kept as it was: the server still caps itself at half of it


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and a URL may carry more than it should. The
    # scheduler logs every run, and every skipped run as a warning: llmmon counts those in
    # llmmon_scheduler_missed_runs_total instead of writing a line a second.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def _run(settings: Settings, path: Path | None, demo: bool, lifecycle: bool) -> int:
    _setup_logging(settings.log_level)
    _raise_fd_limit()

    def load() -> Settings:
        return load_settings(path)

    async def run() -> int:
        if demo:  # the one place outside llmmon.sim that reaches into it
            from llmmon.sim.demo import run_demo

            return await run_demo(settings, load, lifecycle)
        from llmmon.daemon.runtime import Runtime

        return await Runtime(settings, load, lifecycle=lifecycle).run()

    try:
        return asyncio.run(run())
    except ConfigError as exc:  # the web config, read when the runtime starts
        _print_problems(settings.web_config_file, exc.problems)
        return EXIT_CONFIG
    except OSError as exc:
        log.error("cannot start: %s", exc.strerror or exc)
        return EXIT_CONFIG
