"""Report figures, drawn from a `SuiteResult` alone (rows and stored example trials; no attack is re-run).

Figures are built as `matplotlib.figure.Figure` objects on an Agg canvas (no pyplot, so no global figure
registry and no interactive backend), saved as PNG and PDF through a temporary name and a rename, and closed
(dropped) after saving.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGURE_FORMATS = ("png", "pdf")
DPI = 300
#: Journal widths in inches: one column and both columns of a two-column layout (IEEE).
SINGLE_COLUMN, DOUBLE_COLUMN = 3.5, 7.16
THREAT_ORDER = ("white_box", "gray_box", "black_box", "control")
MAX_TRACE_CHANNELS = 8


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (model names go into figure file names)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def threats_present(rows) -> list[str]:
    """Threat models found in ``rows``, in the canonical order (unknown ones last, sorted)."""
    found = {r["threat_model"] for r in rows}
    return [t for t in THREAT_ORDER if t in found] + sorted(found - set(THREAT_ORDER))


def linf_rows(rows) -> list:
    """Rows of L-inf attacks (the single-attack figures plot no other norm: an L2-only run has none)."""
    return [r for r in rows if r.get("norm", "linf") == "linf"]


def worst_case(rows, threat: str) -> dict[str, list[dict]]:
    """Per model, the L-inf attack with the lowest adversarial RCA at each epsilon (seeds averaged), by epsilon.

    Only L-inf attacks (the budget's own norm) enter: an L2 attack at the same epsilon has a larger L-inf norm,
    so pooling the two would mix budgets.

    Returns a mapping model -> list of ``{"epsilon", "adv_rca", "snr_db", "attack"}``.
    """
    cells = defaultdict(list)
    for r in linf_rows(rows):
        if r["threat_model"] == threat:
            cells[(r["model"], r["epsilon"], r["attack"], r["substitute"])].append(r)
    best: dict = {}
    for (model, eps, attack, sub), group in cells.items():
        acc = _mean([g["adv_rca"] for g in group])
        snr = _mean([g["snr_db"] for g in group])
        if (model, eps) not in best or acc < best[(model, eps)]["adv_rca"]:
            best[(model, eps)] = {"epsilon": eps, "adv_rca": acc, "snr_db": snr,
                                  "attack": attack + (f" <- {sub}" if sub else "")}
    order = {m: i for i, m in enumerate(dict.fromkeys(r["model"] for r in rows))}
    out = defaultdict(list)
    for (model, _), point in sorted(best.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        out[model].append(point)
    return dict(out)


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _new_figure(width, height) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out_dir, name: str, formats=FIGURE_FORMATS) -> dict[str, Path]:
    """Save ``fig`` as ``out_dir/name.<fmt>`` for each format, atomically, then release it."""
    out_dir = Path(out_dir)
    paths = {}
    try:
        for ext in formats:
            path = out_dir / f"{name}.{ext}"
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            try:
                fig.savefig(tmp, format=ext, dpi=DPI, metadata={"CreationDate": None} if ext == "pdf" else None)
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; figures are meant to be shared
                os.replace(tmp, path)
                fig.set_layout_engine("none")  # the first save laid the figure out; the others keep that layout
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            paths[ext] = path
    finally:
        fig.clf()
    return paths


def _accuracy_figure(rows, x_key: str, xlabel: str, title: str) -> Figure:
    threats = threats_present(linf_rows(rows))  # the panels plot L-inf attacks only (`worst_case`)
    color = {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(r["model"] for r in rows))}  # same in every panel
    ncols = min(len(threats), 2)
    nrows = -(-len(threats) // ncols)
    fig = _new_figure(DOUBLE_COLUMN if ncols > 1 else SINGLE_COLUMN * 1.2, 0.5 + 2.6 * nrows)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    axes = grid.ravel()
    for ax in axes[len(threats):]:
        ax.set_visible(False)
    for ax, threat in zip(axes, threats):
        for model, points in worst_case(rows, threat).items():
            pts = [p for p in points if p[x_key] is not None and math.isfinite(p[x_key])
                   and p["adv_rca"] is not None]
            pts.sort(key=lambda p: p[x_key])
            ax.plot([p[x_key] for p in pts], [p["adv_rca"] for p in pts], marker="o", label=model, color=color[model])
        ax.set_title(threat.replace("_", "-"))
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    for ax in grid[:, 0]:
        ax.set_ylabel("adversarial RCA (worst L∞ attack)")
    axes[0].legend(fontsize="small")
    fig.suptitle(title)
    return fig


def accuracy_vs_epsilon(rows, unit: str = "rel") -> Figure:
    """Worst-case adversarial RCA against epsilon, one panel per threat model, one line per model."""
    label = "epsilon (x channel std)" if unit == "rel" else ("epsilon (µV)" if unit == "uV" else f"epsilon ({unit})")
    return _accuracy_figure(rows, "epsilon", label, "Accuracy vs budget")


def accuracy_vs_snr(rows) -> Figure:
    """The strongest single attack's adversarial RCA (`worst_case`) against its SNR (dB), one panel per threat
    model."""
    fig = _accuracy_figure(rows, "snr_db", "SNR of signal to perturbation (dB)", "Accuracy vs SNR")
    for ax in fig.axes:
        ax.invert_xaxis()  # weaker perturbation (higher SNR) on the left, as epsilon grows to the right
    return fig


def main_accuracy(tables, chance: dict, *, width: float = DOUBLE_COLUMN, unit: str = "rel") -> Figure:
    """The paper's main figure: robust accuracy against epsilon, one panel per threat model and norm (never both
    norms in one panel), one line per model with its 95 % interval as a band, and each model's chance level dashed.

    ``tables`` are `harness.paper.compact_tables`; ``chance`` maps model -> chance-level accuracy (the 95 % binomial
    bound of always answering the majority class, `harness.cell.chance_rca`, averaged over units).
    """
    n = len(tables)
    ncols = 1 if width <= SINGLE_COLUMN else min(n, 3)
    nrows = -(-n // ncols)
    panel_w = width / ncols
    fig = _new_figure(width, 0.35 + nrows * panel_w * 0.78)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    axes = grid.ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    models = list(dict.fromkeys(r["model"] for t in tables for r in t.rows))
    color = {m: f"C{i % 10}" for i, m in enumerate(models)}
    small = 7 if width <= SINGLE_COLUMN else 8
    for ax, t in zip(axes, tables):
        for row in t.rows:
            eps = [0.0] + [e for e in t.epsilons if e in row["cells"]]
            stats = [row["clean"]] + [row["cells"][e] for e in eps[1:]]
            c = color[row["model"]]
            ax.plot(eps, [s.mean for s in stats], marker="o", ms=2.5, lw=1.1, color=c, label=row["label"])
            ax.fill_between(eps, [s.ci_low for s in stats], [s.ci_high for s in stats], color=c, alpha=0.18, lw=0)
            full = max((len(v) for v in t.attack_sets.values()), default=0)
            partial = [e for e in eps[1:] if len(t.attack_sets.get(e, ())) < full]
            if partial:  # fewer attacks ran at these budgets: hollow markers
                ax.plot(partial, [row["cells"][e].mean for e in partial], ls="none", marker="o", ms=3.5, mfc="white",
                        color=c)
        levels = {chance[r["model"]] for r in t.rows if r["model"] in chance}
        if len(levels) == 1:
            ax.axhline(levels.pop(), color="0.4", lw=0.8, ls=":", label="chance")
        else:
            for row in t.rows:
                if row["model"] in chance:
                    ax.axhline(chance[row["model"]], color=color[row["model"]], lw=0.7, ls=":")
        norm = "L∞" if t.norm == "linf" else "L2"
        ax.set_title(f"{t.threat_model.replace('_', '-')}, {norm}", fontsize=small + 1)
        ax.set_xlabel("ε (× channel std)" if unit == "rel" else "ε (µV)", fontsize=small)
        ax.tick_params(labelsize=small)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in grid[:, 0]:
        ax.set_ylabel("robust accuracy (worst case)", fontsize=small)
    axes[0].legend(fontsize=small - 1, loc="upper right", frameon=False)
    return fig


def accuracy_vs_queries(curve) -> Figure:
    """Robust accuracy against queries per trial (log scale), one panel per budget (three to a row), one line per
    model x attack: the model by colour, the attack by line style and marker, one legend below the panels."""
    eps_values = sorted(curve["epsilon"].unique())
    n_cols = min(3, len(eps_values))
    n_rows = math.ceil(len(eps_values) / n_cols)
    models, attacks = list(dict.fromkeys(curve["model"])), list(dict.fromkeys(curve["attack"]))
    colours = {m: f"C{i % 10}" for i, m in enumerate(models)}
    styles = {a: (("-", "--", ":", "-.")[i % 4], "os^vDx*"[i % 7]) for i, a in enumerate(attacks)}
    fig = _new_figure(DOUBLE_COLUMN if n_cols > 1 else SINGLE_COLUMN,
                      2.0 * n_rows + 0.5 + 0.18 * math.ceil(len(models) * len(attacks) / 3))
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True).ravel()
    means = curve.groupby(["model", "attack", "epsilon", "queries"], sort=False)["robust_rca"].mean().reset_index()
    means = means[means["queries"] > 0]  # the clean point (0 queries) has no place on a log axis
    for ax, eps in zip(axes, eps_values):
        for (model, attack), g in means[means["epsilon"] == eps].groupby(["model", "attack"], sort=False):
            line, marker = styles[attack]
            ax.plot(g["queries"], g["robust_rca"], color=colours[model], linestyle=line, marker=marker,
                    markersize=3, linewidth=1, label=f"{model} {attack}")
        ax.set_xscale("log")
        ax.set_title(f"ε = {eps:g}", fontsize="small")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[len(eps_values):]:
        ax.set_visible(False)
    for ax in axes[(n_rows - 1) * n_cols:]:
        ax.set_xlabel("queries per trial")
    for ax in axes[::n_cols]:
        ax.set_ylabel("robust RCA")
    handles = {}
    for ax in axes:
        handles.update({label: h for h, label in zip(*ax.get_legend_handles_labels()) if label not in handles})
    labels = [f"{m} {a}" for m in models for a in attacks if f"{m} {a}" in handles]  # grouped by model
    if labels:
        fig.legend([handles[k] for k in labels], labels, loc="outside lower center", ncols=min(3, len(attacks)),
                   fontsize="x-small")
    fig.suptitle("Black-box accuracy vs queries", fontsize="medium")
    return fig


def _trace_channels(delta: np.ndarray) -> np.ndarray:
    """Indices of the channels to draw: all, or the MAX_TRACE_CHANNELS with the largest perturbation."""
    if len(delta) <= MAX_TRACE_CHANNELS:
        return np.arange(len(delta))
    return np.sort(np.argsort(-np.linalg.norm(delta, axis=1))[:MAX_TRACE_CHANNELS])


def example_title(example: dict) -> str:
    return (f"{example['model']}, {example['attack']} eps={example['epsilon']:g}, trial {example['trial']}: "
            f"label {example['label']}, predicted {example['pred_clean']} -> {example['pred_adv']}")


def traces(example: dict) -> Figure:
    """One trial's clean and adversarial EEG per channel (left) and the perturbation (right), in microvolts."""
    clean, adv = np.asarray(example["clean_uv"]), np.asarray(example["adv_uv"])
    delta = adv - clean
    t = np.arange(clean.shape[1]) / float(example["sfreq"])
    chans = _trace_channels(delta)
    fig = _new_figure(DOUBLE_COLUMN, 0.9 + 1.0 * len(chans))
    axes = fig.subplots(len(chans), 2, sharex=True, squeeze=False)
    for row, c in zip(axes, chans):
        name = example["ch_names"][c]
        row[0].plot(t, clean[c], lw=0.9, label="clean")
        row[0].plot(t, adv[c], lw=0.9, ls="--", label="adversarial")
        row[0].set_ylabel(f"{name}\n(µV)", fontsize="small")
        row[1].plot(t, delta[c], lw=0.9, color="C3")
    axes[0][0].set_title("clean and adversarial")
    axes[0][1].set_title("perturbation (own scale)")
    axes[0][0].legend(fontsize="x-small", loc="upper right")
    axes[-1][0].set_xlabel("time (s)")
    axes[-1][1].set_xlabel("time (s)")
    shown = "" if len(chans) == len(clean) else f" ({len(chans)} of {len(clean)} channels, largest perturbation)"
    fig.suptitle(example_title(example) + shown, fontsize="medium")
    return fig


