"""The package's import graph has no cycle, counting imports inside functions too (a function-level
import hides a cycle from Python but not from a reader), and ``$GENREC_CACHE`` is read in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "genrec"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (never run, so not a runtime import)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """genrec module -> the genrec modules it imports anywhere in its body."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_lines(tree)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # ``from pkg import sub`` imports the submodule when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            graph[mod] |= {t for t in targets if t in files and t != mod}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_level_and_relative_imports():
    g = import_graph()
    assert "genrec.data.download" in g["genrec.data.registry"]
    assert "genrec._version" in g["genrec.models.base"]  # imported inside save()


def test_no_import_cycle_in_genrec():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_genrec_cache_is_read_in_one_place():
    readers = sorted(str(p.relative_to(ROOT.parent)) for p in ROOT.rglob("*.py")
                     if '"GENREC_CACHE"' in p.read_text() or "'GENREC_CACHE'" in p.read_text())
    assert readers == ["genrec/paths.py"]


@pytest.mark.parametrize("value", ["", None])
def test_cache_root_default_and_override(monkeypatch, tmp_path, value):
    from genrec.data.registry import cache_dir
    from genrec.lm.load import genrec_cache_dir
    from genrec.paths import cache_root

    if value is None:
        monkeypatch.delenv("GENREC_CACHE", raising=False)
    else:
        monkeypatch.setenv("GENREC_CACHE", value)
    assert cache_root() == Path.home() / ".cache" / "genrec"
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "c"))
    assert cache_root() == cache_dir() == genrec_cache_dir() == tmp_path / "c"
