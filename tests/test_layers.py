"""The package is layered, and the layers only point down.

Every module of `learned_rl` (with `tasks/` installed as `learned_rl.tasks` and `baselines/` as
`learned_rl.baselines`) belongs to one layer; a module may import only from the layers listed for
its own (CONTRIBUTING.md has the same table). Imports inside functions count like any other, and
none of our own modules may be imported inside a function at all: an import that has to hide in a
function is a cycle or an upward import in disguise. The whole import graph has no cycle.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# where each installed package lives in the repository (pyproject's package-dir)
SOURCES = {"learned_rl": ROOT / "learned_rl", "learned_rl.tasks": ROOT / "tasks", "learned_rl.baselines": ROOT / "baselines"}

# layer -> the modules in it (a name ending in ".*" is a package and everything under it)
LAYERS = {
    "tasks": ["learned_rl.tasks.*"],
    "core": ["learned_rl._agent", "learned_rl._rollout", "learned_rl._returns", "learned_rl._learner", "learned_rl._defaults", "learned_rl._checkpoint", "learned_rl._io", "learned_rl._stats", "learned_rl._memory"],
    "rules": ["learned_rl.rules.*", "learned_rl._rules_io", "learned_rl.pretrained"],
    "baselines": ["learned_rl.baselines.*"],
    "meta": ["learned_rl.meta", "learned_rl.meta._bandit", "learned_rl.meta._sharding", "learned_rl.meta._problems", "learned_rl.meta._estimators", "learned_rl.meta._meta_train", "learned_rl.meta._es", "learned_rl.meta._evosax", "learned_rl.meta._presets"],
    "experiment": ["learned_rl._registry", "learned_rl._evaluate", "learned_rl._tracking", "learned_rl._experiment", "learned_rl._transfer", "learned_rl._analysis", "learned_rl.meta._run"],
    "cli": ["learned_rl._cli", "learned_rl.__main__"],
    "api": ["learned_rl"],
}
# layer -> the layers its modules may import from
MAY_IMPORT = {
    "tasks": {"tasks"},
    "core": {"tasks", "core"},
    "rules": {"tasks", "core", "rules"},
    "baselines": {"tasks", "core", "rules", "baselines"},
    "meta": {"tasks", "core", "rules", "meta"},  # never the baselines
    "experiment": {"tasks", "core", "rules", "baselines", "meta", "experiment"},
    "cli": {"tasks", "core", "rules", "baselines", "meta", "experiment", "cli"},
    "api": {"tasks", "core", "rules", "baselines", "meta", "experiment"},  # the public API, never the CLI
}


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, src in SOURCES.items():
        for p in src.rglob("*.py"):
            parts = p.relative_to(src).with_suffix("").parts
            name = ".".join((pkg, *parts))
            mods[name.removesuffix(".__init__")] = p
    return mods


MODULES = _modules()


def _layer(module: str) -> str:
    hits = [layer for layer, members in LAYERS.items() for m in members if module == m or (m.endswith(".*") and (module == m[:-2] or module.startswith(m[:-1])))]
    assert len(hits) == 1, f"{module} is in {len(hits)} layers ({hits}); add it to LAYERS and to CONTRIBUTING.md's table"
    return hits[0]


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module of ours, line, inside a function?) for every import statement in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names if a.name.split(".")[0] in ("learned_rl", "tasks", "baselines"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_pkg else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] not in ("learned_rl", "tasks", "baselines"):
                    continue
                for a in child.names:
                    sub = f"{target}.{a.name}"
                    out.append((sub if sub in MODULES else target, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_module_has_one_layer():
    for m in MODULES:
        _layer(m)


def test_imports_only_point_down():
    bad = []
    for m, imps in GRAPH.items():
        for target, line, _ in imps:
            if target not in MODULES:
                bad.append(f"{MODULES[m].relative_to(ROOT)}:{line}: imports {target}, which is not one of our modules (tasks and baselines install as learned_rl.tasks, learned_rl.baselines)")
            elif _layer(target) not in MAY_IMPORT[_layer(m)]:
                bad.append(f"{MODULES[m].relative_to(ROOT)}:{line}: {m} ({_layer(m)}) imports {target} ({_layer(target)})")
    assert not bad, "\n".join(bad)


# modules allowed to import our own modules inside functions, and why
DEFERRED = {
    "learned_rl": "its experiment-layer names (compare, transfer, evaluate, ...) are imported on first use, "
    "so that importing the package does not start the XLA backend (see learned_rl._cli)",
    "learned_rl._cli": "importing the experiment layer imports gymnax, which starts the XLA backend; "
    "`meta-train --distributed` must call jax.distributed.initialize() first",
}


def test_no_import_of_our_modules_inside_functions():
    inner = [f"{MODULES[m].relative_to(ROOT)}:{line}: {t}" for m, imps in GRAPH.items() if m not in DEFERRED for t, line, in_fn in imps if in_fn]
    assert not inner, "imports of our own modules inside functions:\n" + "\n".join(inner)


def test_only_main_imports_the_cli():
    users = sorted(m for m, imps in GRAPH.items() for t, _, _ in imps if t == "learned_rl._cli")
    assert users == ["learned_rl.__main__"]


def test_no_import_cycle():
    edges = {m: sorted({t for t, _, _ in imps if t in MODULES and t != m}) for m, imps in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m):
        state[m] = 1
        stack.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            dfs(m)


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above can fail: a planted upward import and a planted cycle are both caught."""
    saved = {k: list(v) for k, v in GRAPH.items()}
    try:
        GRAPH["learned_rl._agent"].append(("learned_rl._cli", 1, False))
        with pytest.raises(AssertionError, match="core.*imports learned_rl._cli"):
            test_imports_only_point_down()
        GRAPH["learned_rl._agent"][-1] = ("learned_rl._learner", 1, True)
        with pytest.raises(AssertionError, match="import cycle"):
            test_no_import_cycle()
        with pytest.raises(AssertionError, match="inside functions"):
            test_no_import_of_our_modules_inside_functions()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_packaging_installs_one_top_level_name(tmp_path):
    """The wheel holds `learned_rl` only (tasks and baselines inside it), with the shipped rules."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p == "learned_rl" or p.startswith("learned_rl.") for p in config["packages"])
    assert {"learned_rl.tasks": "tasks", "learned_rl.baselines": "baselines"}.items() <= config["package-dir"].items()
    # build from a copy: setuptools stages files under build/, which must not land in the checkout
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "runs", "__pycache__", ".pytest_cache"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("learned_rl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"learned_rl", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    for f in ("learned_rl/tasks/gridworld.py", "learned_rl/baselines/ppo.py", "learned_rl/pretrained/lpg_tabular.eqx"):
        assert f in names, f


def test_generic_names_are_not_importable(tmp_path):
    """Outside the repository, `tasks` and `baselines` are not top-level modules; the library's are."""
    code = "import importlib.util as u, learned_rl.tasks, learned_rl.baselines; print(u.find_spec('tasks'), u.find_spec('baselines'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["None", "None"]


