"""`run_cell`: the one evaluator. Every command (run, demo, audit, the GAN comparison, `assert_robust`) ends here.

Evaluation follows AutoAttack: clean predictions first; the attack runs on the trials still classified correctly
(the noise control on all); a trial is robust if it is correct before and after. Each cell gives one row per
budget and the per-trial outcomes (label, clean prediction, adversarial prediction per budget), so the worst case
over attacks can be taken per trial later and confusion matrices derived without re-running anything.
"""

from __future__ import annotations

import ctypes
import functools
import time
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ..attacks.base import ModelOutputError
from ..attacks.budget import norm_as_epsilon
from ..attacks import ATTACKS, JacobianSubstitute, TransferAttack, channel_scale, make_attack
from ..data import EEGData
from ..data.splits import disjoint_indices
from ..models import TrainConfig, predict, predict_logits
from .cache import fit_substitute
from .metrics import bca, perturbation_stats, rca, signal_energy
from .plan import AttackSpec, Cell

#: Row columns that identify where a row comes from (MOABB-like), before the measured ones.
KEY_COLUMNS = ("dataset", "subject", "session", "fold", "protocol", "model", "arm", "train_seed", "attack_seed")


@dataclass
class FoldContext:
    """What every cell of one fold shares: evaluation trials, budget scale, the black-box seed split, substitutes.

    Parameters
    ----------
    test : EEGData
        Evaluation trials of the fold (after the suite's ``n_trials`` draw).
    unit : {"rel", "uV"}
        Budget unit; the per-channel scale is computed from ``test``.
    n_seed_trials : int
        Size of the black-box attacker's seed set, drawn from ``test`` and held out of black-box evaluation.
    substitutes : dict of str to nn.Module
        Gray-box substitutes by architecture, trained on the fold's training data.
    cache_dir : str or None
        Folder of the victim cache, where black-box Jacobian substitutes are cached too (`harness.cache
        .fit_substitute`); None: trained every time, never written.
    """

    test: EEGData
    unit: str = "rel"
    n_seed_trials: int = 0
    substitutes: dict = field(default_factory=dict)
    cache_dir: str | None = None

    def __post_init__(self):
        self.scale = channel_scale(self.test.X, self.unit)
        n_seed = min(self.n_seed_trials, self.test.n_trials // 2)
        if n_seed >= 1:
            self.seed_idx, self.bb_idx = disjoint_indices(self.test, n_seed, random_state=0)
        else:
            self.seed_idx, self.bb_idx = np.arange(0), np.arange(self.test.n_trials)
        self._transfer: dict = {}
        self._clean: dict = {}

    def clean_predictions(self, victim_id: str, victim: nn.Module) -> np.ndarray:
        if victim_id not in self._clean:
            self._clean[victim_id] = predict(victim, self.test.X)
        return self._clean[victim_id]

    def transfer_attack(self, spec: AttackSpec) -> TransferAttack:
        """One TransferAttack per substitute and base, reused across victims (it keeps what it crafted)."""
        key = (spec.substitute, spec.attack, spec.params)
        if key not in self._transfer:
            if set(self._transfer) and next(iter(self._transfer))[0] != spec.substitute:
                self._transfer.clear()  # cells run substitute by substitute: free the previous one's trials
            base = make_attack(spec.attack, **spec.kwargs)
            self._transfer[key] = TransferAttack(surrogate=self.substitutes[spec.substitute], base=base,
                                                 surrogate_name=spec.substitute)
        return self._transfer[key]


@dataclass
class CellResult:
    """What one cell measured: rows (one per budget), per-trial outcomes, a kept example, attack extras."""

    cell: Cell
    rows: list
    outcomes: dict
    examples: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"cell": self.cell.to_dict(), "rows": self.rows, "outcomes": self.outcomes,
                "examples": self.examples, "info": self.info}

    @classmethod
    def from_dict(cls, d: dict) -> "CellResult":
        return cls(Cell.from_dict(d["cell"]), d["rows"], d["outcomes"], d.get("examples", []), d.get("info", {}))


