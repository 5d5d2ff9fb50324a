"""The README is a contract: every command and Python snippet in it, and in the documents it hands
its reference and results to (`DOCS`), runs, as shown, on a tiny budget.

- Every line of a ```bash block that calls `learned-rl` runs in-process through the CLI's `main`,
  with its budget shrunk: `--steps` to two agent updates of the largest default rollout among the
  command's rules and tasks, `--seeds` to 2, meta-training to one or two meta-steps of a tiny
  preset, `--out` to a temporary directory. Everything else (task, rules, suite, flags) is as
  written, so a stale flag, an unknown task or a rule that cannot run fails the suite.
- `python benchmarks/X.py ...` lines: the script exists and its `--help` lists every flag used.
- ```python blocks run in order in one namespace, with a few budget substitutions, each of which
  must still match the README (so an edit to a snippet cannot silently skip it).
- Every script in `examples/` runs on a tiny budget.

Commands that need Brax, transfer over the four MinAtar games, and the commands of the results
pages (every document but `REFERENCE`) are in the `slow` marker; the default suite still parses
each results-page command and checks the tasks and rules it names. Every other task family runs
in the default suite.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# the documents whose commands and snippets are tested, in the order their Python blocks run
FIRST = ("guide.md", "rules.md", "results.md", "performance.md")  # reference first, then the rest by name
DOCS = [README, *(ROOT / "docs" / n for n in FIRST), *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in FIRST)]

# shell lines in the README that are not ours to run: the set-up commands (CI runs `make test`
# itself; `learned-rl demo`, what `make demo` runs, is in the list below) and plain file utilities
NOT_OURS = ("make ", "mkdir ", "cp ", "git ", "pip ")

TINY_LPG = {"hidden_size": 8, "prediction_dim": 4, "lifetimes_per_task": 2, "num_envs": 4, "rollout_len": 8, "lifetime_updates": 12, "inner_steps": 3, "learning_rates": [10.0], "alpha_ys": [0.5]}


class Loc(str):
    """`file:line` of a block or command, with the file kept apart for lookups within one document."""

    def __new__(cls, path: Path, line: int):
        loc = super().__new__(cls, f"{path.relative_to(ROOT)}:{line}")
        loc.path, loc.line = path, line
        return loc

    def __add__(self, n: int) -> "Loc":
        return Loc(self.path, self.line + n)


def _blocks(lang: str) -> list[tuple[Loc, str]]:
    """(location of its first line, text) of each fenced block of `lang`, document by document."""
    out = []
    for doc in DOCS:
        cur, start = None, 0
        for i, line in enumerate(doc.read_text().splitlines(), 1):
            if cur is None and line.strip() == f"```{lang}":
                cur, start = [], i + 1
            elif cur is not None and line.strip() == "```":
                out.append((Loc(doc, start), "\n".join(cur)))
                cur = None
            elif cur is not None:
                cur.append(line)
    return out


def _shell_commands() -> list[tuple[Loc, list[str]]]:
    """Every command of the README's bash blocks, continuation lines joined, comments dropped."""
    cmds = []
    for start, text in _blocks("bash"):
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            lineno, line = start + i, lines[i]
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i]
            i += 1
            argv = shlex.split(line, comments=True)
            if argv:
                cmds.append((lineno, argv))
    return cmds


COMMANDS = _shell_commands()
CLI = [(n, a) for n, a in COMMANDS if a[0] == "learned-rl"]
BENCH = [(n, a) for n, a in COMMANDS if a[0] == "python" and a[1].startswith("benchmarks/")]
EXAMPLE_LINES = [(n, a) for n, a in COMMANDS if a[0] == "python" and a[1].startswith("examples/")]


