"""`harness.paper`: compact main-text tables, LaTeX fragments, the methods paragraph, and the main figure.

``data/scp1_standard_results.json.gz`` is the results file of a real ``eegrobust demo`` (bundled SCP1, EEGNet,
Deep4Net and ShallowFBCSPNet, the "standard" preset: white-, gray- and black-box, L-inf and L2 attacks), stored so
that these tests never train or attack anything. Several subjects are made from it by relabelling copies.
"""

import copy
import gzip
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eegrobust.harness import analysis, paper
from eegrobust.harness.report import write_report
from eegrobust.harness.results import SuiteResult

from .test_report import _require

DATA = Path(__file__).parent / "data" / "scp1_standard_results.json.gz"


def _load(tmp_path_factory):
    path = tmp_path_factory.mktemp("results") / "results.json"
    path.write_bytes(gzip.decompress(DATA.read_bytes()))
    return path


@pytest.fixture(scope="module")
def results_path(tmp_path_factory):
    return _load(tmp_path_factory)


@pytest.fixture(scope="module")
def result(results_path):
    return SuiteResult.from_json(results_path)


@pytest.fixture(scope="module")
def tables(result):
    return paper.compact_tables(result)


@pytest.fixture(scope="module")
def three_subjects(results_path, tmp_path_factory):
    """The demo's result as three subjects: copies in which some more trials are fooled by every attack."""
    d = json.loads(results_path.read_text())
    rows, outcomes = [], []
    for k, subject in enumerate(("s1", "s2", "s3")):
        fooled = np.random.default_rng(k).random(1000) < 0.05 * k  # by trial id, the same for every attack
        for r in d["rows"]:
            rows.append({**r, "subject": subject})
        for o in d["outcomes"]:
            o = copy.deepcopy(o)
            o["subject"] = subject
            for eps, pred in o["adv_pred"].items():
                if float(eps) > 0:
                    o["adv_pred"][eps] = [(int(y) + 1) % 2 if fooled[t] else int(p)
                                          for t, p, y in zip(o["trial"], pred, o["y"])]
            outcomes.append(o)
    # the rows say what the outcomes say (a results file whose rows contradict its outcomes is refused)
    keys = ("subject", "model", "threat_model", "attack", "substitute", "norm", "attack_seed")
    acc = {(*(str(o.get(k)) for k in keys), float(eps)): np.mean(np.asarray(pred) == np.asarray(o["y"]))
           for o in outcomes for eps, pred in o["adv_pred"].items()}
    for r in rows:
        a = acc.get((*(str(r.get(k)) for k in keys), float(r["epsilon"])))
        if a is not None:
            r["adv_rca"], r["drop"] = float(a), r["clean_rca"] - float(a)
    d["rows"], d["outcomes"] = rows, outcomes
    path = tmp_path_factory.mktemp("three") / "results.json"
    path.write_text(json.dumps(d))
    return SuiteResult.from_json(path)


# -- what a cell is ----------------------------------------------------------------------------------------------
def test_one_table_per_threat_model_and_norm_never_pooled(result, tables):
    norm_of = {r["attack"]: r["norm"] for r in result.rows}
    keys = [t.key for t in tables]
    assert keys == ["white_box-linf", "white_box-l2", "gray_box-linf", "black_box-linf"]
    for t in tables:
        for row in t.rows:
            for label in row["best"].values():
                assert norm_of[label.partition("<-")[0]] == t.norm, (t.key, label)


def test_cells_are_the_per_trial_worst_case_over_the_norms_attacks(result, tables):
    """Recomputed by hand from the outcomes: robust = correct under every white-box L-inf attack."""
    white = {t.key: t for t in tables}["white_box-linf"]
    linf = {r["attack"] for r in result.rows if r["threat_model"] == "white_box" and r["norm"] == "linf"}
    for row in white.rows:
        for eps, cell in row["cells"].items():
            robust = None
            for o in result.outcomes:
                if o["model"] == row["model"] and o["threat_model"] == "white_box" and o["attack"] in linf:
                    ok = (np.array(o["adv_pred"][repr(eps)]) == o["y"]) & (np.array(o["clean_pred"]) == o["y"])
                    robust = ok if robust is None else robust & ok
            assert cell.mean == pytest.approx(robust.mean())
            per_attack = [r["adv_rca"] for r in result.rows if r["model"] == row["model"] and r["attack"] in linf
                          and r["threat_model"] == "white_box" and r["epsilon"] == eps]
            assert cell.mean <= min(per_attack) + 1e-12