def _build(spec: AttackSpec, victim, ctx: FoldContext, seed: int, info: dict):
    """The attack object and the trials (indices into ``ctx.test``) it is evaluated on."""
    if spec.threat_model == "gray_box":
        return ctx.transfer_attack(spec), np.arange(ctx.test.n_trials)
    if spec.threat_model == "black_box":
        if spec.attack == "substitute":
            p = spec.kwargs
            base = make_attack(p["base"], **({"steps": p["base_steps"]} if p["base"].endswith("pgd") else {}))
            attack = JacobianSubstitute(seed=ctx.test.subset(ctx.seed_idx), arch=p["arch"], rounds=p["rounds"],
                                        base=base, random_state=seed, train_config=TrainConfig.from_dict(
                                            {"max_epochs": 10, "patience": None, "val_fraction": 0.0,
                                             "show_progress": False, "seed": seed}))
            fit_substitute(attack, victim, ctx.scale, ctx.cache_dir)
            bb = ctx.test.X[ctx.bb_idx]
            info["agreement"] = float(np.mean(predict(attack.substitute_, bb) == predict(victim, bb)))
            info["training_queries"] = int(attack.training_queries_)
            if attack.members_:  # "agreement": each member's held-out agreement, and the one chosen
                info["substitute_members"] = dict(attack.members_)
                info["substitute_chosen"] = str(attack.substitute_.arch)
            return attack, ctx.bb_idx
        return make_attack(spec.attack, **spec.kwargs), ctx.bb_idx
    if getattr(ATTACKS.get(spec.attack), "needs_fit_data", False):  # universal perturbations: fit on held-out trials
        return make_attack(spec.attack, fit_data=ctx.test.subset(ctx.seed_idx), **spec.kwargs), ctx.bb_idx
    return make_attack(spec.attack, **spec.kwargs), np.arange(ctx.test.n_trials)


def run_cell(cell: Cell, victim: nn.Module, ctx: FoldContext, *, keep_example: bool = False,
             attack=None) -> CellResult:
    """Run one cell: its attack at every budget on the fold's trials; return rows and per-trial outcomes.

    Parameters
    ----------
    cell : Cell
        What to run (`harness.plan`).
    victim : torch.nn.Module
        The model ``cell.victim_id`` names, mapping microvolts to logits, in eval mode.
    ctx : FoldContext
        The fold's evaluation trials, budget scale, black-box split and substitutes.
    keep_example : bool, default=False
        Keep one fooled trial (clean and adversarial microvolts) for the report's figures.
    attack : attacks.Attack or None
        An attack object built by the caller (e.g. a `TransferAttack` with its surrogate, handed to
        `assert_robust`); it then runs on every trial of ``ctx.test``. None: built from ``cell.attack``.
    """
    spec, seed, info = cell.attack, cell.attack_seed, {}
    if attack is None:
        attack, trials = _build(spec, victim, ctx, seed, info)
    else:
        trials = np.arange(ctx.test.n_trials)
    info["attack_repr"] = repr(attack)  # every parameter, for the methods paragraph of the report
    data = ctx.test.subset(trials)
    clean = ctx.clean_predictions(cell.victim_id, victim)[trials]
    idx = np.arange(data.n_trials) if spec.all_trials else np.flatnonzero(clean == data.y)
    t0 = time.perf_counter()
    if len(idx):
        outputs = attack(victim, data.X[idx], data.y[idx], epsilons=spec.epsilons, scale=ctx.scale,
                         random_state=seed, sfreq=data.sfreq)
    else:
        outputs = [None] * len(spec.epsilons)
    wall = (time.perf_counter() - t0) / len(spec.epsilons)
    keys = {k: getattr(cell, k) for k in KEY_COLUMNS}
    rows, adv_preds, examples, queries = [], {}, [], {}
    chance = chance_rca(data.y)
    correct = clean[idx] == data.y[idx]
    signal = signal_energy(data.X, data.sfreq)  # the clean trials' energies, shared by every budget's SNR
    previous = None  # the last budget's adversarial trials and their predictions
    for eps, out in zip(spec.epsilons, outputs):
        X_adv = data.X.copy()
        if out is not None:
            X_adv[idx] = out.X_adv
        adv = clean.copy()  # trials not attacked keep their clean input, so their clean prediction
        if out is not None:
            adv[idx] = _predict_new(victim, data.X[idx], clean[idx], out.X_adv, previous, attack.name, eps)
            previous = (out.X_adv, adv[idx])
        fooled = (adv[idx] != data.y[idx]) & correct
        row = {
            **keys, "threat_model": spec.threat_model, "attack": attack.name, "substitute": spec.substitute,
            "norm": attack.norm, "epsilon": float(eps), "seed": seed, "n_trials": data.n_trials,
            "clean_rca": rca(data.y, clean), "clean_bca": bca(data.y, clean), "chance_rca": chance,
            "adv_rca": rca(data.y, adv), "adv_bca": bca(data.y, adv),
            "success_rate": float(fooled.sum() / max(correct.sum(), 1)),
            **perturbation_stats(data.X, X_adv, ctx.scale, attacked=idx, fooled=_fooled_mask(fooled, idx, data),
                                 sfreq=data.sfreq, signal=signal),
            "median_min_norm": (float(np.median(norm_as_epsilon(out.min_norm, attack.norm, data.n_chans,
                                                                data.n_times)))
                                if out is not None and out.min_norm is not None else None),  # on the epsilon grid
            "queries_per_trial": (float(np.mean(out.n_queries)) if out is not None and out.n_queries is not None
                                  else None),
            "wall_s": round(wall, 3), "info": dict(info, **(out.info if out is not None else {})),
        }
        if out is not None and out.min_norm is not None:  # trials no perturbation of any size flipped
            row["info"]["never_fooled"] = int(np.isinf(out.min_norm).sum())
        row["drop"] = row["clean_rca"] - row["adv_rca"]
        rows.append(row)
        adv_preds[repr(float(eps))] = adv.astype(int).tolist()
        if out is not None and out.n_queries is not None:  # queries until each attacked trial was first fooled
            q = np.full(data.n_trials, np.nan)
            q[idx] = out.n_queries
            queries[repr(float(eps))] = [None if np.isnan(v) else float(v) for v in q]
        if keep_example and spec.threat_model == "white_box" and fooled.any():
            # the largest budget that fooled a trial: a difference a reader can see in the traces
            examples[:] = [_example(row, data, idx[np.flatnonzero(fooled)[0]], X_adv, clean, adv)]
    outcomes = {"trial": trials.astype(int).tolist(), "y": data.y.astype(int).tolist(),
                "clean_pred": clean.astype(int).tolist(), "adv_pred": adv_preds}
    if queries:
        outcomes["queries"] = queries
    release_memory()
    return CellResult(cell, rows, outcomes, examples, info)


