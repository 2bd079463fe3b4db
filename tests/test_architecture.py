"""The import direction of docs/architecture.md, checked on the source: later stages import earlier ones, never the
reverse, so no cycle between packages can form (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tierml"

# Lowest first. A module may import from its own package and from packages on lower layers only.
LAYERS: list[set[str]] = [
    {"errors", "progress", "files"},
    {"yamlfile"},
    {"spec", "model"},
    {"data", "hardware", "registry"},
    {"optimize"},
    {"export"},
    {"plan"},
    {"serve"},
    {"hybrid", "fleet"},
    {"edge"},
    {"report"},
    {"stages"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT_NAMES = {"__version__"}  # what any module may take from the `tierml` package itself


def package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported(tree: ast.AST) -> list[tuple[str, int]]:
    """(target package under tierml, line) for every absolute import of tierml code."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[1], node.lineno) for a in node.names if a.name.startswith("tierml.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("tierml."):
                found.append((node.module.split(".")[1], node.lineno))
            elif node.module == "tierml":
                found += [(a.name, node.lineno) for a in node.names if a.name not in ROOT_NAMES]
    return found


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue  # the root re-exports the verbs (lazily) from the top layer
        source = package_of(path)
        assert source in RANK, f"{path}: package '{source}' is on no layer; add it to LAYERS and docs/architecture.md"
        for target, line in imported(ast.parse(path.read_text(), str(path))):
            assert target in RANK, f"{path}:{line}: imports unknown package '{target}'"
            if target != source and RANK[target] >= RANK[source]:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {source} (layer {RANK[source]}) imports "
                             f"{target} (layer {RANK[target]})")
    return found


def test_no_package_imports_its_own_layer_or_above():
    assert violations() == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    tree = ast.parse("def f():\n    from tierml.plan.planner import plan\n    import tierml.cli.app\n")
    assert imported(tree) == [("plan", 2), ("cli", 3)]