def spectrum(example: dict) -> Figure:
    """Welch power spectra of the clean trial and of the perturbation, averaged over channels."""
    from scipy.signal import welch

    clean, adv = np.asarray(example["clean_uv"]), np.asarray(example["adv_uv"])
    sfreq = float(example["sfreq"])
    nperseg = min(clean.shape[1], int(2 * sfreq))
    freqs, p_signal = welch(clean, fs=sfreq, nperseg=nperseg, axis=-1)
    _, p_delta = welch(adv - clean, fs=sfreq, nperseg=nperseg, axis=-1)
    fig = _new_figure(SINGLE_COLUMN * 1.3, 2.8)
    ax = fig.subplots()
    floor = np.finfo(float).tiny
    ax.semilogy(freqs, np.maximum(p_signal.mean(axis=0), floor), label="signal (clean trial)")
    ax.semilogy(freqs, np.maximum(p_delta.mean(axis=0), floor), label="perturbation", color="C3")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD (µV²/Hz), channel mean")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    ax.set_title(example_title(example), fontsize="small")
    return fig


def channel_positions(ch_names, positions=None) -> tuple[np.ndarray | None, str]:
    """2-D sensor positions for a topomap, and where they came from.

    ``positions`` (name -> (x, y, z) in metres, e.g. from the epochs' montage, stored in the results' provenance)
    win; otherwise names are matched, case-insensitively, against MNE's standard 10-05 montage. Returns
    ``(None, reason)`` when fewer than three channels have a position.
    """
    names = list(ch_names)
    if positions:
        xyz = [positions.get(n) for n in names]
        source = "the recording's montage"
    else:
        import mne

        kinds = mne.channels.get_builtin_montages()
        montage = mne.channels.make_standard_montage("colin27_1005" if "colin27_1005" in kinds else "standard_1005")
        pos = {k.lower(): v for k, v in montage.get_positions()["ch_pos"].items()}
        xyz = [pos.get(n.lower()) for n in names]
        source = "MNE's standard 10-05 montage (matched by channel name)"
    if sum(p is not None for p in xyz) < 3 or any(p is None for p in xyz):
        missing = [n for n, p in zip(names, xyz) if p is None]
        return None, (f"no topomap: channels {missing[:6]}{'...' if len(missing) > 6 else ''} have no position "
                      "(not in the recording's montage nor in the standard 10-05 names)")
    xyz = np.asarray(xyz, dtype=float)
    return xyz[:, :2], source