def test_one_unit_gets_a_clopper_pearson_interval_and_no_sd(tables):
    cell = tables[0].rows[0]["cells"][0.1]
    k = int(round(cell.mean * cell.n_trials))
    ci = stats.binomtest(k, cell.n_trials).proportion_ci(confidence_level=0.95, method="exact")
    assert (cell.ci_low, cell.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert cell.sd is None and cell.n == 1 and cell.ci_method == "Clopper-Pearson over trials"
    assert "n = 1 evaluation" in paper.caption(tables[0])


def test_several_subjects_get_sd_ddof1_and_a_t_interval_over_subjects(three_subjects):
    """Each subject counts once, as in summary.csv: mean, sd (ddof=1) and the t-interval over the subjects' means
    (a percentile bootstrap over 2-5 subjects was the range of the draws, far below 95 % coverage)."""
    from scipy import stats

    t = paper.compact_tables(three_subjects)[0]
    assert t.n_units == 3 and t.n_subjects == 3
    wc = analysis.worst_case(three_subjects.outcomes_frame().query("epsilon > 0"), threat_models=("white_box",))
    wc = wc[(wc["norm"] == "linf") & (wc["model"] == "eegnet") & (wc["epsilon"] == 0.1)]
    per_subject = wc.groupby("subject")["robust_rca"].mean()
    cell = t.rows[0]["cells"][0.1]
    assert cell.mean == pytest.approx(per_subject.mean()) and cell.n == 3
    assert cell.sd == pytest.approx(np.std(per_subject, ddof=1)) and cell.sd > 0
    low, high = stats.t.interval(0.95, 2, loc=per_subject.mean(), scale=stats.sem(per_subject))
    assert cell.ci_method == "t-interval over subjects"
    assert (cell.ci_low, cell.ci_high) == (pytest.approx(max(low, 0)), pytest.approx(min(high, 1)))
    assert "over n = 3 subjects (each subject's mean" in paper.caption(t)
    assert "±" in paper.markdown(t) and re.search(r"0\.\d{3}\(\d+\)", paper.fragment(t))


def test_tables_csv_holds_every_cell_with_its_interval(tables):
    frame = paper.tables_frame(tables)
    n_cells = sum(len(r["cells"]) + 1 for t in tables for r in t.rows)
    assert len(frame) == n_cells
    assert (frame["ci_low"] <= frame["mean"] + 1e-12).all() and (frame["mean"] <= frame["ci_high"] + 1e-12).all()
    assert set(frame["norm"]) == {"linf", "l2"} and not frame.groupby("table")["norm"].nunique().gt(1).any()


def test_partial_attack_coverage_is_said(tables):
    black = {t.key: t for t in tables}["black_box-linf"]
    assert "Not every attack ran at every budget (SimBA only at ε 0.1, 0.3" in paper.caption(black)


# -- LaTeX ---------------------------------------------------------------------------------------------------------
def test_fragments_are_floats_with_booktabs_and_siunitx(tables):
    for t in tables:
        tex = paper.fragment(t)
        assert tex.count(r"\begin{table") == 1 and "longtable" not in tex and r"\documentclass" not in tex
        assert r"\toprule" in tex and r"\bottomrule" in tex and "S[table-format=1.3" in tex
        assert f"\\label{{tab:eegrobust-{t.key}}}" in tex


def test_two_column_article_inputting_every_fragment_compiles(result, tmp_path):
    pdflatex = _require("pdflatex")
    paths = paper.write_paper(result, tmp_path / "paper")
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "two_column_example.tex"],
                          cwd=tmp_path / "paper", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (tmp_path / "paper" / "two_column_example.log").read_text(errors="replace")
    assert "LaTeX Error" not in log and "Missing character" not in log
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)[:5]  # every table fits its width
    example = paths["example_tex"].read_text()
    assert "twocolumn" in example and example.count(r"\input{tables/") == 4


