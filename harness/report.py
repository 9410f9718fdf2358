"""`write_report`: Markdown, self-contained HTML, LaTeX and CSV reports of a `SuiteResult`.

A report only reads a results file: every number in a table is a value of ``result.rows`` (the mean over seeds
when there are several), formatted by `harness.tables.fmt`, and the figures are drawn from the rows and the
stored example trials. Nothing here imports ``attacks`` or torch, so re-rendering never re-runs an attack.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template

from ..data._checks import ConfigError, DataError, check_option

from .results import COLUMNS, SuiteResult, atomic_write
from .tables import fmt, tex_escape

REPORT_FORMATS = ("md", "html", "tex", "csv")
TITLE = "EEG adversarial-robustness report"
_THREAT_TITLES = {"white_box": "White-box", "gray_box": "Gray-box (transfer from a substitute)",
                  "black_box": "Black-box", "control": "Control (random noise)"}
_THREAT_ORDER = ("white_box", "gray_box", "black_box", "control")
_NUMBERS = ("clean_rca", "clean_bca", "adv_rca", "adv_bca", "drop", "success_rate", "linf_uv", "linf_rel", "l2_uv",
            "snr_db", "median_min_norm", "queries_per_trial")
_COLUMNS = [("clean RCA", "clean_rca"), ("clean BCA", "clean_bca"), ("adv RCA", "adv_rca"), ("adv BCA", "adv_bca"),
            ("drop", "drop"), ("success", "success_rate"), ("L∞ (µV)", "linf_uv"), ("SNR (dB)", "snr_db")]
_OPTIONAL = [("median min norm", "median_min_norm"), ("queries/trial", "queries_per_trial")]


@dataclass
class Table:
    """One table, format-neutral: string cells are labels, numbers (or None) are formatted with `fmt`."""

    key: str
    title: str
    caption: str
    header: list
    rows: list
    n_labels: int = 1
    row_classes: list = field(default_factory=list)
    tex_spec: str | None = None


# -- reading and checking ------------------------------------------------------------------------------------
def check_formats(formats) -> tuple[str, ...]:
    """Normalise ``formats`` ("md,tex" or a sequence) and check each against `REPORT_FORMATS`."""
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",")]
    formats = list(formats)
    if not any(formats):
        raise ConfigError(f"format must name at least one of {sorted(REPORT_FORMATS)}, got none.")
    if any(not f for f in formats) or len(set(formats)) < len(formats):
        raise ConfigError(f"format lists an empty item or one twice ({','.join(map(str, formats))!r}); give each of "
                          f"{sorted(REPORT_FORMATS)} at most once, e.g. md,html.")
    formats = tuple(formats)
    if not formats:
        raise ConfigError(f"format must name at least one of {sorted(REPORT_FORMATS)}, got none.")
    for f in formats:
        check_option("format", f, REPORT_FORMATS)
    return formats


def _load(result) -> SuiteResult:
    where = "the results"
    if isinstance(result, (str, os.PathLike)):
        where, result = f"results file {str(result)!r}", SuiteResult.from_json(result)
    if not isinstance(result, SuiteResult):
        raise TypeError(f"result must be a SuiteResult or the path of a results.json, got {type(result).__name__}.")
    if not result.rows:
        raise DataError(f"{where} hold(s) no rows (did the suite finish?); there is nothing to report.")
    for i, row in enumerate(result.rows):
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise DataError(f"{where}: row {i} ({row.get('model')!r}/{row.get('attack')!r}) lacks the field(s) "
                            f"{missing}; it was not written by this eegrobust's run_suite.")
    return result


def _out_dir(path) -> Path:
    out = Path(path)
    for p in (out, out / "figures"):
        if p.exists() and not p.is_dir():
            raise ConfigError(f"report output folder {str(p)!r} is a file; give a folder (created if missing).")
        if p.is_symlink() and not p.exists():
            raise ConfigError(f"report output folder {str(p)!r} is a link to {os.readlink(p)!r}, which does not "
                              "exist; create its target or give another folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"cannot create the report output folder {str(out)!r}: a part of its path is a "
                          "file.") from None
    return out


# -- aggregation (means over seeds) --------------------------------------------------------------------------
def _mean(values):
    values = [v for v in values if v is not None]
    return values[0] if len(values) == 1 else (sum(values) / len(values) if values else None)


def _order(values) -> dict:
    return {v: i for i, v in enumerate(dict.fromkeys(values))}


def aggregate(rows) -> dict[tuple, dict]:
    """Rows averaged over seeds, keyed by (model, threat_model, attack, substitute, epsilon), in display order."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["threat_model"], r["attack"], r["substitute"] or "", r["epsilon"])].append(r)
    models, attacks = _order(r["model"] for r in rows), _order(r["attack"] for r in rows)
    subs = _order(r["substitute"] or "" for r in rows)
    threat = {t: i for i, t in enumerate(_THREAT_ORDER)}
    keys = sorted(groups, key=lambda k: (threat.get(k[1], 9), k[1], models[k[0]], attacks[k[2]], subs[k[3]], k[4]))
    return {k: {**{c: _mean([g[c] for g in groups[k]]) for c in _NUMBERS},
                "n_trials": groups[k][0]["n_trials"], "n_seeds": len(groups[k]),
                "n_subjects": len({g.get("subject") for g in groups[k]}),
                "n_folds": len({(g.get("subject"), g.get("session"), g.get("fold")) for g in groups[k]})} for k in keys}


