"""Main-text material for a paper, from a results file alone: compact tables, LaTeX fragments, a methods paragraph.

**Compact tables.** One per threat model and norm: L-inf and L2 attacks never share a table, a cell or a worst
case. Rows are models (x training arm when there are several), columns the budgets. A cell is the per-trial worst
case over that threat model's attacks of that norm (AutoAttack's robust accuracy, `analysis.worst_case`), as the
mean over the evaluation units (folds x seeds) of one subject, or over the subjects (each subject's mean over its
units, as `summary.csv`) when there are several, with its sd (ddof=1) when there is more than one, and a 95 %
confidence interval: Clopper-Pearson over the trials for one unit; a t-interval over units for one subject with
several folds or seeds; a t-interval over subjects for several subjects. The attack that was the worst most often is named under each cell; clean accuracy appears once per row.

**LaTeX fragments** are ``table`` (one column wide) or ``table*`` (both columns) floats with booktabs rules and
siunitx ``S`` columns, meant for ``\\input`` into a one- or two-column paper (``\\usepackage{booktabs,siunitx}``);
no ``longtable``, no preamble.

**Methods paragraph**: threat models, budget definition and unit, grid, attacks with their parameters, trials,
seeds, subjects and versions, in Markdown and LaTeX, ready to paste.

Like `harness.report`, nothing here imports torch or re-runs an attack.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from . import analysis
from .results import SuiteResult
from .tables import tex_escape

__all__ = ["CompactTable", "Material", "Stat", "compact_tables", "fragment", "material", "methods_paragraph",
           "paired_tests", "per_class_table", "tables_frame", "write_paper"]

THREAT_ORDER = ("white_box", "gray_box", "black_box")
THREAT_NAMES = {"white_box": "white-box", "gray_box": "gray-box (transfer)", "black_box": "black-box"}
NORM_NAMES = {"linf": "L∞", "l2": "L2"}
NORM_TEX = {"linf": r"$L_\infty$", "l2": r"$L_2$"}
MODEL_NAMES = {"eegnet": "EEGNet", "deep4": "Deep4Net", "shallow": "ShallowFBCSPNet"}
#: Short attack names for the second line of a cell (a legend in the caption spells out those used).
ATTACK_SHORT = {
    "fgsm": ("FGSM", "FGSM"), "ufgsm": ("UFGSM", "unsupervised FGSM"), "linf_pgd": ("PGD", "PGD"),
    "l2_pgd": ("PGD", "L2 PGD"), "apgd_ce": ("APGD", "APGD-CE"), "apgd_dlr": ("APGD-T", "APGD-DLR/targeted"),
    "l2_apgd_ce": ("APGD", "L2 APGD-CE"), "l2_apgd_dlr": ("APGD-T", "L2 APGD-DLR/targeted"),
    "autoattack": ("AA", "AutoAttack"), "fmn": ("FMN", "fast minimum-norm"), "deepfool": ("DF", "DeepFool"),
    "cw_l2": ("CW", "Carlini-Wagner L2"), "band_pgd": ("bPGD", "band-limited PGD"),
    "uap": ("UAP", "universal perturbation"), "simba": ("SimBA", "SimBA"), "square": ("Sq", "Square"),
    "rays": ("RayS", "RayS"), "hopskipjump": ("HSJ", "HopSkipJump"),
    "substitute_linf_pgd": ("Sub", "Jacobian substitute + PGD"),
    "substitute_fgsm": ("Sub", "Jacobian substitute + FGSM"),
}
MODEL_SHORT = {"eegnet": "E", "deep4": "D", "shallow": "S"}
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Stat:
    """One table cell: a mean over units with its spread and a 95 % interval."""

    mean: float
    sd: float | None  # ddof=1; None for one unit
    n: int  # units (folds x seeds) of one subject, or subjects when there are several
    ci_low: float
    ci_high: float
    ci_method: str
    n_trials: int  # trials per unit (the smallest when units differ)


@dataclass
class CompactTable:
    key: str
    threat_model: str
    norm: str
    epsilons: list
    #: per row: {"model", "arm", "label", "clean": Stat, "cells": {eps: Stat}, "best": {eps: attack label}}
    rows: list = field(default_factory=list)
    n_units: int = 1
    n_subjects: int = 1
    unit: str = "rel"
    ci_methods: tuple = ()
    attack_sets: dict = field(default_factory=dict)  # epsilon -> attacks evaluated there

    @property
    def title(self) -> str:
        return f"Robust accuracy, {THREAT_NAMES.get(self.threat_model, self.threat_model)}, {NORM_NAMES[self.norm]}"


# -- statistics ------------------------------------------------------------------------------------------------
def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials."""
    if n <= 0:
        return math.nan, math.nan
    a = 1 - confidence
    low = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def _stat(values: pd.Series, n_trials: pd.Series, subjects: pd.Series) -> Stat:
    """Mean, sd and 95 % interval of one cell's units. One unit: Clopper-Pearson over its trials. One subject with
    several folds or seeds: mean, sd and t-interval over the units. Several subjects: each subject counts once (its
    mean over its units), then mean, sd and t-interval over the subjects, as `summary.csv` (`analysis.aggregate`);
    a percentile bootstrap over 2-5 subjects covers far less than 95 %, so none is used."""
    v = values.to_numpy(dtype=float)
    trials = int(n_trials.min())
    if len(v) == 1:
        low, high = clopper_pearson(int(round(v[0] * trials)), trials)
        return Stat(float(v[0]), None, 1, low, high, "Clopper-Pearson over trials", trials)
    per_subject = pd.Series(v, index=subjects.to_numpy()).groupby(level=0).mean().to_numpy()
    if len(per_subject) > 1:
        v, method = per_subject, "t-interval over subjects"
    else:
        method = "t-interval over units"
    n, mean, sd = len(v), float(np.mean(v)), float(np.std(v, ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n))
    return Stat(mean, sd, n, max(mean - half, 0.0), min(mean + half, 1.0), method, trials)