def test_supplementary_report_with_fragments_compiles(results_path, tmp_path):
    pdflatex = _require("pdflatex")
    paths = write_report(results_path, tmp_path / "rep", formats="tex")
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                          cwd=tmp_path / "rep", capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert r"\usepackage{siunitx}" in paths["tex"].read_text()


# -- the methods paragraph -----------------------------------------------------------------------------------------
def test_methods_paragraph_states_what_was_measured(result):
    text = paper.methods_paragraph(result)
    cfg = result.config
    for needle in (f"on {result.provenance['n_test_trials']} test trials", f"PGD ran {cfg['pgd_steps']} steps",
                   f"at most {cfg['max_queries']} queries per trial", "1 attack seed: 0", "fraction of each channel's",
                   "never pooled", "torch ", "braindecode ", "Clopper-Pearson", "LinfPGD(steps=20"):
        assert needle in text, needle
    tex = paper.methods_paragraph(result, tex=True)
    assert "_" not in tex.replace(r"\_", "") and "±" not in tex and "ε" not in tex


def test_methods_paragraph_names_every_surrogate_and_only_what_ran(result):
    """Every surrogate a transfer attack was crafted on is named (only the first was), and a sentence about
    transferred PGD or query budgets appears only when such an attack ran."""
    text = paper.methods_paragraph(result)
    subs = {r["substitute"] for r in result.rows if r["attack"] == "transfer_ufgsm"}
    assert len(subs) > 1 and all(f"surrogate={s}" in text for s in subs)
    assert "transferred PGD" in text and "Query attacks (hopskipjump, simba, square)" in text
    rows = [r for r in result.rows if r["attack"] not in ("transfer_linf_pgd", "square", "simba", "hopskipjump")]
    fewer = paper.methods_paragraph(SuiteResult(rows=rows, config=result.config, provenance=result.provenance,
                                                environment=result.environment))
    assert "transferred PGD" not in fewer and "queries per trial" not in fewer and "black-box attacks were" in fewer


def test_report_writes_the_paper_folder_and_shows_the_main_tables(results_path, tmp_path):
    paths = write_report(results_path, tmp_path / "rep", formats="md,html")
    for name in ("main_tables_md", "main_tables_csv", "methods_md", "methods_tex", "table_white_box-linf"):
        assert paths[name].is_file() and paths[name].stat().st_mode & 0o044 == 0o044, name
    md = paths["md"].read_text()
    assert "## Main results" in md and "**Robust accuracy, white-box, L∞.**" in md and "**Methods.**" in md
    assert 'id="main-white_box-linf"' in paths["html"].read_text()
    for f in ("main_accuracy", "main_accuracy_single"):
        png = paths["figures"] / f"{f}.png"
        assert png.stat().st_mode & 0o044 == 0o044
    import matplotlib.image

    single = matplotlib.image.imread(paths["figures"] / "main_accuracy_single.png")
    assert single.shape[1] == pytest.approx(3.5 * 300, abs=2)  # one journal column at 300 dpi
    double = matplotlib.image.imread(paths["figures"] / "main_accuracy.png")
    assert double.shape[1] == pytest.approx(7.16 * 300, abs=2)


def test_format1_results_have_no_compact_tables_and_say_so(tmp_path):
    old = Path(__file__).parent / "data" / "results.json"
    assert paper.compact_tables(SuiteResult.from_json(old)) == []
    paths = write_report(old, tmp_path / "rep", formats="md")
    assert "No per-trial outcomes" in paths["md"].read_text()
    assert "No per-trial outcomes" in paths["main_tables_md"].read_text()


def test_frame_of_a_result_without_l2_has_no_l2_table(result, tmp_path):
    d = json.loads(json.dumps({"rows": result.rows, "outcomes": result.outcomes}))
    keep = [o for o in d["outcomes"] if o["norm"] == "linf"]
    r = SuiteResult(rows=[x for x in d["rows"] if x["norm"] == "linf"], outcomes=keep, config=result.config,
                    provenance=result.provenance, environment=result.environment)
    assert all(t.norm == "linf" for t in paper.compact_tables(r))
    assert isinstance(paper.tables_frame(paper.compact_tables(r)), pd.DataFrame)