def test_every_readme_shell_command_is_covered():
    """A command the tests below would not run is an error, not a silent skip."""
    left = [f"{n}: {' '.join(a)}" for n, a in COMMANDS if (n, a) not in CLI + BENCH + EXAMPLE_LINES and not any(" ".join(a).startswith(p) for p in NOT_OURS)]
    assert not left, "README shell commands no test runs:\n" + "\n".join(left)
    assert len(CLI) >= 15 and {a[1] for _, a in CLI} >= {"tasks", "train", "compare", "transfer", "meta-train", "analyse", "demo", "sweep", "evaluate"}
    assert any(n.path == README for n, _ in CLI), "the README shows no learned-rl command"


def test_readme_install_lines_name_real_extras():
    """`pip install ".[x]"` lines in the README: each extra exists in pyproject.toml."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    shown = [(n, a) for n, a in COMMANDS if a[:2] == ["pip", "install"]]
    assert shown, "the README shows no install line"
    for n, a in shown:
        for m in re.finditer(r"\[([\w,-]+)\]", " ".join(a)):
            missing = [e for e in m.group(1).split(",") if e not in extras]
            assert not missing, f"{n}: no extra {missing} in pyproject.toml (extras: {sorted(extras)})"


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _set_flag(argv: list[str], name: str, value: str) -> list[str]:
    if name in argv:
        argv = list(argv)
        argv[argv.index(name) + 1] = value
        return argv
    return [*argv, name, value]


def _one_update(rule_names: list[str], task_names: list[str], sets: dict | None = None, recipe: str | None = None) -> int:
    """Env steps of two agent updates: the largest rollout among these rules and tasks (of the
    command's ``--recipe`` where it names one), with the command's ``--set num_envs=``/``rollout_len=``
    where it gives them."""
    from learned_rl import tasks
    from learned_rl._defaults import get_recipe
    from learned_rl._registry import make_rule

    n = 0
    for t in task_names:
        task = tasks.make(t)
        for r in rule_names:
            rule = make_rule(r)
            try:
                rule.check_task(task)
            except ValueError:
                continue
            c = get_recipe(recipe).config if recipe else rule.default_config(task)
            n = max(n, 2 * int((sets or {}).get("num_envs", c.num_envs)) * int((sets or {}).get("rollout_len", c.rollout_len)))
    return n


def _tiny(argv: list[str], tmp: Path) -> list[str]:
    """The README command with its budget shrunk and its outputs under `tmp`."""
    from learned_rl import tasks
    cmd, args = argv[1], list(argv[2:])
    if cmd == "tasks":
        return [cmd, *args]
    if cmd == "evaluate":  # the run directory is the tiny run of the command that wrote it
        return [cmd, str(tmp / "out"), *_set_flag(args[1:], "--episodes", "2")]
    if cmd in ("train", "compare", "transfer", "demo", "sweep", "select"):
        from learned_rl._transfer import expand_rule_names

        rules = expand_rule_names((_flag(args, "--rules") or _flag(args, "--rule") or "lpg:lpg_tabular").split(","))
        if cmd in ("transfer", "demo", "select"):
            rules = [*rules, "a2c"]
        task = _flag(args, "--task") or ("chain/short" if cmd == "demo" else None)
        names = ([*tasks.resolve(_flag(args, "--suite")), *(tasks.resolve(_flag(args, "--validate")) if "--validate" in args else [])] if cmd == "transfer"
                 else tasks.resolve(_flag(args, "--validate")) if cmd == "select" else [task])
        sets = dict(a.split("=", 1) for i, a in enumerate(args) if i and args[i - 1] == "--set")
        args = _set_flag(args, "--steps", str(_one_update(rules, names, sets, _flag(args, "--recipe"))))
        if "--validation-steps" in args:
            args = _set_flag(args, "--validation-steps", str(_one_update(rules, names, sets)))
        args = _set_flag(args, "--seeds", "2")
        args = [*args, "--no-progress"]
    elif cmd == "meta-train":
        if args[0] == "lpg":
            args = _set_flag(args, next((f for f in ("--generations", "--steps") if f in args), "--meta-steps"), "2")
            if _flag(args, "--estimator") == "es":
                args = _set_flag(args, "--population", "2")
            keep = ("hidden_size", "prediction_dim") if "--init-rule" in args else ()  # a warm start keeps the rule's architecture
            # a shortest lifetime shrinks with the tiny lifetimes (it must lie in [K, lifetime_updates])
            args = [f"min_lifetime_updates={TINY_LPG['lifetime_updates'] // 2}" if a.startswith("min_lifetime_updates=") else a for a in args]
            args += [a for k, v in TINY_LPG.items() if k not in keep for a in ("--set", f"{k}={json.dumps(v)}")]
            if "--snapshot-every" in args:  # a snapshot within the tiny run's two meta-steps
                args = _set_flag(args, "--snapshot-every", "1")
        else:
            counts = [f for f in ("--generations", "--meta-steps", "--steps") if f in args]
            for flag in counts:
                args = _set_flag(args, flag, "1")
            if not counts:
                args += ["--meta-steps", "1"]
            args = _set_flag(args, "--population", "2")
            args = _set_flag(args, "--inner-steps" if "--inner-steps" in args else "--inner-env-steps", "2560")
        args = [*args, "--no-progress"]
    elif cmd == "analyse" and args[0] == "predictions":
        args = _set_flag(args, "--steps", "5120")
    return [cmd, *_set_flag(args, "--out", str(tmp / "out"))]


def _kind(argv: list[str]) -> tuple[str, ...]:
    return tuple(argv[1:3])


# the documents a user learns the library from; the others are results pages, whose commands
# reproduce a table and run in the slow marker (each is still parsed in the default suite)
REFERENCE = ("README.md", "guide.md", "rules.md", "sweeps.md")


def _needs_slow(argv: list[str], earlier: list[list[str]], loc: Loc) -> bool:
    """Brax and MinAtar commands, `select`, a results page's commands, a command that a later
    `--resume` line repeats, and a second `meta-train`/`transfer` command of the same kind (the
    reproduction commands of the Results sections: 10-130 s each even on a tiny budget, as each
    compiles its own programs) run in the slow marker; `--resume` always runs."""
    text = " ".join(argv)
    if loc.path.name not in REFERENCE:
        return True
    if "brax/" in text or "MinAtar" in text or "--suite minatar" in text or argv[1] == "select":  # select: a compare per validation task
        return True
    if any(_same(e, argv) for e in earlier):  # a command shown twice runs once in the default suite
        return True
    if "--resume" not in argv and any(_same([a for a in c if a != "--resume"], argv) for n, c in CLI if "--resume" in c and n.path == loc.path):
        return True  # the test of its `--resume` line runs it first, to the end
    repeat = any(_kind(e) == _kind(argv) for e in earlier)
    return argv[1] in ("meta-train", "transfer") and repeat and "--resume" not in argv


def _same(a: list[str], b: list[str]) -> bool:
    """The same command but for where it writes."""
    drop = lambda argv: [x for i, x in enumerate(argv) if x != "--out" and (i == 0 or argv[i - 1] != "--out")]  # noqa: E731
    return drop(a) == drop(b)


@pytest.mark.parametrize(
    "lineno, argv",
    [pytest.param(n, a, id=f"{n.path.stem}:L{n.line}:{' '.join(a[1:4])}", marks=[pytest.mark.slow] if _needs_slow(a, [e for _, e in CLI[:i]], n) else []) for i, (n, a) in enumerate(CLI)],
)
def test_readme_cli_command_runs(lineno, argv, tmp_path, capsys, monkeypatch):
    from learned_rl._cli import main

    monkeypatch.chdir(tmp_path)  # relative paths in a command (runs/...) land in tmp_path
    runs = tmp_path / "runs"
    # a command that resumes or reads another command's run gets that run, made tiny here first
    if "--resume" in argv:
        first = [a for a in argv if a != "--resume"]
        assert main(_tiny(first, tmp_path)) == 0, capsys.readouterr().err

    def run_writer(run_dir: str, tmp: Path) -> None:
        """The tiny run of the document's last earlier command with ``--out run_dir``, under `tmp`."""
        writers = [a for n, a in CLI if n.path == lineno.path and n.line < lineno.line and _flag(a, "--out") == run_dir]
        assert writers, f"{lineno}: no earlier command in the document writes {run_dir}"
        assert main(_tiny(writers[-1], tmp)) == 0, capsys.readouterr().err

    if argv[1] == "evaluate":
        run_writer(argv[2], tmp_path)
    # a rule (rule.eqx, or its snapshots/) that another command meta-trains
    for i, run in enumerate(sorted({m for a in argv for m in re.findall(r"(runs/[\w.-]+)/(?:rule\.eqx|snapshots)\b", a)})):
        run_writer(run, tmp_path / f"writer{i}")
        argv = [re.sub(re.escape(run) + r"/(rule\.eqx|snapshots)\b", lambda m: str(tmp_path / f"writer{i}" / "out" / m.group(1)), a) for a in argv]
    tiny = _tiny(argv, tmp_path)
    rc = main(tiny)
    err = capsys.readouterr().err
    assert rc == 0, f"{lineno}: {' '.join(argv)}\n  ran as: learned-rl {' '.join(tiny)}\n  {err}"
    written = {"sweep": ("sweep.json", "results.md", "sweep.png"), "evaluate": ("evaluation.json",)}
    for f in written.get(argv[1], ("config.json", "metrics.csv", "summary.json", "curves.png") if argv[1] in ("train", "compare", "demo") else ()):
        assert (tmp_path / "out" / f).stat().st_size > 0, f
    assert not runs.exists() or argv[1] == "meta-train"


def test_results_page_commands_parse_and_name_real_tasks_and_rules():
    """The commands of the results pages run only in the slow marker; here each one parses as the
    CLI parses it, and its tasks, suites and built-in rules exist, so a renamed flag, task or rule
    fails the default suite too."""
    from learned_rl import make_rule, tasks
    from learned_rl._cli import _build_parser
    from learned_rl._transfer import expand_rule_names

    pages = [(n, a) for n, a in CLI if n.path.name not in REFERENCE]
    assert pages, "no results page shows a learned-rl command"
    parser = _build_parser()
    for n, argv in pages:
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{n}: {' '.join(argv)} does not parse")
        for flag in ("--task", "--tasks", "--suite", "--validate"):
            if _flag(argv, flag):
                assert tasks.resolve(_flag(argv, flag)), f"{n}: {flag} {_flag(argv, flag)}"
        named = [_flag(argv, f) for f in ("--rule", "--rules") if _flag(argv, f)]
        for r in expand_rule_names([r for text in named for r in text.split(",")]):
            if "runs/" not in r and not r.endswith(".eqx"):  # a rule another command writes is checked by its run
                make_rule(r)


@pytest.mark.parametrize("lineno, argv", [pytest.param(n, a, id=f"{n.path.stem}:L{n.line}:{a[1]}") for n, a in BENCH])
def test_readme_benchmark_command_flags_exist(lineno, argv):
    script = ROOT / argv[1]
    assert script.is_file(), f"{lineno}: no such script {argv[1]}"
    help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT).stdout
    flags = [a.split("=")[0] for a in argv[2:] if a.startswith("--")]
    missing = [f for f in flags if f not in help_text]
    assert not missing, f"{lineno}: {argv[1]} has no {missing}"


