"""runs/lora_family.py: its smoke mode runs, writes the schema the notebook reads, and merges."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("all_minilm_l6_v2")

# Loaded from its file: under pytest the name ``runs`` is this test folder's package
# (tests/runs/__init__.py), which shadows the repository's runs/.
SCRIPT = Path(__file__).resolve().parents[2] / "runs" / "lora_family.py"
_spec = importlib.util.spec_from_file_location("runs_lora_family", SCRIPT)
lf = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = lf
_spec.loader.exec_module(lf)

COMMITTED = SCRIPT.parent / "results" / "lora_family.json"


def _check_schema(doc, *, seeds, variants, steps):
    assert doc["name"] == "lora_family"
    assert {"command", "date", "machine", "torch_threads", "configuration", "invocations",
            "results"} <= set(doc)
    assert doc["command"].startswith("python -m runs.lora_family --seeds")
    assert doc["date"].endswith("UTC") and doc["torch_threads"] in (1, 2)
    assert {"platform", "cpu_count", "python", "torch"} <= set(doc["machine"])
    cfg = doc["configuration"]
    assert cfg["steps"] == steps and cfg["torch_threads"] == doc["torch_threads"]
    assert set(variants) <= set(cfg["variants"])
    for inv in doc["invocations"]:
        assert {"command", "date", "machine", "env", "seeds", "variants", "wall_s"} <= set(inv)
    assert set(doc["results"]) == set(variants)
    for per_seed in doc["results"].values():
        assert sorted(int(s) for s in per_seed) == sorted(seeds)
        for res in per_seed.values():
            assert len(res["losses"]) == steps
            assert res["eval_steps"][-1] == steps
            assert len(res["eval_loss"]) == len(res["eval_steps"]) == len(res["eval_acc"])
            assert res["test_loss"] == res["eval_loss"][-1]
            window = res["losses"][-cfg["final_window"]:]
            assert res["final_loss"] == pytest.approx(sum(window) / len(window), abs=1e-4)
            assert 0 <= res["test_acc"] <= 1 and res["params"] > 0
            assert 0 <= res["invocation"] < len(doc["invocations"])


def test_smoke_run_writes_the_schema_and_merges_seeds(tmp_path):
    out = tmp_path / "lora_family.json"
    doc = lf.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    _check_schema(doc, seeds=[0], variants=lf.SMOKE_VARIANTS, steps=lf.SMOKE["steps"])
    # a second chunk of seeds is merged into the same file, not written over it
    doc = lf.main(["--smoke", "--seeds", "1", "--variants", "LoRA", "PiSSA", "--out", str(out)])
    _check_schema(doc, seeds=[0, 1], variants=lf.SMOKE_VARIANTS, steps=lf.SMOKE["steps"])
    assert len(doc["invocations"]) == 2 and doc["command"].endswith("--seeds 0 1")
    # another budget is refused rather than mixed in
    with pytest.raises(SystemExit, match="another configuration"):
        lf.main(["--smoke", "--steps", "3", "--out", str(out)])


@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed long run")
def test_committed_long_run_has_the_schema():
    doc = json.loads(COMMITTED.read_text())
    seeds = sorted({int(s) for r in doc["results"].values() for s in r})
    assert len(seeds) >= 3
    _check_schema(doc, seeds=seeds, variants=list(doc["configuration"]["variants"]),
                  steps=doc["configuration"]["steps"])
