"""Certified robustness by randomized smoothing (Cohen, Rosenfeld and Kolter, ICML 2019), in budget space.

The smoothed classifier ``g(x) = argmax_c P(f(x + delta) = c)``, ``delta ~ N(0, sigma^2 I)`` in *budget space*
(each channel divided by its scale: its std for unit ``"rel"``, 1 uV for ``"uV"``), is certified at each trial with
Cohen's CERTIFY: ``n0`` noisy copies choose the class, ``n`` more give a one-sided Clopper-Pearson lower bound
``pA`` on its probability at level ``1 - alpha``; below 1/2 the trial abstains, otherwise ``g`` is constant on the
L2 ball of radius ``sigma * Phi^-1(pA)`` around it, with probability at least ``1 - alpha`` over the sampling.

Units. The radius is an L2 norm of the perturbation in budget space, over all channels and samples:
``||delta_uV / scale||_2``. It is *not* the suite's L2 epsilon, which is energy-normalised to match an L-inf
budget (`attacks.budget.l2_budget`: ``epsilon * sqrt(n_chans * n_times)``); rows give both (``radius`` and
``radius_rms = radius / sqrt(n_chans * n_times)``, the RMS perturbation per sample in the same unit).

Certified accuracy at radius r counts the trials whose certified class is the true label with radius >= r;
abstentions count as errors (Cohen et al.). Fewer samples than Cohen's defaults (``n0=100, n=100000,
alpha=0.001``) give smaller certified radii, never larger ones: the bound stays valid, it is only looser; the
``quick`` preset (``n=1000``) says so in every row. Below `min_samples` (``n`` such that even ``n`` successes out of
``n`` give ``pA > 1/2``: ``alpha ** (1 / n) > 1/2``, 10 at ``alpha=0.001``) every trial would abstain, so such an
``n`` is refused.

A smoothed model is itself random (`SmoothedClassifier`): an empirical attack on it needs EOT
(``make_attack("apgd_ce", eot_iter=...)``); the attacks refuse it otherwise.
"""

from __future__ import annotations

import math
import numbers
import re
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.stats import beta as beta_dist
from scipy.stats import norm
from torch import nn

from ..attacks.base import BudgetSpace, eval_mode
from ..attacks.budget import BUDGET_UNITS, channel_scale
from ..data._checks import ConfigError, check_option, first_repeat

#: Cohen et al.'s sample sizes and level.
COHEN = {"n0": 100, "n": 100_000, "alpha": 0.001}


def _floats(values, what) -> tuple:
    if isinstance(values, (int, float)):
        values = (values,)
    if isinstance(values, str):
        items = [v.strip() for v in values.split(",")]
        if values.strip() and not all(items):  # "0.25,,0.5" is a typo, not two values
            raise ConfigError(f"{what} {values!r} has an empty item; give values separated by single commas, "
                              "e.g. 0.25,0.5.")
        values = [v for v in items if v]
    out = []
    for v in values:
        try:
            if isinstance(v, str) and not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", v):
                raise ValueError(v)  # plain decimals only: float() would read "1_0" as 10
            f = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{what} must be a number, got {v!r}.") from None
        if isinstance(v, bool) or not math.isfinite(f):
            raise ConfigError(f"{what} must be a finite number, got {v!r}.")
        out.append(f)
    if not out:
        raise ConfigError(f"give at least one {what}, e.g. 0.25.")
    twice = first_repeat(out)
    if twice is not None:  # one table column per value: a repeat would be merged silently
        raise ConfigError(f"{what} lists {twice:g} more than once; give each value once.")
    return tuple(out)