def _over(v) -> str:
    """What a mean is taken over: "mean of 3 seeds", "mean of 4 units (folds x seeds)", "mean of 6 units over 3
    subjects (folds x seeds)"."""
    n, n_sub, n_folds = v["n_seeds"], v.get("n_subjects", 1), v.get("n_folds", 1)
    if n <= 1:
        return ""
    if n_sub > 1:
        return f"mean of {n} units over {n_sub} subjects (folds x seeds)"
    return f"mean of {n} units (folds x seeds)" if n_folds > 1 else f"mean of {n} seeds"


def _eps(value) -> str:
    return f"{value:g}"


def verdict(result) -> str:
    """One line naming the worst of each norm: the largest accuracy drop at a non-zero epsilon (ties: smallest
    epsilon), over single cells and, with per-trial outcomes, over the per-trial worst case of each threat model's
    attacks (named only when it drops further than every single cell). L-inf and L2 cells are judged apart: at the
    same epsilon an L2 attack may move single samples far beyond the L-inf budget, so one worst cell over both would
    compare different budgets."""
    res = _load(result)
    rows = res.rows
    agg = aggregate(rows)
    norm_of = {(r["model"], r["threat_model"], r["attack"], r["substitute"] or ""): r.get("norm", "linf") for r in rows}
    attacked = [(k, v) for k, v in agg.items() if k[4] > 0 and k[1] != "control" and v["drop"] is not None]
    if not attacked:
        return "no attacked cells (only epsilon 0 or control rows): nothing to judge"
    rank = {t: i for i, t in enumerate(_THREAT_ORDER)}
    combined = _combined_worst(res)
    parts = []
    for norm in ("linf", "l2"):
        cells = [(k, v) for k, v in attacked if norm_of.get(k[:4], "linf") == norm]
        if not cells:
            continue
        (model, threat, attack, sub, eps), v = max(cells, key=lambda kv: (kv[1]["drop"], -kv[0][4],
                                                                         -rank.get(kv[0][1], 9)))
        via = f" (substitute {sub})" if sub else ""
        seeds = f", {_over(v)}" if v["n_seeds"] > 1 else ""
        part = (f"worst {_NORM_NAMES[norm]}: {model} {threat} {attack}{via} eps={_eps(eps)}: accuracy "
                f"{fmt(v['clean_rca'])} -> {fmt(v['adv_rca'])} (drop {fmt(v['drop'])}{seeds})")
        w = combined.get(norm)
        if w is not None and w["drop"] > v["drop"] + 1e-9:
            units = f", mean of {w['n_units']} units" if w["n_units"] > 1 else ""
            part = (f"worst {_NORM_NAMES[norm]}: {w['model']} {w['threat_model']} per-trial worst case over "
                    f"{w['attacks'].replace(',', ', ')} eps={_eps(w['epsilon'])}: accuracy {fmt(w['clean_rca'])} -> "
                    f"{fmt(w['robust_rca'])} (drop {fmt(w['drop'])}{units})")
        parts.append(part)
    return "; ".join(parts)


def _combined_worst(result) -> dict:
    """Per norm, the per-trial worst case (of several attacks of one threat model) with the largest mean drop over
    evaluation units (ties: smallest epsilon); {} without per-trial outcomes."""
    if not result.outcomes:
        return {}
    from . import analysis

    wc = analysis.worst_case_by_threat(result.outcomes_frame())
    if not len(wc):
        return {}
    wc = wc[(wc["n_attacks"] > 1) & (wc["n_trials"] > 0)]
    best = {}
    for (model, _, threat, norm, eps), g in wc.groupby(["model", "arm", "threat_model", "norm", "epsilon"],
                                                         sort=True, dropna=False):  # model: arch+arm
        clean, robust = float(g["clean_rca"].mean()), float(g["robust_rca"].mean())
        w = {"model": model, "threat_model": threat, "epsilon": float(eps), "attacks": g["attacks"].iloc[0],
             "clean_rca": clean, "robust_rca": robust, "drop": clean - robust, "n_units": len(g)}
        if norm not in best or w["drop"] > best[norm]["drop"] + 1e-9:
            best[norm] = w
    return best


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _checks_summary(result) -> tuple[str, bool]:
    failed = [c["name"] for c in result.checks if not c.get("passed")]
    text = f"sanity checks: {len(result.checks) - len(failed)} of {len(result.checks)} passed"
    return text + (f"; FAILED: {'; '.join(failed)}" if failed else ""), not failed


