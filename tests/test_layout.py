"""The package layout: exported members, no import cycles, a core without Flask."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(BOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


@pytest.mark.parametrize("name", [m for m in MODULES if m != "bot.__main__"])
def test_exported_members_exist_and_are_listed_once(name: str) -> None:
    """Like httpx's test_exported_members: ``__all__`` names what the module has."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert name in {"bot.admin_password"}, f"{name} has no __all__"
        return
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    missing = [member for member in exported if not hasattr(module, member)]
    assert missing == []


def test_the_package_exports_the_engine() -> None:
    import bot

    assert sorted(bot.__all__) == sorted(
        member for member in dir(bot) if not member.startswith("_") and member[0].isupper()
    ) + ["load_bank"]


def _imports(name: str, path: Path) -> set[str]:
    """The bot modules ``name`` imports at module level (not in functions, not for typing)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def target(module: str | None, level: int) -> str:
        if not level:
            return module or ""
        base = package.split(".")
        base = base[: len(base) - level + 1]
        return ".".join(base + ([module] if module else []))

    for node in tree.body:
        if isinstance(node, ast.If):  # if TYPE_CHECKING: ...
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = target(node.module, node.level)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def test_no_import_cycles() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    # A package's __init__ re-exporting its own modules is not a cycle back into it.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_graph_sees_imports() -> None:
    assert "bot.match.engine" in _imports("bot.quality.lint", MODULES["bot.quality.lint"])
    assert "bot.web.errors" in _imports("bot.web.api", MODULES["bot.web.api"])


def test_the_core_loads_without_flask() -> None:
    code = (
        "import sys, bot, bot.match, bot.match.engine, bot.quality.evaluate, bot.quality.lint, "
        "bot.querylog, bot.analysis.report, bot.reload, bot.config\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_no_module_is_long() -> None:
    lines = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    assert max(lines.values()) > 100  # the count sees the files
    assert {name: n for name, n in lines.items() if n > 420} == {}
