"""EEG-GAN augmentation in the robustness loop: quality gates, gated mixing and the comparison (CLI: harness.cli).

The order is fixed so that synthetic data never reach validation or test trials:

1. the caller splits train/test; the GAN sees the training split only;
2. within it, 20 % of the real trials are held out from the GAN for the gates; when the decoders validate
   (``TrainConfig.val_fraction > 0``) the held-out trials are exactly the validation trials ``fit_model`` draws
   with the same seed (``models.stratified_split``), so early stopping never sees a trial the GAN was fitted on;
3. the gates compare synthetic with those held-out real trials; a failed gate refuses augmentation;
4. synthetic trials are appended to the training split (``data.mix_synthetic``), marked ``is_synthetic``.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..data import EEGData
from ..data._checks import ConfigError, DataError, EEGRobustError, check_option, check_random_state
from ..data.augment import check_ratio, mix_synthetic
from .report import comparison_table

logger = logging.getLogger(__name__)

#: Frequency bands of the band-power gate, in Hz, ``[low, high)``.
BANDS = {"delta": (0.5, 4.0), "theta": (4.0, 8.0), "mu_alpha": (8.0, 13.0), "beta": (13.0, 30.0)}
#: Rate (Hz) of the waveform features of the class-pattern, TSTR, memorisation and SWD gates.
FEATURE_SFREQ = 64.0
ARMS = ("none", "gan", "augment")
#: Suite overrides of the augmentation comparison (``demo --gan``, bench/bench_gan.py): white-box FGSM and PGD
#: plus the noise control, over the grid up to 0.2 where the arms still differ.
COMPARISON = dict(threat_models=("white_box", "control"), white_box=("fgsm", "linf_pgd"),
                  epsilons=(0.01, 0.03, 0.05, 0.1, 0.2), pgd_steps=10)


class GANQualityError(EEGRobustError, ValueError):
    """Synthetic data that failed a quality gate; augmentation with it is refused."""


class GANQualityWarning(UserWarning):
    """A quality gate failed but augmentation was forced."""


@dataclass(frozen=True)
class GateThresholds:
    """Pass marks of the GAN quality gates.

    Parameters
    ----------
    band_db_median, band_db_worst : float, default=2.0, 5.0
        Largest allowed median and worst absolute band-power difference (dB) over channels x bands.
    class_corr : float, default=0.5
        Smallest allowed (uncentered) correlation between the real and the synthetic class-difference pattern.
    chance_alpha : float, default=0.05
        Level of the one-sided binomial bound that train-on-synthetic / test-on-real accuracy must exceed.
    memorisation : float, default=0.7
        Smallest allowed nearest-neighbour ratio: median distance from synthetic trials to their nearest GAN-fit
        trial over that of held-out real trials (about 1 for new trials; on SCP1 0.1 for copies of fit trials plus
        2 µV noise and 0.5 for copies scaled by 1.3).
    swd_ratio : float, default=3.0
        Largest allowed sliced Wasserstein distance to held-out real trials, relative to that of GAN-fit trials of
        the same size (on SCP1: 2.7 for the other session's real trials, 3.4 for fit trials scaled by 1.3, 10.9
        for white noise with the channels' mean and std).
    """

    band_db_median: float = 2.0
    band_db_worst: float = 5.0
    class_corr: float = 0.5
    chance_alpha: float = 0.05
    memorisation: float = 0.7
    swd_ratio: float = 3.0

    def __post_init__(self):
        bad = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
               if not isinstance(getattr(self, f.name), (int, float)) or not np.isfinite(getattr(self, f.name))]
        if bad or not 0 < self.chance_alpha < 1:
            raise ConfigError(f"GateThresholds need finite numbers and chance_alpha in (0, 1), got {bad or self}.")

    @classmethod
    def make(cls, value) -> GateThresholds:
        if value is None:
            return cls()
        return value if isinstance(value, cls) else cls(**dict(value))


# -- features ------------------------------------------------------------------------------------------------------
def band_power(X, sfreq: float, bands=None) -> np.ndarray:
    """Mean Welch power spectral density in each band, shape (n_trials, n_chans, n_bands), µV²/Hz.

    Bands reaching above Nyquist are left out; the Welch window is ``min(n_times, 2 s)``.
    """
    from scipy.signal import welch

    bands = _bands(sfreq, bands)
    X = np.asarray(X, dtype=np.float64)
    nperseg = int(min(X.shape[-1], 2 * sfreq))
    freqs, psd = welch(X, fs=sfreq, nperseg=nperseg, axis=-1)
    out = []
    for low, high in bands.values():
        sel = (freqs >= low) & (freqs < high)
        out.append(psd[..., sel].mean(-1) if sel.any() else np.full(psd.shape[:-1], np.nan))
    return np.stack(out, axis=-1)


def _bands(sfreq, bands=None) -> dict:
    bands = BANDS if bands is None else bands
    return {k: v for k, v in bands.items() if v[1] <= sfreq / 2}


def waveform(X, sfreq: float) -> np.ndarray:
    """Trials low-passed and resampled to at most ``FEATURE_SFREQ`` Hz (polyphase, anti-aliased), float64."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    X = np.asarray(X, dtype=np.float64)
    if sfreq <= FEATURE_SFREQ:
        return X
    ratio = Fraction(FEATURE_SFREQ / sfreq).limit_denominator(64)
    return resample_poly(X, ratio.numerator, ratio.denominator, axis=-1)


def class_patterns(X, y, sfreq: float, n_classes: int) -> dict[str, np.ndarray]:
    """Class-difference patterns of two feature families, flattened.

    ``"waveform"``: each class's mean waveform per channel minus the mean over classes (slow cortical potentials
    and ERPs live here). ``"band_power"``: the same for log band power per channel and band, in dB (motor rhythms
    live here). With two classes the pattern of class 1 is returned (class 0's is its negative).
    """
    feats = {"waveform": waveform(X, sfreq), "band_power": 10 * np.log10(band_power(X, sfreq))}
    out = {}
    for name, F in feats.items():
        means = np.stack([F[y == k].mean(0) for k in range(n_classes)])
        diff = means - means.mean(0)
        out[name] = (diff[1:] if n_classes == 2 else diff).ravel()
    return out


def _cosine(a, b) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else 0.0


def _flat_features(X, sfreq, mean, std) -> np.ndarray:
    """Standardized (with the fit part's channel statistics) low-rate waveforms, one row per trial."""
    W = waveform((np.asarray(X, np.float64) - mean) / std, sfreq)
    return W.reshape(len(W), -1)


def _tstr_features(X, sfreq) -> np.ndarray:
    return np.concatenate([waveform(X, sfreq).reshape(len(X), -1),
                           10 * np.log10(band_power(X, sfreq)).reshape(len(X), -1)], axis=1)


def _tstr_accuracy(X_train, y_train, X_test, y_test) -> float:
    """L2 logistic regression (C=0.01) on standardized waveform + log band-power features (fast, deterministic).

    Strong regularization keeps the classifier on the features both sets share; an LDA fitted on synthetic
    trials proved sensitive to small class-mean offsets and predicted one class for most real trials.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    clf.fit(np.nan_to_num(X_train), y_train)
    return float(np.mean(clf.predict(np.nan_to_num(X_test)) == y_test))


def chance_bound(y_test, alpha: float = 0.05) -> float:
    """Accuracy a classifier guessing the majority class exceeds with probability ``alpha`` (binomial, one-sided)."""
    from scipy.stats import binom

    n = len(y_test)
    p = np.bincount(y_test).max() / n
    return float(binom.ppf(1 - alpha, n, p) / n)


def sliced_wasserstein(A, B, n_projections: int = 256, random_state=0) -> float:
    """Sliced 1-Wasserstein distance between two equally sized sets of vectors (rows)."""
    if len(A) != len(B):
        raise ValueError(f"A and B must hold the same number of rows, got {len(A)} and {len(B)}.")
    rng = check_random_state(random_state)
    directions = rng.standard_normal((A.shape[1], n_projections))
    directions /= np.linalg.norm(directions, axis=0)
    return float(np.mean(np.abs(np.sort(A @ directions, axis=0) - np.sort(B @ directions, axis=0))))


def _nn_distance(A, B) -> np.ndarray:
    """Distance from each row of A to its nearest row of B."""
    d2 = (A**2).sum(1)[:, None] - 2 * A @ B.T + (B**2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2.min(1), 0))


def _matched_subset(y_ref, y_pool, rng) -> np.ndarray:
    """Indices into ``y_pool`` with the class counts of ``y_ref``."""
    return np.concatenate([rng.choice(np.flatnonzero(y_pool == k), np.sum(y_ref == k), replace=False)
                           for k in np.unique(y_ref)])


# -- the gates -----------------------------------------------------------------------------------------------------
def evaluate_gan(gan, fit: EEGData, holdout: EEGData, *, thresholds=None, n_synthetic: int | None = None,
                 n_repeats: int = 5, random_state=0) -> dict:
    """Compare synthetic trials with real trials the GAN never saw; return the gates and the numbers behind them.

    Parameters
    ----------
    gan : models.gan.EEGGAN
        The fitted generator.
    fit : EEGData
        The real trials the GAN was fitted on (reference for train-on-real and memorisation).
    holdout : EEGData
        Real trials the GAN never saw, from the training split (never the test split).
    thresholds : GateThresholds, dict or None
        Pass marks; None uses the defaults.
    n_synthetic : int or None, default=None
        Synthetic trials drawn (classes balanced); None draws as many as ``fit`` holds.
    n_repeats : int, default=5
        Random equal-size subsets averaged for the memorisation and SWD ratios.
    random_state : int | np.random.Generator | None, default=0
        Seed of the synthetic draw, the subsets and the projections.

    Returns
    -------
    report : dict
        ``passed`` (bool), ``gates`` (list of dicts: name, value, threshold, op, passed, detail), and the details:
        ``band_power_db`` (synthetic minus held-out real, per channel and band, and real fit-vs-held-out for
        reference), ``class_pattern``, ``tstr``, ``memorisation``, ``swd``, ``n_fit``, ``n_holdout``,
        ``n_synthetic``.
    """
    thresholds = GateThresholds.make(thresholds)
    rng = check_random_state(random_state)
    _check_same_layout(gan, fit, "fit")
    _check_same_layout(gan, holdout, "holdout")
    n_syn = fit.n_trials if n_synthetic is None else int(n_synthetic)
    syn = gan.sample_data(n_syn, random_state=rng)
    sfreq, K = holdout.sfreq, holdout.n_classes
    report = {"n_fit": fit.n_trials, "n_holdout": holdout.n_trials, "n_synthetic": n_syn,
              "thresholds": asdict(thresholds)}
    report["band_power_db"] = _band_gate(syn, fit, holdout)
    report["class_pattern"] = _pattern_gate(syn, fit, holdout, sfreq, K)
    bound = chance_bound(holdout.y, thresholds.chance_alpha)
    F_hold = _tstr_features(holdout.X, sfreq)
    report["tstr"] = {"tstr_acc": _tstr_accuracy(_tstr_features(syn.X, sfreq), syn.y, F_hold, holdout.y),
                      "trtr_acc": _tstr_accuracy(_tstr_features(fit.X, sfreq), fit.y, F_hold, holdout.y),
                      "chance_bound": bound, "chance_alpha": thresholds.chance_alpha,
                      "classifier": "L2 logistic regression, C=0.01"}
    report["tstr"]["tstr_minus_trtr"] = report["tstr"]["tstr_acc"] - report["tstr"]["trtr_acc"]
    report.update(_distance_gates(syn, fit, holdout, n_repeats, rng))
    report["gates"] = _gate_list(report, thresholds)
    report["passed"] = all(g["passed"] for g in report["gates"])
    return report


def _check_same_layout(gan, data, what):
    if tuple(gan.ch_names) != data.ch_names or gan.sfreq != data.sfreq or gan.n_times != data.n_times:
        raise DataError(f"the generator makes {len(gan.ch_names)} channels x {gan.n_times} samples at "
                        f"{gan.sfreq:g} Hz ({list(gan.ch_names)}), {what} has {data.n_chans} x {data.n_times} at "
                        f"{data.sfreq:g} Hz ({list(data.ch_names)}).")
    if tuple(gan.classes) != data.classes:
        raise DataError(f"the generator's classes {tuple(gan.classes)} differ from {what}'s {data.classes}.")


def _band_gate(syn, fit, holdout) -> dict:
    bands = list(_bands(holdout.sfreq))
    def db(d):  # (n_chans, n_bands)
        return 10 * np.log10(band_power(d.X, d.sfreq).mean(0))

    real = db(holdout)
    diff = db(syn) - real
    ref = db(fit) - real
    return {"channels": list(holdout.ch_names), "bands": bands, "diff_db": np.round(diff, 3).tolist(),
            "median_abs_db": float(np.median(np.abs(diff))), "worst_abs_db": float(np.max(np.abs(diff))),
            "worst": _worst_cell(diff, holdout.ch_names, bands),
            "real_vs_real_median_abs_db": float(np.median(np.abs(ref))),
            "real_vs_real_worst_abs_db": float(np.max(np.abs(ref)))}


def _worst_cell(diff, ch_names, bands) -> str:
    c, b = np.unravel_index(np.argmax(np.abs(diff)), diff.shape)
    return f"{ch_names[c]} {bands[b]} {diff[c, b]:+.2f} dB"


def _pattern_gate(syn, fit, holdout, sfreq, K) -> dict:
    p_hold = class_patterns(holdout.X, holdout.y, sfreq, K)
    p_fit = class_patterns(fit.X, fit.y, sfreq, K)
    p_syn = class_patterns(syn.X, syn.y, sfreq, K)
    reliability = {k: _cosine(p_fit[k], p_hold[k]) for k in p_hold}
    corr = {k: _cosine(p_syn[k], p_hold[k]) for k in p_hold}
    family = max(reliability, key=reliability.get)
    return {"family": family, "corr": corr[family], "corr_by_family": corr, "real_reliability": reliability,
            "note": "uncentered correlation with the held-out real pattern; the family whose real pattern "
                    "reproduces best between the GAN's fit trials and the held-out trials carries the class"}


def _distance_gates(syn, fit, holdout, n_repeats, rng) -> dict:
    mean = fit.X.mean(axis=(0, 2), dtype=np.float64)[:, None]
    std = fit.X.std(axis=(0, 2), dtype=np.float64)[:, None]
    wave = {k: _flat_features(d.X, d.sfreq, mean, std) for k, d in (("syn", syn), ("fit", fit), ("hold", holdout))}
    memo = np.median(_nn_distance(wave["syn"], wave["fit"])) / np.median(_nn_distance(wave["hold"], wave["fit"]))
    feats = _swd_features(fit, syn, holdout)
    swd_syn, swd_real = [], []
    for _ in range(n_repeats):
        fit_sub, syn_sub = _matched_subset(holdout.y, fit.y, rng), _matched_subset(holdout.y, syn.y, rng)
        seed = int(rng.integers(2**31 - 1))
        swd_syn.append(sliced_wasserstein(feats["syn"][syn_sub], feats["hold"], random_state=seed))
        swd_real.append(sliced_wasserstein(feats["fit"][fit_sub], feats["hold"], random_state=seed))
    return {"memorisation": {"ratio": float(memo),
                             "note": "median distance of synthetic trials to their nearest GAN-fit trial / that of "
                                     "held-out real trials (standardized low-rate waveforms); copies give ~0.1"},
            "swd": {"ratio": float(np.mean(swd_syn) / np.mean(swd_real)), "synthetic_vs_real": float(np.mean(swd_syn)),
                    "real_vs_real": float(np.mean(swd_real)),
                    "note": "sliced Wasserstein distance to the held-out trials (standardized waveform and log band "
                            "power features), relative to GAN-fit trials of the same size and classes"}}


def _swd_features(fit, syn, holdout) -> dict:
    """Waveform and log band-power features, z-scored with the fit trials; each family weighs the same."""
    parts = {k: (waveform(d.X, d.sfreq).reshape(d.n_trials, -1),
                 10 * np.log10(band_power(d.X, d.sfreq)).reshape(d.n_trials, -1))
             for k, d in (("fit", fit), ("syn", syn), ("hold", holdout))}
    out = {k: [] for k in parts}
    for i in range(2):
        ref = parts["fit"][i]
        mu, sd = ref.mean(0), np.maximum(ref.std(0), 1e-12) * np.sqrt(ref.shape[1])
        for k in parts:
            out[k].append((parts[k][i] - mu) / sd)
    return {k: np.nan_to_num(np.hstack(v)) for k, v in out.items()}


def _gate_list(r, t: GateThresholds) -> list[dict]:
    bp, cp, ts = r["band_power_db"], r["class_pattern"], r["tstr"]
    rows = [
        ("band_power_median_db", bp["median_abs_db"], "<=", t.band_db_median,
         (f"median |synthetic - real| band power over channels x bands (real vs real: "
          f"{bp['real_vs_real_median_abs_db']:.2f} dB)")),
        ("band_power_worst_db", bp["worst_abs_db"], "<=", t.band_db_worst,
         f"worst channel and band: {bp['worst']} (real vs real: {bp['real_vs_real_worst_abs_db']:.2f} dB)"),
        ("class_pattern_corr", cp["corr"], ">=", t.class_corr,
         (f"{cp['family']} pattern (real reliability {cp['real_reliability'][cp['family']]:.2f}); "
          "negative means swapped labels, near 0 ignored labels")),
        ("tstr_above_chance", ts["tstr_acc"], ">", ts["chance_bound"],
         (f"train-on-synthetic/test-on-real accuracy vs the binomial chance bound (alpha={ts['chance_alpha']:g}); "
          f"train-on-real {ts['trtr_acc']:.3f}")),
        ("memorisation_ratio", r["memorisation"]["ratio"], ">=", t.memorisation,
         "distance from synthetic trials to their nearest GAN-fit trial / that of held-out trials (copies: ~0.1)"),
        ("swd_ratio", r["swd"]["ratio"], "<=", t.swd_ratio,
         "sliced Wasserstein distance to held-out trials relative to that of GAN-fit trials"),
    ]
    ops = {"<=": np.less_equal, ">=": np.greater_equal, ">": np.greater}
    return [{"name": n, "value": float(v), "op": op, "threshold": float(th), "passed": bool(ops[op](v, th)),
             "detail": d} for n, v, op, th, d in rows]


def gate_failures(report: dict) -> list[str]:
    """One line per failed gate: name, value and the pass mark."""
    return [f"{g['name']} = {g['value']:.3g} (needs {g['op']} {g['threshold']:.3g}; {g['detail']})"
            for g in report["gates"] if not g["passed"]]


def check_gates(report: dict, *, force: bool = False) -> bool:
    """Raise :class:`GANQualityError` naming every failed gate and its value, unless ``force``.

    With ``force`` a failure warns (:class:`GANQualityWarning`) and ``report["forced"]`` is set to True. Returns
    whether all gates passed.
    """
    failures = gate_failures(report)
    report["forced"] = bool(failures) and force
    if failures and not force:
        raise GANQualityError("GAN augmentation refused: quality gate " + "; ".join(failures)
                              + ". Pass force=True (CLI --force-gan) to augment anyway.")
    if failures:
        warnings.warn("GAN augmentation forced despite failed quality gate(s): " + "; ".join(failures),
                      GANQualityWarning, stacklevel=2)
    return not failures


# -- training with gates, and gated mixing -------------------------------------------------------------------------
def gan_holdout_split(train: EEGData, val_fraction: float = 0.2, seed: int = 0):
    """(fit, holdout) indices into ``train``: the same split ``fit_model`` draws with ``TrainConfig(seed=seed)``.

    Only real trials are candidates, so the indices are valid for a mixed set that keeps the real trials first.
    """
    from ..models import stratified_split

    real = np.flatnonzero(~train.is_synthetic)
    fit_idx, val_idx = stratified_split(train.y, val_fraction, np.random.default_rng(seed), candidates=real)
    return np.intersect1d(fit_idx, real), val_idx


def train_gan_with_gates(train: EEGData, gan_config=None, *, val_fraction: float = 0.2, seed: int = 0,
                         thresholds=None, event_id=None, device="cpu"):
    """Fit an EEG-GAN on the training split minus its held-out trials, then gate it on those trials.

    Parameters
    ----------
    train : EEGData
        The training split (real trials; test trials must not be in it).
    gan_config : models.gan.GANConfig, dict or None
        GAN settings; its ``seed`` is replaced by ``seed``.
    val_fraction : float, default=0.2
        Share of the real trials held out; use the decoders' ``TrainConfig.val_fraction`` (0 is replaced by 0.2).
    seed : int, default=0
        Seed of the split (as ``fit_model``'s with the same seed), the GAN and the gates.
    device : str, default="cpu"
        Where the GAN trains (`models.gan.fit_gan`).

    Returns
    -------
    gan : models.gan.EEGGAN
    report : dict
        :func:`evaluate_gan`'s report plus ``holdout_indices`` (into ``train``), ``fit_seconds`` and ``gan_config``.
    """
    from ..models.gan import GANConfig, fit_gan

    val_fraction = val_fraction or 0.2
    fit_idx, hold_idx = gan_holdout_split(train, val_fraction, seed)
    fit, holdout = train.subset(fit_idx), train.subset(hold_idx)
    config = GANConfig.make(gan_config)
    config = GANConfig.from_dict({**config.to_dict(), "seed": seed})
    gan = fit_gan(fit, config, event_id=event_id, device=device)
    report = evaluate_gan(gan, fit, holdout, thresholds=thresholds, random_state=seed)
    report.update(holdout_indices=hold_idx.tolist(), fit_seconds=round(gan.fit_seconds_, 1),
                  gan_config=config.to_dict())
    logger.info("EEG-GAN (seed %d) trained in %.0f s; gates %s", seed, gan.fit_seconds_,
                "passed" if report["passed"] else "FAILED: " + "; ".join(gate_failures(report)))
    return gan, report


def augment_with_gan(train: EEGData, gan, ratio: float, *, report: dict | None = None, force: bool = False,
                     random_state=0) -> EEGData:
    """Append ``round(ratio * n_real)`` class-balanced synthetic trials to ``train`` if the gates allow it.

    ``report`` is the gate report of ``gan`` (:func:`train_gan_with_gates`); without one augmentation is refused
    unless ``force``. Raises :class:`GANQualityError` on a failed gate (``force`` warns instead) and ConfigError
    for a negative ``ratio``.
    """
    ratio = check_ratio(ratio, "gan_ratio")
    _check_same_layout(gan, train, "train")
    if report is None:
        if not force:
            raise GANQualityError("GAN augmentation refused: no gate report for this generator; evaluate it with "
                                  "harness.gan.evaluate_gan (or pass force=True, CLI --force-gan).")
    else:
        check_gates(report, force=force)
    rng = check_random_state(random_state)
    return mix_synthetic(train, lambda n, label: gan.sample(n, label, random_state=rng), ratio, random_state=rng)


# -- the comparison ------------------------------------------------------------------------------------------------
def _arm_name(arch: str, arm: str) -> str:
    return arch if arm == "none" else f"{arch}+{arm}"


def run_gan_comparison(config, train: EEGData, test: EEGData, *, seeds=(0, 1, 2), gan_ratio: float = 1.0,
                       force_gan: bool = False, progress: bool = True, gan_config=None, thresholds=None,
                       arms=ARMS, pretrained=None, device="cpu"):
    """Train each model without augmentation, with gated EEG-GAN augmentation and with braindecode transforms,
    then run the same attack suite on all; one :class:`~harness.results.SuiteResult` for all of it.

    Parameters
    ----------
    config : SuiteConfig, dict, preset name or None
        The suite (models, attacks, epsilons, training settings); its ``seeds`` are replaced by ``seeds``.
    train, test : EEGData
        The training and test splits (µV). Synthetic trials are only ever added to ``train``.
    seeds : sequence of int, default=(0, 1, 2)
        One GAN, one decoder per model and arm, and one attack run per seed.
    gan_ratio : float, default=1.0
        Synthetic (and augmented) trials per real training trial.
    force_gan : bool, default=False
        Augment even when a gate fails (the result records it under ``provenance["gan"]``).
    gan_config : models.gan.GANConfig, dict or None
        GAN settings (``seed`` is set per run).
    thresholds : GateThresholds, dict or None
        Gate pass marks.
    arms : tuple of str, default=("none", "gan", "augment")
        Which arms to run.
    pretrained : mapping of int to (EEGGAN, report), optional
        Generators already trained by :func:`train_gan_with_gates` on ``train`` with these seeds (and the suite's
        ``val_fraction``); they are checked to have been fitted on exactly the trials this seed's split gives them.

    Returns
    -------
    result : SuiteResult
        Rows as :func:`harness.suite.run_suite` writes them, with ``model`` set to ``"eegnet"``, ``"eegnet+gan"``
        and ``"eegnet+augment"`` (so reports draw the arms side by side) and an ``augmentation`` key.
        ``provenance["gan"]`` holds per seed the gate values (:func:`gate_summary`), whether the GAN arm was refused
        (and why) or forced, and the GAN training time; ``provenance["comparison"]`` the clean accuracies per model,
        arm and seed.
    """
    from .config import SuiteConfig
    from .results import SuiteResult, environment
    from .suite import run_suite

    gan_ratio = check_ratio(gan_ratio, "gan_ratio")
    for arm in arms:
        check_option("arm", arm, ARMS)
    seeds = tuple(int(s) for s in seeds)
    config = SuiteConfig.make(config, seeds=seeds)
    if train.is_synthetic.any() or test.is_synthetic.any():
        raise DataError("train and test must hold real trials only; run_gan_comparison adds the synthetic ones.")
    rows, checks, runs, hashes = [], [], {}, {}
    gan_info = {"ratio": gan_ratio, "force": bool(force_gan), "seeds": {}}
    t0 = time.perf_counter()
    for seed in seeds:
        arm_data = _arm_training_sets(config, train, seed, gan_ratio, force_gan, gan_config, thresholds, arms,
                                      gan_info, progress, (pretrained or {}).get(seed), device)
        for arm, (data, callbacks) in arm_data.items():
            victims = _train_arm(config, data, seed, callbacks, progress, device)
            res = run_suite(SuiteConfig.make(config, seeds=(seed,)), test=test, train=train, victims=victims,
                            progress=progress, device=device)
            for row in res.rows:
                rows.append({**row, "model": _arm_name(row["model"], arm), "augmentation": arm})
            checks += [{**c, "name": f"{c['name']} [{arm}, seed {seed}]"} for c in res.checks]
            runs[f"{arm}/seed{seed}"] = {"n_train": data.n_trials, "n_synthetic": int(data.is_synthetic.sum()),
                                         "train_data_hash": data.data_hash(),
                                         "test_data_hash": res.provenance["test_data_hash"]}
            hashes.update({f"{_arm_name(m, arm)}/seed{seed}": h for m, h in res.provenance["model_hashes"].items()})
            provenance = res.provenance
    provenance = {**provenance, "model_hashes": hashes, "train_data_hash": train.data_hash(), "gan": gan_info,
                  "comparison": {"arms": list(arms), "runs": runs, "clean": clean_summary(rows),
                                 "wall_s": round(time.perf_counter() - t0, 1)}}
    return SuiteResult(rows, config.to_dict(), provenance, environment(), checks, [])


def _arm_training_sets(config, train, seed, gan_ratio, force_gan, gan_config, thresholds, arms, gan_info, progress,
                       pretrained, device="cpu"):
    """Training data and fit_model callbacks of each arm for one seed; a refused GAN arm is left out."""
    from ..data.augment import BatchAugmentation

    out = {}
    if "none" in arms:
        out["none"] = (train, ())
    if "gan" in arms:
        from ..models import TrainConfig

        val_fraction = TrainConfig.from_dict(config.train).val_fraction or 0.2
        if pretrained is not None:
            gan, report = pretrained
            _check_pretrained(gan, report, train, val_fraction, seed)
        else:
            gan_cfg = {**(gan_config.to_dict() if hasattr(gan_config, "to_dict") else dict(gan_config or {})),
                       "show_progress": progress}
            gan, report = train_gan_with_gates(train, gan_cfg, val_fraction=val_fraction, seed=seed,
                                               thresholds=thresholds, device=device)
        info = {"passed": report["passed"], "refused": None, "forced": False, **gate_summary(report)}
        try:
            mixed = augment_with_gan(train, gan, gan_ratio, report=report, force=force_gan, random_state=seed)
            info["forced"] = report.get("forced", False)
            out["gan"] = (mixed, ())
        except GANQualityError as err:
            info["refused"] = str(err)
            warnings.warn(f"seed {seed}: {err}", GANQualityWarning, stacklevel=3)
        gan_info["seeds"][str(seed)] = info
    if "augment" in arms:
        out["augment"] = (train, (BatchAugmentation(ratio=gan_ratio, random_state=seed),))
    return out


def gate_summary(report: dict) -> dict:
    """The numbers of a gate report that go into results files: gates by name, TSTR/TRTR, band-power differences."""
    return {"fit_seconds": report.get("fit_seconds"),
            "gates": {g["name"]: {k: g[k] for k in ("value", "op", "threshold", "passed")} for g in report["gates"]},
            "tstr": report["tstr"], "band_power_diff_db": {"bands": report["band_power_db"]["bands"],
                                                           "channels": report["band_power_db"]["channels"],
                                                           "diff_db": report["band_power_db"]["diff_db"]},
            "class_pattern": {k: report["class_pattern"][k] for k in ("family", "corr_by_family", "real_reliability")},
            "n_fit": report["n_fit"], "n_holdout": report["n_holdout"], "n_synthetic": report["n_synthetic"],
            "gan_config": report.get("gan_config")}


def _check_pretrained(gan, report, train, val_fraction, seed) -> None:
    fit_idx, hold_idx = gan_holdout_split(train, val_fraction, seed)
    if (getattr(gan, "train_data_hash_", None) != train.subset(fit_idx).data_hash()
            or list(report.get("holdout_indices", [])) != hold_idx.tolist()):
        raise DataError(f"the pretrained generator for seed {seed} was not fitted on this seed's GAN split of train "
                        f"(val_fraction={val_fraction}); train it with train_gan_with_gates(train, seed={seed}).")


def _train_arm(config, data, seed, callbacks, progress, device="cpu") -> dict:
    from ..models import TrainConfig, build_model, fit_model

    tc = TrainConfig.from_dict({**config.train, "seed": seed, "show_progress": progress})
    return {name: fit_model(build_model(name, data, random_state=seed).to(device), data, tc,
                            callbacks=callbacks).eval()
            for name in config.models}


def clean_summary(rows) -> list[dict]:
    """Clean accuracy per model and arm: mean, standard deviation and values over seeds."""
    cells: dict = {}
    for r in rows:
        if r["epsilon"] == 0 and r["threat_model"] == "white_box":
            cells.setdefault((r["model"], r.get("augmentation", "none")), {})[r["seed"]] = r["clean_rca"]
    return [{"model": m, "augmentation": a, "clean_rca_mean": float(np.mean(list(v.values()))),
             "clean_rca_std": float(np.std(list(v.values()))), "seeds": sorted(v), "values": list(v.values())}
            for (m, a), v in cells.items()]


def format_comparison(result) -> str:
    """Markdown: the gates per seed and the side-by-side accuracy table (worst white-box attack per epsilon)."""
    lines = ["## EEG-GAN augmentation", ""]
    gan = result.provenance.get("gan", {})
    for seed, info in gan.get("seeds", {}).items():
        state = ("refused: " + info["refused"]) if info["refused"] else ("FORCED" if info["forced"] else "accepted")
        lines.append(f"Seed {seed}: GAN trained in {info['fit_seconds']:.0f} s, augmentation {state}.")
        lines += ["", "| gate | value | pass mark | passed |", "|---|---|---|---|"]
        lines += [f"| {name} | {g['value']:.3f} | {g['op']} {g['threshold']:.3f} | {'yes' if g['passed'] else 'NO'} |"
                  for name, g in info["gates"].items()]
        lines.append("")
    header, body = comparison_table(result.rows)
    caption = (f"Accuracy (RCA) on the test split, mean ± sd over seeds {list(result.config.get('seeds', []))}; "
               f"per epsilon the worst white-box attack. Ratio {gan.get('ratio', '-')} synthetic/augmented trials "
               "per real trial.")
    lines += [caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in body]
    return "\n".join(lines) + "\n"
