"""The demo path on bundled SCP1 with the real braindecode models (slow: minutes of training)."""

import json

import pytest

from eegrobust.harness.cli import main


@pytest.mark.slow
def test_quick_demo_on_scp1_breaks_every_model(tmp_path, capsys):
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    for model in ("eegnet", "deep4", "shallow"):
        rows = [r for r in res["rows"] if r["model"] == model and r["attack"] == "linf_pgd"]
        clean = rows[0]["clean_rca"]
        worst = min(r["adv_rca"] for r in rows)
        assert clean >= 0.7, (model, clean)
        assert clean - worst >= 0.4, (model, clean, worst)  # white-box PGD at eps 0.3 breaks the decoder
        noise = [r for r in res["rows"] if r["model"] == model and r["attack"] == "noise"]
        assert max(abs(r["drop"]) for r in noise) < clean - worst
    assert (tmp_path / "report.md").exists()
    assert "Accuracy under attack" in capsys.readouterr().out
