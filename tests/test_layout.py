"""The package's layers: every import goes from a layer to itself or to one below it, and no imports loop.

The walk reads the source (every ``import``, also those inside functions) instead of importing
it, so a lazy import that breaks the layering is caught as well.
"""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a module may import from its own layer and the layers before it.
LAYERS = [
    ("minivgg.errors", "minivgg.version", "minivgg.text", "minivgg.atomic", "minivgg.files", "minivgg.progress"),
    ("minivgg.nn",),
    ("minivgg.imaging",),
    ("minivgg.trust",),
    ("minivgg.explain",),
    ("minivgg.deploy",),
    ("minivgg.training",),
    ("minivgg.app",),
    ("minivgg.course",),
    ("minivgg.tui",),
    ("minivgg.cli",),
]
# Where the installed package's modules live in the repository (pyproject: package-dir).
SOURCES = {"minivgg": ROOT / "minivgg", "minivgg.explain": ROOT / "explain", "minivgg.tui": ROOT / "tui"}


def package_modules():
    """``{module name: source path}`` for every module of the installed package."""
    modules = {}
    for prefix, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((prefix, *parts))
            if not (prefix == "minivgg" and len(parts) and parts[0] in ("explain", "tui")):
                modules[name] = path
    return modules


def imported(path, name, modules):
    """The package's modules that the module ``name`` (source at ``path``) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t == "minivgg" or t.startswith("minivgg."))
    return found


def layer_of(name):
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS")


def test_every_module_belongs_to_a_layer():
    for name in package_modules():
        if name != "minivgg":
            layer_of(name)


def test_no_import_goes_up_a_layer():
    modules = package_modules()
    wrong = []
    for name, path in modules.items():
        if name == "minivgg":               # the package's front door re-exports from every layer
            continue
        for target in imported(path, name, modules):
            if target == "minivgg":
                wrong.append(f"{name} imports the package root (import from the module that defines the name)")
            elif layer_of(target) > layer_of(name):
                wrong.append(f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})")
    assert not wrong, "\n".join(wrong)


def find_loops(graph):
    """Every import loop in ``graph`` ({module: modules it imports}) found by a depth-first walk."""
    state, loops = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                loops.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"
    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return loops


def test_no_import_loops():
    modules = package_modules()
    graph = {name: {t for t in imported(path, name, modules) if t in modules and t != name}
             for name, path in modules.items() if name != "minivgg"}
    assert find_loops({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]      # the finder finds one
    assert not find_loops(graph), "\n".join(find_loops(graph))


def test_the_walk_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\ndef f():\n    from minivgg.tui.app import MiniVGGApp\n    from . import pool\n")
    modules = package_modules()
    assert imported(source, "minivgg.nn.m", modules) == {"minivgg.tui.app", "minivgg.nn.pool"}
    assert layer_of("minivgg.tui.app") > layer_of("minivgg.nn.m")          # so this would be reported


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (pip install -e '.[test]')")
def test_the_linter_is_clean_at_120_columns():
    """ruff, with the rules and line length pyproject.toml sets, finds nothing in the code."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "minivgg", "explain",
                           "tui", "tests", "benchmarks", "scripts", "train.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_shap_map_is_made_without_the_heavy_imports_it_does_not_need(tmp_path):
    """``minivgg explain --method shap`` imports neither matplotlib (pictures are drawn with Pillow) nor SciPy's
    image and statistics modules (its regions are computed in NumPy): 0.6 s of a command's 2.5 s."""
    sample = sorted((ROOT / "minivgg" / "data" / "samples" / "RA").glob("*.png"))[0]
    code = ("import sys, minivgg.cli as cli; "
            f"code = cli.main(['explain', {str(sample)!r}, '--method', 'shap', '--budget', '20', '--out', "
            f"{str(tmp_path)!r}]); "
            "print(code, [m for m in ('matplotlib', 'scipy.ndimage', 'scipy.stats') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
