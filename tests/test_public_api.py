"""What a user imports is public: the examples and every document import no private module
(`learned_rl._x`, `learned_rl.rules._x`, ...), and the names they need are exported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRIVATE = re.compile(r"learned_rl(?:\.[A-Za-z]\w*)*\._\w+")


def test_examples_and_documents_name_no_private_module():
    files = sorted((ROOT / "examples").glob("*.py")) + [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
    hits = [f"{f.relative_to(ROOT)}:{i}: {m.group(0)}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1) for m in PRIVATE.finditer(line)]
    assert not hits, "private modules named where users read:\n" + "\n".join(hits)


def test_public_names():
    import learned_rl
    from learned_rl import rules

    for name in ("compare", "transfer", "select", "make_rule", "run_seeds", "seed_keys", "RunResult", "iqm", "stratified_bootstrap_ci", "train", "load_rule", "pretrained", "apply_recipe"):
        assert callable(getattr(learned_rl, name)) or name == "pretrained", name
    for name in ("make_lpo", "batched", "batched_value", "log_prob_entropy", "drift_activity", "MirrorLearning", "DPODrift"):
        assert callable(getattr(rules, name)), name
    assert callable(learned_rl.run_meta_train) and callable(learned_rl.evaluate) and callable(learned_rl.load_agents)
    assert "compare" in dir(learned_rl)
    assert set(learned_rl.RECIPES) == {"purejaxrl-brax", "purejaxrl-minatar"} and isinstance(learned_rl.RECIPES["purejaxrl-brax"], learned_rl.Recipe)
    # the CLI's rule names and seeding are the Python API's: the same seed gives the same keys
    assert learned_rl.make_rule("dpo").drift.name == "dpo"
    assert (learned_rl.seed_keys(3, 2)[1] == learned_rl.seed_keys(3, 5)[1]).all()


def test_version():
    out = subprocess.run([sys.executable, "-m", "learned_rl", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and re.fullmatch(r"learned-rl \d+\.\d+\.\d+\S*\n", out.stdout), out
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License") and (ROOT / "learned_rl" / "py.typed").exists()


def test_rules_report_the_names_the_cli_uses():
    """A rule's `name` is the CLI's: the drift names a mirror-learning rule, the variant an LPG rule."""
    import jax

    import learned_rl
    from learned_rl import LPG, LPGNetwork
    from learned_rl.baselines import PPO
    from learned_rl.rules import DPODrift, LPODrift, MirrorLearning, make_lpo

    for cli in ("a2c", "ppo", "dpo"):
        assert learned_rl.make_rule(cli).name == cli
    assert PPO(drift=DPODrift()).name == "dpo" and MirrorLearning().name == "ppo"
    assert learned_rl.make_rule("lpo:lpo_cartpole").name == "lpo" == make_lpo(key=jax.random.PRNGKey(0)).name
    assert PPO(drift=LPODrift(key=jax.random.PRNGKey(0))).name == "lpo"
    assert learned_rl.make_rule("lpg:lpg_tabular").name == "lpg"
    assert LPG(LPGNetwork(hidden_size=4, prediction_dim=2, inputs="v", key=jax.random.PRNGKey(0))).name == "lpg-v"