# -- tables --------------------------------------------------------------------------------------------------
def _seed_note(agg) -> str:
    """What each number is over; n = 1 is said too (one subject, fold and seed: no spread to report)."""
    v = max(agg.values(), key=lambda v: v["n_seeds"])
    return f" {_upper_first(_over(v))}." if v["n_seeds"] > 1 else " n = 1 (one subject, fold and seed)."


def _value(column, value):
    """Query counts are counts: one decimal (a mean over trials), never '118.000'."""
    if column == "queries_per_trial" and isinstance(value, float):
        return f"{value:.1f}"
    return value


def threat_tables(rows) -> list[Table]:
    """One table per threat model (and per norm when it has both): clean vs adversarial RCA/BCA, perturbation size,
    SNR and queries per cell. L-inf and L2 rows never share a table: at the same ε they are different budgets."""
    agg, tables = aggregate(rows), []
    norm_of = {(r["model"], r["threat_model"], r["attack"], r["substitute"] or ""): r.get("norm", "linf") for r in rows}
    for threat in dict.fromkeys(k[1] for k in agg):
        in_threat = {k: v for k, v in agg.items() if k[1] == threat}
        norms = [n for n in ("linf", "l2") if any(norm_of.get(k[:4], "linf") == n for k in in_threat)]
        for norm in norms:
            cells = {k: v for k, v in in_threat.items() if norm_of.get(k[:4], "linf") == norm}
            split = len(norms) > 1
            key = f"{threat}-{norm}" if split else threat
            title = _THREAT_TITLES.get(threat, threat) + (f", {_NORM_NAMES[norm]}" if split else "")
            has_sub = any(k[3] for k in cells)
            extra = [(h, c) for h, c in _OPTIONAL if any(v[c] is not None for v in cells.values())]
            header = ["model"] + ["substitute"] * has_sub + ["attack", "ε"] + [h for h, _ in _COLUMNS + extra]
            body = [[k[0]] + [k[3]] * has_sub + [k[2], _eps(k[4])] + [_value(c, v[c]) for _, c in _COLUMNS + extra]
                    for k, v in cells.items()]
            trials = sorted({v["n_trials"] for v in cells.values()})
            unit = ("; ε is the L2 radius of the same energy as the L∞ budget, ε·sqrt(channels × samples)"
                    if norm == "l2" else "")
            caption = (f"{title} attacks on {'/'.join(map(str, trials))} test trials: raw (RCA) and balanced (BCA) "
                       "accuracy, clean and under attack; success = fooled among the trials correct before; L∞ and "
                       f"SNR of the perturbation actually applied{unit}." + _seed_note(agg))
            tables.append(Table(key, title, caption, header, body, 3 + has_sub))
    return tables


def transfer_epsilon(epsilons) -> float | None:
    """The budget of the transfer matrices: the largest epsilon <= 0.2, else the smallest above (0 excluded)."""
    eps = sorted(e for e in set(epsilons) if e > 0)
    if not eps:
        return None
    low = [e for e in eps if e <= 0.2]
    return low[-1] if low else eps[0]


def transfer_tables(rows) -> list[Table]:
    """Per gray-box attack a matrix: substitute (rows) x victim (columns) -> adversarial RCA at one epsilon."""
    gray = [r for r in rows if r["threat_model"] == "gray_box"]
    eps = transfer_epsilon(r["epsilon"] for r in gray)
    if eps is None:
        return []
    agg = aggregate(gray)
    victims = list(dict.fromkeys(r["model"] for r in rows))
    subs = list(dict.fromkeys(r["substitute"] for r in gray))
    tables = []
    for attack in dict.fromkeys(r["attack"] for r in gray):
        cell = {(k[3], k[0]): v for k, v in agg.items() if k[2] == attack and k[4] == eps}
        clean = {k[0]: v["clean_rca"] for k, v in agg.items() if k[2] == attack}
        body = [["(clean)"] + [clean.get(v) for v in victims]]
        body += [[s] + [cell[(s, v)]["adv_rca"] if (s, v) in cell else None for v in victims] for s in subs]
        caption = (f"Gray-box transfer of {attack} at ε = {_eps(eps)}: adversarial RCA of the victim (column) "
                   f"on examples crafted on the substitute (row); first row: the victim's clean RCA; '-': not "
                   f"run." + _seed_note(agg))
        tables.append(Table(f"transfer-{attack}", f"Transfer matrix: {attack}", caption,
                            ["substitute \\ victim"] + victims, body))
    return tables


def summary_tables(rows, outcomes=None) -> list[Table]:
    """Clean accuracy per model, and the worst case over attacks per model, threat model and epsilon."""
    agg = aggregate(rows)
    clean = {}
    for k, v in agg.items():  # the evaluation on the most trials (black-box uses a subset)
        if k[0] not in clean or v["n_trials"] > clean[k[0]]["n_trials"]:
            clean[k[0]] = v
    tables = [Table("clean", "Clean accuracy", "Accuracy of each model on the unperturbed test trials.",
                    ["model", "trials", "RCA", "BCA"],
                    [[m, v["n_trials"], v["clean_rca"], v["clean_bca"]] for m, v in clean.items()])]
    tables.append(worst_table(rows, outcomes))
    return tables