def lower_confidence_bound(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower bound on a binomial proportion from ``k`` successes in ``n`` (level 1-alpha)."""
    return 0.0 if k == 0 else float(beta_dist.ppf(alpha, k, n - k + 1))


def min_samples(alpha: float) -> int:
    """The smallest ``n`` at which any trial can be certified at level ``1 - alpha``.

    A trial is certified when the lower bound ``pA`` exceeds 1/2 (Cohen et al.); the best case, ``n`` successes in
    ``n``, gives ``pA = alpha ** (1 / n)``, which exceeds 1/2 from ``n > log2(1 / alpha)`` on (10 at alpha 0.001).

    Parameters
    ----------
    alpha : float in (0, 1)
        The level of the certificate, as in `CertifyConfig`.
    """
    n = max(1, math.floor(-math.log2(alpha)))  # at most the answer; the floating-point bound decides, as in certify
    while lower_confidence_bound(n, n, alpha) <= 0.5:
        n += 1
    return n


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class CertifyConfig:
    """What to certify with: noise levels, Cohen's sample sizes and level, radii to report.

    Parameters
    ----------
    sigmas : tuple of float > 0
        Noise levels in budget units (std of the Gaussian on every sample of the budget-space trial).
    n0, n : int
        Samples that select the class and samples that bound its probability (Cohen: 100 and 100,000).
    alpha : float in (0, 1)
        The certificate fails with probability at most ``alpha`` per trial (Cohen: 0.001).
    radii : tuple of float >= 0
        L2 radii (budget units, see the module docstring) at which certified accuracy is tabulated.
    unit : {"rel", "uV"}
    batch_size : int
        Noisy copies per forward pass.
    n_trials : int or None
        Certify the first ``n_trials`` trials only (None: all).
    """

    sigmas: tuple = (0.12, 0.25, 0.5, 1.0)
    n0: int = COHEN["n0"]
    n: int = COHEN["n"]
    alpha: float = COHEN["alpha"]
    radii: tuple = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    unit: str = "rel"
    batch_size: int = 1000
    n_trials: int | None = None

    def __post_init__(self):
        sigmas = _floats(self.sigmas, "sigma")
        radii = _floats(self.radii, "radius")
        for s in sigmas:
            if not s > 0:
                raise ConfigError(f"sigma must be > 0 (the noise of randomized smoothing), got {s!r}; give e.g. "
                                  "--sigma 0.12,0.25,0.5,1.0.")
        for r in radii:
            if r < 0:
                raise ConfigError(f"certified radius must be >= 0, got {r!r}.")
        for name, flag, hint in (("n0", "--n0", f"Cohen et al. use {COHEN['n0']}"),
                                 ("n", "--n", f"Cohen et al. use {COHEN['n']:,}"),
                                 ("batch_size", "--batch-size",
                                  "it is the noisy copies per forward pass, 1000 by default")):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ConfigError(f"{name} ({flag}) must be an integer >= 1, got {getattr(self, name)!r}; {hint}.")
        if self.n_trials is not None and (not _is_int(self.n_trials) or self.n_trials < 1):
            raise ConfigError(f"n_trials (--n-trials) must be None (all trials) or an integer >= 1, got "
                              f"{self.n_trials!r}.")
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < float(alpha) < 1:
            raise ConfigError(f"alpha (--alpha) must lie in (0, 1), got {alpha!r}; Cohen et al. use 0.001.")
        n_min = min_samples(float(alpha))
        if self.n < n_min:
            raise ConfigError(f"n (--n) = {self.n} is too few samples to certify any trial at alpha={float(alpha):g}: "
                              f"even {self.n} of {self.n} gives a lower bound "
                              f"{lower_confidence_bound(self.n, self.n, float(alpha)):.3g} <= 0.5, so every trial "
                              f"abstains; give n >= {n_min} (Cohen et al. use {COHEN['n']:,}).")
        check_option("unit", self.unit, BUDGET_UNITS)
        object.__setattr__(self, "sigmas", tuple(dict.fromkeys(sigmas)))
        object.__setattr__(self, "radii", tuple(sorted(set(radii))))
        object.__setattr__(self, "alpha", float(self.alpha))
        for name in ("n0", "n", "batch_size") + (("n_trials",) if self.n_trials is not None else ()):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def reduced(self) -> bool:
        """Fewer samples than Cohen et al. (looser, still valid, certificates)."""
        return self.n < COHEN["n"] or self.n0 < COHEN["n0"]

    @property
    def max_radius_factor(self) -> float:
        """The largest radius any trial can get, in units of sigma: ``Phi^-1(alpha ** (1 / n))``."""
        return float(norm.ppf(self.alpha ** (1.0 / self.n)))

    def to_dict(self) -> dict:
        return {"sigmas": list(self.sigmas), "n0": self.n0, "n": self.n, "alpha": self.alpha,
                "radii": list(self.radii), "unit": self.unit, "batch_size": self.batch_size,
                "n_trials": self.n_trials, "reduced_samples": self.reduced}


#: ``quick``: 1,000 samples (certificates at most 2.46 sigma at alpha 0.001, Cohen's 100,000 reach 3.8 sigma).
PRESETS = {"cohen": CertifyConfig(), "quick": CertifyConfig(sigmas=(0.25, 0.5), n=1000)}


class SmoothedClassifier(nn.Module):
    """The base model with Gaussian noise of ``sigma`` budget units on its input, one draw per call (a random model).

    ``forward`` takes microvolt trials like the base model; its logits are the base model's on one noisy copy.
    Attack it with EOT; `certify` certifies the smoothed classifier it samples.
    """

    def __init__(self, model: nn.Module, sigma: float, scale):
        super().__init__()
        self.model, self.sigma = model, float(sigma)
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=torch.float32).reshape(1, -1, 1))

    def forward(self, x):
        return self.model(x + self.sigma * self.scale.to(x.dtype) * torch.randn_like(x))


def _counts(target, S_one, n, sigma, batch_size, n_classes, generator) -> np.ndarray:
    counts = np.zeros(n_classes, np.int64)
    left = n
    while left > 0:
        b = min(batch_size, left)
        noise = torch.randn((b, *S_one.shape[1:]), generator=generator, device=S_one.device, dtype=S_one.dtype)
        pred = target(S_one.expand(b, *S_one.shape[1:]) + sigma * noise).argmax(1)
        counts += np.bincount(pred.cpu().numpy(), minlength=n_classes)[:n_classes]
        left -= b
    return counts


def certify(model: nn.Module, X: np.ndarray, y: np.ndarray, *, sigma: float, scale, n0: int = COHEN["n0"],
            n: int = COHEN["n"], alpha: float = COHEN["alpha"], batch_size: int = 1000, seed: int = 0,
            progress=None) -> dict:
    """Cohen's CERTIFY on every trial of ``X`` (microvolts) for the smoothed ``model`` at noise ``sigma``.

    Returns per-trial arrays: ``prediction`` (-1: abstained), ``radius`` (L2, budget units; 0 when abstained),
    ``p_lower``, ``correct`` (certified class equals ``y``), and ``seconds`` (wall time of all trials).
    ``sigma``, ``n0``, ``n``, ``alpha`` and ``batch_size`` are checked as `CertifyConfig` checks them.
    """
    CertifyConfig(sigmas=(sigma,), n0=n0, n=n, alpha=alpha, batch_size=batch_size)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    S = torch.as_tensor(np.asarray(X) / np.asarray(scale).reshape(1, -1, 1), dtype=torch.float32, device=device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    t0 = time.perf_counter()
    pred, radius, p_lower = np.full(len(S), -1), np.zeros(len(S)), np.zeros(len(S))
    with eval_mode(model), torch.no_grad():
        target = BudgetSpace(model, scale).to(device)
        n_classes = int(target(S[:1]).shape[1])
        for i in range(len(S)):
            c_a = int(_counts(target, S[i:i + 1], n0, sigma, batch_size, n_classes, generator).argmax())
            k = int(_counts(target, S[i:i + 1], n, sigma, batch_size, n_classes, generator)[c_a])
            p_lower[i] = lower_confidence_bound(k, n, alpha)
            if p_lower[i] > 0.5:  # Cohen's CERTIFY: abstain unless pA > 1/2
                pred[i], radius[i] = c_a, sigma * float(norm.ppf(p_lower[i]))
            if progress is not None:
                progress.update()
    correct = pred == np.asarray(y)
    return {"prediction": pred, "radius": radius, "p_lower": p_lower, "correct": correct,
            "seconds": time.perf_counter() - t0}


def certified_accuracy(out: dict, radii) -> list:
    """Fraction of trials certified correct with radius >= r, for each r of ``radii``."""
    return [float(np.mean(out["correct"] & (out["radius"] >= r))) for r in radii]


def run_certification(model: nn.Module, data, config: CertifyConfig | str = "quick", *, seed: int = 0,
                      model_name: str = "model", progress: bool = False) -> dict:
    """Certify ``model`` on ``data`` (`EEGData`, microvolts) at every sigma of ``config``.

    Returns ``{"rows": [...], "trials": [...], "config": ..., "provenance": ...}``: one row per (sigma, radius) with
    ``certified_accuracy``, the abstention rate, ``n0``, ``n``, ``alpha`` and seconds per trial; one trial record per
    (sigma, trial). The budget scale is computed from ``data``, as the suite's is from its test trials.
    """
    from tqdm.auto import tqdm

    if isinstance(config, str):
        check_option("certify preset", config, PRESETS)
        config = PRESETS[config]
    X, y = data.X, data.y
    if config.n_trials is not None and config.n_trials < len(X):
        X, y = X[:config.n_trials], y[:config.n_trials]
    scale = channel_scale(data.X, config.unit)
    dim = X.shape[1] * X.shape[2]
    rows, trials = [], []
    for sigma in config.sigmas:
        bar = tqdm(total=len(X), desc=f"certify sigma={sigma:g}", disable=not progress, unit="trial")
        out = certify(model, X, y, sigma=sigma, scale=scale, n0=config.n0, n=config.n, alpha=config.alpha,
                      batch_size=config.batch_size, seed=seed, progress=bar)
        bar.close()
        abstain = float(np.mean(out["prediction"] < 0))
        for r, acc in zip(config.radii, certified_accuracy(out, config.radii)):
            rows.append({"model": model_name, "sigma": sigma, "radius": r, "radius_rms": r / math.sqrt(dim),
                         "norm": "l2", "unit": config.unit, "certified_accuracy": acc, "abstain_rate": abstain,
                         "n_trials": len(X), "n0": config.n0, "n": config.n, "alpha": config.alpha,
                         "reduced_samples": config.reduced, "seed": seed,
                         "seconds_per_trial": out["seconds"] / max(len(X), 1)})
        trials += [{"sigma": sigma, "trial": i, "y": int(y[i]), "prediction": int(out["prediction"][i]),
                    "radius": float(out["radius"][i]), "p_lower": float(out["p_lower"][i])} for i in range(len(X))]
    provenance = {"n_chans": int(X.shape[1]), "n_times": int(X.shape[2]), "budget_scale_uv": [float(s) for s in scale],
                  "data_hash": data.data_hash(), "max_radius_per_sigma": config.max_radius_factor,
                  "radius_definition": "L2 norm of delta / scale over all channels and samples (budget units); "
                                       "radius_rms = radius / sqrt(n_chans * n_times)",
                  "method": "Cohen, Rosenfeld and Kolter (2019) CERTIFY; Clopper-Pearson lower bound; abstentions "
                            "count as errors"}
    return {"rows": rows, "trials": trials, "config": config.to_dict(), "provenance": provenance}


def make_certify_config(value) -> CertifyConfig:
    """A `CertifyConfig` from a preset name (``"quick"``, ``"cohen"``), a dict of its fields (``"preset"`` picks the
    base), or a `CertifyConfig`."""
    if isinstance(value, CertifyConfig):
        return value
    if isinstance(value, str):
        check_option("certify preset", value, PRESETS)
        return PRESETS[value]
    if isinstance(value, dict):
        d = dict(value)
        base = PRESETS[check_option("certify preset", d.pop("preset", "quick"), PRESETS)]
        known = [f for f in base.to_dict() if f != "reduced_samples"]
        for key in d:
            if key not in known:
                check_option("certify key", key, known)
        return replace(base, **d)
    raise ConfigError(f"certify must be a preset name ({', '.join(PRESETS)}) or a table of CertifyConfig fields, got "
                      f"{value!r}.")


def with_overrides(config: CertifyConfig, **overrides) -> CertifyConfig:
    """``config`` with the given fields replaced (None values ignored), validated again."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
