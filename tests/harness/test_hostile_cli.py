"""Hostile input against the command line (issue 11): one line on stderr, the right exit code, nothing lost.

Each case of the table stands for a class of input (paths and permissions, JSON, options, resume, verdicts): it
asserts the exit code, that stderr is one line without a traceback and names the value, and that the files already
on disk are unchanged (the folder is hashed before and after).
"""

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.harness import cli
from eegrobust.harness.cli import EXIT_NO_VERDICT, EXIT_OK, EXIT_USAGE, main
from eegrobust.models import TrainConfig, build_model, fit_model, save_bundle

QUICK = ["--preset", "quick", "--eps", "0.3", "--quiet", "--seed", "0"]
RESULTS = Path(__file__).parent / "data" / "results.json"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Epochs, a raw recording, a trained toy bundle, one that is always wrong, one that predicts one class, a
    generator and a results file, all in one folder that every case may read and none may change."""
    from eegrobust.models.gan import GANConfig, fit_gan, save_gan

    root = tmp_path_factory.mktemp("hostile")
    train_ep = make_synthetic_epochs(n_trials=40, snr=2.0, random_state=1)
    test_ep = make_synthetic_epochs(n_trials=40, snr=2.0, random_state=2)
    train_ep.save(root / "train-epo.fif", verbose="error")
    test_ep.save(root / "test-epo.fif", verbose="error")
    _raw_from(test_ep).save(root / "rec_raw.fif", verbose="error")
    train = epochs_to_data(train_ep)
    model = fit_model(build_model("toy", train, random_state=0), train,
                      TrainConfig(max_epochs=8, patience=None, show_progress=False)).eval()
    save_bundle(model, root / "bundle")
    torch.jit.trace(model, torch.from_numpy(train.X[:2])).save(str(root / "model.ts"))
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # a perfect classifier with its outputs swapped: always wrong
        last.weight.mul_(-1)
        last.bias.mul_(-1)
    save_bundle(model, root / "wrong")
    with torch.no_grad():  # constant logits: one class for every trial
        last.weight.zero_()
        last.bias.copy_(torch.tensor([5.0, 0.0]))
    save_bundle(model, root / "one")
    gan = fit_gan(train, GANConfig(n_stages=1, n_filters=4, latent_dim=4, kernel_size=3, n_iterations=2,
                                   batch_size=8, show_progress=False))
    save_gan(gan, root / "gen")
    (root / "results.json").write_bytes(RESULTS.read_bytes())
    (root / "afile").write_text("x")
    return root


def _raw_from(epochs):
    """A raw recording with a stim channel holding the epochs back to back, one event per trial."""
    import mne

    data = epochs.get_data()
    n_times = data.shape[-1]
    pad = np.zeros((data.shape[1], n_times))
    X = np.concatenate([pad, *data, pad], axis=1)  # an event on the first sample is not found by find_events
    stim = np.zeros((1, X.shape[1]))
    stim[0, (np.arange(len(epochs)) + 1) * n_times] = epochs.events[:, 2]
    info = mne.create_info(epochs.ch_names + ["STI"], epochs.info["sfreq"], ["eeg"] * len(epochs.ch_names) + ["stim"])
    return mne.io.RawArray(np.vstack([X, stim]), info, verbose="error")


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _call(argv, capsys):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err.strip()


def _one_line(err):
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _results_with(tmp, change) -> Path:
    d = json.loads(RESULTS.read_text())
    change(d)
    return _write(tmp / "bad" / "results.json", json.dumps(d))


def _study(tmp, text) -> Path:
    _write(tmp / "old" / "study.json", text)
    return tmp / "old"


# (id, argv(root, tmp), exit code, strings the one stderr line must hold)
CASES = [
    # -- paths and permissions: --out below a file / is a file, for every command that writes ------------------
    ("audit-out-below-file", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out",
                                            r / "afile" / "o", *QUICK], 2, ["lies below", "afile"]),
    ("audit-out-is-file", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", r / "afile",
                                         *QUICK], 2, ["is a file", "afile"]),
    ("run-out-below-file", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", r / "afile" / "o",
                                          "--quiet"], 2, ["lies below", "afile"]),
    ("demo-out-below-file", lambda r, t: ["demo", "--quick", "--out", r / "afile" / "o", "--quiet"], 2,
     ["lies below", "afile"]),
    ("demo-gan-out-below-file", lambda r, t: ["demo", "--gan", "--quick", "--out", r / "afile" / "o", "--quiet"],
     2, ["lies below", "afile"]),
    ("report-out-below-file", lambda r, t: ["report", r / "results.json", "--out", r / "afile" / "o"], 2,
     ["lies below", "afile"]),
    ("train-out-below-file", lambda r, t: ["train", "--out", r / "afile" / "o", "--quiet"], 2,
     ["lies below", "afile"]),
    ("gan-train-out-below-file", lambda r, t: ["gan", "train", "--data", r / "train-epo.fif", "--out",
                                                r / "afile" / "g", "--quiet"], 2, ["lies below", "afile"]),
    ("gan-sample-out-below-file", lambda r, t: ["gan", "sample", r / "gen", "--n", "4", "--out",
                                                 r / "afile" / "s-epo.fif"], 2, ["lies below", "afile"]),
    ("gan-sample-out-is-folder", lambda r, t: ["gan", "sample", r / "gen", "--n", "4", "--out",
                                                t / "d-epo.fif"], 2, ["is a folder", "d-epo.fif"]),
    # -- engines and devices (issue 13) ------------------------------------------------------------------------
    ("run-engine-unknown", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--engine", "dask",
                                          "--quiet"], 2, ["engine must be one of", "'dask'"]),
    ("run-jobs-zero", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--engine", "process",
                                     "--jobs", "0", "--quiet"], 2, ["--jobs must be an integer >= 1, got 0"]),
    ("demo-jobs-without-engine", lambda r, t: ["demo", "--quick", "--out", t / "o", "--jobs", "2", "--quiet"], 2,
     ["--jobs 2 needs a parallel engine"]),
    ("run-ray-address-not-host-port", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o",
                                                     "--engine", "ray", "--ray-address", "nowhere", "--quiet"], 2,
     ["--ray-address must be host:port", "'nowhere'"]),
    *([] if torch.cuda.is_available() else [
        (f"{cmd}-device-cuda-without-gpu", lambda r, t, argv=argv: [*argv(r, t), "--device", "cuda"], 2,
         ["--device cuda: no CUDA device is available here"])
        for cmd, argv in (
            ("train", lambda r, t: ["train", "--models", "toy", "--quiet"]),
            ("demo", lambda r, t: ["demo", "--quick", "--out", t / "o", "--quiet"]),
            ("run", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--quiet"]),
            ("audit", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o", *QUICK]),
            ("gan-train", lambda r, t: ["gan", "train", "--data", r / "train-epo.fif", "--out", t / "g", "--quiet"]),
        )]),
    # -- gan sample never replaces what is there (row 4) -----------------------------------------------------
    ("gan-sample-out-is-data", lambda r, t: ["gan", "sample", r / "gen", "--n", "4", "--data", r / "test-epo.fif",
                                              "--out", r / "test-epo.fif"], 2, ["is the --data file", "test-epo"]),
    ("gan-sample-out-is-data-other-spelling", lambda r, t: [
        "gan", "sample", r / "gen", "--n", "4", "--data", r / "test-epo.fif", "--out",
        r / "bundle" / ".." / "test-epo.fif", "--overwrite"], 2, ["is the --data file"]),
    ("gan-sample-out-exists", lambda r, t: ["gan", "sample", r / "gen", "--n", "4", "--out", r / "train-epo.fif"],
     2, ["already exists", "train-epo.fif", "--overwrite"]),
    ("gan-train-out-holds-generator", lambda r, t: ["gan", "train", "--data", r / "train-epo.fif", "--out",
                                                     r / "gen", "--quiet"], 2, ["already holds a generator",
                                                                                "--overwrite"]),
    ("torchscript-without-trust-code", lambda r, t: ["audit", r / "model.ts", "--data", r / "test-epo.fif",
                                                      "--out", t / "o", *QUICK], 2, ["model.ts", "--trust-code"]),
    ("model-missing", lambda r, t: ["audit", t / "nope.pt", "--data", r / "test-epo.fif", "--out", t / "o",
                                     *QUICK], 2, ["nope.pt", "does not exist"]),
    ("data-missing", lambda r, t: ["audit", r / "bundle", "--data", t / "nope-epo.fif", "--out", t / "o", *QUICK],
     2, ["nope-epo.fif"]),
    ("generator-missing", lambda r, t: ["gan", "sample", t / "nogen", "--n", "4", "--out", t / "s-epo.fif"], 2,
     ["nogen"]),
    # -- JSON: report on anything but a results file, a generator description that is not an object (row 10) -----
    ("report-empty-list", lambda r, t: ["report", _write(t / "a.json", "[]")], 2, ["a.json", "array"]),
    ("report-string", lambda r, t: ["report", _write(t / "a.json", '"hello"')], 2, ["a.json", "string"]),
    ("report-number", lambda r, t: ["report", _write(t / "a.json", "3")], 2, ["a.json", "number"]),
    ("report-garbage", lambda r, t: ["report", _write(t / "a.json", "{not json")], 2, ["a.json", "not valid JSON"]),
    ("report-deep-nesting", lambda r, t: ["report", _write(t / "a.json", "[" * 100000 + "]" * 100000)], 2,
     ["a.json"]),
    ("report-rows-string", lambda r, t: ["report", _results_with(t, lambda d: d.update(rows="abc"))], 2,
     ["results.json", "'rows'", "array"]),
    ("report-row-not-object", lambda r, t: ["report", _results_with(t, lambda d: d.update(rows=[1, 2]))], 2,
     ["results.json", "row 0", "object"]),
    ("report-row-without-keys", lambda r, t: ["report", _results_with(t, lambda d: d.update(rows=[{}]))], 2,
     ["results.json", "row 0", "lacks the field(s)", "epsilon"]),
    ("report-row-epsilon-text", lambda r, t: ["report", _results_with(t, lambda d: d["rows"][2].update(
        epsilon="abc"))], 2, ["results.json", "row 2", "'epsilon'", "'abc'"]),
    ("report-row-accuracy-nan", lambda r, t: ["report", _results_with(t, lambda d: d["rows"][2].update(
        adv_rca=float("nan")))], 2, ["results.json", "adv_rca=nan", "not an accuracy"]),
    ("report-row-accuracy-above-1", lambda r, t: ["report", _results_with(t, lambda d: d["rows"][2].update(
        adv_rca=7.5))], 2, ["results.json", "adv_rca=7.5"]),
    ("run-test-is-train", lambda r, t: ["run", "--train", r / "train-epo.fif", "--test", r / "train-epo.fif",
                                        "--out", t / "o", *QUICK], 2, ["40 test trial(s) are also training trials"]),
    ("run-seed-overflow", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--seeds",
                                        "99999999999999999999"], 2, ["99999999999999999999"]),
    ("run-models-empty", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--models", ""], 2,
     ["models must name at least one model"]),
    ("run-toml-resume-text", lambda r, t: ["run", "--config", _write(t / "s.toml", f'data = "{r / "test-epo.fif"}"'
                                                                     '\nresume = "no"\n')], 2, ["resume", "'no'"]),
    ("run-toml-binary", lambda r, t: ["run", "--config", _write_bytes(t / "s.toml", b"\xd0\xff")], 2,
     ["s.toml", "not valid TOML"]),
    ("certify-out-holds-certification", lambda r, t: ["certify", r / "bundle", "--data", r / "test-epo.fif",
                                                      "--quick", "--out", _write(t / "c" / "certification.json", "{}")
                                                      .parent], 2, ["already holds a certification"]),
    ("audit-out-holds-a-report-md", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out",
                                                  _write(t / "mine" / "report.md", "my notes").parent, *QUICK], 2,
     ["already holds results", "report.md"]),
    ("report-config-list", lambda r, t: ["report", _results_with(t, lambda d: d.update(config=[1]))], 2,
     ["results.json", "'config'"]),
    ("report-checks-strings", lambda r, t: ["report", _results_with(t, lambda d: d.update(checks=["x"]))], 2,
     ["results.json", "checks[0]"]),
    ("report-folder", lambda r, t: ["report", r], 2, ["hostile", "is a folder", "give that file"]),
    ("report-missing", lambda r, t: ["report", t / "none.json"], 2, ["none.json", "does not exist"]),
    ("report-bad-format", lambda r, t: ["report", r / "results.json", "--format", "mdx", "--out", t / "o"], 2,
     ["'mdx'", "Did you mean 'md'"]),
    ("gan-json-list", lambda r, t: ["gan", "sample", _gen_with(r, t, "[1, 2]"), "--n", "4", "--out",
                                     t / "s-epo.fif"], 2, ["gan.json", "list"]),
    ("gan-json-garbage", lambda r, t: ["gan", "sample", _gen_with(r, t, "{oops"), "--n", "4", "--out",
                                        t / "s-epo.fif"], 2, ["generator", "JSONDecodeError"]),
    # -- options that would be silently ignored or counted twice --------------------------------------------------
    ("demo-quick-and-preset-paper", lambda r, t: ["demo", "--quick", "--preset", "paper", "--out", t / "o"], 2,
     ["--quick and --preset paper contradict"]),
    ("demo-gan-ratio-without-gan", lambda r, t: ["demo", "--gan-ratio", "2", "--out", t / "o"], 2,
     ["--gan-ratio only applies to 'demo --gan'"]),
    ("demo-force-gan-without-gan", lambda r, t: ["demo", "--quick", "--force-gan", "--out", t / "o"], 2,
     ["--force-gan only applies", "add --gan"]),
    ("audit-eps-twice", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                      *QUICK[:2], "--eps", "0.3,0.1,0.30"], 2,
     ["--eps lists the budget 0.3 more than once"]),
    ("audit-eps-empty-item", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                           *QUICK[:2], "--eps", "0.3,,0.1"], 2, ["'0.3,,0.1' has an empty item"]),
    ("run-eps-twice", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--eps", "0.1,0.1"], 2,
     ["--eps lists the budget 0.1 more than once"]),
    ("run-toml-eps-twice", lambda r, t: ["run", "--config", _write(t / "s.toml", f'data = "{r / "test-epo.fif"}"'
                                                                   '\n[suite]\nepsilons = [0.1, 0.1]\n')], 2,
     ["epsilons lists the budget 0.1 more than once"]),
    ("audit-seeds-twice", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                        "--seeds", "0,0", *QUICK[:2]], 2, ["seeds lists 0 more than once"]),
    ("audit-eps-overflow", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                         *QUICK[:2], "--eps", "1e308"], 2, ["epsilons must be at most 1e+06",
                                                                            "1e+308"]),
    ("audit-eps-underscore", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                           *QUICK[:2], "--eps", "0.1,1_0"], 2,
     ["--eps item '1_0' is not a plain number"]),
    ("audit-eps-underflow", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                          *QUICK[:2], "--eps", "1e-400"], 2,
     ["--eps item '1e-400' is too small to be told from 0"]),
    ("audit-eps-hex", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                    *QUICK[:2], "--eps", "0x10"], 2, ["--eps item '0x10' is not a plain number"]),
    ("audit-seed-underscore", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                            *QUICK[:2], "--seed", "1_0"], 2, ["--seed", "'1_0'"]),
    ("run-seeds-underscore", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--seeds",
                                           "0,1_0"], 2, ["seeds must be non-negative integers", "'1_0'"]),
    ("audit-tmax-underscore", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o",
                                            *QUICK[:2], "--tmax", "1_0"], 2, ["--tmax", "'1_0'"]),
    ("train-out-holds-the-bundle", lambda r, t: ["train", "--models", "toy", "--out",
                                                 _write(t / "o" / "toy" / "keep", "mine").parent.parent], 2,
     ["already holds", "--overwrite"]),
    ("run-folds-with-official", lambda r, t: ["run", "--dataset", "scp1", "--folds", "3", "--out", t / "o"], 2,
     ["folds=3 applies to the within-subject protocol only"]),
    ("certify-tmax-with-dataset", lambda r, t: ["certify", r / "bundle", "--dataset", "scp1", "--tmax", "1",
                                                "--out", t / "o"], 2, ["apply to --data files only"]),
    ("gan-minutes-inf", lambda r, t: ["gan", "train", "--minutes", "inf", "--out", t / "o"], 2,
     ["--minutes must be finite and > 0"]),
    ("run-toml-threat-number", lambda r, t: ["run", "--config", _write(t / "s.toml", 'dataset = "scp1"\nthreat = 1\n')],
     2, ["threat must be text or a list of text"]),
    ("run-toml-attacks-numbers", lambda r, t: ["run", "--config", _write(t / "s.toml",
                                                                         'dataset = "scp1"\nattacks = [1]\n')],
     2, ["attacks must be text or a list of text"]),
    ("run-arms-empty-item", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--arms",
                                          "none,,pgd_at"], 2, ["has an empty item"]),
    ("run-arm-underscore-number", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--arms",
                                                "pgd_at(steps=1_0)"], 2, ["steps must be a finite number", "'1_0'"]),
    ("run-toml-arm-parameter-twice", lambda r, t: ["run", "--config", _write(
        t / "s.toml", 'dataset = "scp1"\narms = [{name = "pgd_at", params = {eps = 0.1}, eps = 0.2}]\n')], 2,
     ["gives 'eps' twice"]),
    ("run-subjects-twice", lambda r, t: ["run", "--dataset", "scp", "--subjects", "1,1", "--out", t / "o"], 2,
     ["subjects lists '1' more than once"]),
    ("certify-sigma-twice", lambda r, t: ["certify", r / "bundle", "--data", r / "test-epo.fif", "--sigma",
                                          "0.25,0.25", "--out", t / "o"], 2, ["sigma lists 0.25 more than once"]),
    ("certify-sigma-empty-item", lambda r, t: ["certify", r / "bundle", "--data", r / "test-epo.fif", "--sigma",
                                               "0.25,,0.5", "--out", t / "o"], 2, ["has an empty item"]),
    ("certify-radii-twice", lambda r, t: ["certify", r / "bundle", "--data", r / "test-epo.fif", "--radii",
                                          "0.5,0.25,0.5", "--out", t / "o"], 2, ["radius lists 0.5 more than once"]),
    ("report-of-a-certification", lambda r, t: ["report", _write(t / "c" / "certification.json", json.dumps(
        {"rows": [], "trials": [], "config": {}, "provenance": {}}))], 2, ["it is a certification"]),
    ("run-threat-empty", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--threat", ""], 2,
     ["threat names no threat model"]),
    ("run-toml-suite-seed-negative", lambda r, t: ["run", "--config", _write(
        t / "s.toml", 'dataset = "scp1"\n[suite]\nseeds = [-1]\n')], 2, ["seeds must be a non-empty list of integers",
                                                                       "(-1,)"]),
    ("audit-data-is-a-folder", lambda r, t: ["audit", r / "bundle", "--data", r, "--out", t / "o", *QUICK], 2,
     ["is a folder that MNE cannot read", "quoted glob"]),
    ("run-data-empty", lambda r, t: ["run", "--data", "", "--out", t / "o"], 2, ["empty path", "quoted glob"]),
    ("audit-data-empty", lambda r, t: ["audit", r / "bundle", "--data", "", "--out", t / "o", *QUICK], 2,
     ["path is empty"]),
    ("run-toml-list-as-table", lambda r, t: ["run", "--config", _write(t / "s.toml",
                                                                       'dataset = "scp1"\n[eps]\na = 1\n')],
     2, ["'eps' must be a list", "[eps] section", "eps = [...]"]),
    ("run-arm-parameter-twice", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--arms",
                                               "pgd_at(eps=0.1,eps=0.2)"], 2, ["gives 'eps' twice"]),
    ("run-arm-twice", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--arms", "none,none"],
     2, ["arms lists 'none' more than once"]),
    ("run-arm-sigma-overflow", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--arms",
                                              "noise(sigma=1e308)"], 2, ["sigma must be at most 1e+06"]),
    ("run-models-twice", lambda r, t: ["run", "--data", r / "test-epo.fif", "--out", t / "o", "--models",
                                       "toy,toy"], 2, ["models lists 'toy' more than once"]),
    ("train-models-twice", lambda r, t: ["train", "--models", "toy,toy", "--out", t / "b", "--quiet"], 2,
     ["--models lists 'toy' more than once"]),
    ("gan-sample-n-beyond-memory", lambda r, t: ["gan", "sample", r / "gen", "--n", "100000000000", "--out",
                                                 t / "s-epo.fif"], 2, ["--n 100000000000", "GiB", "draw fewer"]),
    ("report-out-into-another-study", lambda r, t: ["report", r / "results.json", "--out",
                                                    _write(_study(t, "{}") / "results.csv", "x").parent], 2,
     ["already holds", "results.csv", "study.json", "nothing was changed"]),
    # -- resume over a store that is not one ------------------------------------------------------------------
    ("audit-resume-study-list", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--threat",
                                               "white", "--attacks", "fgsm", "--out", _study(t, "[]"), "--resume",
                                               *QUICK], 2, ["study.json", "'format'", "list"]),
    ("audit-resume-study-garbage", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--threat",
                                                  "white", "--attacks", "fgsm", "--out", _study(t, "{x"),
                                                  "--resume", *QUICK], 2, ["study.json", "unreadable"]),
    ("audit-resume-study-foreign", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--threat",
                                                  "white", "--attacks", "fgsm", "--out",
                                                  _study(t, '{"format": "other"}'), "--resume", *QUICK], 2,
     ["study.json", "'format'", "'other'"]),
    ("audit-resume-results-only", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--threat",
                                                 "white", "--attacks", "fgsm", "--out", _results_dir(t), "--resume",
                                                 *QUICK], 2, ["results.json", "no study.json"]),
    ("audit-resume-cell-garbage", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--threat",
                                                 "white", "--attacks", "fgsm", "--out", _cell(t, "[1, 2]"),
                                                 "--resume", *QUICK], 2, ["--resume", "unreadable cell file"]),
    ("run-resume-study-list", lambda r, t: ["run", "--train", r / "train-epo.fif", "--test", r / "test-epo.fif",
                                             "--models", "toy", "--threat", "white", "--attacks", "fgsm",
                                             "--no-cache", "--out", _study(t, "[]"), "--resume", *QUICK], 2,
     ["study.json", "'format'", "list"]),
    ("audit-rerun-without-resume", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out",
                                                  _study(t, "[]"), *QUICK], 2, ["already holds results",
                                                                                "--resume"]),
    # -- options: negative seeds, malformed epoching options, log levels, thresholds --------------------------
    ("audit-seed-negative", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--seed", "-1"], 2,
     ["--seed", "'-1'"]),
    ("audit-seed-text", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--seed", "x1"], 2,
     ["--seed", "'x1'"]),
    ("run-seed-negative", lambda r, t: ["run", "--dataset", "scp1", "--seeds", "-1", "--out", t / "o"], 2,
     ["seeds", "'-1'"]),
    ("demo-seed-negative", lambda r, t: ["demo", "--seed", "-1", "--out", t / "o"], 2, ["--seed", "'-1'"]),
    ("train-seed-negative", lambda r, t: ["train", "--seed", "-1"], 2, ["--seed", "'-1'"]),
    ("gan-train-seed-negative", lambda r, t: ["gan", "train", "--seed", "-1"], 2, ["--seed", "'-1'"]),
    ("gan-sample-seed-negative", lambda r, t: ["gan", "sample", r / "gen", "--n", "2", "--out", t / "s-epo.fif",
                                                "--seed", "-1"], 2, ["--seed", "'-1'"]),
    ("event-id-no-code", lambda r, t: ["audit", r / "bundle", "--data", r / "rec_raw.fif", "--event-id",
                                        "class0,class1=2"], 2, ["--event-id", "'class0'"]),
    ("event-id-code-text", lambda r, t: ["audit", r / "bundle", "--data", r / "rec_raw.fif", "--event-id",
                                          "class0=a,class1=2"], 2, ["--event-id", "'a'"]),
    ("event-id-name-twice", lambda r, t: ["audit", r / "bundle", "--data", r / "rec_raw.fif", "--event-id",
                                           "class0=1,class1=2,class0=3"], 2, ["--event-id", "'class0' twice"]),
    ("event-id-code-twice", lambda r, t: ["audit", r / "bundle", "--data", r / "rec_raw.fif", "--event-id",
                                           "class0=1,class1=1"], 2, ["--event-id", "code 1", "'class0'", "'class1'"]),
    ("event-id-empty-item", lambda r, t: ["audit", r / "bundle", "--data", r / "rec_raw.fif", "--event-id",
                                           "class0=1,,class1=2"], 2, ["--event-id", "empty item"]),
    ("event-id-underscore", lambda r, t: ["audit", r / "bundle", "--data", r / "rec_raw.fif", "--event-id",
                                           "class0=1_0,class1=2"], 2, ["--event-id", "'1_0'"]),
    ("tmax-text", lambda r, t: ["run", "--data", r / "rec_raw.fif", "--tmax", "soon"], 2, ["--tmax", "'soon'"]),
    ("tmin-nan", lambda r, t: ["gan", "train", "--data", r / "rec_raw.fif", "--tmin", "nan"], 2,
     ["--tmin", "'nan'"]),
    ("raw-without-tmax", lambda r, t: ["audit", r / "bundle", "--data", r / "rec_raw.fif", "--out", t / "o",
                                        *QUICK], 2, ["rec_raw.fif", "--tmax"]),
    ("epochs-options-on-bundled", lambda r, t: ["run", "--dataset", "scp1", "--tmax", "1", "--out", t / "o"], 2,
     ["--tmin/--tmax/--event-id"]),
    ("log-level-unknown", lambda r, t: ["--log-level", "loud", "report", r / "results.json"], 2,
     ["--log-level", "'loud'"]),
    ("max-drop-outside", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--max-drop", "7",
                                        "--out", t / "o", *QUICK], 2, ["--max-drop", "7"]),
    ("max-drop-percent", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--max-drop", "5%",
                                        "--out", t / "o", *QUICK], 2, ["--max-drop", "'5%'", "write 0.05"]),
    ("report-format-twice", lambda r, t: ["report", RESULTS, "--out", t / "o", "--format", "md,md"], 2,
     ["format", "'md,md'", "at most once"]),
    ("report-format-empty-item", lambda r, t: ["report", RESULTS, "--out", t / "o", "--format", "md,"], 2,
     ["format", "empty item"]),
    ("unknown-option", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--epss", "1"], 2,
     ["--epss"]),
    ("unknown-command", lambda r, t: ["audti"], 2, ["'audti'"]),
    # -- no verdict possible (exit 3): nothing is attacked ----------------------------------------------------
    ("eps-zero", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", t / "o", "--max-drop",
                                "0.5", *QUICK[:2], "--eps", "0", "--quiet"], 3, ["nothing to attack"]),
    ("gray-without-train-data", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--threat",
                                               "gray", "--out", t / "o", *QUICK], 3,
     ["nothing to attack", "no training data"]),
    ("black-with-white-attack", lambda r, t: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--threat",
                                               "black", "--attacks", "fgsm", "--out", t / "o", *QUICK], 3,
     ["nothing to attack"]),
    ("one-class-black-box-only", lambda r, t: ["audit", r / "one", "--data", r / "test-epo.fif", "--threat",
                                                "black", "--out", t / "o", *QUICK], 3,
     ["nothing to attack", "predicts 'class0' for every audit trial"]),
]


def _gen_with(root, tmp, text) -> Path:
    gen = tmp / "gen"
    gen.mkdir()
    for p in (root / "gen").iterdir():
        (gen / p.name).write_bytes(p.read_bytes())
    (gen / "gan.json").write_text(text)
    return gen


def _cell(tmp, text) -> Path:
    _write(tmp / "old" / "cells" / "0123456789abcdef0123.json", text)
    return tmp / "old"


def _results_dir(tmp) -> Path:
    _write(tmp / "old" / "results.json", "[]")
    return tmp / "old"


@pytest.mark.parametrize("make_argv, code, needles", [pytest.param(a, c, n, id=i) for i, a, c, n in CASES])
def test_hostile_input_is_one_line_and_changes_nothing(files, tmp_path, capsys, make_argv, code, needles):
    (tmp_path / "d-epo.fif").mkdir()
    argv = make_argv(files, tmp_path)
    before, before_tmp = _snapshot(files), _snapshot(tmp_path)
    got, _, err = _call(argv, capsys)
    assert got == code, err
    _one_line(err)
    for needle in needles:
        assert needle in err, (needle, err)
    assert _snapshot(files) == before, "a file that was already there changed"
    assert _snapshot(tmp_path) == before_tmp, "a file was written or changed"
    assert not (tmp_path / "o" / "results.json").exists()


# -- exit codes: internal errors, --debug before or after the command, --version, logging -------------------------
def test_internal_error_is_one_line_exit_3(files, tmp_path, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("eegrobust.harness.audit.run_audit", boom)
    argv = ["audit", files / "bundle", "--data", files / "test-epo.fif", "--out", tmp_path / "o", *QUICK]
    code, _, err = _call(argv, capsys)
    assert code == 3
    _one_line(err)
    assert err == ("eegrobust: internal error: RuntimeError: boom (run with --debug for the traceback; please "
                   "report it)")
    for debug in (["--debug", *argv], [*argv, "--debug"]):  # the global flag and the sub-command's
        code, _, err = _call(debug, capsys)
        assert code == 3 and "Traceback" in err and "RuntimeError: boom" in err
        assert err.splitlines()[-1] == "eegrobust: internal error: RuntimeError: boom"


def test_global_debug_shows_the_traceback_of_an_input_error(files, tmp_path, capsys):
    argv = ["report", tmp_path / "none.json"]
    code, _, err = _call(["--debug", *argv], capsys)
    assert code == 2 and "Traceback" in err and err.splitlines()[-1].startswith("eegrobust: error:")
    code, _, err = _call(argv, capsys)
    assert code == 2 and "Traceback" not in err


def test_os_errors_are_one_line_exit_2_naming_the_path(files, tmp_path, capsys, monkeypatch):
    target = tmp_path / "o" / "report.md"

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("eegrobust.harness.report.write_report", denied)
    code, _, err = _call(["report", files / "results.json", "--out", tmp_path / "o"], capsys)
    assert code == 2
    _one_line(err)
    assert str(target) in err and "Permission denied" in err


@pytest.mark.parametrize("argv", [
    lambda r, o: ["audit", r / "bundle", "--data", r / "test-epo.fif", "--out", o, *QUICK],
    lambda r, o: ["run", "--data", r / "test-epo.fif", "--out", o, "--quiet"],
    lambda r, o: ["demo", "--quick", "--out", o, "--quiet"],
    lambda r, o: ["report", r / "results.json", "--out", o],
    lambda r, o: ["gan", "train", "--data", r / "train-epo.fif", "--out", o, "--quiet"],
    lambda r, o: ["gan", "sample", r / "gen", "--n", "2", "--out", o / "s-epo.fif"],
], ids=["audit", "run", "demo", "report", "gan-train", "gan-sample"])
def test_read_only_out_is_one_line_exit_2(files, tmp_path, capsys, monkeypatch, argv):
    """A folder with mode 0o500. Root writes through permission bits, so there the kernel's refusal is simulated
    at the one place the CLI probes a folder for writing (and the handler test above covers OSError at large)."""
    import tempfile

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if IS_ROOT:
        mkstemp = tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == ro.resolve():
                raise PermissionError(13, "Permission denied", str(dir))
            return mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    before = _snapshot(files)
    try:
        code, _, err = _call(argv(files, ro / "out"), capsys)
    finally:
        ro.chmod(0o700)
    assert code == 2
    _one_line(err)
    assert "not writable" in err and str(ro) in err and "Permission denied" in err
    assert _snapshot(files) == before and not list(ro.iterdir())


def test_version_and_log_options(files, tmp_path, capsys):
    import tomllib

    import eegrobust

    code, out, _ = _call(["--version"], capsys)
    assert code == 0 and out.strip() == f"eegrobust {eegrobust.__version__}"
    pyproject = Path(eegrobust.__file__).parent / "pyproject.toml"  # a source checkout (CI's editable install)
    if pyproject.exists():
        assert tomllib.loads(pyproject.read_text())["project"]["version"] == eegrobust.__version__  # bumped together
    for flags in (["-v"], ["-vv"], ["--log-level", "debug"], ["--log-level", "ERROR"]):
        code, _, err = _call([*flags, "report", files / "results.json", "--format", "csv", "--out", tmp_path / "o"],
                             capsys)
        assert code == 0, err
        code, _, err = _call(["report", files / "results.json", "--format", "csv", "--out", tmp_path / "o", *flags],
                             capsys)
        assert code == 0, err


# -- gan sample: --overwrite, atomic and readable ------------------------------------------------------------------
def test_gan_sample_overwrite_is_atomic_and_readable(files, tmp_path, capsys):
    import mne

    out = tmp_path / "s-epo.fif"
    assert _call(["gan", "sample", files / "gen", "--n", "4", "--out", out], capsys)[0] == EXIT_OK
    first = out.read_bytes()
    assert _call(["gan", "sample", files / "gen", "--n", "4", "--out", out, "--seed", "1"], capsys)[0] == EXIT_USAGE
    assert out.read_bytes() == first
    assert _call(["gan", "sample", files / "gen", "--n", "6", "--out", out, "--overwrite"], capsys)[0] == EXIT_OK
    assert len(mne.read_epochs(out, verbose="error")) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["s-epo.fif"], "no temporary file is left"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_generator_and_gates_are_written_atomically_and_readable(files, tmp_path, capsys):
    out = tmp_path / "g"
    code, _, err = _call(["gan", "train", "--data", files / "train-epo.fif", "--out", out, "--stages", "1",
                          "--iterations", "2", "--quiet"], capsys)
    assert code in (0, 1), err  # 2 iterations may fail a gate; the files are written either way
    umask = os.umask(0)
    os.umask(umask)
    names = {p.name for p in out.iterdir()}
    assert names == {"generator.safetensors", "gan.json", "gates.json"}, names
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    before = _snapshot(out)
    assert _call(["gan", "train", "--data", files / "train-epo.fif", "--out", out, "--quiet"], capsys)[0] == 2
    assert _snapshot(out) == before


# -- verdicts of models that do not work --------------------------------------------------------------------------
@pytest.fixture
def no_figures(monkeypatch):
    """Skip report rendering (matplotlib figures take most of an audit's time here); results are still saved."""
    monkeypatch.setattr(cli, "_write_reports", lambda *args, **kwargs: {})


def test_always_wrong_model_is_no_verdict_with_results_and_note(files, tmp_path, capsys, no_figures):
    out = tmp_path / "o"
    code, stdout, err = _call(["audit", files / "wrong", "--data", files / "test-epo.fif", "--threat", "white",
                               "--attacks", "fgsm", "--out", out, "--max-drop", "0.5", *QUICK], capsys)
    assert code == EXIT_NO_VERDICT
    _one_line(err)
    assert "no verdict possible" in err and "none of the audit trials" in err
    res = json.loads((out / "results.json").read_text())
    note = res["provenance"]["audit"]["notes"][0]
    assert "not above chance" in note and "reliably below chance" in note and "--event-id" in note
    assert "--classes" in note  # swapped outputs of a foreign model look the same
    assert "--input-unit" not in note, "a model that is simply wrong is not blamed on units"
    assert "verdict: no verdict possible" in stdout


def test_one_class_model_gets_a_report_and_the_note(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    argv = ["audit", files / "one", "--data", files / "test-epo.fif", "--train-data", files / "train-epo.fif",
            "--threat", "white,black", "--attacks", "fgsm,substitute", "--out", out, *QUICK]
    code, stdout, err = _call(argv, capsys)
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    res = json.loads((out / "results.json").read_text())
    audit = res["provenance"]["audit"]
    assert audit["prediction_shares"] == {"class0": 1.0, "class1": 0.0}
    note = audit["notes"][0]
    assert "predictions 100% 'class0'" in note and "--train-data trials" in note and "--input-unit" in note
    assert any("substitute skipped" in n for n in audit["notes"])
    assert (out / "report.md").is_file() and "note: the model is not above chance" in stdout
    # the same model under a --max-drop gate: no verdict, never a pass
    monkeypatch.setattr(cli, "_write_reports", lambda *args, **kwargs: {})
    code, stdout, err = _call([*argv[:-len(QUICK)], "--out", tmp_path / "gate", "--max-drop", "0.5", *QUICK],
                              capsys)
    assert code == EXIT_NO_VERDICT and "not above chance" in err
    _one_line(err)
    assert (tmp_path / "gate" / "results.json").is_file()


def test_model_that_does_not_generalise_is_not_blamed_on_units(files, tmp_path):
    from eegrobust.harness.audit import _chance_check
    from eegrobust.models import load_bundle, predict

    model = load_bundle(files / "bundle")
    test = epochs_to_data(make_synthetic_epochs(n_trials=40, snr=0.0, random_state=5))  # no signal: chance
    train = epochs_to_data(make_synthetic_epochs(n_trials=40, random_state=1))
    check = _chance_check(model, test, predict(model, test.X), train)
    assert check["note"] and "does not generalise" in check["note"] and "--input-unit" not in check["note"]
    assert check["train_rca"] > 0.9


# -- raw recordings: --tmin/--tmax/--event-id reach load_epochs (row 11) ------------------------------------------
def test_audit_cuts_a_raw_recording(files, tmp_path, capsys, no_figures):
    raw = ["--tmin", "0", "--tmax", str(127 / 128), "--event-id", "class0=1,class1=2"]
    code, _, err = _call(["audit", files / "bundle", "--data", files / "rec_raw.fif", *raw, "--threat", "white",
                          "--attacks", "fgsm", "--out", tmp_path / "a", *QUICK], capsys)
    assert code == EXIT_OK, err
    audit = json.loads((tmp_path / "a" / "results.json").read_text())["provenance"]["audit"]
    assert audit["clean_rca"] > 0.9 and audit["epochs_kwargs"]["event_id"] == {"class0": 1, "class1": 2}
    assert not audit["notes"]


def test_study_passes_epochs_options_to_the_files(files, monkeypatch):
    from eegrobust.harness import study as study_mod

    seen = []

    def fake_load_files(sources, **kwargs):
        seen.append(kwargs)
        return epochs_to_data(make_synthetic_epochs(n_trials=8, random_state=0))

    monkeypatch.setattr("eegrobust.data.load_files", fake_load_files)
    config = study_mod.StudyConfig(train=str(files / "rec_raw.fif"), test=str(files / "rec_raw.fif"),
                                   epochs_kwargs={"tmax": 0.5, "event_id": {"a": 1, "b": 2}})
    study_mod._load_study_data(config)
    assert seen == [{"tmax": 0.5, "event_id": {"a": 1, "b": 2}}] * 2
    args = cli.build_parser().parse_args(["run", "--data", "x.edf", "--tmin", "-0.5", "--tmax", "2",
                                          "--event-id", "left=1, right=2"])
    assert cli._epochs_kwargs(args) == {"tmin": -0.5, "tmax": 2.0, "event_id": {"left": 1, "right": 2}}


def test_gan_sample_of_fewer_trials_than_classes(files, tmp_path, capsys):
    """--n 1 of a two-class generator: one trial of one class, the file keeps both classes' event codes."""
    import mne

    code, out, err = _call(["gan", "sample", files / "gen", "--n", "1", "--out", tmp_path / "s-epo.fif"], capsys)
    assert code == EXIT_OK, err
    epochs = mne.read_epochs(tmp_path / "s-epo.fif", verbose="error")
    assert len(epochs) == 1 and set(epochs.event_id) == {"class0", "class1"}
    label = epochs.metadata["label"].iloc[0]
    assert f"per class: class0 {int(label == 'class0')}, class1 {int(label == 'class1')}" in out  # says what it wrote


def test_report_out_of_the_same_results_can_be_rewritten(files, tmp_path, capsys):
    """A folder holding an earlier report of the same results is rewritten; one of other results is not."""
    argv = ["report", files / "results.json", "--out", tmp_path / "r", "--format", "csv"]
    assert _call(argv, capsys)[0] == EXIT_OK
    code, _, err = _call(argv, capsys)
    assert code == EXIT_OK, err
    other = _results_with(tmp_path, lambda d: d["config"].update(seeds=[7]))
    code, _, err = _call(["report", other, "--out", tmp_path / "r", "--format", "csv"], capsys)
    assert code == EXIT_USAGE and "already holds" in err


def test_gan_sample_for_data_starts_where_its_windows_start(files, tmp_path, capsys):
    """Samples drawn for --data epochs whose windows start 0.5 s before the events start there too, so the two
    files combine (windows that start elsewhere are refused by concat_data)."""
    import mne

    from eegrobust.data import load_files

    shifted = mne.read_epochs(files / "test-epo.fif", verbose="error").shift_time(-0.5)
    shifted.save(tmp_path / "real-epo.fif", verbose="error")
    code, _, err = _call(["gan", "sample", files / "gen", "--n", "4", "--data", tmp_path / "real-epo.fif", "--out",
                          tmp_path / "synth-epo.fif"], capsys)
    assert code == EXIT_OK, err
    assert mne.read_epochs(tmp_path / "synth-epo.fif", verbose="error").tmin == pytest.approx(-0.5)
    assert load_files([str(tmp_path / "real-epo.fif"), str(tmp_path / "synth-epo.fif")]).n_trials == 44


def test_model_at_chance_on_its_own_training_data_gets_no_verdict(files, tmp_path):
    """Above chance on the audit epochs but at chance on --train-data (a model trained on z-scores audited without
    --standardize did this): the input is wrong, so the gate gives no verdict and the note says what to check."""
    from eegrobust.harness.audit import _chance_check, no_verdict_reason
    from eegrobust.harness.results import SuiteResult
    from eegrobust.models import load_bundle, predict

    model = load_bundle(files / "bundle")
    test = epochs_to_data(make_synthetic_epochs(n_trials=40, random_state=1))  # the model works here
    train = epochs_to_data(make_synthetic_epochs(n_trials=40, snr=0.0, random_state=5))  # and not here
    check = _chance_check(model, test, predict(model, test.X), train)
    assert check["clean_rca"] > check["chance_bound"] and check["train_rca"] <= 0.7
    assert "at chance on its --train-data" in check["note"] and "--standardize" in check["note"]
    result = SuiteResult(rows=[], provenance={"audit": {**check, "at_chance": True}})
    assert "at chance on its --train-data" in no_verdict_reason(result, max_drop=0.1)
    assert no_verdict_reason(result, max_drop=None) is None