def release_memory() -> None:
    """Hand the memory an attack freed back to the OS (glibc's ``malloc_trim``; a no-op without glibc).

    An attack allocates and frees many large tensors of different sizes; glibc keeps the freed pages in its heap,
    so a study's resident memory grew cell after cell (the standard demo from 1.0 to 1.85 GB; with the trim after
    every cell it stays near 1.0-1.3 GB between cells, bench/demo.json's peak_rss_mb)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        return None
    return libc


def record_victim(result: CellResult, victim: nn.Module, victim_hash: str) -> CellResult:
    """Note in ``result.info`` which victim it measured: its hash and, for a victim trained under an arm
    (`harness.arms`), the arm's parameters and training seconds (``model.arm_``)."""
    result.info["victim_hash"] = victim_hash
    if getattr(victim, "arm_", None) is not None:
        result.info["arm"] = victim.arm_
    return result


def _fooled_mask(fooled, idx, data) -> np.ndarray:
    mask = np.zeros(data.n_trials, bool)
    mask[idx] = fooled
    return mask


def chance_rca(y, alpha: float = 0.05) -> float:
    """Accuracy that always predicting the majority class stays below with probability 1 - alpha (binomial)."""
    from scipy.stats import binom

    y = np.asarray(y)
    p0 = np.bincount(y).max() / len(y)
    return float(binom.ppf(1 - alpha, len(y), p0) / len(y))


def _predict_new(victim, X, clean, X_adv, previous, attack_name, eps) -> np.ndarray:
    """The victim's labels on ``X_adv``, predicting only the trials that are new: a trial the attack left unchanged
    keeps its clean prediction, and one identical to the previous budget's (a nested attack keeps the adversarial
    trial it found at a smaller budget; a minimal-norm attack's trial fits every larger budget) keeps that
    prediction. Every other trial goes through `_predict_checked`."""
    n = len(X_adv)
    labels = clean.copy()
    new = (X_adv != X).reshape(n, -1).any(axis=1)
    if previous is not None and len(previous[0]) == n:
        same = new & (X_adv == previous[0]).reshape(n, -1).all(axis=1)
        labels[same] = previous[1][same]
        new &= ~same
    if new.any():
        labels[new] = _predict_checked(victim, X_adv[new], attack_name, eps)
    return labels


def _predict_checked(victim, X_adv, attack_name, eps) -> np.ndarray:
    """Predictions on adversarial trials; NaN/Inf logits there are an error, never a silent class 0."""
    logits = predict_logits(victim, X_adv)
    bad = ~np.isfinite(logits).all(axis=1)
    if bad.any():
        raise ModelOutputError(f"the model returned NaN/Inf logits on {int(bad.sum())} of {len(bad)} trials perturbed "
                               f"by {attack_name} at epsilon={eps:g}; its outputs are not finite on inputs near the "
                               "data, so no robustness number can be computed.")
    return logits.argmax(axis=1)


def _example(row, data, i, X_adv, clean, adv) -> dict:
    """One fooled trial, so reports can draw traces and spectra without re-running an attack."""
    return {
        "model": row["model"], "subject": row["subject"], "fold": row["fold"], "attack": row["attack"],
        "epsilon": row["epsilon"], "trial": int(i), "sfreq": data.sfreq, "ch_names": list(data.ch_names),
        "label": data.classes[data.y[i]], "pred_clean": data.classes[clean[i]], "pred_adv": data.classes[adv[i]],
        "clean_uv": np.round(data.X[i].astype(np.float64), 4).tolist(),
        "adv_uv": np.round(X_adv[i].astype(np.float64), 4).tolist(),
    }