# -- the tables ------------------------------------------------------------------------------------------------
def _outcomes_frame(result: SuiteResult) -> pd.DataFrame | None:
    if not result.outcomes:
        return None
    frame = result.outcomes_frame()
    return frame[frame["epsilon"] > 0]


def _short(attack_label: str) -> str:
    """'transfer_linf_pgd<-deep4' -> 'PGD/D'; 'linf_pgd' -> 'PGD'."""
    attack, _, sub = attack_label.partition("<-")
    base = attack.removeprefix("transfer_")
    short = ATTACK_SHORT.get(base, (base, base))[0]
    return f"{short}/{MODEL_SHORT.get(sub, sub)}" if sub else short


def model_label(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def compact_tables(result) -> list[CompactTable]:
    """The compact tables of a results file (empty when it holds no per-trial outcomes, i.e. format 1)."""
    result = result if isinstance(result, SuiteResult) else SuiteResult.from_json(result)
    frame = _outcomes_frame(result)
    if frame is None or frame.empty:
        return []
    unit = result.config.get("unit", "rel") if isinstance(result.config, dict) else "rel"
    arms = sorted(frame["arm"].dropna().unique())
    model_order = {m: i for i, m in enumerate(dict.fromkeys(frame["model"]))}
    tables = []
    for threat in THREAT_ORDER:
        if not (frame["threat_model"] == threat).any():
            continue
        wc = analysis.worst_case(frame, threat_models=(threat,))
        wc = wc[wc["n_trials"] > 0]
        for norm in [n for n in ("linf", "l2") if (wc["norm"] == n).any()]:
            g = wc[wc["norm"] == norm]
            eps = sorted(g["epsilon"].unique())
            t = CompactTable(f"{threat}-{norm}", threat, norm, [float(e) for e in eps], unit=unit)
            per_row = [k for k in analysis.UNIT_KEYS if k not in ("model", "arm")]
            units = g.groupby(["model", "arm"], dropna=False)[per_row].apply(lambda d: len(d.drop_duplicates()))
            t.n_units, t.n_subjects = int(units.max()), int(g["subject"].nunique())
            t.attack_sets = {float(e): sorted(set(a.split(","))) for e, a in
                             g.groupby("epsilon")["attacks"].agg(lambda v: ",".join(sorted(set(v)))).items()}
            methods = set()
            for (model, arm), gm in sorted(g.groupby(["model", "arm"], dropna=False),
                                           key=lambda kv: (model_order.get(kv[0][0], 99), str(kv[0][1]))):
                first = gm[gm["epsilon"] == gm["epsilon"].min()]
                row = {"model": model, "arm": arm,
                       "label": model_label(model) + (f" ({arm})" if len(arms) > 1 else ""),
                       "clean": _stat(first["clean_rca"], first["n_trials"], first["subject"]), "cells": {}, "best": {}}
                for e, ge in gm.groupby("epsilon"):
                    row["cells"][float(e)] = s = _stat(ge["robust_rca"], ge["n_trials"], ge["subject"])
                    methods.add(s.ci_method)
                    row["best"][float(e)] = Counter(ge["worst_attack"]).most_common(1)[0][0]
                t.rows.append(row)
            t.ci_methods = tuple(sorted(methods))
            tables.append(t)
    return tables


def tables_frame(tables) -> pd.DataFrame:
    """Every cell of the compact tables as a long table (the CSV next to the fragments), CIs included."""
    out = []
    for t in tables:
        for row in t.rows:
            for eps, s in [(0.0, row["clean"]), *row["cells"].items()]:
                out.append({"table": t.key, "threat_model": t.threat_model, "norm": t.norm, "model": row["model"],
                            "arm": row["arm"], "epsilon": eps, "unit": t.unit, "mean": s.mean, "sd": s.sd, "n": s.n,
                            "ci_low": s.ci_low, "ci_high": s.ci_high, "ci_method": s.ci_method,
                            "n_trials": s.n_trials, "worst_attack": row["best"].get(eps, "") if eps else "clean"})
    return pd.DataFrame(out)


def _n_text(t: CompactTable) -> str:
    if t.n_units == 1:
        return "n = 1 evaluation (one subject, one fold, one seed): no spread across units"
    if t.n_subjects > 1:
        return (f"mean ± sd (ddof = 1) over n = {t.n_subjects} subjects (each subject's mean over its folds and "
                f"seeds; up to {t.n_units} units)")
    return f"mean ± sd (ddof = 1) over n = {t.n_units} units (folds x seeds of one subject)"


def _trials_text(t: CompactTable) -> str:
    trials = sorted({s.n_trials for row in t.rows for s in row["cells"].values()})
    return "/".join(map(str, trials))


def _eps_text(t: CompactTable) -> str:
    if t.unit == "uV":
        return "ε in µV"
    return ("ε relative to each channel's std (after removing each trial's mean)"
            + ("; the L2 radius is ε·sqrt(channels × samples) in those units" if t.norm == "l2" else ""))


def _legend(t: CompactTable) -> str:
    used = {}
    for row in t.rows:
        for label in row["best"].values():
            attack, _, sub = label.partition("<-")
            base = attack.removeprefix("transfer_")
            short, long = ATTACK_SHORT.get(base, (base, base))
            if short != long:
                used[short] = long
            if sub:
                used[MODEL_SHORT.get(sub, sub)] = f"crafted on {model_label(sub)}"
    return "; ".join(f"{k}: {v}" for k, v in sorted(used.items()))


def _coverage_note(t: CompactTable) -> str:
    """Which attacks ran only at some budgets (a worst case over fewer attacks can rise with epsilon)."""
    if len({tuple(v) for v in t.attack_sets.values()}) <= 1:
        return ""
    every = set.intersection(*(set(v) for v in t.attack_sets.values()))
    partial = {}
    for e, attacks in t.attack_sets.items():
        for a in set(attacks) - every:
            partial.setdefault(a, []).append(e)
    text = "; ".join(f"{_short(a)} only at ε {', '.join(f'{e:g}' for e in sorted(es))}" for a, es in sorted(partial.items()))
    return f" Not every attack ran at every budget ({text}), so the worst case may rise between budgets."


def caption(t: CompactTable) -> str:
    """The caption without the title: what a cell is, over which trials and units, and the legend."""
    ci = ", ".join(t.ci_methods)
    return (f"per-trial worst case over the {THREAT_NAMES.get(t.threat_model, t.threat_model)} "
            f"{NORM_NAMES[t.norm]} attacks (a trial counts as robust only if every attack left it correct), on "
            f"{_trials_text(t)} test trials; {_n_text(t)}; 95 % CIs ({ci}) in main_tables.csv. {_eps_text(t)}. "
            f"Second line: the attack that was worst most often (ties: the first by name)"
            f"{f'; {_legend(t)}' if _legend(t) else ''}."
            f"{_coverage_note(t)}")


# -- rendering -------------------------------------------------------------------------------------------------
def _num(s: Stat) -> str:
    return f"{s.mean:.3f}" if s.sd is None else f"{s.mean:.3f} ± {s.sd:.3f}"


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def markdown(t: CompactTable) -> str:
    head = ["model", "clean"] + [f"ε={e:g}" for e in t.epsilons]
    lines = [f"**{t.title}.** {_upper(caption(t))}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|"]
    for row in t.rows:
        cells = [_num(row["cells"][e]) if e in row["cells"] else "–" for e in t.epsilons]
        lines.append("| " + " | ".join([row["label"], _num(row["clean"]), *cells]) + " |")
        best = [f"*{_short(row['best'][e])}*" if e in row["best"] else "" for e in t.epsilons]
        lines.append("| " + " | ".join(["", "", *best]) + " |")
    return "\n".join(lines) + "\n"


def _tex_num(s: Stat) -> str:
    if s.sd is None:
        return f"{s.mean:.3f}"
    return f"{s.mean:.3f}({int(round(s.sd * 1000))})"  # siunitx compact uncertainty, printed as ± sd


#: One column of a two-column journal page (IEEE: 3.5 in = 252 pt), with a margin for rules and rounding.
COLUMN_PT = 236.0


def _width_pt(t: CompactTable) -> float:
    """Estimated width of the tabular at footnotesize (cmr8: digits 4.25 pt; scriptsize labels 3.9 pt per char)."""
    sd = any(s.sd is not None for r in t.rows for s in [r["clean"], *r["cells"].values()])
    number = (5 + (5 if sd else 0)) * 4.25 + (6 if sd else 0)
    labels = [len(_short(b)) * 3.9 for r in t.rows for b in r["best"].values()] or [0.0]
    column = max(number, max(labels)) + 2 * TABCOLSEP_PT
    first = max([len(r["label"]) * 4.4 for r in t.rows] + [22.0]) + TABCOLSEP_PT
    return first + number + 2 * TABCOLSEP_PT + len(t.epsilons) * column


TABCOLSEP_PT = 2.5


def _wide(t: CompactTable) -> bool:
    """Does the table need both columns of a two-column paper?"""
    return _width_pt(t) > COLUMN_PT


def fragment(t: CompactTable, *, label_prefix: str = "tab:eegrobust-") -> str:
    """A ``table`` / ``table*`` float for ``\\input``: booktabs, siunitx S columns, no preamble."""
    env = "table*" if _wide(t) else "table"
    sd = any(s.sd is not None for r in t.rows for s in [r["clean"], *r["cells"].values()])
    fmt = "table-format=1.3(3), uncertainty-mode=separate" if sd else "table-format=1.3"
    cols = "@{}l" + f" S[{fmt}]" * (len(t.epsilons) + 1) + "@{}"
    n = len(t.epsilons)
    lines = [f"% eegrobust compact table {t.key}; needs \\usepackage{{booktabs,siunitx}}",
             f"\\begin{{{env}}}[tbp]", r"\centering", r"\footnotesize", f"\\setlength{{\\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}",
             f"\\caption{{{tex_escape(t.title + ': ' + caption(t))}}}", f"\\label{{{label_prefix}{t.key}}}",
             f"\\begin{{tabular}}{{{cols}}}", r"\toprule",
             f"{{Model}} & {{Clean}} & \\multicolumn{{{n}}}{{c}}{{Robust accuracy at $\\epsilon$}} \\\\",
             f"\\cmidrule(l){{3-{n + 2}}}",
             " & & " + " & ".join(f"{{{e:g}}}" for e in t.epsilons) + r" \\", r"\midrule"]
    for row in t.rows:
        cells = [_tex_num(row["cells"][e]) if e in row["cells"] else "{--}" for e in t.epsilons]
        lines.append(" & ".join([tex_escape(row["label"]), _tex_num(row["clean"]), *cells]) + r" \\")
        best = [f"{{\\scriptsize {tex_escape(_short(row['best'][e]))}}}" if e in row["best"] else "{}"
                for e in t.epsilons]
        lines.append(" & {} & " + " & ".join(best) + r" \\[2pt]")
    lines += [r"\bottomrule", r"\end{tabular}", f"\\end{{{env}}}", ""]
    return "\n".join(lines)


# -- the methods paragraph -------------------------------------------------------------------------------------
def _attack_reprs(result: SuiteResult) -> dict:
    """Each attack's parameters as run: every distinct repr (a transfer attack has one per surrogate)."""
    seen = {}
    for r in result.rows:
        rep = (r.get("info") or {}).get("attack_repr")
        if rep:
            seen.setdefault(r["attack"], {})[rep] = None
    return {a: ", ".join(reps) for a, reps in seen.items()}


def methods_paragraph(result, *, tex: bool = False) -> str:
    """A paragraph that states what was measured and how, from the results file alone."""
    result = result if isinstance(result, SuiteResult) else SuiteResult.from_json(result)
    cfg = result.config if isinstance(result.config, dict) else {}
    prov, env = result.provenance or {}, result.environment or {}
    rows = result.rows
    models = list(dict.fromkeys(r["model"] for r in rows))
    threats = [t for t in THREAT_ORDER if any(r["threat_model"] == t for r in rows)]
    eps = sorted({r["epsilon"] for r in rows if r["epsilon"] > 0})
    seeds = sorted({r["attack_seed"] for r in rows if r.get("attack_seed") is not None})
    subjects = sorted({str(r["subject"]) for r in rows})
    n_test = prov.get("n_test_trials") or max((r["n_trials"] for r in rows), default=0)
    unit = cfg.get("unit", "rel")
    budget = ("ε is a fraction of each channel's standard deviation over trials × time of the clean evaluation "
              "trials after removing each trial's mean on that channel (an L∞ bound on every sample, in the space "
              "the network sees, since every model standardises its input per channel first); L2 attacks get the "
              "radius of the same energy, ε·sqrt(channels × samples)" if unit == "rel" else
              "ε is an absolute bound in µV on every sample (L∞); L2 attacks get ε·sqrt(channels × samples) µV")
    names = {"white_box": "white-box (gradients of the victim)",
             "gray_box": "gray-box (attacks crafted on a substitute of another architecture trained on the victim's "
                         "training data, then transferred)",
             "black_box": "black-box (label or score queries only)"}
    reprs = _attack_reprs(result)
    per_threat = []
    for t in threats:
        attacks = list(dict.fromkeys(r["attack"] for r in rows if r["threat_model"] == t))
        described = [reprs.get(a, a) for a in attacks]
        per_threat.append(f"{names[t]}: {', '.join(described)}")
    pgd = cfg.get("pgd_steps")
    queries = cfg.get("max_queries")
    qeps = cfg.get("query_epsilons")
    parts = [
        f"We evaluated {', '.join(model_label(m) for m in models)} on {n_test} test trials "
        f"({prov.get('dataset', rows[0]['dataset'] if rows else '')}, protocol {prov.get('protocol', 'n/a')}; "
        f"{len(subjects)} subject{'s' * (len(subjects) > 1)}; {len(seeds)} attack seed{'s' * (len(seeds) > 1)}: "
        f"{', '.join(map(str, seeds))}) with eegrobust {env.get('versions', {}).get('eegrobust', '?')}.",
        f"Budgets: {budget}; grid {', '.join(f'{e:g}' for e in eps)}.",
        "Threat models and attacks (with their parameters): " + "; ".join(per_threat) + ".",
    ]
    ran = {r["attack"] for r in rows}
    white_pgd = bool(ran & {"linf_pgd", "l2_pgd"})
    transfer_pgd = any(a.startswith("transfer_") and a.endswith("_pgd") for a in ran)
    if pgd and (white_pgd or transfer_pgd):
        what = [f"white-box PGD ran {pgd} steps of size 2.5·ε/steps from a uniform random start"] if white_pgd else []
        if transfer_pgd:
            what.append(f"transferred PGD {cfg.get('transfer_steps')} steps on the substitute")
        parts.append(_upper("; ".join(what)) + ".")
    if "black_box" in threats:
        query_attacks = sorted(ran & {"square", "simba", "hopskipjump", "rays"})
        at = f" at ε {', '.join(f'{e:g}' for e in qeps)}" if qeps else ""
        limit = (f"Query attacks ({', '.join(query_attacks)}) had at most {queries} queries per trial{at}; "
                 if queries and query_attacks else "")
        parts.append(f"{limit}black-box attacks were evaluated on the {prov.get('n_black_box_eval_trials', 'n/a')} "
                     f"test trials outside the attacker's seed set of {prov.get('n_black_box_seed_trials', 'n/a')}.")
    parts += [
        "Following AutoAttack, each attack ran on the trials the model classified correctly, robust accuracy counts a "
        "trial only if it is correct before and after, and the worst case is taken per trial over the attacks of "
        "one threat model and one norm; L∞ and L2 attacks are never pooled.",
        "Numbers are means over the evaluation units (folds × seeds) of one subject, or over subjects (each "
        "subject's mean over its units) when there are several, with sd (ddof = 1) where n > 1; 95 % intervals are "
        "Clopper-Pearson over trials for a single unit, a t-interval over units for one subject, and a t-interval "
        "over subjects for several; paired comparisons use Wilcoxon signed-rank tests with Holm correction.",
        "Software: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v) + ".",
    ]
    text = " ".join(parts)
    if not tex:
        return text + "\n"
    # attack parameters are long tokens: let a narrow column break them after "_", "(" and ","
    body = tex_escape(text).replace(r"\_", r"\_\allowbreak{}").replace("(", r"(\allowbreak{}")
    return "{\\sloppy " + body + "\\par}\n"


def html_table(t: CompactTable) -> str:
    """The compact table as HTML (for the self-contained report)."""
    import html

    e = html.escape
    head = "".join(f"<th{' class=num' if i else ''}>{e(h)}</th>"
                   for i, h in enumerate(["model", "clean"] + [f"ε={x:g}" for x in t.epsilons]))
    body = []
    for row in t.rows:
        cells = "".join(f'<td class="num">{e(_num(row["cells"][x])) if x in row["cells"] else "–"}'
                        f'<br><small>{e(_short(row["best"][x])) if x in row["best"] else ""}</small></td>'
                        for x in t.epsilons)
        body.append(f'<tr><td class="label">{e(row["label"])}</td><td class="num">{e(_num(row["clean"]))}</td>'
                    f"{cells}</tr>")
    return (f"<h3>{e(t.title)}</h3>\n<div class=\"scroll\"><table id=\"main-{e(t.key)}\"><caption>"
            f"{e(_upper(caption(t)))}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody></table></div>")


TWO_COLUMN_EXAMPLE = r"""%% A two-column paper that \input's every fragment eegrobust wrote
%% (compile: pdflatex two_column_example.tex)
\documentclass[10pt,twocolumn]{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage[margin=1.8cm,columnsep=0.25in]{geometry}
\usepackage{booktabs}
\usepackage{siunitx}
\begin{document}
\section*{Methods}
\input{methods.tex}
%(inputs)s
\end{document}
"""


@dataclass
class Material:
    """What the main text needs, computed once per report: compact tables, paired tests, per-class recall."""

    tables: list
    tests: pd.DataFrame
    per_class: pd.DataFrame


def material(result) -> Material:
    result = result if isinstance(result, SuiteResult) else SuiteResult.from_json(result)
    return Material(compact_tables(result), paired_tests(result), per_class_table(result))


def write_paper(result, out_dir, mat: Material | None = None) -> dict:
    """Write the main-text material into ``out_dir``: main_tables.md/.csv, tables/*.tex, paired_tests.csv,
    per_class.csv, methods.md/.tex, and a two-column example document that inputs them all. ``mat``: the
    `material` of ``result`` when the caller already has it. Returns the paths by name."""
    from pathlib import Path

    from .results import atomic_write

    result = result if isinstance(result, SuiteResult) else SuiteResult.from_json(result)
    mat = mat or material(result)
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    tables, per_class, tests = mat.tables, mat.per_class, mat.tests
    paths = {"main_tables_md": out / "main_tables.md", "main_tables_csv": out / "main_tables.csv",
             "methods_md": out / "methods.md", "methods_tex": out / "methods.tex",
             "example_tex": out / "two_column_example.tex"}
    note = "" if tables else "No per-trial outcomes in this results file (format 1): no compact tables.\n"
    atomic_write(paths["main_tables_md"], note + "\n".join(markdown(t) for t in tables))
    atomic_write(paths["main_tables_csv"], tables_frame(tables).to_csv(index=False) if tables else "")
    paths["per_class_csv"] = out / "per_class.csv"
    atomic_write(paths["per_class_csv"], per_class.to_csv(index=False) if len(per_class) else "")
    paths["paired_tests_csv"] = out / "paired_tests.csv"
    atomic_write(paths["paired_tests_csv"], tests.to_csv(index=False) if len(tests) else "")
    atomic_write(paths["methods_md"], methods_paragraph(result))
    atomic_write(paths["methods_tex"], methods_paragraph(result, tex=True))
    inputs = []
    for t in tables:
        paths[f"table_{t.key}"] = out / "tables" / f"{t.key}.tex"
        atomic_write(paths[f"table_{t.key}"], fragment(t))
        inputs.append(f"\\input{{tables/{t.key}.tex}}")
    atomic_write(paths["example_tex"], TWO_COLUMN_EXAMPLE % {"inputs": "\n".join(inputs)})
    return paths


def paired_tests(result, *, min_pairs: int = 5) -> pd.DataFrame:
    """Paired Wilcoxon signed-rank tests of the per-trial worst case between models, across subjects, per threat
    model, norm and budget, Holm-corrected over the whole table (`analysis.paired_tests`). Empty without outcomes
    or with fewer than two models."""
    result = result if isinstance(result, SuiteResult) else SuiteResult.from_json(result)
    frame = _outcomes_frame(result)
    if frame is None or frame.empty or frame["model"].nunique() < 2:
        return pd.DataFrame()
    parts = []
    for threat in THREAT_ORDER:
        if (frame["threat_model"] == threat).any():
            wc = analysis.worst_case(frame, threat_models=(threat,))
            parts.append(wc[wc["n_trials"] > 0].assign(threat_model=threat))
    table = pd.concat(parts, ignore_index=True)
    return analysis.paired_tests(table, between="model", value="robust_rca", pair_on="subject",
                                 by=("threat_model", "norm", "epsilon"), min_pairs=min_pairs)


def paired_text(tests: pd.DataFrame) -> str:
    """One sentence on the paired tests (`paired_tests`): the significant differences, or why there are none."""
    if tests.empty:
        return "Paired tests between models: not applicable (one model, or no per-trial outcomes)."
    n = int(tests["n_pairs"].max())
    if tests["p"].isna().all():
        return (f"Paired tests between models (Wilcoxon signed-rank across subjects, Holm-corrected): not run, "
                f"{n} paired subject{'s' * (n != 1)} (at least 5 needed).")
    sig = tests[tests["significant"]]
    if sig.empty:
        return (f"Paired tests between models (Wilcoxon signed-rank across {n} subjects, Holm-corrected over "
                f"{len(tests)} tests): no difference significant at 0.05.")
    items = [f"{model_label(r.a)} vs {model_label(r.b)}, {THREAT_NAMES[r.threat_model]} {NORM_NAMES[r.norm]} "
             f"ε={r.epsilon:g}: mean difference {r.mean_diff:+.3f}, Holm p={r.p_holm:.3g}" for r in sig.itertuples()]
    return (f"Paired tests between models (Wilcoxon signed-rank across {n} subjects, Holm-corrected over "
            f"{len(tests)} tests), significant at 0.05: " + "; ".join(items) + ".")


def strongest_white_linf(result) -> tuple[float | None, dict]:
    """The budget nearest 0.1 and, per model, the white-box L-inf attack with the lowest accuracy there (the
    attack the confusion matrices and per-class recall show)."""
    rows = [r for r in result.rows if r["threat_model"] == "white_box" and r.get("norm", "linf") == "linf"
            and r["epsilon"] > 0]
    if not rows:
        return None, {}
    eps = min({r["epsilon"] for r in rows}, key=lambda e: (abs(e - 0.1), e))
    best = {}
    for r in rows:
        if r["epsilon"] == eps and (r["model"] not in best or r["adv_rca"] < best[r["model"]][1]):
            best[r["model"]] = (r["attack"], r["adv_rca"])
    return eps, {m: a for m, (a, _) in best.items()}


def selected_outcomes(result) -> pd.DataFrame | None:
    """Outcomes of `strongest_white_linf`'s attack per model at its budget (all units)."""
    frame = _outcomes_frame(result)
    eps, attacks = strongest_white_linf(result)
    if frame is None or eps is None:
        return None
    parts = [frame[(frame["model"] == m) & (frame["threat_model"] == "white_box") & (frame["attack"] == a)
                   & (frame["epsilon"] == eps)] for m, a in attacks.items()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else None


def per_class_table(result) -> pd.DataFrame:
    """Per-class recall, clean and under each model's strongest white-box L-inf attack at the budget nearest 0.1,
    pooled over units (trials of every subject, fold and seed)."""
    result = result if isinstance(result, SuiteResult) else SuiteResult.from_json(result)
    sel = selected_outcomes(result)
    if sel is None:
        return pd.DataFrame()
    out = analysis.per_class(sel, by=("model", "attack", "epsilon"))
    classes = (result.provenance or {}).get("classes") or []
    out["class_name"] = [classes[int(c)] if int(c) < len(classes) else str(c) for c in out["class"]]
    return out[["model", "attack", "epsilon", "class", "class_name", "n", "clean_recall", "adv_recall"]]


def per_class_markdown(table: pd.DataFrame) -> str:
    """`per_class_table` as a Markdown table with a lead-in line ("" when empty)."""
    if table.empty:
        return ""
    lines = [f"**Per-class recall**, clean and under each model's strongest white-box L∞ attack at ε = "
             f"{table['epsilon'].iloc[0]:g} (trials pooled over units):", "",
             "| model | attack | class | n | clean recall | attacked recall |", "|:---|:---|:---|---:|---:|---:|"]
    lines += [f"| {model_label(r.model)} | {r.attack} | {r.class_name} | {r.n} | {r.clean_recall:.3f} | "
              f"{r.adv_recall:.3f} |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"