def topomap(example: dict, pos2d: np.ndarray, source: str) -> Figure:
    """Where the perturbation's energy goes: mean squared perturbation per channel (µV²) of the example trial, and
    the same relative to the clean trial's per-channel power (dB), on the scalp."""
    import mne

    clean, adv = np.asarray(example["clean_uv"]), np.asarray(example["adv_uv"])
    delta = adv - clean
    energy = np.mean(delta ** 2, axis=1)
    clean_d = clean - clean.mean(axis=1, keepdims=True)
    rel = 10 * np.log10(np.maximum(energy, 1e-30) / np.maximum(np.mean(clean_d ** 2, axis=1), 1e-30))
    fig = _new_figure(DOUBLE_COLUMN * 0.62, 2.3)
    axes = fig.subplots(1, 2)
    for ax, values, label in ((axes[0], energy, "perturbation power (µV²)"),
                              (axes[1], rel, "perturbation / signal (dB)")):
        im, _ = mne.viz.plot_topomap(values, pos2d, axes=ax, show=False, cmap="viridis", contours=0,
                                     sphere=(0.0, 0.0, 0.0, 0.095))
        cb = fig.colorbar(im, ax=ax, shrink=0.8)
        cb.ax.tick_params(labelsize=7)
        ax.set_title(label, fontsize=8)
    fig.suptitle(f"{example['model']}, {example['attack']} eps={example['epsilon']:g} (positions: {source})",
                 fontsize=7)
    return fig