# budget substitutions for the README's Python blocks: (what the README says, what the test runs)
PY_SUBS = [
    # one task and a small network: the five-task program takes a minute to compile on 2 cores
    ('ts = [tasks.make(n) for n in tasks.resolve("lpg-tabular")]', 'ts = [tasks.make(n) for n in tasks.resolve("gridworld/dense")]'),
    ("LPGNetwork(hidden_size=64, prediction_dim=8,", "LPGNetwork(hidden_size=8, prediction_dim=4,"),
    ("MetaTrainConfig(steps=1000, meta_lr=1e-3)", "MetaTrainConfig(steps=2, meta_lr=1e-3)"),
    ("TruncatedMetaGradient(), ", "TruncatedMetaGradient(lifetimes_per_task=2, num_envs=4, rollout_len=8, lifetime_updates=12, inner_steps=3), "),
    ("population=32, sigma=0.03, inner_env_steps=100_000", "population=2, sigma=0.03, inner_env_steps=2560"),
    ("MetaTrainConfig(steps=150, meta_lr=0.02)", "MetaTrainConfig(steps=1, meta_lr=0.02)"),
    # the README's quickstart: three rules on a grid world, a rule on a chain, a comparison
    ("config = rule.default_config(task)               # documented", "config = rule.default_config(task).replace(total_steps=25_600)  # documented"),
    ("rule.default_config(chain)", "rule.default_config(chain).replace(total_steps=12_800)"),
    ("steps=200_000, seeds=5,", "steps=2_560, seeds=2,"),
]


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    """The Python blocks of every document run in order in one namespace (a later document may use
    what an earlier one imported), each document compiled under its own name."""
    codes = {doc: "\n\n".join(text for loc, text in _blocks("python") if loc.path == doc) for doc in DOCS}
    assert codes[README].strip(), "the README has no Python snippets"
    for old, new in PY_SUBS:
        assert any(old in c for c in codes.values()), f"the documents' Python no longer contains {old!r}: update PY_SUBS"
        codes = {d: c.replace(old, new) for d, c in codes.items()}
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "readme"}
    for doc, code in codes.items():
        exec(compile(code, str(doc), "exec"), ns)  # noqa: S102 -- our own documents


