"""runs/attention_training.py: its smoke mode runs and writes the schema the pages read."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from refimpl import attention as att

# Loaded from its file: under pytest the name ``runs`` is this test folder's package
# (tests/runs/__init__.py), which shadows the repository's runs/.
SCRIPT = Path(__file__).resolve().parents[2] / "runs" / "attention_training.py"
_spec = importlib.util.spec_from_file_location("runs_attention_training", SCRIPT)
at = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = at
_spec.loader.exec_module(at)


def _check_page(page, name, seeds):
    cfg = page["config"]
    assert {"d_model", "n_layers", "corpus", "recipe", "train", "configs"} <= set(cfg)
    assert list(cfg["configs"]) == list(at.PAGES[name](cfg["d_model"]))
    assert {"command", "date", "machine", "torch_threads", "invocations",
            "variants"} <= set(page)
    assert page["command"].startswith(f"python -m runs.attention_training --page {name}")
    assert page["date"].endswith("Z") and page["torch_threads"] == 1
    assert {"platform", "cpu_count", "python", "torch"} <= set(page["machine"])
    steps = cfg["train"]["steps"]
    every = cfg["train"]["eval_every"]
    want_steps = sorted({*range(every, steps + 1, every), steps})
    for variant, rec in page["variants"].items():
        kind, kwargs = cfg["configs"][variant]["kind"], cfg["configs"][variant]["kwargs"]
        assert (rec["kind"], rec["kwargs"]) == (kind, kwargs)
        layers = cfg["n_layers"]
        per_layer = att.kv_cache_elements(
            kind, **{"head_dim": cfg["d_model"] // kwargs["n_heads"], **kwargs})
        assert rec["cache_per_token"] == layers * per_layer
        assert rec["params"] > 0
        assert sorted(rec["seeds"], key=int) == [str(s) for s in seeds]
        for run in rec["seeds"].values():
            assert run["steps"] == want_steps
            assert len(run["eval_loss"]) == len(want_steps)
            assert run["final_eval_loss"] == run["eval_loss"][-1]
            assert all(0 < v < 2 * math.log(256) for v in run["eval_loss"])
            assert run["seconds"] >= 0


@pytest.mark.parametrize("name", sorted(at.PAGES))
def test_smoke_writes_the_schema_and_merges_chunks(tmp_path, name):
    out = tmp_path / "attention_training.json"
    assert at.main(["--page", name, "--smoke", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["name"] == "attention_training" and list(doc["pages"]) == [name]
    page = doc["pages"][name]
    assert len(page["variants"]) == at.SMOKE_VARIANTS
    _check_page(page, name, [0])

    # A second chunk (another seed) merges into the same page.
    first = next(iter(page["variants"]))
    assert at.main(["--page", name, "--smoke", "--seeds", "1", "--variants", first,
                    "--output", str(out)]) == 0
    page = json.loads(out.read_text())["pages"][name]
    assert sorted(page["variants"][first]["seeds"]) == ["0", "1"]
    assert len(page["invocations"]) == 2
    assert "--seeds 0 1" in page["command"] and "--smoke" in page["command"]

    # A chunk with another configuration is refused rather than mixed in.
    with pytest.raises(SystemExit, match="--replace"):
        at.main(["--page", name, "--smoke", "--steps", "2", "--variants", first,
                 "--output", str(out)])


def test_pages_match_their_budgets():
    d = at.LONG["d_model"]
    mha = att.attention_parameters("mha", d, n_heads=4)
    for kind, kw in at.matched_parameters(d).values():
        assert abs(att.attention_parameters(kind, d, **kw) / mha - 1) < 0.04
    for kind, kw in at.matched_cache(d).values():
        assert att.kv_cache_elements(kind, **kw) == 2 * d // 4
    with pytest.raises(ValueError, match="unknown variants"):
        at.run("training", [0], at.SMOKE, ["nope"])


def test_committed_results_have_every_variant_with_several_seeds():
    """The JSON the pages read: both pages, every variant, the same ≥ 3 seeds, full length."""
    doc = json.loads(at.RESULT.read_text())
    assert sorted(doc["pages"]) == sorted(at.PAGES)
    for name, page in doc["pages"].items():
        assert list(page["variants"]) == list(page["config"]["configs"])
        assert page["config"]["train"] == at.LONG["train"]
        seeds = sorted(int(s) for s in next(iter(page["variants"].values()))["seeds"])
        assert len(seeds) >= 3
        _check_page(page, name, seeds)
        assert not any(inv["smoke"] for inv in page["invocations"])
