"""``import trackstack`` stays cheap: no pydantic, no backend SDK until a name is used."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import trackstack


def modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name.split(".")[0] for name in result.stdout.split()}


def test_import_trackstack_loads_nothing_heavy() -> None:
    loaded = modules_after("import trackstack")
    assert not loaded & {"mlflow", "wandb", "pydantic", "yaml", "rich", "sqlite3", "numpy"}


def test_the_core_at_work_imports_no_framework() -> None:
    loaded = modules_after(
        "import trackstack\n"
        "tracker = trackstack.load_tracker({'flavor': 'local', 'config': {'root': 'store'}})\n"
        "with tracker.start_run() as run:\n"
        "    run.log_metrics({'m': 1})\n"
        "trackstack.list_flavors()"
    )
    assert not loaded & {"torch", "lightning", "transformers", "accelerate", "zenml"}


def test_every_public_name_resolves() -> None:
    for name in trackstack.__all__:
        assert getattr(trackstack, name) is not None
    assert set(trackstack.__all__) <= set(dir(trackstack))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = trackstack.no_such_name


def module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run at import, ``if TYPE_CHECKING:`` blocks included; not function bodies.

    An import inside a function (a flavor loading its implementation) runs
    when called, after both modules are loaded, so it cannot form a cycle.
    """
    statements: list[ast.stmt] = []
    for node in body:
        statements.append(node)
        if isinstance(node, ast.If | ast.Try):
            statements += module_level(node.body + node.orelse)
    return statements


def core_imports() -> dict[str, set[str]]:
    """Each core module's import-time imports of other core modules."""
    source = Path(trackstack.__file__).parent
    names = {
        ".".join(path.relative_to(source.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in source.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for path in source.rglob("*.py"):
        module = ".".join(path.relative_to(source.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        imported: set[str] = set()
        for node in module_level(ast.parse(path.read_text()).body):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        # the package's own __init__ re-exports lazily; importing it is not a dependency
        graph[module] = (imported & names) - {module, "trackstack"}
    return graph


def test_the_core_has_no_import_cycle() -> None:
    graph = core_imports()
    assert "trackstack.delivery.sender_process" in graph
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle in src/trackstack: {' -> '.join(cycle.args[1])}")
    assert len(order) == len(graph)