def worst_table(rows, outcomes=None) -> Table:
    """Worst case per model, threat model and norm, per epsilon: per trial (AutoAttack) when outcomes exist.

    A trial counts as robust only if every attack of that threat model and norm left it correct; L-inf and L2
    attacks are never pooled. Results files without per-trial outcomes (format 1) fall back to the lowest
    per-attack accuracy, an upper bound on the per-trial worst case, and the caption says so.
    """
    if outcomes:
        from . import analysis
        from .results import SuiteResult

        wc = analysis.worst_case_by_threat(SuiteResult(outcomes=outcomes).outcomes_frame())
        eps = sorted(wc["epsilon"].unique()) if len(wc) else []
        body = []
        for (model, threat, norm), g in (wc.groupby(["model", "threat_model", "norm"], sort=False) if len(wc) else []):
            means = g.groupby("epsilon")[["robust_rca", "clean_rca"]].mean()
            body.append([model, threat, _NORM_NAMES.get(norm, norm), float(means["clean_rca"].iloc[0])]
                        + [float(means.loc[e, "robust_rca"]) if e in means.index else None for e in eps])
        caption = ("Per-trial worst case (AutoAttack): a trial is robust only if it is correct under every attack of "
                   "the threat model and norm, on the trials all of them evaluated; L∞ and L2 are never pooled.")
    else:
        agg = aggregate(rows)
        eps = sorted({k[4] for k in agg if k[4] > 0})
        worst = {}
        norm_of = {(r["model"], r["threat_model"], r["attack"], r["substitute"] or ""): r["norm"] for r in rows}
        for (model, threat, attack, sub, e), v in agg.items():
            norm = norm_of[(model, threat, attack, sub)]
            if threat == "control":
                continue
            w = worst.setdefault((model, threat, norm), {"clean": v["clean_rca"]})
            if e > 0 and (e not in w or v["adv_rca"] < w[e]):
                w[e] = v["adv_rca"]
        body = [[m, t, _NORM_NAMES.get(n, n), w["clean"]] + [w.get(e) for e in eps] for (m, t, n), w in worst.items()]
        caption = ("Lowest per-attack adversarial RCA per threat model (no per-trial outcomes in this results file: "
                   "an upper bound on the per-trial worst case).")
    return Table("worst", "Worst case per threat model and norm", caption,
                 ["model", "threat model", "norm", "clean RCA"] + [f"ε={_eps(e)}" for e in eps], body, 3)


_NORM_NAMES = {"linf": "L∞", "l2": "L2"}


def checks_table(result) -> Table:
    body = [[c["name"], "passed" if c.get("passed") else "FAILED", c.get("detail", "")] for c in result.checks]
    classes = ["ok" if c.get("passed") else "fail" for c in result.checks]
    return Table("checks", "", "Signs that the evaluation itself went wrong (harness.checks).",
                 ["check", "outcome", "detail"], body, 3, classes, r"p{0.38\linewidth}lp{0.45\linewidth}")


def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        out.append([prefix, ", ".join(fmt(v) for v in value) if value else "none"])
    else:
        out.append([prefix, fmt(value)])


def provenance_table(result) -> Table:
    """Versions, platform, seeds, data and model hashes and the rest of ``provenance`` as key/value rows."""
    body = []
    _flatten("", {"seeds": result.config.get("seeds")}, body)
    _flatten("", result.environment, body)
    _flatten("", result.provenance, body)
    return Table("provenance", "", "Where the numbers come from (results file fields environment, config "
                 "and provenance).", ["field", "value"], body, 2, tex_spec=r"lp{0.6\linewidth}")


