"""The package's layers (docs/architecture.md) hold: no upward import, none between peers, no cycle."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "srgan"


def layers() -> dict[str, int]:
    """Top-level module or package -> its layer (0 = lowest), from docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S).group(1)
    rows = [line.split() for line in block.strip().splitlines()]
    return {name: len(rows) - 1 - i for i, row in enumerate(rows) for name in row}


def modules() -> dict[str, tuple[Path, bool]]:
    """'srgan.x.y' -> (file, is a package)."""
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(["srgan", *(parts[:-1] if is_pkg else parts)])] = (f, is_pkg)
    return out


def imports() -> dict[str, set[tuple[str, int]]]:
    """Module -> {(imported srgan module, line)}, function-local imports included."""
    mods = modules()
    graph: dict[str, set[tuple[str, int]]] = {m: set() for m in mods}
    for name, (path, is_pkg) in mods.items():
        here = name.split(".") if is_pkg else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (base, node.module or "") if p)
                targets = [module, *(f"{module}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add((target, node.lineno))
    return graph


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "srgan"


def test_every_top_level_module_has_a_layer():
    known = layers()
    missing = sorted({top(m) for m in modules()} - set(known) - {"srgan"})
    assert not missing, f"add {missing} to the layers block of docs/architecture.md"


def test_imports_go_down_the_layers():
    known = layers()
    bad = []
    for module, targets in imports().items():
        for target, line in targets:
            src, dst = top(module), top(target)
            if src == dst or dst == "srgan":  # its own package; the root holds only __version__
                continue
            if src == "srgan" or known[dst] >= known[src]:
                bad.append(f"{module}:{line} imports {target} ({src} -> {dst})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: {t for t, _ in ts} for m, ts in imports().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


@pytest.mark.parametrize("argv", [["--help"], ["upscale", "--help"], ["models"]])
def test_the_cli_answers_without_importing_torch(argv):
    code = ("import sys\nfrom srgan.cli.main import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
