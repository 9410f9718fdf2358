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
THREAT_ORDER = ("white_box", "gray_box", "black_box", "control")
MAX_TRACE_CHANNELS = 8


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (model names go into figure file names)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def threats_present(rows) -> list[str]:
    """Threat models found in ``rows``, in the canonical order (unknown ones last, sorted)."""
    found = {r["threat_model"] for r in rows}
    return [t for t in THREAT_ORDER if t in found] + sorted(found - set(THREAT_ORDER))


def worst_case(rows, threat: str) -> dict[str, list[dict]]:
    """Per model, the L-inf attack with the lowest adversarial RCA at each epsilon (seeds averaged), by epsilon.

    Only L-inf attacks (the budget's own norm) enter: an L2 attack at the same epsilon has a larger L-inf norm,
    so pooling the two would mix budgets.

    Returns a mapping model -> list of ``{"epsilon", "adv_rca", "snr_db", "attack"}``.
    """
    cells = defaultdict(list)
    for r in rows:
        if r["threat_model"] == threat and r.get("norm", "linf") == "linf":
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
                fig.savefig(tmp, format=ext, dpi=110, metadata={"CreationDate": None} if ext == "pdf" else None)
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
    threats = threats_present(rows)
    color = {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(r["model"] for r in rows))}  # same in every panel
    ncols = min(len(threats), 2)
    nrows = -(-len(threats) // ncols)
    fig = _new_figure(4.2 * ncols, 0.5 + 3.0 * nrows)
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
    label = "epsilon (x channel std)" if unit == "rel" else f"epsilon ({unit})"
    return _accuracy_figure(rows, "epsilon", label, "Accuracy vs budget")


def accuracy_vs_snr(rows) -> Figure:
    """Worst-case adversarial RCA against the perturbation's SNR (dB), one panel per threat model."""
    fig = _accuracy_figure(rows, "snr_db", "SNR of signal to perturbation (dB)", "Accuracy vs SNR")
    for ax in fig.axes:
        ax.invert_xaxis()  # weaker perturbation (higher SNR) on the left, as epsilon grows to the right
    return fig


def accuracy_vs_queries(curve) -> Figure:
    """Robust accuracy against queries per trial (log scale), one panel per budget, one line per model x attack."""
    eps_values = sorted(curve["epsilon"].unique())
    fig = _new_figure(4.2 * len(eps_values), 3.4)
    axes = fig.subplots(1, len(eps_values), squeeze=False, sharey=True)[0]
    means = curve.groupby(["model", "attack", "epsilon", "queries"], sort=False)["robust_rca"].mean().reset_index()
    for ax, eps in zip(axes, eps_values):
        for (model, attack), g in means[means["epsilon"] == eps].groupby(["model", "attack"], sort=False):
            ax.plot(g["queries"], g["robust_rca"], marker=".", label=f"{model} {attack}")
        ax.set_xscale("log")
        ax.set_title(f"epsilon {eps:g}")
        ax.set_xlabel("queries per trial")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("robust RCA (black-box)")
    axes[0].legend(fontsize="x-small")
    fig.suptitle("Accuracy vs queries")
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
    fig = _new_figure(9, 0.9 + 1.1 * len(chans))
    axes = fig.subplots(len(chans), 2, sharex=True, squeeze=False)
    for row, c in zip(axes, chans):
        name = example["ch_names"][c]
        row[0].plot(t, clean[c], lw=0.9, label="clean")
        row[0].plot(t, adv[c], lw=0.9, ls="--", label="adversarial")
        row[0].set_ylabel(f"{name}\n(uV)", fontsize="small")
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
    fig = _new_figure(6, 3.4)
    ax = fig.subplots()
    floor = np.finfo(float).tiny
    ax.semilogy(freqs, np.maximum(p_signal.mean(axis=0), floor), label="signal (clean trial)")
    ax.semilogy(freqs, np.maximum(p_delta.mean(axis=0), floor), label="perturbation", color="C3")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD (uV^2/Hz), channel mean")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    ax.set_title(example_title(example), fontsize="small")
    return fig


def draw_all(result, out_dir) -> list[dict]:
    """Draw every report figure into ``out_dir``; return ``{"name", "caption", "png", "pdf"}`` per figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unit = result.provenance.get("budget_unit") or result.config.get("unit", "rel")
    specs = [("accuracy_epsilon", lambda: accuracy_vs_epsilon(result.rows, unit),
              "Adversarial RCA against epsilon: per threat model the worst L∞ attack at each budget, one line per "
              "model (seeds averaged)."),
             ("accuracy_snr", lambda: accuracy_vs_snr(result.rows),
              "The same worst-case accuracy against the perturbation's median SNR in dB (points at epsilon 0, "
              "infinite SNR, are left out).")]
    if any("queries" in b for b in result.outcomes):
        from .analysis import query_curve

        curve = query_curve(result.outcomes_frame())
        curve = curve[curve["epsilon"] > 0]
        if len(curve):
            specs.append(("accuracy_queries", lambda: accuracy_vs_queries(curve),
                          "Black-box robust accuracy against the queries spent per trial, per budget (a trial is "
                          "fooled from the query that first flipped its label)."))
    seen: set = set()
    for ex in result.examples:
        stem = slug(ex["model"])
        stem = stem if stem not in seen else f"{stem}-{len(seen)}"
        seen.add(stem)
        specs.append((f"traces_{stem}", lambda ex=ex: traces(ex),
                      f"EEG traces of one fooled trial: {example_title(ex)}."))
        specs.append((f"spectrum_{stem}", lambda ex=ex: spectrum(ex),
                      f"Welch power spectrum of the perturbation against the clean signal: {example_title(ex)}."))
    # one figure at a time: drawn, saved, released
    return [{"name": name, "caption": caption, **save_figure(build(), out_dir, name)} for name, build, caption in specs]
