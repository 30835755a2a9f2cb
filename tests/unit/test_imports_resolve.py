"""Every `from paas_svc.x import name` in the package and the tests names something that exists.

Most of the CLI imports lazily, inside the function that needs it, so a wrong import only fails
when that path runs (a moved module once broke `svc dsn` of remote services this way); ruff and
import-linter read imports but do not resolve names. This reads every import statement, wherever
it stands, and resolves it."""

from __future__ import annotations

import ast
import importlib

from tests.support.paths import ROOT


def _imports(paths):
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("paas_svc"):
                for alias in node.names:
                    yield where, node.module, alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("paas_svc"):
                        yield where, alias.name, None


def unresolved(paths) -> list[str]:
    missing = []
    for where, module_name, name in _imports(paths):
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            missing.append(f"{where}: no module {module_name} ({error})")
            continue
        if name is None or name == "*" or hasattr(module, name):
            continue
        try:
            importlib.import_module(f"{module_name}.{name}")
        except ImportError:
            missing.append(f"{where}: {module_name} has no {name}")
    return missing


def test_every_paas_svc_import_resolves():
    paths = [path for folder in ("paas_svc", "tests", "bench") for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(paths) > 100
    missing = unresolved(paths)
    assert not missing, "\n".join(missing)


def test_a_lazy_import_of_a_missing_name_is_reported(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text("def later():\n    from paas_svc.engine.sdk import targets\n    from paas_svc.engine import targets as fine\n"
                      "    import paas_svc.no_such_module\n")
    assert unresolved([source]) == [
        "lazy.py:2: paas_svc.engine.sdk has no targets",
        "lazy.py:4: no module paas_svc.no_such_module (No module named 'paas_svc.no_such_module')",
    ]
