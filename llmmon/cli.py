"""``llmmon run | probe | check-config | version``.

Exit codes: 0 success; 1 a probe failed (``probe``); 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import yaml

from llmmon import __version__
from llmmon.config import ConfigError
from llmmon.config.settings import Settings, default_config_path, load_settings, parse_listen
from llmmon.probecli import add_probe_arguments, probe_command

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
    try:
        settings = load_settings(path)
        if args.command == "run" and args.listen:
            parse_listen(args.listen)
            settings.listen = args.listen
    except ConfigError as exc:
        _print_problems(path, exc.problems)
        return EXIT_CONFIG
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        return _check_config(path, settings)
    if args.command == "healthcheck":
        return _healthcheck(settings)
    if args.command == "probe":
        return asyncio.run(probe_command(settings, args))
    return _run(settings, path, args.demo)


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
    check = sub.add_parser("check-config", help="validate a config and print it, secrets masked")
    with_config(check, required=True)
    probe = sub.add_parser("probe", help="probe endpoints once and print the measurements")
    with_config(probe)
    add_probe_arguments(probe)
    health = sub.add_parser("healthcheck", help="exit 0 if the local daemon's /healthz answers "
                            "(for a container HEALTHCHECK; needs no curl)")
    with_config(health)
    sub.add_parser("version", help="print the version")
    return parser


def _print_problems(path: Path | None, problems: list[str]) -> None:
    print(f"invalid configuration{f' in {path}' if path else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _check_config(path: Path | None, settings: Settings) -> int:
    from llmmon.daemon.auth import load_web_config

    try:
        load_web_config(settings.web_config_file)
    except ConfigError as exc:
        _print_problems(settings.web_config_file, exc.problems)
        return EXIT_CONFIG
    print(f"# {path}: valid. Effective configuration (API keys are never shown):")
    print(yaml.safe_dump(settings.dump(), sort_keys=False), end="")
    return EXIT_OK


def _healthcheck(settings: Settings) -> int:
    import httpx

    from llmmon.daemon.auth import load_web_config

    host, port = parse_listen(settings.listen)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        tls = load_web_config(settings.web_config_file).ssl_context is not None
    except ConfigError:
        return EXIT_PROBE_FAILED
    scheme = "https" if tls else "http"
    url = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
    try:
        # Loopback to our own process: the certificate is for the service name, not for this.
        ok = httpx.get(url, timeout=4, verify=False).status_code == 200
    except httpx.HTTPError:
        ok = False
    return EXIT_OK if ok else EXIT_PROBE_FAILED


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and a URL may carry more than it should. The
    # scheduler logs every run, and every skipped run as a warning: llmmon counts those in
    # llmmon_scheduler_missed_runs_total instead of writing a line a second.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def _run(settings: Settings, path: Path | None, demo: bool) -> int:
    _setup_logging(settings.log_level)

    def load() -> Settings:
        return load_settings(path)

    async def run() -> int:
        if demo:  # the one place outside llmmon.sim that reaches into it
            from llmmon.sim.demo import run_demo

            return await run_demo(settings, load)
        from llmmon.daemon.runtime import Runtime

        return await Runtime(settings, load).run()

    try:
        return asyncio.run(run())
    except ConfigError as exc:  # the web config, read when the runtime starts
        _print_problems(settings.web_config_file, exc.problems)
        return EXIT_CONFIG
    except OSError as exc:
        log.error("cannot start: %s", exc.strerror or exc)
        return EXIT_CONFIG
