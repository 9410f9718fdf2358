"""Study analysis: per-trial worst case, aggregation across subjects, paired tests, per-class views.

Works on the two tables a study writes: ``rows`` (one row per cell x epsilon, with ``adv_rca`` and friends) and
``outcomes`` (one row per cell x epsilon x trial, with ``trial``, ``y``, ``clean_pred`` and ``adv_pred``). Only numpy,
pandas and scipy are used, so this module loads without torch.

Two rules hold throughout. L-inf and L2 budgets are in different units and are never pooled: `worst_case` groups by
``norm`` and `aggregate` / `paired_tests` refuse groups that mix norms. And the worst case is taken per trial
(AutoAttack): a trial is robust only if no included attack fools it, which can be strictly lower than the lowest
per-attack accuracy.

References
----------
.. [1] Croce, F. & Hein, M. (2020). Reliable evaluation of adversarial robustness with an ensemble of diverse
   parameter-free attacks. ICML.
.. [2] Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal of
   Statistics, 6(2), 65-70.
.. [3] Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics Bulletin, 1(6), 80-83.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from ..data._checks import ConfigError, DataError

__all__ = [
    "KEYS",
    "OUTCOME_COLUMNS",
    "UNIT_KEYS",
    "aggregate",
    "confusion",
    "holm",
    "paired_tests",
    "per_class",
    "worst_case",
    "worst_case_by_threat",
]

#: columns that identify one evaluation unit (a trained model on one fold, under one attack seed)
UNIT_KEYS = ("dataset", "subject", "session", "fold", "protocol", "model", "arm", "train_seed", "attack_seed")
#: columns that identify one cell x epsilon (one row of ``rows``)
KEYS = (*UNIT_KEYS, "threat_model", "attack", "substitute", "norm", "epsilon")
#: columns an ``outcomes`` table must have
OUTCOME_COLUMNS = (*KEYS, "trial", "y", "clean_pred", "adv_pred")

_ATTACKING = ("white_box", "gray_box", "black_box")
_AGG_BY = ("model", "threat_model", "attack", "substitute", "norm", "epsilon")
_AGG_OVER = ("subject", "train_seed", "attack_seed", "fold")
_CONST = "_all"


def worst_case(outcomes, *, threat_models=("white_box",), attacks=None) -> pd.DataFrame:
    """Per-trial worst case over attacks (AutoAttack's robust accuracy), per unit, norm and epsilon.

    A trial counts as robust only if it is classified correctly clean and under every included attack that evaluated
    it. Attacks are identified by (threat_model, attack, substitute). When some attack of the group evaluated every
    trial the group holds, all those trials are used, and an attack evaluated on fewer (``uap``: a universal
    perturbation is fitted on attacker trials and tested on the others) counts on the trials it evaluated; otherwise
    only the trials every attack of the group evaluated are used. ``min_attack_rca`` and ``worst_attack`` compare
    the attacks that evaluated all of the row's trials.

    Parameters
    ----------
    outcomes : DataFrame
        Per-trial outcomes with the columns in `OUTCOME_COLUMNS`.
    threat_models : sequence of str, default=("white_box",)
        Threat models whose attacks are included, from "white_box", "gray_box", "black_box". "control" (random
        noise) is never an attack and is refused.
    attacks : sequence of str or None, default=None
        Attack names to include (all of the chosen threat models when None).

    Returns
    -------
    DataFrame
        One row per `UNIT_KEYS` x norm x epsilon with ``attacks`` (included attack labels, sorted, comma-joined;
        ``attack<-substitute`` for transfer attacks, prefixed ``threat_model:`` when several threat models are
        included), ``n_attacks``, ``n_trials`` (the trials used, see above), ``clean_rca``, ``clean_bca``,
        ``robust_rca``, ``robust_bca``, ``min_attack_rca`` (lowest accuracy of a single attack on those trials) and
        ``worst_attack``. Always ``robust_rca <= min_attack_rca``. Groups with no common trial have
        ``n_trials == 0`` and NaN accuracies.
    """
    df = _check_frame(outcomes, "outcomes", OUTCOME_COLUMNS)
    threat_models = _names(threat_models, "threat_models")
    bad = [t for t in threat_models if t not in _ATTACKING]
    if bad or not threat_models:
        raise ConfigError(f"threat_models must be a non-empty subset of {list(_ATTACKING)}, got {threat_models}.")
    df = df[df["threat_model"].isin(threat_models)]
    if attacks is not None:
        attacks = _names(attacks, "attacks")
        missing = sorted(set(attacks) - set(df["attack"]))
        if missing:
            raise ConfigError(f"attacks {missing} have no outcomes under threat_models {threat_models}; "
                              f"present: {sorted(set(df['attack']))}.")
        df = df[df["attack"].isin(attacks)]
    if df.empty:
        raise DataError(f"outcomes hold no rows for threat_models {threat_models}.")
    _check_labels(df)
    df = df.assign(_atk=_attack_labels(df, prefix=len(threat_models) > 1),
                   _clean=df["clean_pred"] == df["y"], _ok=(df["clean_pred"] == df["y"]) & (df["adv_pred"] == df["y"]))
    group = [*UNIT_KEYS, "norm", "epsilon"]
    _check_unique(df, [*group, "_atk", "trial"])

    labels = (df[[*group, "_atk"]].drop_duplicates().sort_values("_atk")
              .groupby(group, dropna=False)["_atk"].agg(",".join))
    n_atk = df.groupby(group, dropna=False)["_atk"].transform("nunique")
    seen = df.groupby([*group, "trial"], dropna=False)["_atk"].transform("nunique")
    # an attack that evaluated every trial of its group is "full"; where there is one, the group's trials are all of
    # them and an attack run on fewer (a universal perturbation, tested on the trials outside its fit set) counts
    # on the trials it evaluated; without one, only the trials every attack evaluated count
    full = (df.groupby([*group, "_atk"], dropna=False)["trial"].transform("nunique")
            == df.groupby(group, dropna=False)["trial"].transform("nunique"))
    has_full = df.assign(_full=full).groupby(group, dropna=False)["_full"].transform("any").to_numpy()
    keep = has_full | (seen == n_atk).to_numpy()
    common = df[keep]
    trials = common.groupby([*group, "trial"], dropna=False).agg(
        y=("y", "first"), n_y=("y", "nunique"), clean=("_clean", "all"), robust=("_ok", "all")).reset_index()
    if (trials["n_y"] > 1).any():
        raise DataError("outcomes give one trial id different labels y under different attacks; trial ids must "
                        "index the same test trial for every attack of a fold and model.")
    out = labels.rename("attacks").to_frame()
    out["n_attacks"] = out["attacks"].str.count(",") + 1
    out = out.join(trials.groupby(group, dropna=False).agg(
        n_trials=("trial", "size"), clean_rca=("clean", "mean"), robust_rca=("robust", "mean")))
    out["clean_bca"] = _balanced(trials, group, "clean")
    out["robust_bca"] = _balanced(trials, group, "robust")
    single = df[keep & (~has_full | full.to_numpy())]  # single attacks compared on the same trials
    per_attack = single.groupby([*group, "_atk"], dropna=False)["_ok"].mean()
    out["min_attack_rca"] = per_attack.groupby(level=group, dropna=False).min()
    out["worst_attack"] = per_attack.groupby(level=group, dropna=False).idxmin().map(lambda key: key[-1])
    out["n_trials"] = out["n_trials"].fillna(0).astype(int)
    cols = ["attacks", "n_attacks", "n_trials", "clean_rca", "clean_bca", "robust_rca", "robust_bca",
            "min_attack_rca", "worst_attack"]
    return out[cols].reset_index()


def worst_case_by_threat(outcomes) -> pd.DataFrame:
    """`worst_case` of each attacking threat model on its own, at every epsilon > 0, with a ``threat_model`` column.

    Threat models are not pooled (a gray-box number says what an attacker without the weights achieves), nor norms.
    Empty (no rows) when ``outcomes`` hold no attacked budget.
    """
    df = _check_frame(outcomes, "outcomes", OUTCOME_COLUMNS)
    df = df[df["epsilon"] > 0]
    parts = [worst_case(df[df["threat_model"] == t], threat_models=(t,)).assign(threat_model=t)
             for t in _ATTACKING if (df["threat_model"] == t).any()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


#: Columns that are proportions in [0, 1]: `aggregate` clips their t-interval to that range.
PROPORTIONS = ("adv_rca", "adv_bca", "clean_rca", "clean_bca", "chance_rca", "success_rate")


def aggregate(rows, *, value="adv_rca", by=_AGG_BY, over=_AGG_OVER, level="subject",
              confidence=0.95) -> pd.DataFrame:
    """Mean, spread and a t confidence interval of one value, per group.

    Parameters
    ----------
    rows : DataFrame
        One row per unit (``rows`` of a study, or the output of `worst_case`).
    value : str, default="adv_rca"
        Numeric column to summarise; NaN values are skipped.
    by : sequence of str, default=("model", "threat_model", "attack", "substitute", "norm", "epsilon")
        Columns that define the groups (one output row each). Must separate norms: a group that mixes "linf" and
        "l2" rows is refused.
    over : sequence of str, default=("subject", "train_seed", "attack_seed", "fold")
        Columns aggregated over; must not overlap `by`. Columns in neither are averaged within each unit.
    level : {"subject", "all"}, default="subject"
        "subject": first average within each subject (over the other `over` columns), so each subject counts once
        and n is the number of subjects. "all": each distinct combination of `over` values is one unit.
    confidence : float, default=0.95
        Coverage of the two-sided t-interval.

    Returns
    -------
    DataFrame
        The `by` columns plus ``mean``, ``sd`` (ddof=1), ``n``, ``sem``, ``ci_low``, ``ci_high`` and ``n_note``.
        ``sd``, ``sem`` and the interval are NaN when n == 1, and ``n_note`` reads "n=1 (no spread)". The
        interval of a proportion (`PROPORTIONS`: accuracies, success rate) is clipped to [0, 1].
    """
    by, over = _names(by, "by"), _names(over, "over")
    if level not in ("subject", "all"):
        raise ConfigError(f"level must be one of ['all', 'subject'], got {level!r}.")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence!r}.")
    if set(by) & set(over):
        raise ConfigError(f"by and over must not overlap, both contain {sorted(set(by) & set(over))}.")
    if level == "subject" and "subject" not in over:
        raise ConfigError(f"level='subject' needs 'subject' in over, got over={over}; or pass level='all'.")
    df = _check_frame(rows, "rows", [value, *by, *over])
    df = df.assign(**{value: _numeric(df[value], value)})
    _check_norms(df, by)
    df, keys = _with_keys(df, by)
    units = [*keys, "subject"] if level == "subject" else [*keys, *over]
    per_unit = df.groupby(units, dropna=False)[value].mean()
    out = per_unit.groupby(level=keys, dropna=False).agg(["mean", "std", "count"])
    out.columns = ["mean", "sd", "n"]
    out["n"] = out["n"].astype(int)
    out["sem"] = out["sd"] / np.sqrt(out["n"])
    half = stats.t.ppf(0.5 + confidence / 2, np.maximum(out["n"] - 1, 1)) * out["sem"]
    half = half.where(out["n"] > 1)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    if value in PROPORTIONS:  # an accuracy lies in [0, 1]: so does its interval
        out["ci_low"], out["ci_high"] = out["ci_low"].clip(lower=0.0), out["ci_high"].clip(upper=1.0)
    unit = "subjects" if level == "subject" else "units"
    out["n_note"] = [("n=1 (no spread)" if n == 1 else "n=0 (no values)" if n == 0 else f"n={n} {unit}")
                     for n in out["n"]]
    return out.reset_index().drop(columns=_CONST, errors="ignore")


def paired_tests(table, *, between="model", value="adv_rca", pair_on="subject", by=("norm", "epsilon"),
                 min_pairs=5, alternative="two-sided", alpha=0.05) -> pd.DataFrame:
    """Paired Wilcoxon signed-rank tests between every two levels of `between`, within each `by` group.

    Values are first averaged within (`pair_on`, `between`, `by`), so seeds and folds do not count as extra pairs.
    A pair is a `pair_on` unit (a subject) with a value for both levels.

    Parameters
    ----------
    table : DataFrame
        Per-unit values, e.g. the output of `worst_case` or ``rows`` at one threat model and attack.
    between : str, default="model"
        Column whose levels are compared (models, arms, ...).
    value : str, default="adv_rca"
        Numeric column compared.
    pair_on : str, default="subject"
        Column that pairs the observations.
    by : sequence of str, default=("norm", "epsilon")
        Columns that define separate comparisons; groups must not mix norms.
    min_pairs : int, default=5
        Fewer pairs than this give p = NaN and a note instead of a test.
    alternative : {"two-sided", "less", "greater"}, default="two-sided"
        Passed to `scipy.stats.wilcoxon`; "less" means a < b.
    alpha : float, default=0.05
        Level for ``significant`` (after Holm correction).

    Returns
    -------
    DataFrame
        The `by` columns plus ``a``, ``b`` (levels, a < b in sort order), ``n_pairs``, ``mean_diff`` (mean of a - b),
        ``statistic``, ``p``, ``p_holm`` (Holm-Bonferroni over every test in this table), ``significant``
        (p_holm < alpha) and ``note`` ("" when tested).
    """
    by = _names(by, "by")
    names = [between, pair_on, *by]
    if len(set(names)) != len(names):
        raise ConfigError(f"between, pair_on and by must be distinct columns, got {between!r}, {pair_on!r}, {by}.")
    if alternative not in ("two-sided", "less", "greater"):
        raise ConfigError(f"alternative must be one of ['greater', 'less', 'two-sided'], got {alternative!r}.")
    if not isinstance(min_pairs, (int, np.integer)) or min_pairs < 1:
        raise ConfigError(f"min_pairs must be a positive int, got {min_pairs!r}.")
    df = _check_frame(table, "table", [value, *names])
    df = df.assign(**{value: _numeric(df[value], value)})
    levels = sorted(df[between].dropna().unique())
    if len(levels) < 2:
        raise ConfigError(f"between={between!r} has fewer than two levels ({levels}); nothing to compare.")
    _check_norms(df, by)
    df, keys = _with_keys(df, by)
    means = df.groupby([*keys, pair_on, between], dropna=False)[value].mean()
    out = []
    for key, sub in means.groupby(level=keys, dropna=False):
        wide = sub.droplevel(keys).unstack(between)
        for a, b in combinations(sorted(wide.columns), 2):
            diff = (wide[a] - wide[b]).dropna().to_numpy()
            out.append({**dict(zip(keys, key)), "a": a, "b": b, "n_pairs": len(diff),
                        "mean_diff": float(diff.mean()) if len(diff) else np.nan,
                        **_wilcoxon(diff, min_pairs, alternative, pair_on)})
    out = pd.DataFrame(out)
    out["p_holm"] = holm(out["p"].to_numpy())
    out["significant"] = out["p_holm"] < alpha
    cols = [*keys, "a", "b", "n_pairs", "mean_diff", "statistic", "p", "p_holm", "significant", "note"]
    return out[cols].drop(columns=_CONST, errors="ignore")


#: Query budgets (per trial) at which `query_curve` reads robust accuracy.
QUERY_GRID = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def query_curve(outcomes, *, queries=QUERY_GRID) -> pd.DataFrame:
    """Robust accuracy against the number of queries per trial, for every query attack, budget and cell.

    A trial counts as robust after ``q`` queries if it was correct and the attack had not fooled it within ``q``
    queries (``queries`` of the outcomes: queries spent until the trial was first fooled). Budgets of ``queries``
    below the most any trial used are read, then that maximum itself (budgets beyond what the attack was given are
    not measured). One row per cell keys x epsilon x budget. Cells without query counts (white-box, gray-box and
    control attacks, and a query attack that had no correctly classified trial to attack) have no row.
    """
    df = _check_frame(outcomes, "outcomes", ("trial", "y", "clean_pred", "adv_pred", "epsilon"))
    empty = pd.DataFrame(columns=[*KEYS, "epsilon", "queries", "robust_rca", "n_trials"])
    if "queries" not in df:
        return empty
    df = df[df["queries"].notna() | (df["clean_pred"] != df["y"])]
    keys = [k for k in KEYS if k in df]
    out = []
    for key, g in df.groupby(keys, sort=False, dropna=False):
        correct = (g["clean_pred"] == g["y"]).to_numpy()
        fooled = correct & (g["adv_pred"] != g["y"]).to_numpy()
        q = g["queries"].to_numpy(float)
        if not np.isfinite(q).any():  # no query was counted in this cell: not a query attack
            continue
        spent = float(np.nanmax(q))
        for budget in [b for b in queries if b < spent] + [spent]:  # the last point: all the attack spent
            robust = correct & ~(fooled & (q <= budget))
            out.append({**dict(zip(keys, key)), "queries": budget, "robust_rca": float(robust.mean()),
                        "n_trials": len(g)})
    return pd.DataFrame(out) if out else empty


def per_class(outcomes, *, by=KEYS) -> pd.DataFrame:
    """Per-class recall, clean and under attack.

    Parameters
    ----------
    outcomes : DataFrame
        Per-trial outcomes with ``y``, ``clean_pred``, ``adv_pred`` and the `by` columns.
    by : sequence of str, default=KEYS
        Columns that define the groups.

    Returns
    -------
    DataFrame
        The `by` columns plus ``class`` (int, the true label), ``n`` (trials of that class), ``clean_recall`` and
        ``adv_recall``.
    """
    by = _names(by, "by")
    df = _check_frame(outcomes, "outcomes", [*by, "y", "clean_pred", "adv_pred"])
    _check_labels(df)
    df, keys = _with_keys(df.assign(_c=df["clean_pred"] == df["y"], _a=df["adv_pred"] == df["y"]), by)
    out = df.groupby([*keys, "y"], dropna=False).agg(n=("_c", "size"), clean_recall=("_c", "mean"),
                                                      adv_recall=("_a", "mean"))
    return out.reset_index().rename(columns={"y": "class"}).drop(columns=_CONST, errors="ignore")


def confusion(outcomes, *, by=KEYS, n_classes=None) -> pd.DataFrame:
    """Confusion counts of clean and adversarial predictions, as a long table.

    Every (kind, true, pred) cell is listed, zeros included, so one group and kind reshape to an
    (n_classes, n_classes) matrix with ``sub.pivot(index="true", columns="pred", values="count").to_numpy()``
    (rows: true class, columns: predicted class).

    Parameters
    ----------
    outcomes : DataFrame
        Per-trial outcomes with ``y``, ``clean_pred``, ``adv_pred`` and the `by` columns.
    by : sequence of str, default=KEYS
        Columns that define the groups.
    n_classes : int or None, default=None
        Number of classes; one more than the largest label seen when None.

    Returns
    -------
    DataFrame
        The `by` columns plus ``kind`` ("clean" or "adv"), ``true``, ``pred`` and ``count`` (int).
    """
    by = _names(by, "by")
    df = _check_frame(outcomes, "outcomes", [*by, "y", "clean_pred", "adv_pred"])
    _check_labels(df)
    largest = int(df[["y", "clean_pred", "adv_pred"]].to_numpy().max())
    if n_classes is None:
        n_classes = largest + 1
    elif not isinstance(n_classes, (int, np.integer)) or n_classes <= largest:
        raise ConfigError(f"n_classes must be an int above the largest label {largest}, got {n_classes!r}.")
    df, keys = _with_keys(df, by)
    long = pd.concat([df[[*keys, "y", col]].rename(columns={"y": "true", col: "pred"}).assign(kind=kind)
                      for kind, col in (("clean", "clean_pred"), ("adv", "adv_pred"))])
    counts = long.groupby([*keys, "kind", "true", "pred"], dropna=False).size().rename("count").reset_index()
    grid = pd.MultiIndex.from_product([["clean", "adv"], range(n_classes), range(n_classes)],
                                      names=["kind", "true", "pred"]).to_frame(index=False)
    out = df[keys].drop_duplicates().merge(grid, how="cross").merge(counts, on=[*keys, "kind", "true", "pred"],
                                                                      how="left")
    out["count"] = out["count"].fillna(0).astype(int)
    return out.drop(columns=_CONST, errors="ignore")


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values.

    Parameters
    ----------
    pvalues : array-like of shape (n_tests,)
        Raw p-values in [0, 1]; NaN entries (no test) are passed through and do not count as tests.

    Returns
    -------
    ndarray of shape (n_tests,)
        Adjusted p-values, in the input order: the i-th smallest of m gets ``max_{j <= i} min(1, (m - j + 1) p_(j))``,
        so they are monotone in the raw p-values.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise DataError(f"pvalues must be 1-D, got shape {p.shape}.")
    ok = ~np.isnan(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise DataError(f"pvalues must lie in [0, 1], got values in [{p[ok].min()}, {p[ok].max()}].")
    out = np.full_like(p, np.nan)
    m = int(ok.sum())
    order = np.argsort(p[ok])
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[ok][order]).clip(max=1.0)
    out[np.flatnonzero(ok)[order]] = adjusted
    return out


def _wilcoxon(diff, min_pairs, alternative, pair_on) -> dict:
    if len(diff) < min_pairs:
        return {"statistic": np.nan, "p": np.nan, "note": f"fewer than {min_pairs} {pair_on}s: no test"}
    if np.all(diff == 0):
        return {"statistic": 0.0, "p": 1.0, "note": "all differences are zero"}
    res = stats.wilcoxon(diff, alternative=alternative)
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "note": ""}


def _check_frame(frame, name, columns) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise DataError(f"{name} is missing columns {missing}; it has {list(frame.columns)}.")
    if frame.empty:
        raise DataError(f"{name} is empty (0 rows); run the study or check the filters first.")
    if "substitute" in frame.columns:
        frame = frame.assign(substitute=frame["substitute"].fillna("").astype(str))
    return frame


def _names(value, name) -> list:
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a str or a sequence of str, got {type(value).__name__}.") from None


def _numeric(series, name) -> pd.Series:
    try:
        return pd.to_numeric(series).astype(float)
    except (TypeError, ValueError):
        raise DataError(f"column {name!r} must be numeric, got dtype {series.dtype}.") from None


def _check_labels(df) -> None:
    for col in ("y", "clean_pred", "adv_pred"):
        values = df[col].to_numpy()
        if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.bool_)) or values.min() < 0:
            raise DataError(f"column {col!r} must hold non-negative int class labels, got dtype {df[col].dtype} "
                            f"with minimum {values.min()!r}.")


def _check_norms(df, by) -> None:
    """Refuse groups of `by` that mix norms: L-inf and L2 epsilons are in different units."""
    if "norm" not in df.columns or "norm" in by:
        return
    n_norms = df.groupby(by, dropna=False)["norm"].nunique() if by else pd.Series([df["norm"].nunique()])
    if (n_norms > 1).any():
        norms = sorted(map(str, df["norm"].dropna().unique()))
        raise ConfigError(f"by={list(by)} pools rows of norms {norms}; L-inf and L2 budgets are in different "
                          f"units and must not be pooled. Add 'norm' to by.")


def _check_unique(df, keys) -> None:
    dup = df.duplicated(keys)
    if dup.any():
        first = df.loc[dup, [k for k in keys if not k.startswith("_")]].iloc[0].to_dict()
        raise DataError(f"outcomes hold {int(dup.sum())} duplicate trial rows, first {first}.")


def _attack_labels(df, *, prefix) -> pd.Series:
    attack, sub = df["attack"].astype(str), df["substitute"]
    label = attack.where(sub == "", attack + "<-" + sub)
    return df["threat_model"].astype(str) + ":" + label if prefix else label


def _balanced(trials, group, col) -> pd.Series:
    """Mean over classes present of the per-class mean of `col`, per group."""
    return trials.groupby([*group, "y"], dropna=False)[col].mean().groupby(level=group, dropna=False).mean()


def _with_keys(df, keys):
    """Return (df, keys), adding a constant key when `keys` is empty so that groupby always has one."""
    if keys:
        return df, list(keys)
    return df.assign(**{_CONST: 0}), [_CONST]