def confusion_matrices(frame, classes) -> Figure:
    """Clean vs attacked confusion matrices, one row of two panels per model (counts; rows: true class)."""
    models = list(dict.fromkeys(frame["model"]))
    n = len(classes)
    fig = _new_figure(SINGLE_COLUMN * 1.3, 0.5 + 1.55 * len(models) * max(1.0, n / 3))
    axes = fig.subplots(len(models), 2, squeeze=False)
    for row, model in zip(axes, models):
        sub = frame[frame["model"] == model]
        attack, eps = sub["attack"].iloc[0], sub["epsilon"].iloc[0]
        for ax, kind in zip(row, ("clean", "adv")):
            m = (sub[sub["kind"] == kind].pivot_table(index="true", columns="pred", values="count", aggfunc="sum")
                 .reindex(index=range(n), columns=range(n), fill_value=0).to_numpy())
            ax.imshow(m, cmap="Blues", vmin=0, vmax=max(int(m.max()), 1))
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=7,
                        color="white" if v > m.max() / 2 else "black")
            ax.set_xticks(range(n), [str(c)[:8] for c in classes], fontsize=6, rotation=30)
            ax.set_yticks(range(n), [str(c)[:8] for c in classes], fontsize=6)
            ax.set_title(f"{model}: clean" if kind == "clean" else f"{attack} ε={eps:g}", fontsize=7)
        row[0].set_ylabel("true", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("predicted", fontsize=7)
    return fig


def _confusion_frame(result):
    """Confusion counts of `paper.selected_outcomes` (each model's strongest white-box L-inf attack near 0.1)."""
    from .analysis import confusion
    from .paper import selected_outcomes

    sel = selected_outcomes(result)
    if sel is None:
        return None
    n_classes = len(result.provenance.get("classes") or []) or None
    return confusion(sel, by=("model", "attack", "epsilon"), n_classes=n_classes)


def n_caption(result) -> str:
    """What the numbers of a figure are over: trials per threat model and evaluation units (n in every caption)."""
    trials = {}
    for r in result.rows:
        trials.setdefault(r["threat_model"], set()).add(r["n_trials"])
    units = {(r.get("subject"), r.get("fold"), r.get("train_seed"), r.get("attack_seed")) for r in result.rows}
    per = ", ".join(f"{t.replace('_', '-')} {'/'.join(map(str, sorted(v)))}" for t, v in trials.items()
                    if t != "control")
    return f"n = {len(units)} evaluation unit{'s' * (len(units) != 1)} (subjects x folds x seeds); test trials: {per}."


def draw_all(result, out_dir, *, tables=None) -> list[dict]:
    """Draw every report figure into ``out_dir``; return ``{"name", "caption", "png", "pdf"}`` per figure.

    ``tables``: `harness.paper.compact_tables` of ``result`` when the caller already has them (the main figure
    shows what the main tables show)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unit = result.provenance.get("budget_unit") or result.config.get("unit", "rel")
    specs = []
    if tables is None:
        from .paper import compact_tables

        tables = compact_tables(result)
    if tables:
        per_unit = {}  # one chance bound per model and evaluation unit (its test trials), averaged like the curves
        for r in result.rows:
            if r.get("chance_rca") is not None and r["threat_model"] == "white_box":
                unit_key = (r.get("subject"), r.get("session"), r.get("fold"), r.get("train_seed"))
                per_unit.setdefault(r["model"], {}).setdefault(unit_key, r["chance_rca"])
        chance = {m: sum(v.values()) / len(v) for m, v in per_unit.items()}
        n_units = max(t.n_units for t in tables)
        what = ("95 % Clopper-Pearson bands over the test trials, n = 1 evaluation" if n_units == 1 else
                f"mean over up to {n_units} units with 95 % bands "
                f"({', '.join(sorted({m for t in tables for m in t.ci_methods}))})")
        text = ("Robust accuracy (per-trial worst case over each threat model's attacks of one norm) against "
                f"epsilon, one panel per threat model and norm; {what}; dotted: chance level (the accuracy that "
                "always answering the majority class stays below with 95 % probability on the test trials, averaged "
                "over the evaluation units); "
                "hollow markers: budgets at which not every attack of the panel ran.")
        for name, width in (("main_accuracy", DOUBLE_COLUMN), ("main_accuracy_single", SINGLE_COLUMN)):
            specs.append((name, lambda width=width: main_accuracy(tables, chance, width=width, unit=unit),
                          text + f" {width:g} in wide."))
    if any(r["epsilon"] > 0 and r["threat_model"] != "control" for r in linf_rows(result.rows)):  # L2-only: none
        specs += [("accuracy_epsilon", lambda: accuracy_vs_epsilon(result.rows, unit),
                   "Adversarial RCA against epsilon: per threat model, at each budget, the single L∞ attack with the "
                   "lowest accuracy (mean over units), one line per model; not the per-trial worst case of the main "
                   "figure, which can only be lower."),
                  ("accuracy_snr", lambda: accuracy_vs_snr(result.rows),
                   "The same single-attack accuracy against that attack's SNR in dB (the clean trials' energy over "
                   "the perturbation's, summed over the attacked trials, then averaged over units; points at epsilon "
                   "0, infinite SNR, are left out).")]
    if any("queries" in b for b in result.outcomes):
        from .analysis import query_curve

        curve = query_curve(result.outcomes_frame())
        curve = curve[curve["epsilon"] > 0]
        if len(curve):
            specs.append(("accuracy_queries", lambda: accuracy_vs_queries(curve),
                          "Black-box robust accuracy against the queries spent per trial, per budget (a trial is "
                          "fooled from the query that first flipped its label)."))
    conf = _confusion_frame(result)
    if conf is not None:
        classes = result.provenance.get("classes") or sorted(set(conf["true"]))
        c_eps = float(conf["epsilon"].iloc[0])
        specs.append(("confusion", lambda: confusion_matrices(conf, classes),
                      f"Confusion matrices (counts; rows: true class) on the test trials, clean and under each model's "
                      f"strongest white-box L∞ attack at ε = {c_eps:g}."))
    seen: set = set()
    for ex in result.examples:
        pos2d, source = channel_positions(ex["ch_names"], (result.provenance or {}).get("ch_pos"))
        if pos2d is not None:
            stem_t = slug(ex["model"])
            specs.append((f"topomap_{stem_t}", lambda ex=ex, pos2d=pos2d, source=source: topomap(ex, pos2d, source),
                          f"Per-channel energy of the perturbation on the scalp: {example_title(ex)}."))
    for ex in result.examples:
        stem = slug(ex["model"])
        stem = stem if stem not in seen else f"{stem}-{len(seen)}"
        seen.add(stem)
        specs.append((f"traces_{stem}", lambda ex=ex: traces(ex),
                      f"EEG traces of one fooled trial: {example_title(ex)}."))
        specs.append((f"spectrum_{stem}", lambda ex=ex: spectrum(ex),
                      f"Welch power spectrum of the perturbation against the clean signal: {example_title(ex)}."))
    n = n_caption(result)
    specs = [(name, build, f"{caption} {n}") for name, build, caption in specs]
    # one figure at a time: drawn, saved, released
    return [{"name": name, "caption": caption, **save_figure(build(), out_dir, name)} for name, build, caption in specs]


def skipped_figures(result) -> list[str]:
    """Figures `draw_all` leaves out, and why (the report says so next to the figures)."""
    notes = []
    for ex in result.examples:
        pos2d, reason = channel_positions(ex["ch_names"], (result.provenance or {}).get("ch_pos"))
        if pos2d is None:
            notes.append(f"Topomap of {ex['model']}: {reason}.")
    return list(dict.fromkeys(notes))
