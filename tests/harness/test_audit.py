"""End-to-end audits, in-process through harness.cli.main, on every model format and every bad input."""

import json
import pickle

import pytest
import torch

from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.harness.cli import main
from eegrobust.models import TrainConfig, build_model, fit_model, save_bundle

FAST = ["--preset", "quick", "--eps", "0.3,1.0", "--quiet", "--seed", "0"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Audit and training epochs on disk, and a trained toy model saved in every supported format."""
    root = tmp_path_factory.mktemp("audit")
    train_ep = make_synthetic_epochs(n_trials=80, random_state=1)
    test_ep = make_synthetic_epochs(n_trials=80, random_state=2)
    train_ep.save(root / "train-epo.fif", verbose="error")
    test_ep.save(root / "test-epo.fif", verbose="error")
    train = epochs_to_data(train_ep)
    model = fit_model(build_model("toy", train, random_state=0), train,
                      TrainConfig(max_epochs=8, patience=None, show_progress=False)).eval()
    save_bundle(model, root / "bundle")
    traced = torch.jit.trace(model, torch.from_numpy(train.X[:2]))
    traced.save(str(root / "model.ts"))
    torch.onnx.export(model, (torch.from_numpy(train.X[:1]),), str(root / "model.onnx"), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return root, model, train


def run(*argv):
    return main(["audit", *map(str, argv)])


def results(out):
    return json.loads((out / "results.json").read_text())


def test_bundle_audit_writes_results_and_verdict(files, tmp_path, capsys):
    root, _, _ = files
    rc = run(root / "bundle", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm,linf_pgd",
             "--out", tmp_path, "--max-drop", "1.0", *FAST)
    assert rc == 0
    res = results(tmp_path)
    assert {r["attack"] for r in res["rows"]} == {"fgsm", "linf_pgd", "noise"}
    pgd = [r for r in res["rows"] if r["attack"] == "linf_pgd" and r["epsilon"] == 1.0][0]
    assert pgd["adv_rca"] < pgd["clean_rca"] - 0.3
    assert res["provenance"]["audit"]["format"] == "bundle"
    assert (tmp_path / "results.csv").exists()
    out = capsys.readouterr().out
    assert "verdict: PASS" in out and "linf_pgd" in out
    assert "Per-trial worst case" in out and "fgsm,linf_pgd" in out  # the worst case over both, beside each


def test_eps_is_the_budget_of_query_attacks_too(files, tmp_path):
    """The standard preset runs Square at 0.1 and 0.3 only; --eps 0.05 runs it at 0.05, not at budgets not asked for."""
    root, _, _ = files
    rc = run(root / "bundle", "--data", root / "test-epo.fif", "--threat", "black", "--attacks", "square", "--eps",
             "0.05", "--out", tmp_path, "--quiet", "--seed", "0")
    assert rc == 0
    assert {r["epsilon"] for r in results(tmp_path)["rows"] if r["attack"] == "square"} == {0.0, 0.05}


def test_max_drop_gates_with_exit_1(files, tmp_path, capsys):
    root, _, _ = files
    rc = run(root / "bundle", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "linf_pgd",
             "--out", tmp_path, "--max-drop", "0.05", *FAST)
    assert rc == 1
    assert "verdict: FAIL (max drop 0.05); worst cell toy white_box linf_pgd eps=0.3" in capsys.readouterr().out


def test_braindecode_save_params_checkpoint(files, tmp_path):
    from braindecode import EEGClassifier
    from braindecode.models import EEGNet

    root, _, train = files
    clf = EEGClassifier(EEGNet(n_chans=4, n_outputs=2, n_times=128), max_epochs=3, batch_size=16,
                        train_split=None, verbose=0, optimizer=torch.optim.AdamW, lr=1e-2)
    clf.fit(train.X / train.X.std(), train.y)
    clf.save_params(f_params=str(tmp_path / "params.pt"))
    rc = run(tmp_path / "params.pt", "--data", root / "test-epo.fif", "--arch", "eegnet", "--standardize",
             "per-channel", "--threat", "white", "--attacks", "fgsm", "--out", tmp_path / "out", *FAST)
    assert rc == 0
    assert results(tmp_path / "out")["provenance"]["audit"]["format"] in ("torch_zip", "pickle")


def test_torchscript_is_refused_without_trust_code(files, tmp_path, capsys):
    # TorchScript archives are programs that run when loaded (issue 11 row 8): refused unless the user opts in;
    # the audit of a trusted one (loaders.load_victim(..., trust_code=True)) is in tests/harness/test_hostile_models.py
    root, _, _ = files
    assert run(root / "model.ts", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm",
               "--out", tmp_path, *FAST) == 2
    err = capsys.readouterr().err.strip()
    assert "TorchScript" in err and "--trust-code" in err and str(root / "model.ts") in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results.json").exists()


def test_torchscript_audit_with_trust_code_warns_and_runs(files, tmp_path, caplog):
    root, _, _ = files
    assert run(root / "model.ts", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm",
               "--out", tmp_path, "--trust-code", *FAST) == 0
    assert "trust_code=True runs the code inside it" in caplog.text  # the CLI logs warnings as one line each
    assert {r["attack"] for r in results(tmp_path)["rows"]} == {"fgsm", "noise"}


def test_huge_logits_get_a_note_and_are_still_attacked(files, tmp_path, capsys, scaled_logits):
    """A model fed 1e6 times its training scale (microvolts into a model trained in volts) has saturated
    cross-entropy; FGSM must still move the trials (it stood still: 0 uV, a PASS), and the note names --input-unit."""
    root, model, train = files
    big = torch.jit.trace(scaled_logits(model.eval(), 1e6), torch.from_numpy(train.X[:2]))
    big.save(str(tmp_path / "big.ts"))
    assert run(tmp_path / "big.ts", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm",
               "--out", tmp_path / "o", "--trust-code", *FAST) == 0
    out = capsys.readouterr().out
    assert "the model's logits are huge" in out and "--input-unit" in out
    fgsm = [r for r in results(tmp_path / "o")["rows"] if r["attack"] == "fgsm" and r["epsilon"] == 1.0][0]
    assert fgsm["linf_uv"] > 0 and fgsm["adv_rca"] < fgsm["clean_rca"]


def test_onnx_audit_runs_transfer_and_black_box_only(files, tmp_path, capsys):
    root, _, _ = files
    rc = run(root / "model.onnx", "--data", root / "test-epo.fif", "--train-data", root / "train-epo.fif",
             "--threat", "white,gray,black", "--attacks", "ufgsm,square", "--out", tmp_path, *FAST)
    assert rc == 0
    res = results(tmp_path)
    threats = {r["threat_model"] for r in res["rows"]}
    assert threats == {"gray_box", "black_box", "control"}
    assert any("white_box skipped" in n for n in res["provenance"]["audit"]["notes"])
    assert "white_box skipped" in capsys.readouterr().out


def test_gray_box_without_training_data_fails_closed(files, tmp_path, capsys):
    root, _, _ = files
    assert run(root / "bundle", "--data", root / "test-epo.fif", "--threat", "gray", "--attacks", "ufgsm",
               "--out", tmp_path, *FAST) == 3  # no verdict possible
    err = capsys.readouterr().err
    assert "nothing to attack" in err and "gray_box: no training data given" in err


@pytest.mark.parametrize("extra, code", [(["--eps", "0"], 3), (["--threat", "black", "--attacks", "fgsm"], 3),
                                         (["--attacks", ",,"], 2)])
def test_a_gate_that_attacks_nothing_fails_closed(files, tmp_path, capsys, extra, code):
    root, _, _ = files
    args = [root / "bundle", "--data", root / "test-epo.fif", "--out", tmp_path, "--max-drop", "0.5", *FAST]
    assert run(*args, *extra) == code  # 3: no verdict possible (nothing attacked); 2: a usage error
    assert "attack" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_resume_keeps_finished_cells(files, tmp_path):
    root, _, _ = files
    args = [root / "bundle", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm,linf_pgd",
            "--out", tmp_path, *FAST]
    assert run(*args) == 0
    # simulate an interruption after the first cell: drop the stored PGD cell, stamp the others
    for path in (tmp_path / "cells").glob("*.json"):
        cell = json.loads(path.read_text())
        if cell["cell"]["attack"]["attack"] == "linf_pgd":
            path.unlink()
        else:
            for r in cell["rows"]:
                r["wall_s"] = -1.0
            path.write_text(json.dumps(cell))
    (tmp_path / "results.json").unlink()
    assert run(*args, "--resume") == 0
    rows = results(tmp_path)["rows"]
    assert all(r["wall_s"] == -1.0 for r in rows if r["attack"] != "linf_pgd")
    assert all(r["wall_s"] != -1.0 for r in rows if r["attack"] == "linf_pgd")
    assert {r["attack"] for r in rows} == {"fgsm", "linf_pgd", "noise"}
    assert len(rows) == len({(r["attack"], r["epsilon"]) for r in rows})


def test_rerun_without_resume_destroys_nothing(files, tmp_path, capsys):
    root, _, _ = files
    args = [root / "bundle", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm",
            "--out", tmp_path, *FAST]
    assert run(*args) == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert "already holds results" in err and "--resume" in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_resume_with_another_model_is_refused(files, tmp_path, capsys):
    root, _, _ = files
    args = ["--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm", "--out", tmp_path, *FAST]
    assert run(root / "bundle", *args) == 0
    other = tmp_path.parent / f"{tmp_path.name}-other-bundle"
    import torch

    from eegrobust.models import load_bundle, save_bundle

    model = load_bundle(root / "bundle")
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)
    save_bundle(model, other)
    capsys.readouterr()
    assert run(other, *args, "--resume") == 2
    assert "another model" in capsys.readouterr().err


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_is_refused_and_never_runs(files, tmp_path, capsys):
    root, _, _ = files
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"weight": _Evil(str(marker))}, f)
    assert run(tmp_path / "evil.pt", "--data", root / "test-epo.fif", "--arch", "eegnet", *FAST,
               "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "never unpickles" in err and "state_dict()" in err
    assert not marker.exists()
    # torch.save of a whole module is refused the same way
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    assert run(tmp_path / "module.pt", "--data", root / "test-epo.fif", "--arch", "eegnet", *FAST,
               "--out", tmp_path / "o") == 2
    assert "never unpickles" in capsys.readouterr().err


def _bad_input_cases(root, tmp):
    state = build_model("eegnet", n_chans=3, n_times=128, sfreq=128.0, n_outputs=2).net.state_dict()
    torch.save(state, tmp / "wrong_shape.pt")
    good = (tmp / "state.pt")
    torch.save(build_model("eegnet", n_chans=4, n_times=128, sfreq=128.0, n_outputs=2).net.state_dict(), good)
    (tmp / "truncated.pt").write_bytes(good.read_bytes()[:200])
    ep3 = make_synthetic_epochs(n_trials=20, n_chans=3, random_state=0)
    ep3.save(tmp / "three-epo.fif", verbose="error")
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two_inputs",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 128]) for n in "ab"],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 128])])
    onnx.save(helper.make_model(graph), tmp / "two.onnx")
    (tmp / "afile").write_text("x")
    data = ["--data", root / "test-epo.fif"]
    return [
        ([tmp / "missing.pt", *data], "does not exist"),
        ([good, *data], "--arch"),
        ([tmp / "wrong_shape.pt", *data, "--arch", "eegnet"], "expects"),
        ([tmp / "truncated.pt", *data, "--arch", "eegnet"], "truncated"),
        ([root / "bundle", "--data", tmp / "three-epo.fif"], "channel"),
        ([tmp / "two.onnx", *data], "2 float inputs"),
        ([root / "bundle", *data, "--max-drop", "1.5"], "--max-drop must lie in [0, 1]"),
        ([root / "bundle", *data, "--out", tmp / "afile"], "is a file"),
        ([root / "bundle", *data, "--eps", "-0.1"], "epsilons must be finite and >= 0"),
        ([root / "bundle", *data, "--eps", "abc"], "--eps item 'abc' is not a plain number"),
        ([root / "bundle", *data, "--attacks", "lnf_pgd"], "Did you mean 'linf_pgd'"),
        ([root / "bundle", *data, "--threat", "whte"], "Did you mean 'white'"),
        ([root / "bundle", *data, "--input-unit", "mV"], "--input-unit must be one of"),
    ]


def test_every_bad_input_exits_2_with_one_line(files, tmp_path, capsys):
    root, _, _ = files
    for argv, match in _bad_input_cases(root, tmp_path):
        argv = [*argv, "--quiet"] if "--out" in argv else [*argv, "--quiet", "--out", tmp_path / "o"]
        assert run(*argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert match in err, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_onnx_with_white_box_only_fails_closed(files, tmp_path, capsys):
    root, _, _ = files
    assert run(root / "model.onnx", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm",
               "--max-drop", "0.5", "--out", tmp_path, *FAST) == 3
    err = capsys.readouterr().err
    assert "nothing to attack" in err and len(err.strip().splitlines()) == 1


def test_epochs_at_another_sampling_rate_are_refused(files, tmp_path, capsys):
    """Same channels and n_times, but sampled at twice the model's rate: an error naming both rates."""
    import mne

    root, _, _ = files
    epochs = mne.read_epochs(root / "test-epo.fif", verbose="error")
    fast = mne.EpochsArray(epochs.get_data(), mne.create_info(epochs.ch_names, 2 * epochs.info["sfreq"], "eeg"),
                           events=epochs.events, event_id=epochs.event_id, verbose="error")
    fast.save(tmp_path / "fast-epo.fif", verbose="error")
    assert run(root / "bundle", "--data", tmp_path / "fast-epo.fif", "--out", tmp_path / "o", *FAST) == 2
    err = capsys.readouterr().err
    assert f"{epochs.info['sfreq']:g} Hz" in err and f"{2 * epochs.info['sfreq']:g} Hz" in err


@pytest.mark.parametrize("value", [float("nan"), 7.5])
def test_resumed_gate_refuses_an_impossible_stored_accuracy(files, tmp_path, capsys, value):
    """A stored cell whose accuracy is NaN or outside [0, 1] (edited or damaged) is refused on --resume, naming the
    file: it never reaches a --max-drop verdict (which a NaN drop used to pass)."""
    root, _, _ = files
    args = (root / "bundle", "--data", root / "test-epo.fif", "--threat", "white", "--attacks", "fgsm",
            "--out", tmp_path, "--max-drop", "0.01", *FAST)
    assert run(*args) == 1
    capsys.readouterr()
    cell = next(p for p in (tmp_path / "cells").glob("*.json") if '"fgsm"' in p.read_text())
    d = json.loads(cell.read_text())
    for row in d["rows"]:
        row["adv_rca"], row["drop"] = value, value
    cell.write_text(json.dumps(d))
    assert run(*args, "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert str(cell) in err and "adv_rca" in err and "\n" not in err


def test_gate_gives_no_verdict_when_a_gate_sanity_check_fails(files, tmp_path):
    """A failed check that voids the compared numbers (a victim at chance on the trials an attack scored) turns a
    --max-drop gate into "no verdict"; a failed strength warning (noise) does not."""
    from eegrobust.harness.audit import no_verdict_reason

    class Result:
        rows = [{"threat_model": "black_box", "epsilon": 0.1, "clean_rca": 0.6, "adv_rca": 0.6, "drop": 0.0}]
        provenance = {"audit": {"clean_rca": 0.65, "chance_bound": 0.6, "at_chance": False}}
        checks = [{"name": "every victim is above chance (95 % binomial bound of the majority class)",
                   "passed": False, "detail": "clean 0.600 <= chance bound 0.700 on 20 trials"}]

    assert "every victim is above chance" in no_verdict_reason(Result, max_drop=0.3)
    assert no_verdict_reason(Result, max_drop=None) is None
    Result.checks = [{"name": "random noise changes accuracy by < 3%", "passed": False, "detail": "+0.04"}]
    assert no_verdict_reason(Result, max_drop=0.3) is None
