"""The shape of the code: no import cycles, sim/ kept out of the daemon, small files, and the
provider and sampler registries in agreement with what the config accepts."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmmon import providers, samplers
from llmmon.config import EndpointConfig, SamplerConfig
from llmmon.config.settings import Settings
from llmmon.metrics import families
from llmmon.metrics.family import Family
from llmmon.providers import PROVIDERS
from llmmon.samplers import SAMPLERS

ROOT = Path(__file__).parent.parent / "llmmon"
# The CLI is the composition root: `llmmon run --demo` starts the simulator.
MAY_IMPORT_SIM = {"llmmon.cli"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """Every llmmon module ``module`` imports, wherever the import statement is (lazy ones and
    TYPE_CHECKING ones too), with the packages whose __init__ the import runs on the way."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
    edges = {t for t in targets if t in known and t != module}  # what it names
    for target in targets:
        parts = target.split(".")
        for i in range(2, len(parts)):  # `llmmon` itself is everyone's ancestor
            name = ".".join(parts[:i])
            # Packages run on the way, except the module's own: those are already running.
            if name in known and name != module and not module.startswith(name + "."):
                edges.add(name)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imported(m, p, set(modules)) for m, p in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_cycles() -> None:
    """The checker itself: a cycle through three modules is found, a DAG passes."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """Imports inside functions count, and importing a.b.c also runs package a.b."""
    known = {"llmmon.x", "llmmon.pkg", "llmmon.pkg.mod", "llmmon.pkg.other"}
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from llmmon.pkg.mod import thing\n")
    assert _imported("llmmon.x", source, known) == {"llmmon.pkg", "llmmon.pkg.mod"}
    # Inside the package: its own __init__ runs anyway, but naming it is an edge.
    source.write_text("from llmmon.pkg.other import a\n")
    assert _imported("llmmon.pkg.mod", source, known) == {"llmmon.pkg.other"}
    source.write_text("from llmmon.pkg import a\n")
    assert _imported("llmmon.pkg.mod", source, known) == {"llmmon.pkg"}


def test_no_import_cycles() -> None:
    """No module of llmmon imports, directly or not, a module that imports it back."""
    assert find_cycle(import_graph()) is None


def test_daemon_never_imports_the_simulator() -> None:
    """llmmon.sim (simulator, scripted NVML, demo) is reached only from the CLI's --demo."""
    offenders = sorted(m for m, deps in import_graph().items()
                       if not m.startswith("llmmon.sim") and m not in MAY_IMPORT_SIM
                       and any(d == "llmmon.sim" or d.startswith("llmmon.sim.") for d in deps))
    assert offenders == []


def test_files_stay_small() -> None:
    """No module of llmmon is over 300 lines."""
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


def _tag(config: type[EndpointConfig]) -> str:
    (tag,) = typing.get_args(config.model_fields["provider"].annotation)
    return str(tag)


def test_provider_map_and_config_union_agree() -> None:
    """Each registered provider's config carries its own key as its tag, the config file
    accepts exactly the registered tags, and every provider config class is registered."""
    for name, provider in PROVIDERS.items():
        assert _tag(provider.config) == name
        settings = Settings(endpoints=[{"name": "e", "provider": name, "model": "m",
                                        "url": "http://127.0.0.1:1/v1"}])
        assert type(settings.endpoints[0]) is provider.config
    with pytest.raises(ValidationError, match="provider"):
        Settings(endpoints=[{"name": "e", "provider": "nope", "model": "m",
                             "url": "http://127.0.0.1:1/v1"}])
    declared = {cls for module in vars(providers).values() if inspect.ismodule(module)
                for cls in vars(module).values()
                if inspect.isclass(cls) and issubclass(cls, EndpointConfig)
                and cls is not EndpointConfig}
    assert declared == {p.config for p in PROVIDERS.values()}


def test_sampler_registry_gives_config_sections() -> None:
    """Every registered sampler has a config section of its own type, and its families are
    declared once (no name shared with another sampler or with llmmon's own)."""
    settings = Settings()
    for name, kind in SAMPLERS.items():
        assert issubclass(kind.config, SamplerConfig)
        assert type(getattr(settings.samplers, name)) is kind.config
    names = [f.name for f in families.LIVE_FAMILIES + samplers.sampler_families()]
    assert len(names) == len(set(names))


def test_every_declared_live_family_is_listed() -> None:
    """A family declared in metrics/families.py but left out of LIVE_FAMILIES would never be
    exported; the explicit list must hold them all."""
    declared = {v for v in vars(families).values() if isinstance(v, Family)}
    assert declared == set(families.LIVE_FAMILIES)