EXAMPLES = {
    "compose_learner.py": ["--steps", "12800", "--seeds", "2"],
    "custom_drift.py": ["--steps", "4096", "--seeds", "2"],
    "meta_train_lpg.py": ["--tasks", "gridworld/dense", "--meta-steps", "2", "--num-envs", "4", "--rollout-len", "8", "--lifetime-updates", "12", "--hidden", "8", "--eval-steps", "6400", "--seeds", "2"],
}


def test_every_example_is_tested():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)
    shown = {Path(a[1]).name for _, a in EXAMPLE_LINES}
    assert shown == set(EXAMPLES), f"the README shows {sorted(shown)}; examples/ has {sorted(EXAMPLES)}"
    assert all(len(a) == 2 for _, a in EXAMPLE_LINES), "the README runs an example with flags the test does not use"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    import runpy

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name, *EXAMPLES[name]])
    runpy.run_path(str(ROOT / "examples" / name), run_name="__main__")
    out = capsys.readouterr().out
    assert "final return" in out and "nan" not in out.lower(), out


NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
NOTEBOOK_TINY = "STEPS = 2_560\nSEEDS = 2\nMETA_STEPS = 2\nLIFETIME = 12\n"


def test_notebook_runs(tmp_path, monkeypatch):
    """`examples/quickstart.ipynb` runs top to bottom, its `parameters` cell swapped for tiny budgets
    (as papermill would), in one namespace; every code cell but that one runs as written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    params = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1, "the notebook needs one cell tagged 'parameters'"
    names = {line.split("=")[0].strip() for line in "".join(code[params[0]]["source"]).splitlines() if "=" in line and not line.startswith("#")}
    assert names == {line.split("=")[0].strip() for line in NOTEBOOK_TINY.splitlines()}, names
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "show", lambda *a, **k: plt.close("all"))
    ns: dict = {"__name__": "__main__"}
    for i, cell in enumerate(code):
        src = NOTEBOOK_TINY if i == params[0] else "".join(cell["source"])
        exec(compile(src, f"{NOTEBOOK.name}[{i}]", "exec"), ns)  # noqa: S102 -- our own notebook
    import numpy as np

    assert "rule" in ns and "history" in ns and np.all(np.isfinite(np.asarray(ns["history"]["meta_loss"])))