def test_tests_benchmarks_examples_and_readme_import_the_installed_names():
    """Only `learned_rl.tasks` / `learned_rl.baselines`: a bare `import tasks` works inside the
    repository (it is on sys.path) but not for a user, and would load a second copy of the module."""
    import re

    sources = [p for d in ("tests", "benchmarks", "examples") for p in (ROOT / d).rglob("*.py")]
    texts = [(p.relative_to(ROOT), p.read_text()) for p in sources] + [(p.relative_to(ROOT), p.read_text()) for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]]
    bare = re.compile(r"^\s*(import\s+(tasks|baselines)\b|from\s+(tasks|baselines)(\.\w+)*\s+import\b|import\s+[\w., ]*(?<![.\w])(tasks|baselines)\b)", re.M)
    hits = [f"{path}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0).strip()}" for path, text in texts for m in bare.finditer(text)]
    assert not hits, "bare imports of tasks/baselines:\n" + "\n".join(hits)


def test_importing_the_cli_does_not_start_the_xla_backend():
    """`meta-train --distributed` calls jax.distributed.initialize() inside the CLI, which must come
    before anything starts the XLA backend (importing gymnax does): the CLI module and the package
    import nothing that does (the DEFERRED exemption above)."""
    code = "import learned_rl, learned_rl._cli; from jax._src import xla_bridge; print(bool(xla_bridge._backends))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == "False"