def _mean_sd(values) -> str:
    """Mean ± sd with ddof=1 (the sample sd), and n; one value has no spread and says so."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return f"{m:.3f} (n=1)"
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{m:.3f} ± {sd:.3f} (n={len(values)})"


def comparison_table(rows) -> tuple[list[str], list[list]]:
    """Header and rows: per model (arm), clean RCA and worst-case white-box RCA per epsilon, mean ± sd over seeds."""
    worst: dict = {}
    for r in rows:
        if r["threat_model"] == "white_box":
            key = (r["model"], r["epsilon"])
            seeds = worst.setdefault(key, {})
            seeds[r["seed"]] = min(seeds.get(r["seed"], 1.0), r["adv_rca"])
    eps = sorted({e for _, e in worst})
    models = list(dict.fromkeys(m for m, _ in worst))
    body = [[m] + [_mean_sd(list(worst[(m, e)].values())) if (m, e) in worst else "-" for e in eps] for m in models]
    return ["model"] + ["clean" if e == 0 else f"ε={_eps(e)}" for e in eps], body


def augmentation_tables(result) -> list[Table]:
    """For an augmentation comparison (``provenance["gan"]``): the GAN's quality gates per seed, and clean and
    worst-case white-box accuracy of every arm side by side."""
    gan = result.provenance.get("gan")
    if not gan:
        return []
    seeds = gan.get("seeds", {})
    names = list(dict.fromkeys(n for info in seeds.values() for n in info.get("gates", {})))
    body, classes = [], []
    for seed, info in seeds.items():
        state = "refused" if info.get("refused") else ("FORCED" if info.get("forced") else "accepted")
        gates = info.get("gates", {})
        body.append([str(seed), state] + [gates[n]["value"] if n in gates else None for n in names])
        classes.append("ok" if state == "accepted" else "fail")
    marks = next((info["gates"] for info in seeds.values() if info.get("gates")), {})
    header = ["seed", "augmentation"] + [f"{n} ({marks[n]['op']} {fmt(marks[n]['threshold'])})" for n in names]
    forced = any(info.get("forced") for info in seeds.values())
    tables = [Table("gan-gates", "EEG-GAN quality gates",
                    "Quality gates of each seed's generator on held-out real training trials; a failed gate refuses "
                    "augmentation" + (" unless forced: THIS RUN FORCED AUGMENTATION PAST A FAILED GATE (--force-gan)."
                                      if forced else "."), header, body, 2, classes)]
    header, body = comparison_table(result.rows)
    tables.append(Table("gan-comparison", "Augmentation: clean and adversarial accuracy side by side",
                        f"Accuracy (RCA) of each arm (model, model+gan, model+augment) on the real test trials, mean ± "
                        f"sd over seeds; per ε the worst white-box attack. {gan.get('ratio', '-')} synthetic or "
                        "augmented trials per real training trial.", header, body))
    return tables


def band_table(rows) -> list[Table]:
    """Where the perturbation's energy went: pooled SNR per EEG band at one budget, per model and attack."""
    from .results import BAND_COLUMNS

    attacked = [r for r in rows if r["epsilon"] > 0 and r["threat_model"] != "control"
                and any(r.get(c) is not None for c in BAND_COLUMNS)]
    eps = transfer_epsilon(r["epsilon"] for r in attacked)
    if eps is None:
        return []
    bands = [c for c in BAND_COLUMNS if any(r.get(c) is not None for r in attacked)]
    groups = defaultdict(list)
    for r in attacked:
        if r["epsilon"] == eps:
            groups[(r["model"], r["threat_model"], r["attack"], r["substitute"] or "", r["norm"])].append(r)
    body = [[m, t.replace("_", "-"), a + (f" <- {sub}" if sub else ""), _NORM_NAMES.get(n, n),
             _mean([g["snr_db"] for g in grp])] + [_mean([g.get(c) for g in grp]) for c in bands]
            for (m, t, a, sub, n), grp in groups.items()]
    from ..data.bands import BANDS  # not attacks.budget: a report never imports torch

    names = [c[4:-3] for c in bands]
    edges = ", ".join(f"{b} {BANDS[b][0]:g}-{BANDS[b][1]:g} Hz" for b in names)
    caption = (f"SNR (dB) of the perturbation at ε = {_eps(eps)}, over all attacked trials and per band ({edges}; gamma "
               "stops at the Nyquist frequency): 10 log10 of the demeaned signal's energy over the perturbation's in "
               "that band. Low values mark the bands the attack used.")
    return [Table("snr-bands", "SNR per frequency band", caption,
                  ["model", "threat", "attack", "norm", "SNR"] + names, body, 4)]


def query_tables(result) -> list[Table]:
    """Accuracy against queries per trial for every query attack (from the per-trial query counts)."""
    if not any("queries" in b for b in result.outcomes):
        return []
    from . import analysis

    curve = analysis.query_curve(result.outcomes_frame())
    if curve.empty:
        return []
    grid = sorted(curve["queries"].unique())
    means = curve.groupby(["model", "attack", "epsilon", "queries"], sort=False)["robust_rca"].mean()
    body = []
    for (model, attack, eps), g in means.groupby(level=[0, 1, 2], sort=False):
        row = dict(zip(g.index.get_level_values(3), g.to_numpy()))
        body.append([model, attack, _eps(eps)] + [row.get(q) for q in grid])
    caption = ("Black-box robust accuracy against the number of queries per trial: a trial counts as fooled once "
               "the attack's first query that flips its label has been spent; '-': beyond the attack's budget. "
               "Black-box trials exclude the attacker's seed set.")
    return [Table("queries", "Accuracy vs queries", caption, ["model", "attack", "ε"] + [f"{q:g}" for q in grid],
                  body, 3)]


#: Checks whose failure means an arm's robust accuracy is not a robustness claim (possible gradient masking).
ARM_VERIFY_CHECKS = ("PGD at least as strong as FGSM", "no gray/black-box attack beats white-box (gradient masking)",
                     "unbounded white-box attacks reach 0 % accuracy",
                     "minimal-norm curve and fixed-budget attacks agree (L-inf)",
                     "minimal-norm curve and fixed-budget attacks agree (L2)")


