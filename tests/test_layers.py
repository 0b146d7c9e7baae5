"""The import layers (CONTRIBUTING.md): every module under src/xfv is parsed with ``ast``, nothing is imported.

cli / web > jobs > store > domain (verification, confidence, xmaps, datasets) > adapters (models, faces); a
layer may import its own and lower layers only. ``xfv`` itself, ``xfv.files`` and ``xfv.errors`` serve every
layer. The web may take from ``xfv.jobs`` only the public names of its ``__init__``, never a submodule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "xfv"

#: the rank of each top-level part of the package; a module may import parts of its own rank or lower
LAYERS = {
    "models": 0, "faces": 0,
    "verification": 1, "confidence": 1, "xmaps": 1, "datasets": 1, "quality": 1,
    "store": 2,
    "jobs": 3,
    "web": 4, "cli": 4, "__main__": 4,
}
SHARED = {"", "files", "errors", "data"}  # the package root (``__version__``), the cache folder, the exceptions
#: same rank, but still not to be imported: the web is not started from the command line's modules
FORBIDDEN = {("web", "cli")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the file, at any depth (lazy imports inside functions count);
    ``from xfv.a import b`` gives ``xfv.a.b`` where ``b`` is a module or package, else ``xfv.a``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = PACKAGE.parent.joinpath(*f"{base}.{alias.name}".split("."))
                is_module = candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file()
                found.append((node.lineno, f"{base}.{alias.name}" if is_module else base))
    return sorted({(line, module) for line, module in found if module == "xfv" or module.startswith("xfv.")})


def part(module: str) -> str:
    """``xfv.jobs.precompute`` -> ``jobs``; ``xfv`` -> ``""``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def layer_violations(path: Path) -> list[str]:
    importer = module_name(path)
    source = part(importer)
    problems = []
    for line, module in imported_modules(path):
        target = part(module)
        where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        if target in SHARED or target == source:
            continue
        if target not in LAYERS:
            problems.append(f"{where}: {target!r} has no layer in LAYERS (add it)")
        elif LAYERS[target] > LAYERS[source] or (source, target) in FORBIDDEN:
            problems.append(f"{where}: {source} (layer {LAYERS[source]}) may not import {target} "
                            f"(layer {LAYERS[target]})")
        elif source == "web" and target == "jobs" and module != "xfv.jobs":
            problems.append(f"{where}: the web may use only the public names of xfv.jobs, not its modules")
    return problems


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_layer():
    parts = {part(module_name(path)) for path in MODULES} - SHARED
    assert parts <= set(LAYERS), sorted(parts - set(LAYERS))


@pytest.mark.parametrize("layer", sorted({part(module_name(path)) for path in MODULES} - SHARED))
def test_no_upward_imports(layer):
    problems = [p for path in MODULES if part(module_name(path)) == layer for p in layer_violations(path)]
    assert not problems, "\n".join(problems)


def test_the_checker_sees_violations(tmp_path):
    """The rules catch what they name: a web route reaching into a job module, a model importing the store."""
    sample = {
        "xfv/web/bad.py": "from xfv.jobs.precompute import METHODS\nfrom xfv.jobs import precompute\n"
                          "from xfv.jobs import run_precompute\n",
        "xfv/models/bad.py": "def f():\n    from xfv.store import db\n    from ..cli import common\n",
        "xfv/xmaps/ok.py": "from xfv.models import create_model\nfrom . import methods\nfrom xfv import files\n",
    }
    for relative, text in sample.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    for package in ("xfv", "xfv/web", "xfv/jobs", "xfv/models", "xfv/store", "xfv/cli", "xfv/xmaps"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    for module in ("jobs/precompute", "store/db", "cli/common", "xmaps/methods", "files"):
        (tmp_path / "xfv" / f"{module}.py").touch()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(globals(), "PACKAGE", tmp_path / "xfv")
        web = layer_violations(tmp_path / "xfv/web/bad.py")
        models = layer_violations(tmp_path / "xfv/models/bad.py")
        xmaps = layer_violations(tmp_path / "xfv/xmaps/ok.py")
    assert [p.split(":")[1] for p in web] == ["1 imports xfv.jobs.precompute", "2 imports xfv.jobs.precompute"]
    assert [p.split(" imports ")[1].split(":")[0] for p in models] == ["xfv.store.db", "xfv.cli.common"]
    assert xmaps == []


def test_warning_filters_change_only_in_the_command_lines_main_thread():
    """``warnings.catch_warnings`` swaps process-wide state: from the web's worker threads it would silence (or
    unsilence) warnings of every other thread. Only the CLI's entry point, on the main thread, may use it."""
    users = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                   if any(isinstance(node, ast.Attribute) and node.attr == "catch_warnings"
                          for node in ast.walk(ast.parse(path.read_text()))))
    assert users == ["cli/__init__.py"]
