"""The GPU script (benchmarks/gpu/run.py) runs end to end on a CPU with tiny sizes: every
stage writes its figures, the meta-trained rule loads with its agent families recorded, and the
output directory holds no more files than a remote machine hands back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from learned_rl import load_rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_script_dry_run(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu", "run.py"), "--out", str(out), "--tiny", "--work", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    st = res["stages"]
    assert "error" not in st["meta"] and st["meta"]["meta_steps"] == 3 and st["meta"]["compile_and_first_s"] > 0
    assert set(st["meta"]["families"]) == {"tabular", "mlp"}
    rule = load_rule(out / "lpg_all_gpu.eqx")
    assert rule.recorded_families == ("tabular", "mlp")
    tr = st["transfer"]["tasks"]["chain/distractor"]
    assert set(tr["rules"]) == {"lpg_all_gpu"} and len(tr["rules"]["lpg_all_gpu"]["returns"]) == 2 and len(tr["a2c_returns"]) == 2
    assert st["sweep"]["seeds"] == 2 and st["sweep"]["env_steps_per_s"] > 0
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and {"log.txt", "results.json", "results.md", "lpg_all_gpu.eqx", "meta_metrics.csv"} <= set(files)
    assert "## LPG meta-training" in (out / "results.md").read_text()
    # the shell wrapper parses
    assert subprocess.run(["bash", "-n", os.path.join(ROOT, "benchmarks", "gpu", "run.sh")]).returncode == 0