def test_a_narrow_table_is_one_column_and_fits_it(result, tmp_path):
    """Three budgets fit one column of a two-column paper: a `table` float, no overfull box."""
    pdflatex = _require("pdflatex")
    keep = {0.0, 0.05, 0.1, 0.3}
    outcomes = [{**o, "adv_pred": {k: v for k, v in o["adv_pred"].items() if float(k) in keep}}
                for o in result.outcomes]
    narrow = SuiteResult(rows=[r for r in result.rows if r["epsilon"] in keep], outcomes=outcomes,
                         config=result.config, provenance=result.provenance, environment=result.environment)
    tables = paper.compact_tables(narrow)
    white = {t.key: t for t in tables}["white_box-linf"]
    assert white.epsilons == [0.05, 0.1, 0.3] and paper.fragment(white).startswith("% eegrobust")
    assert r"\begin{table}[tbp]" in paper.fragment(white)
    paper.write_paper(narrow, tmp_path / "p")
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "two_column_example.tex"],
                          cwd=tmp_path / "p", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Overfull \\hbox" not in (tmp_path / "p" / "two_column_example.log").read_text(errors="replace")


_MAIN_PROBE = """<script>window.addEventListener('load', function () {
var t = document.querySelectorAll('table[id^="main-"]');
var imgs = Array.prototype.slice.call(document.images);
document.body.setAttribute('data-probe', JSON.stringify({main: t.length,
  rows: t.length ? t[0].querySelectorAll('tbody tr').length : 0,
  methods: document.getElementById('methods') ? 1 : 0,
  loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length, images: imgs.length}));
});</script>"""


def test_main_tables_render_in_headless_chromium(results_path, tmp_path):
    from .test_report import browser_probe

    paths = write_report(results_path, tmp_path / "rep", formats="html")
    seen = browser_probe(paths["html"].read_text(), _MAIN_PROBE, tmp_path)
    assert seen["main"] == 4 and seen["rows"] == 3 and seen["methods"] == 1
    assert seen["images"] >= 2 and seen["loaded"] == seen["images"]


# -- topomaps ------------------------------------------------------------------------------------------------------
def test_positions_from_the_montage_then_standard_names_else_a_reason():
    from eegrobust.harness.figures import channel_positions

    pos, source = channel_positions(["C3", "cz", "C4", "Pz"])
    assert pos.shape == (4, 2) and "standard 10-05" in source
    own = {"x1": [0.03, 0.0, 0.08], "x2": [-0.03, 0.0, 0.08], "x3": [0.0, 0.04, 0.08]}
    pos, source = channel_positions(["x1", "x2", "x3"], own)
    assert source == "the recording's montage" and np.allclose(pos[0], [0.03, 0.0])
    pos, reason = channel_positions(["A1-Cz", "A2-Cz", "C3f", "C3p"])
    assert pos is None and "A1-Cz" in reason


def test_epochs_montage_reaches_the_data_and_survives_subsets():
    import mne

    from eegrobust.data import epochs_to_data

    names = ["C3", "Cz", "C4", "Pz"]
    info = mne.create_info(names, 128.0, "eeg")
    rng = np.random.default_rng(0)
    epochs = mne.EpochsArray(rng.normal(0, 1e-5, (6, 4, 128)), info,
                             events=np.c_[np.arange(6) * 200, np.zeros(6, int), np.r_[[1] * 3, [2] * 3]],
                             event_id={"a": 1, "b": 2}, verbose=False)
    assert epochs_to_data(epochs).ch_pos is None  # no montage: no positions, never invented
    epochs.set_montage("standard_1020")
    data = epochs_to_data(epochs)
    assert sorted(data.ch_pos) == sorted(names) and data.subset([0, 1]).ch_pos == data.ch_pos


def test_topomap_draws_the_perturbation_energy(result):
    from eegrobust.harness.figures import channel_positions, topomap

    names = ["C3", "Cz", "C4", "Pz", "Fz", "Oz"]
    ex = {**result.examples[0], "ch_names": names}
    pos, source = channel_positions(names)
    fig = topomap(ex, pos, source)
    assert len([a for a in fig.axes if a.get_title()]) == 2
