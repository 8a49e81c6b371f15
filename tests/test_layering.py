"""The package layering of docs/architecture.md, checked on the import graph (grimp,
the graph library behind import-linter): no lower package imports a higher one, the
scheduler sees only the Store and Dispatcher ports, and no two packages import each other.

Every import counts, also one inside a function (a lazy import is still a dependency);
imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import graphlib

import grimp
import pytest

CORE = "gleitzeit_core"
#: Highest first: a package may import the ones below it, never one above.
LAYERS = ("cli", "ui", "_api", "engine", "scheduler", "cache", "dispatch", "providers", "workflow")
#: The provider packages shipped beside the engine: found through their entry points, never imported.
PROVIDER_PACKAGES = ("provider_python", "provider_ollama")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(CORE, "gleitzeit_sdk", *PROVIDER_PACKAGES, exclude_type_checking_imports=True)


def package_of(module: str) -> str:
    """``gleitzeit_core.x.y`` → ``gleitzeit_core.x``; ``gleitzeit_sdk.z`` → ``gleitzeit_sdk``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == CORE else parts[0]


def test_no_lower_layer_imports_a_higher_one(graph: grimp.ImportGraph):
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS, containers={CORE})
    assert not illegal, "\n".join(f"{d.importer} -> {d.imported}: {[r.as_dict() if hasattr(r, 'as_dict') else r for r in d.routes]}"
                                  for d in illegal)


@pytest.mark.parametrize("adapter", ["dispatch.local", "dispatch.redis", "dispatch.scripted", "dispatch.factory",
                                     "store.sqlite", "store.redis", "store.memory", "store.factory"])
def test_the_scheduler_sees_only_the_ports(graph: grimp.ImportGraph, adapter: str):
    assert not graph.chain_exists(importer=f"{CORE}.scheduler", imported=f"{CORE}.{adapter}", as_packages=True)


@pytest.mark.parametrize("lower", ["dispatch", "store", "providers"])
def test_adapters_do_not_reach_up_to_the_scheduler_or_the_engine(graph: grimp.ImportGraph, lower: str):
    for upper in ("scheduler", "engine", "_api", "cli", "distributed"):
        assert not graph.chain_exists(importer=f"{CORE}.{lower}", imported=f"{CORE}.{upper}", as_packages=True), upper


def test_the_sdk_does_not_import_the_engine(graph: grimp.ImportGraph):
    assert not graph.chain_exists(importer="gleitzeit_sdk", imported=CORE, as_packages=True)


@pytest.mark.parametrize("provider", PROVIDER_PACKAGES)
def test_the_engine_never_imports_a_provider_package(graph: grimp.ImportGraph, provider: str):
    """The engine knows its built-in providers only by their ``gleitzeit.providers`` entry
    points (as it knows third-party ones by their manifests); what both sides share is in the SDK."""
    assert not graph.chain_exists(importer=CORE, imported=provider, as_packages=True)
    assert not graph.chain_exists(importer=provider, imported=CORE, as_packages=True)
    assert not graph.chain_exists(importer="gleitzeit_sdk", imported=provider, as_packages=True)


def test_no_import_cycle_between_packages(graph: grimp.ImportGraph):
    """Package to package (direct imports), no cycle; nothing inside imports the public
    facade ``gleitzeit_core`` itself (it re-exports from almost everything)."""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            assert imported != CORE, f"{module} imports the facade {CORE}: import the module defining the name"
            if module != CORE and package_of(module) != package_of(imported):
                edges.setdefault(package_of(module), set()).add(package_of(imported))
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle between packages: {' -> '.join(exc.args[1])}") from None