def _interval(values, n_trials) -> str:
    """Mean with a 95 % interval: t over units (ddof=1) for several, Clopper-Pearson over trials for one."""
    from scipy import stats

    m = sum(values) / len(values)
    if len(values) >= 2:
        sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        h = stats.t.ppf(0.975, len(values) - 1) * sd / len(values) ** 0.5
        return f"{m:.3f} [{max(m - h, 0):.3f}, {min(m + h, 1):.3f}]"
    k = round(m * n_trials)
    lo = stats.beta.ppf(0.025, k, n_trials - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(0.975, k + 1, n_trials - k) if k < n_trials else 1.0
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def arm_tables(result) -> list[Table]:
    """Clean against robust accuracy per training arm (defence), with 95 % intervals; an arm whose
    gradient-masking checks fail shows "not verified" instead of a robust accuracy."""
    from .checks import run_checks

    arms = list(dict.fromkeys(r.get("arm", "none") for r in result.rows))
    if arms == ["none"] or not result.outcomes:
        return []
    from . import analysis

    frame = result.outcomes_frame()
    frame = frame[(frame["epsilon"] > 0) & (frame["threat_model"] == "white_box") & (frame["norm"] == "linf")]
    if frame.empty:
        return []
    wc = analysis.worst_case(frame)
    eps = sorted(wc["epsilon"].unique())
    body, classes, unverified = [], [], []
    for model, arm in dict.fromkeys((r["model"], r.get("arm", "none")) for r in result.rows):  # plan order
        g = wc[(wc["model"] == model) & (wc["arm"] == arm)]
        if g.empty:
            continue
        rows = [r for r in result.rows if r["model"] == model and r.get("arm", "none") == arm]
        failed = [c["name"] for c in run_checks(rows, on_fail="ignore")
                  if c["name"] in ARM_VERIFY_CHECKS and not c["passed"]]
        unit = [k for k in analysis.UNIT_KEYS if k not in ("model", "arm")]  # one clean accuracy per unit
        clean = g.groupby(unit, dropna=False)["clean_rca"].first().tolist()
        n = int(g["n_trials"].max())
        cells = []
        for e in eps:
            ge = g[g["epsilon"] == e]
            cells.append("not verified" if failed else (_interval(ge["robust_rca"].tolist(), n) if len(ge) else "-"))
        body.append([model, arm, g["train_seed"].nunique(), _interval(clean, n)] + cells)
        classes.append("fail" if failed else "ok")
        if failed:
            unverified.append(f"{model}: {'; '.join(failed)}")
    caption = ("Each training arm (defence) against the same white-box L∞ attacks: clean accuracy and the per-trial "
               "worst case over every white-box L∞ attack of the study, mean over the evaluation units (training "
               "seeds x folds x subjects) with a 95 % interval (t over units; Clopper-Pearson over the test trials "
               "when there is one unit). A robust "
               "accuracy is reported only when the gradient-masking checks pass on that arm's rows"
               + (" — not verified: " + " | ".join(unverified) + "." if unverified else "; they passed for every arm."))
    return [Table("arms", "Defences: clean against robust accuracy per arm", caption,
                  ["model", "arm", "seeds", "clean RCA"] + [f"ε={_eps(e)}" for e in eps], body, 2, classes)
            ] + _arm_gate_tables(result)


def _arm_gate_tables(result) -> list[Table]:
    """The EEG-GAN quality gates of every victim trained under the ``gan`` arm (from ``provenance["arms"]``)."""
    prov = result.provenance
    records = {}
    for fold in prov.get("folds", [prov]):
        for key, info in (fold.get("arms") or {}).items():
            if info.get("gates"):
                where = "" if "folds" not in prov else f"{fold.get('subject')}/{fold.get('fold')} "
                records[where + key] = info
    if not records:
        return []
    names = list(dict.fromkeys(n for info in records.values() for n in info["gates"]))
    marks = next(iter(records.values()))["gates"]
    body = [[key, "accepted" if info["gates_passed"] else "FORCED", info.get("n_synthetic")]
            + [info["gates"][n]["value"] if n in info["gates"] else None for n in names] for key, info in records.items()]
    forced = any(not info["gates_passed"] for info in records.values())
    caption = ("Quality gates of each gan-arm victim's generator on held-out real training trials, and how many "
               "synthetic trials it added; a failed gate refuses augmentation"
               + (" unless forced: THIS RUN FORCED AUGMENTATION PAST A FAILED GATE (gan(force=true))." if forced
                  else "."))
    return [Table("gan-gates", "EEG-GAN quality gates", caption,
                  ["victim", "augmentation", "synthetic"] + [f"{n} ({marks[n]['op']} {fmt(marks[n]['threshold'])})"
                                                             for n in names], body, 2,
                  ["fail" if not info["gates_passed"] else "ok" for info in records.values()])]


def report_tables(result) -> dict[str, list[Table]]:
    """Every table of a report, by section."""
    return {"summary": summary_tables(result.rows, result.outcomes) + arm_tables(result) + augmentation_tables(result),
            "threats": threat_tables(result.rows) + band_table(result.rows) + query_tables(result),
            "transfer": transfer_tables(result.rows), "checks": [checks_table(result)],
            "provenance": [provenance_table(result)]}


def _cell(value) -> str:
    return value if isinstance(value, str) else fmt(value)


# -- rendering: one table, figure and text function per format; the document skeletons are in templates/ ----
def _md_text(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    lines = ([f"### {t.title}", ""] if t.title else []) + [f"*{_md_text(t.caption)}*", "",
             "| " + " | ".join(map(_md_text, t.header)) + " |",
             "|" + "|".join(":---" if i < t.n_labels else "---:" for i in range(len(t.header))) + "|"]
    lines += ["| " + " | ".join(_md_text(_cell(c)) for c in row) + " |" for row in t.rows]
    return "\n".join(lines) + "\n"


def _md_figure(f, i) -> str:
    return (f"![{f['name']}](figures/{f['png'].name})\n\n*{_md_text(f['caption'])}* "
            f"([PDF](figures/{f['pdf'].name}))\n")


def _html_table(t: Table) -> str:
    e = html.escape
    head = "".join(f'<th{"" if i < t.n_labels else " class=num"}>{e(h)}</th>' for i, h in enumerate(t.header))
    body = []
    for j, row in enumerate(t.rows):
        cls = f' class="{t.row_classes[j]}"' if t.row_classes else ""
        tds = "".join(f'<td class="{_html_td_class(t, i)}">{e(_cell(c))}</td>' for i, c in enumerate(row))
        body.append(f"<tr{cls}>{tds}</tr>")
    return ((f"<h3>{e(t.title)}</h3>\n" if t.title else "") + f'<div class="scroll"><table id="tab-{e(t.key)}">'
            f"<caption>{e(t.caption)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody></table></div>")


def _html_td_class(t: Table, i: int) -> str:
    if t.key == "checks":
        return ("label", "status", "wrap")[i]
    if t.key == "provenance":
        return "label" if i == 0 else "wrap mono"
    return "label" if i < t.n_labels else "num"


def _html_figure(f, i) -> str:
    e, data = html.escape, base64.b64encode(f["png"].read_bytes()).decode("ascii")
    return (f'<figure id="fig-{e(f["name"])}"><img src="data:image/png;base64,{data}" alt="{e(f["name"])}">'
            f"<figcaption>{e(f['caption'])}</figcaption></figure>")


def _tex_head(text: str, align: str) -> str:
    """A header cell on two lines when it has a space, so that wide tables fit the page."""
    first, _, rest = text.partition(" ")
    return rf"\shortstack[{align}]{{{tex_escape(first)}\\{tex_escape(rest)}}}" if rest else tex_escape(text)


def _tex_table(t: Table) -> str:
    spec = t.tex_spec or "l" * t.n_labels + "r" * (len(t.header) - t.n_labels)
    head = " & ".join(_tex_head(h, "l" if i < t.n_labels else "r") for i, h in enumerate(t.header)) + r" \\"
    rows = [" & ".join(tex_escape(_cell(c)) for c in row) + r" \\" for row in t.rows]
    size = r"\scriptsize" if len(t.header) > 12 else r"\footnotesize"
    return "\n".join([rf"{{{size}\setlength{{\tabcolsep}}{{3.5pt}}", rf"\begin{{longtable}}{{{spec}}}",
                      rf"\caption{{{tex_escape(t.caption)}}}\label{{tab:{t.key}}}\\", r"\toprule", head,
                      r"\midrule", r"\endfirsthead", r"\toprule", head, r"\midrule", r"\endhead",
                      r"\bottomrule", r"\endfoot", *rows, r"\end{longtable}}", ""])


def _tex_figure(f, i) -> str:
    return "\n".join([r"\begin{figure}[!htbp]\centering",
                      r"\includegraphics[width=\linewidth,height=0.42\textheight,keepaspectratio]"
                      rf"{{figures/{f['pdf'].name}}}", rf"\caption{{{tex_escape(f['caption'])}}}",
                      r"\end{figure}"] + [r"\clearpage"] * (i % 4 == 3))  # keep the float queue short


_FORMATS = {"md": (_md_table, _md_figure, _md_text, lambda c: f"```json\n{c}\n```"),
            "html": (_html_table, _html_figure, html.escape, lambda c: f"<pre>{html.escape(c)}</pre>"),
            "tex": (_tex_table, _tex_figure, tex_escape, lambda c: f"\\begin{{verbatim}}\n{c}\n\\end{{verbatim}}")}


def _main_section(kind: str, result, mat) -> str:
    """The main-text material (`harness.paper.Material`): compact tables per threat model and norm, paired tests,
    per-class recall and the methods."""
    from . import paper

    main = mat.tables if mat is not None else []
    if not main:
        return _FORMATS[kind][2]("No per-trial outcomes in these results: no compact tables.")
    tests = paper.paired_text(mat.tests)
    if kind == "md":
        return ("\n".join(paper.markdown(t) for t in main) + f"\n{tests}\n\n"
                + paper.per_class_markdown(mat.per_class) + "\n**Methods.** " + paper.methods_paragraph(result))
    if kind == "html":
        return ("\n".join(paper.html_table(t) for t in main) + f'\n<p id="paired-tests">{html.escape(tests)}</p>'
                + '\n<p class="methods" id="methods"><b>Methods.</b> ' + html.escape(paper.methods_paragraph(result))
                + "</p>")
    return ("\n".join(paper.fragment(t) for t in main) + f"\n\n{tex_escape(tests)}\n\n\\paragraph{{Methods.}} "
            + paper.methods_paragraph(result, tex=True))


def _figure_notes(kind: str, result, figures) -> str:
    if not figures:
        return ""
    from .figures import skipped_figures

    notes = skipped_figures(result)
    if not notes:
        return ""
    text = _FORMATS[kind][2](" ".join(notes))
    return {"md": f"\n*{text}*\n", "html": f'\n<p class="meta" id="figure-notes">{text}</p>'}.get(kind, f"\n\n{text}\n")


def render(kind: str, result, tables, figures, mat=None) -> str:
    """Fill ``templates/report.<kind>`` with the tables, figures and text of one report."""
    table, figure, text, config = _FORMATS[kind]
    checks, ok = _checks_summary(result)
    none = text("No gray-box rows in the results.")
    template = Template(resources.files(__package__ + ".templates").joinpath(f"report.{kind}").read_text(encoding="utf-8"))
    return template.substitute(
        title=text(TITLE), verdict=text(verdict(result)), checks_summary=text(_upper_first(checks)),
        checks_class="checks-ok" if ok else "checks-fail", meta=text(_meta(result)),
        date=text(result.environment.get("time", "")),
        main=_main_section(kind, result, mat),
        summary="\n".join(map(table, tables["summary"])), threats="\n".join(map(table, tables["threats"])),
        transfer="\n".join(map(table, tables["transfer"])) or none,
        figures="\n".join(figure(f, i) for i, f in enumerate(figures)) + _figure_notes(kind, result, figures),
        checks=table(tables["checks"][0]), provenance=table(tables["provenance"][0]),
        config=config(json.dumps(result.config, indent=1, ensure_ascii=True)))


def _meta(result) -> str:
    from .results import BUDGET_DEFINITION

    env = result.environment
    return (f"Generated from the results file of a run at {env.get('time', '?')} "
            f"(git {(env.get('git_sha') or '?')[:12]}); every number below is read from that file. Definitions: "
            f"{BUDGET_DEFINITION}.")


# -- entry point ---------------------------------------------------------------------------------------------
def write_report(result, out_dir, formats=REPORT_FORMATS) -> dict[str, Path]:
    """Write a report of ``result`` into ``out_dir``, reading numbers only from the result (no attack is run).

    Parameters
    ----------
    result : SuiteResult or path-like
        A suite's result, or the path of its ``results.json`` (read with `SuiteResult.from_json`).
    out_dir : path-like
        Folder for the report; created if missing.
    formats : str or sequence of str, default=REPORT_FORMATS
        Any of "md" (report.md), "html" (report.html, self-contained: CSS inline, figures as base64 PNG),
        "tex" (report.tex, a standalone document with booktabs tables and figures/*.pdf) and "csv"
        (results.csv); a comma-separated string such as "md,tex" works too. Figures (figures/*.png and *.pdf)
        are drawn when md, html or tex is asked for; config.json and environment.json are always written.

    Returns
    -------
    paths : dict of str to pathlib.Path
        The written files by format ("md", "html", "tex", "csv", "config", "environment"), and the figure
        folder under "figures".

    Raises
    ------
    ConfigError
        An unknown format, or an output folder that is a file.
    DataError
        A results file that is missing, of another version, or lacks fields.

    """
    formats = check_formats(formats)
    result = _load(result)
    out = _out_dir(out_dir)
    paths: dict[str, Path] = {}
    figures, mat = [], None
    if {"md", "html", "tex"} & set(formats):
        from . import paper
        from .figures import draw_all  # matplotlib only when figures are wanted

        mat = paper.material(result)  # computed once: the paper folder, the figures and every format use it
        figures = draw_all(result, out / "figures", tables=mat.tables)
        paths["figures"] = out / "figures"
        paths.update(paper.write_paper(result, out / "paper", mat))
        paths["paper"] = out / "paper"
    tables = report_tables(result)
    for f in formats:
        if f == "csv":
            paths["csv"] = out / "results.csv"
            result.to_csv(paths["csv"])
        else:
            paths[f] = out / f"report.{f}"
            atomic_write(paths[f], render(f, result, tables, figures, mat))
    for name, value in (("config", result.config), ("environment", result.environment)):
        paths[name] = out / f"{name}.json"
        atomic_write(paths[name], json.dumps(value, indent=1))
    return paths
