"""`harness.report`: every format from a stored results file, with its numbers checked against the file.

The HTML page is opened in a real headless browser and the LaTeX is compiled with pdflatex.

``data/results.json`` is a real `run_suite` result (toy and EEGNet on synthetic data; white-, gray-, black-box and
control rows; one example trial per model), stored so these tests never train or attack anything.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from eegrobust.data._checks import ConfigError, DataError
from eegrobust.harness.report import REPORT_FORMATS, tex_escape, verdict, write_report
from eegrobust.harness.results import SuiteResult
from eegrobust.harness.tables import fmt

RESULTS = Path(__file__).parent / "data" / "results.json"
ROOT = Path(__file__).resolve().parents[2]
#: threat tables by key: a threat model with L-inf and L2 attacks (white-box here) gets one table per norm
TITLES = {"white_box-linf": "White-box, L∞", "white_box-l2": "White-box, L2",
          "gray_box": "Gray-box (transfer from a substitute)", "black_box": "Black-box",
          "control": "Control (random noise)"}
CHECKED = {"clean RCA": "clean_rca", "clean BCA": "clean_bca", "adv RCA": "adv_rca", "adv BCA": "adv_bca",
           "drop": "drop", "success": "success_rate", "L∞ (µV)": "linf_uv", "SNR (dB)": "snr_db"}
FIGURES = ("accuracy_epsilon", "accuracy_snr", "traces_toy", "spectrum_toy", "traces_eegnet", "spectrum_eegnet")


@pytest.fixture(scope="module")
def result():
    return SuiteResult.from_json(RESULTS)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_report(RESULTS, out)


# -- helpers: read the tables back ---------------------------------------------------------------------------
def md_tables(text):
    """{heading: [header, *rows]} for every Markdown table, keyed by the heading above it."""
    tables, title = {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip()
        elif line.startswith("|") and not set(line) <= set("|:- "):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            tables.setdefault(title, []).append(cells)
    return tables


class _HTMLTables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self._id, self._row, self._cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None


def html_tables(text):
    parser = _HTMLTables()
    parser.feed(text)
    return parser.tables


def tex_rows(text, key):
    """Body rows of the longtable labelled ``tab:key``, unescaped back to plain text."""
    block = text[text.index(rf"\label{{tab:{key}}}"):]
    block = block[block.index(r"\endfoot") + len(r"\endfoot"):block.index(r"\end{longtable}")]
    rows = [line.rstrip("\\ ").split(" & ") for line in block.strip().splitlines()]
    return [[c.replace(r"\_", "_").strip() for c in row] for row in rows]


def by_cell(header, rows):
    """{(model, substitute, attack, epsilon-text): {column: text}}."""
    out = {}
    for row in rows:
        d = dict(zip(header, row))
        out[(d["model"], d.get("substitute", ""), d["attack"], d["ε"])] = d
    return out


def expected_cells(result):
    """What each threat table (by key) must show for each row of the results file (it holds one seed)."""
    for r in result.rows:
        key = f"{r['threat_model']}-{r['norm']}" if r["threat_model"] == "white_box" else r["threat_model"]
        yield key, (r["model"], r["substitute"], r["attack"], f"{r['epsilon']:g}"), r


# -- every format --------------------------------------------------------------------------------------------
def test_every_format_is_written(report):
    paper = {"paper", "main_tables_md", "main_tables_csv", "paired_tests_csv", "per_class_csv", "methods_md",
             "methods_tex", "example_tex"}  # format 1 results: no per-trial outcomes, so no compact table fragments
    assert set(REPORT_FORMATS) | {"figures", "config", "environment"} | paper == set(report)
    for key in ("md", "html", "tex", "csv", "config", "environment"):
        assert report[key].is_file() and report[key].stat().st_size > 0, key
    names = {p.name for p in report["figures"].iterdir()}
    assert names == {f"{f}.{ext}" for f in FIGURES for ext in ("png", "pdf")}
    assert report["figures"].joinpath("traces_toy.png").read_bytes()[:4] == b"\x89PNG"
    assert report["figures"].joinpath("traces_toy.pdf").read_bytes()[:4] == b"%PDF"
    assert not list(report["md"].parent.rglob("*.tmp")), "a temporary file was left behind"


def test_csv_and_provenance_files_match_results(report, result):
    assert report["csv"].read_text() == result.to_csv()
    assert json.loads(report["config"].read_text()) == result.config
    assert json.loads(report["environment"].read_text()) == result.environment


def test_only_the_formats_asked_for(tmp_path):
    paths = write_report(RESULTS, tmp_path, formats="csv")
    assert set(paths) == {"csv", "config", "environment"}
    assert not (tmp_path / "figures").exists() and not (tmp_path / "report.md").exists()


# -- numbers in the tables equal the results file ------------------------------------------------------------
def test_markdown_numbers_match_results(report, result):
    tables = md_tables(report["md"].read_text())
    cells = {t: by_cell(tables[title][0], tables[title][1:]) for t, title in TITLES.items()}
    for threat, key, row in expected_cells(result):
        shown = cells[threat][key]
        for column, field in CHECKED.items():
            assert shown[column] == fmt(row[field]), (threat, key, column)
        if threat == "black_box":
            assert shown["queries/trial"] == f"{row['queries_per_trial']:.1f}"  # a count: one decimal


def test_html_numbers_match_results(report, result):
    tables = html_tables(report["html"].read_text())
    cells = {t: by_cell(tables[f"tab-{t}"][0], tables[f"tab-{t}"][1:]) for t in TITLES}
    for threat, key, row in expected_cells(result):
        for column, field in CHECKED.items():
            assert cells[threat][key][column] == fmt(row[field]), (threat, key, column)


def test_tex_numbers_match_results(report, result):
    text = report["tex"].read_text()
    md = md_tables(report["md"].read_text())
    for threat, title in TITLES.items():
        header = md[title][0]  # the same columns in the same order
        cells = by_cell(header, tex_rows(text, threat))
        for t, key, row in expected_cells(result):
            if t == threat:
                assert cells[key]["adv RCA"] == fmt(row["adv_rca"]) and cells[key]["drop"] == fmt(row["drop"])
                assert cells[key]["clean BCA"] == fmt(row["clean_bca"]), (threat, key)


def test_transfer_matrix(report, result):
    gray = [r for r in result.rows if r["threat_model"] == "gray_box"]
    eps = max(e for e in {r["epsilon"] for r in gray} if 0 < e <= 0.2)
    table = html_tables(report["html"].read_text())["tab-transfer-transfer_ufgsm"]
    assert table[0] == ["substitute \\ victim", "toy", "eegnet"]
    matrix = {row[0]: dict(zip(table[0][1:], row[1:])) for row in table[1:]}
    for r in gray:
        if r["epsilon"] == eps:
            assert matrix[r["substitute"]][r["model"]] == fmt(r["adv_rca"])
        assert matrix["(clean)"][r["model"]] == fmt(r["clean_rca"])
    assert matrix["toy"]["toy"] == "-"  # a model is not its own gray-box substitute
    md = report["md"].read_text()
    assert f"transfer_ufgsm at ε = {eps:g}" in md
    assert rf"transfer\_ufgsm at $\varepsilon$ = {eps:g}" in report["tex"].read_text()


def test_verdict_names_the_worst_cell_of_each_norm(report, result):
    line = verdict(result)
    parts = line.split("; ")
    norms = [n for n in ("linf", "l2") if any(r["norm"] == n for r in result.rows)]
    assert len(parts) == len(norms)
    for part, norm in zip(parts, norms):
        attacked = [r for r in result.rows if r["epsilon"] > 0 and r["threat_model"] != "control" and r["norm"] == norm]
        worst = max(attacked, key=lambda r: (r["drop"], -r["epsilon"]))
        assert part.startswith(f"worst {'L∞' if norm == 'linf' else 'L2'}: {worst['model']} {worst['threat_model']} ")
        assert f"accuracy {fmt(worst['clean_rca'])} -> {fmt(worst['adv_rca'])} (drop {fmt(worst['drop'])})" in part
    assert line in report["md"].read_text() and line in report["html"].read_text().replace("-&gt;", "->")


def test_checks_and_provenance_are_shown(report, result):
    md = report["md"].read_text()
    tables = md_tables(md)
    outcomes = {row[0]: row[1] for row in tables["Sanity checks"][1:]}
    assert outcomes == {c["name"]: "passed" if c["passed"] else "FAILED" for c in result.checks}
    prov = dict(tables["Provenance"][1:])
    assert prov["versions.torch"] == result.environment["versions"]["torch"]
    assert prov["test_data_hash"] == result.provenance["test_data_hash"]
    for name, digest in result.provenance["model_hashes"].items():
        assert prov[f"model_hashes.{name}"] == digest
    assert prov["seeds"] == "0"
    for f in FIGURES:
        assert f"figures/{f}.png" in md and r"\includegraphics" in report["tex"].read_text()
        assert f"figures/{f}.pdf" in report["tex"].read_text()


def test_html_is_self_contained(report):
    text = report["html"].read_text()
    assert text.count('src="data:image/png;base64,') == len(FIGURES)
    assert "<style>" in text and not re.search(r'(src|href)="(https?:|file:|figures/)', text)


def test_rerender_reads_only_the_results_file(tmp_path):
    """A tampered number shows up as is, and rendering never imports attacks, foolbox, torch or pyplot."""
    d = json.loads(RESULTS.read_text())
    row = next(r for r in d["rows"] if r["attack"] == "linf_pgd" and r["epsilon"] > 0)
    row["adv_rca"] = 0.4242
    row["drop"] = row["clean_rca"] - 0.4242  # consistent with itself: a row whose drop contradicts it is refused
    d["examples"] = []  # fewer figures: faster
    for r in d["rows"]:  # per-band SNR, so the band table (which names the bands' edges) is rendered too
        if r["epsilon"] > 0 and r["threat_model"] != "control":
            r.update(snr_delta_db=21.0, snr_alpha_db=24.0)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(d))
    code = ("import sys; from eegrobust.harness.report import write_report; "
            f"write_report({str(path)!r}, {str(tmp_path / 'out')!r}, 'md,html'); "
            "bad = [m for m in ('eegrobust.attacks', 'foolbox', 'torch', 'eegrobust.models', 'matplotlib.pyplot') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = md_tables((tmp_path / "out" / "report.md").read_text())
    cells = by_cell(md["White-box, L∞"][0], md["White-box, L∞"][1:])
    assert cells[(row["model"], "", "linf_pgd", f"{row['epsilon']:g}")]["adv RCA"] == "0.424"
    assert "delta 1-4 Hz" in (tmp_path / "out" / "report.md").read_text()


# -- bad input -----------------------------------------------------------------------------------------------
def test_unknown_format_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"format must be one of .* got 'mdx'\. Did you mean 'md'\?"):
        write_report(RESULTS, tmp_path, formats="html,mdx")
    with pytest.raises(ConfigError, match="at least one"):
        write_report(RESULTS, tmp_path, formats="")
    assert not list(tmp_path.iterdir()), "nothing is written before the input is checked"


def test_output_folder_that_is_a_file(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("x")
    with pytest.raises(ConfigError, match=re.escape(str(target))):
        write_report(RESULTS, target)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(format="someone-elses-results"), "not an eegrobust results file"),
    (lambda d: d.update(format_version=99), "format_version 99"),
    (lambda d: d.pop("checks"), r"lacks the field\(s\) \['checks'\]"),
    (lambda d: d["rows"][3].pop("adv_rca"), r"row 3 .*lacks the field\(s\) \['adv_rca'\]"),
    (lambda d: d.update(rows=[]), "no rows"),
], ids=["foreign", "other-version", "missing-field", "row-missing-column", "no-rows"])
def test_bad_results_file(tmp_path, change, match):
    d = json.loads(RESULTS.read_text())
    change(d)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(d))
    with pytest.raises(DataError, match=match):
        write_report(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_results_file_and_wrong_type(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        write_report(tmp_path / "nope.json", tmp_path)
    with pytest.raises(TypeError, match="result must be a SuiteResult"):
        write_report({"rows": []}, tmp_path)


def test_tex_escape():
    assert tex_escape("linf_pgd & 5% #1 {x} ~^ $\\") == (r"linf\_pgd \& 5\% \#1 \{x\} \textasciitilde{}"
                                                        r"\textasciicircum{} \$\textbackslash{}")
    assert tex_escape("ε=0.1, L∞ (µV), a -> b") == r"$\varepsilon$=0.1, L$\infty$ (\textmu{}V), a $\rightarrow$ b"


# -- real tools: pdflatex and a headless browser ---------------------------------------------------------------
def _require(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    msg = f"{names[0]} is not installed (.ci/run installs Debian's chromium and texlive-latex-recommended)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def test_latex_compiles_with_pdflatex(report, tmp_path):
    pdflatex = _require("pdflatex")
    work = tmp_path / "tex"
    shutil.copytree(report["tex"].parent, work)
    text = (work / "report.tex").read_text()
    # one per threat model, the transfer matrix, and clean, worst case, checks, provenance
    assert text.count(r"\begin{longtable}") == len(TITLES) + 1 + 4
    assert r"\usepackage{booktabs}" in text and r"\toprule" in text and r"\bottomrule" in text
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=work,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (work / "report.pdf").read_bytes()[:4] == b"%PDF"
    log = (work / "report.log").read_text(errors="replace")
    assert "LaTeX Error" not in log and "Missing character" not in log


_PROBE = """<script>window.addEventListener('load', function () {
var imgs = Array.prototype.slice.call(document.images);
document.body.setAttribute('data-probe', JSON.stringify({tables: document.querySelectorAll('table').length,
  rows: document.querySelectorAll('tbody tr').length, images: imgs.length,
  loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length}));
});</script>"""


def _chromium(browser, tmp_path, *args):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000", *args]
    env = {**os.environ, "HOME": str(tmp_path)}  # chromium writes caches under HOME; keep them in tmp_path
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=tmp_path, env=env)


def browser_probe(page: str, script: str, tmp_path) -> dict:
    """Open a copy of ``page`` with ``script`` in headless chromium; return what the script recorded.

    The page itself carries no script: the copy gets a probe that writes JSON into body[data-probe]."""
    browser = _require("chromium", "chromium-browser", "google-chrome")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", script + "</body>"))
    dom = _chromium(browser, tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    found = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_html_renders_in_headless_chromium(report, tmp_path):
    import matplotlib.image

    seen = browser_probe(report["html"].read_text(), _PROBE, tmp_path)
    n_tables = len(html_tables(report["html"].read_text()))
    assert seen == {"tables": n_tables, "rows": seen["rows"], "images": len(FIGURES), "loaded": len(FIGURES)}
    assert seen["rows"] > len(SuiteResult.from_json(RESULTS).rows)

    shot = tmp_path / "screenshot.png"
    browser = _require("chromium", "chromium-browser", "google-chrome")
    proc = _chromium(browser, tmp_path, f"--screenshot={shot}", report["html"].as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels[10:60].mean() < 0.35, "the dark header (inline CSS) was not drawn"
    assert pixels[300:].std() > 0.05, "the page body looks blank"


def test_means_over_folds_and_seeds_are_not_called_seeds():
    """One subject, 2 folds x 2 seeds: "mean of 4 units (folds x seeds)", not "mean of 4 seeds" (2 seeds ran)."""
    from eegrobust.harness import report

    base = {"model": "eegnet", "threat_model": "white_box", "attack": "fgsm", "substitute": "", "epsilon": 0.1,
            "subject": "1", "session": "0", "n_trials": 10, "adv_rca": 0.5, "clean_rca": 0.9}
    rows = [dict(base, fold=f, train_seed=s) for f in ("1", "2") for s in (0, 1)]
    for r in rows:
        r.update({c: r.get(c, 0.0) for c in report._NUMBERS})
    (v,) = report.aggregate(rows).values()
    assert report._over(v) == "mean of 4 units (folds x seeds)"
    (v,) = report.aggregate([dict(r, fold="official") for r in rows[:2]]).values()
    assert report._over(v) == "mean of 2 seeds"


def test_an_l2_only_result_draws_no_empty_linf_figures(result, tmp_path):
    """The single-attack figures plot L-inf attacks; an L2-only audit drew them with empty panels (and leaked
    matplotlib's 'No artists with labels' warning)."""
    import warnings

    from eegrobust.harness import figures
    from eegrobust.harness.results import SuiteResult

    rows = [dict(r, norm="l2") for r in result.rows if r["threat_model"] == "white_box"]
    l2 = SuiteResult(rows=rows, config=result.config, provenance=result.provenance, environment=result.environment)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = {f["name"] for f in figures.draw_all(l2, tmp_path / "figs")}
    assert not drawn & {"accuracy_epsilon", "accuracy_snr"}
    assert {"accuracy_epsilon", "accuracy_snr"} <= {f["name"] for f in figures.draw_all(result, tmp_path / "all")}


def test_output_folder_that_is_a_dangling_link(tmp_path):
    """A link to a folder that does not exist: said as such (it was 'a part of its path is a file')."""
    from eegrobust.harness.report import _out_dir

    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere" / "zz")
    with pytest.raises(ConfigError, match=r"is a link to .*nowhere/zz', which does not exist"):
        _out_dir(link)
