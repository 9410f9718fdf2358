"""Training arms: named, configured changes to the one training loop (`models.fit_model` callbacks), never a copy of it.

An arm is what was done to a victim at training time: nothing (``none``), braindecode augmentation (``augment``),
gated EEG-GAN mixing (``gan``), Gaussian noise (``noise``, the training that randomized smoothing needs), or a
defence that crafts adversarial examples in every batch (``fgsm_at``, ``pgd_at``, ``trades``). Arms that craft sit
here, above ``attacks/`` (they use its PGD), and plug into the loop in ``models/`` through its callback hooks, so
the one-way layering holds.

Budgets of arms are in the study's budget unit (``"rel"``: per-channel std of the demeaned *training* trials, the
training-time counterpart of the evaluation's scale; ``"uV"``: microvolts), L-inf. Adversarial examples are crafted
with the model in eval mode (dropout off, batch-norm statistics frozen; the TRADES reference implementation's
choice) and trained on in training mode.

Spelling: ``"pgd_at"`` (defaults), ``"pgd_at(eps=0.1,steps=10)"``, or a dict ``{"name": "pgd_at", "eps": 0.1}``.
`parse_arms` splits ``"none,pgd_at(eps=0.1,steps=10),trades"`` at top-level commas. An arm's `label` (the ``arm``
column of every row) names its non-default parameters, so two settings of one defence never share a row; every
parameter, defaults included, is in `Arm.to_dict`, in the bundle (``training.arm``) and in the rows' ``info``.

References
----------
.. [1] Madry et al., "Towards deep learning models resistant to adversarial attacks", ICLR 2018 (``pgd_at``).
.. [2] Wong, Rice and Kolter, "Fast is better than free: revisiting adversarial training", ICLR 2020 (``fgsm_at``).
.. [3] Zhang et al., "Theoretically principled trade-off between robustness and accuracy", ICML 2019 (``trades``).
.. [4] Cohen, Rosenfeld and Kolter, "Certified adversarial robustness via randomized smoothing", ICML 2019
   (``noise``).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..attacks.base import BudgetSpace, eval_mode
from ..attacks.budget import MAX_EPSILON, channel_scale
from ..attacks.whitebox import LinfPGD
from ..data._checks import ConfigError, check_option, first_repeat

#: Parameters and defaults of every arm. ``eps``: L-inf training budget in the study's unit.
ARM_PARAMS: dict[str, dict] = {
    "none": {},
    "augment": {"ratio": 1.0, "probability": 0.5},
    "gan": {"ratio": 1.0, "force": False, "iterations": 1200, "stages": 3},
    "noise": {"sigma": 0.25},
    "fgsm_at": {"eps": 0.05, "alpha": 1.25},
    "pgd_at": {"eps": 0.05, "steps": 7, "rel_stepsize": 2.5},
    "trades": {"eps": 0.05, "beta": 6.0, "steps": 7, "rel_stepsize": 2.5},
}
ARMS = tuple(ARM_PARAMS)
#: Arms whose training crafts adversarial examples (about ``steps + 1`` times the cost of plain training).
ADVERSARIAL = ("fgsm_at", "pgd_at", "trades")
#: Largest sensible training budget per unit: in "rel" a perturbation as large as each channel's own std; in "uV"
#: 1000 uV, beyond the amplitude of any scalp EEG.
MAX_EPS = {"rel": 1.0, "uV": 1000.0}


def _check_param(arm: str, key: str, value, default):
    where = f"arm {arm!r}: {key}"
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{where} must be true or false, got {value!r}.")
        return bool(value)
    if isinstance(value, str):
        try:
            if not re.fullmatch(r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*", value):
                raise ValueError(value)  # plain decimals only: float() would read "1_0" as 10
            value = float(value) if isinstance(default, float) or "." in value or "e" in value.lower() else int(value)
        except ValueError:
            raise ConfigError(f"{where} must be a finite number, got {value!r}.") from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}.")
    if isinstance(default, int):
        if float(value) != int(value):
            raise ConfigError(f"{where} must be an integer, got {value!r}.")
        value = int(value)
    else:
        value = float(value)
    if key == "stages" and not 1 <= value <= 3:
        raise ConfigError(f"{where} (EEG-GAN progressive stages) must be 1, 2 or 3, got {value!r}.")
    if key in ("steps", "iterations") and value < 1:
        raise ConfigError(f"{where} must be an integer >= 1, got {value!r}.")
    if key in ("eps", "sigma", "alpha", "rel_stepsize") and value <= 0:
        fix = " (randomized smoothing needs noise: e.g. noise(sigma=0.25))" if key == "sigma" else ""
        raise ConfigError(f"{where} must be > 0, got {value!r}{fix}.")
    if key in ("eps", "sigma") and value > MAX_EPSILON:
        raise ConfigError(f"{where} must be at most {MAX_EPSILON:g} (in budget units, like epsilon), got {value!r}.")
    if key == "beta" and value < 0:
        raise ConfigError(f"{where} (TRADES trade-off) must be >= 0, got {value!r}; 6 is the paper's default.")
    if key in ("ratio",) and value < 0:
        raise ConfigError(f"{where} must be >= 0, got {value!r}.")
    if key == "probability" and not 0 <= value <= 1:
        raise ConfigError(f"{where} must lie in [0, 1], got {value!r}.")
    return value


def _fmt(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Arm:
    """One training arm: a name from `ARMS` and its parameters (every one, defaults filled in, sorted)."""

    name: str
    params: tuple = ()

    @classmethod
    def make(cls, value) -> Arm:
        """From an `Arm`, a spec string (``"pgd_at(eps=0.1)"``) or a dict (``{"name": "pgd_at", "eps": 0.1}``)."""
        if isinstance(value, Arm):
            return value
        if isinstance(value, dict):
            d = dict(value)
            name = d.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(f"an arm given as a table needs a 'name' such as 'pgd_at', got {value!r}.")
            given = dict(d.pop("params", {})) if isinstance(d.get("params"), dict) else {}
            both = sorted(set(given) & set(d))
            if both:
                raise ConfigError(f"arm {name!r} gives {both[0]!r} twice (in its table and in 'params'); give each "
                                  "parameter once.")
            given.update(d)
        elif isinstance(value, str):
            m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*", value)
            if m is None:
                raise ConfigError(f"arm {value!r} is not of the form name or name(key=value,...), e.g. "
                                  "pgd_at(eps=0.05,steps=7).")
            name, body, given = m.group(1), m.group(2), {}
            for part in (p.strip() for p in (body or "").split(",") if p.strip()):
                key, sep, val = part.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"arm {value!r}: {part!r} is not key=value, e.g. pgd_at(eps=0.05).")
                if key.strip() in given:
                    raise ConfigError(f"arm {value!r} gives {key.strip()!r} twice; give each parameter once.")
                given[key.strip()] = val.strip()
        else:
            raise ConfigError(f"an arm is a name such as 'pgd_at' or 'pgd_at(eps=0.05)', got {value!r}.")
        name = name.strip().lower().replace("-", "_")
        check_option("arm", name, ARMS)
        defaults = ARM_PARAMS[name]
        for key in given:
            if key not in defaults:
                if not defaults:
                    raise ConfigError(f"arm {name!r} takes no parameters, got {key!r}.")
                check_option(f"parameter of arm {name!r}", key, tuple(defaults))
        params = {k: _check_param(name, k, given.get(k, v), v) for k, v in defaults.items()}
        return cls(name, tuple(sorted(params.items())))

    @property
    def kwargs(self) -> dict:
        return dict(self.params)

    @property
    def label(self) -> str:
        """The ``arm`` column: the name, with the parameters that differ from the defaults."""
        changed = [f"{k}={_fmt(v)}" for k, v in self.params if ARM_PARAMS[self.name][k] != v]
        return self.name + (f"({','.join(changed)})" if changed else "")

    @property
    def adversarial(self) -> bool:
        return self.name in ADVERSARIAL

    def check_unit(self, unit: str) -> "Arm":
        """Refuse a training budget larger than any sensible one in ``unit`` (`MAX_EPS`); return self."""
        eps = self.kwargs.get("eps")
        if eps is not None and unit in MAX_EPS and eps > MAX_EPS[unit]:
            what = "of each channel's std" if unit == "rel" else "uV"
            raise ConfigError(f"arm {self.name!r}: eps = {eps!r} is larger than any sensible training budget "
                              f"(<= {MAX_EPS[unit]:g} {what} in unit {unit!r}); train at the budgets you evaluate, "
                              "e.g. eps=0.05 in unit 'rel'.")
        return self

    def key(self, unit: str = "rel"):
        """What the victim cache key holds of this arm ("none" stays "none": undefended victims keep their keys)."""
        if self.name == "none":
            return "none"
        return {"name": self.name, "params": self.kwargs, "unit": unit}

    def to_dict(self, unit: str = "rel") -> dict:
        return {"name": self.name, "label": self.label, "params": self.kwargs, "unit": unit}

    def describe(self) -> str:
        """One sentence for methods sections."""
        p = self.kwargs
        if self.name == "none":
            return "no defence (standard training)"
        if self.name == "augment":
            return (f"braindecode FTSurrogate and SmoothTimeMask augmentation ({p['ratio']:g} augmented copies per "
                    f"trial, each transform with probability {p['probability']:g})")
        if self.name == "gan":
            return (f"EEG-GAN synthetic trials ({p['ratio']:g} per real trial; generator {p['iterations']} steps, "
                    f"{p['stages']} stages) admitted by the quality gates" + (" (forced past a failed gate)"
                                                                               if p["force"] else ""))
        if self.name == "noise":
            return f"Gaussian noise augmentation, sigma {p['sigma']:g} budget units on every sample (Cohen et al.)"
        if self.name == "fgsm_at":
            return (f"fast adversarial training (FGSM with random start, step {p['alpha']:g} eps, Wong et al.) at "
                    f"L-inf eps_train {p['eps']:g}")
        if self.name == "pgd_at":
            return (f"PGD adversarial training (Madry et al.; {p['steps']} steps of {p['rel_stepsize']:g} eps/steps, "
                    f"random start) at L-inf eps_train {p['eps']:g}")
        return (f"TRADES (Zhang et al.; beta {p['beta']:g}, {p['steps']}-step PGD on the KL term) at L-inf "
                f"eps_train {p['eps']:g}")

    # -- training ----------------------------------------------------------------------------------------------
    def training(self, train, *, seed: int, unit: str = "rel", val_fraction: float = 0.0, device: str = "cpu",
                 progress: bool = False):
        """The training data and `fit_model` callbacks of this arm for one seed, and what to record about it.

        Returns ``(data, callbacks, info)``; ``data`` is ``train`` except for ``gan`` (real plus admitted synthetic
        trials). ``gan`` trains a generator with quality gates here and raises `GANQualityError` when a gate fails
        (``gan(force=true)`` trains on it anyway and records that).
        """
        p = self.kwargs
        info = self.to_dict(unit)
        real = train.X[~train.is_synthetic]
        scale = channel_scale(real, unit)
        if self.name != "none":
            info["scale"] = "per-channel std of the demeaned training trials" if unit == "rel" else "1 uV"
        if self.name == "none":
            return train, (), info
        if self.name == "augment":
            from ..data.augment import BatchAugmentation

            return train, (BatchAugmentation(ratio=p["ratio"], probability=p["probability"], random_state=seed),), info
        if self.name == "gan":
            return self._gan(train, seed, val_fraction, device, progress, info)
        if self.name == "noise":
            return train, (NoiseTraining(p["sigma"], scale),), info
        if self.name == "fgsm_at":
            attack = LinfPGD(steps=1, rel_stepsize=p["alpha"], random_start=True)
            return train, (AdversarialTraining(attack, p["eps"], scale, name=self.name),), info
        if self.name == "pgd_at":
            attack = LinfPGD(steps=p["steps"], rel_stepsize=p["rel_stepsize"], random_start=True)
            return train, (AdversarialTraining(attack, p["eps"], scale, name=self.name),), info
        return train, (TRADES(p["eps"], p["beta"], p["steps"], p["rel_stepsize"], scale),), info

    def _gan(self, train, seed, val_fraction, device, progress, info):
        from .gan import augment_with_gan, gate_summary, train_gan_with_gates

        p = self.kwargs
        gan_config = {"show_progress": progress, "n_iterations": p["iterations"], "n_stages": p["stages"]}
        gan, report = train_gan_with_gates(train, gan_config, val_fraction=val_fraction or 0.2, seed=seed,
                                           device=device)
        mixed = augment_with_gan(train, gan, p["ratio"], report=report, force=p["force"], random_state=seed)
        info["gates"] = gate_summary(report)["gates"]
        info["gates_passed"] = bool(report["passed"])
        info["gan_fit_s"] = report.get("fit_seconds")
        info["n_synthetic"] = int(mixed.is_synthetic.sum())
        return mixed, (), info


def parse_arms(value) -> tuple:
    """Arms from ``"none,pgd_at(eps=0.1,steps=10)"``, a list of strings or dicts, or None (``("none",)``).

    Returns the canonical spec strings (`Arm.label`) in the given order; an empty list, and an arm listed twice
    (under any spelling of its parameters), are errors.
    """
    if value is None:
        return ("none",)
    if isinstance(value, (str, dict, Arm)):
        items = _split_top(value) if isinstance(value, str) else [value]
    else:
        try:
            items = list(value)
        except TypeError:
            raise ConfigError(f"arms must be names such as none,pgd_at,trades, got {value!r}.") from None
    empty = [v for v in items if isinstance(v, str) and not v.strip()]
    if empty and len(empty) < len(items):  # "none,,pgd_at" is a typo, not two arms
        raise ConfigError(f"arms {value!r} has an empty item; give arms separated by single commas, e.g. "
                          "--arms none,pgd_at.")
    arms = [Arm.make(v) for v in items if not (isinstance(v, str) and not v.strip())]
    if not arms:
        raise ConfigError("arms names no arm; give e.g. --arms none,pgd_at (or leave it out for 'none').")
    labels = [a.label for a in arms]
    twice = first_repeat(labels)
    if twice is not None:  # e.g. pgd_at and pgd_at(eps=0.03), its default: one arm, which a list must not count twice
        raise ConfigError(f"arms lists {twice!r} more than once (as {', '.join(map(str, items))}); give each arm "
                          "once.")
    return tuple(labels)


def _split_top(text: str) -> list:
    """Split at commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"arms {text!r}: unbalanced ')'.")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ConfigError(f"arms {text!r}: unbalanced '('.")
    parts.append("".join(cur))
    return [p.strip() for p in parts]


# -- the callbacks -------------------------------------------------------------------------------------------------
class _Timed:
    """Counts the seconds a callback spends crafting (recorded as ``crafting_s``)."""

    seconds = 0.0

    def on_train_begin(self, model, train):
        self.seconds = 0.0

    def _scale(self, X):
        return torch.as_tensor(self.scale, dtype=X.dtype, device=X.device).reshape(1, -1, 1)


class NoiseTraining(_Timed):
    """Replace every training batch by ``X + sigma * scale * N(0, 1)`` (randomized smoothing's training [4]_)."""

    def __init__(self, sigma: float, scale):
        self.sigma, self.scale = float(sigma), np.asarray(scale, dtype=np.float64)

    def on_batch_begin(self, model, X, y):
        return X + self.sigma * self._scale(X) * torch.randn_like(X), y

    def to_dict(self) -> dict:
        return {"callback": "noise", "sigma": self.sigma}


class AdversarialTraining(_Timed):
    """Replace every training batch by its L-inf adversarial examples at ``eps`` (PGD-AT [1]_, FGSM-AT [2]_)."""

    def __init__(self, attack, eps: float, scale, *, name: str):
        self.attack, self.eps, self.scale, self.name = attack, float(eps), np.asarray(scale, np.float64), name

    def on_batch_begin(self, model, X, y):
        t0 = time.perf_counter()
        scale = self._scale(X)
        with eval_mode(model):
            S_adv = self.attack.craft(BudgetSpace(model, self.scale).to(X.device), X / scale, y, epsilon=self.eps)
        self.seconds += time.perf_counter() - t0
        return S_adv * scale, y

    def on_train_end(self, model):
        model.crafting_s_ = round(self.seconds, 2)

    def to_dict(self) -> dict:
        return {"callback": self.name, "eps": self.eps, "attack": repr(self.attack)}


class TRADES(_Timed):
    """TRADES [3]_: cross-entropy on the clean batch plus ``beta`` x KL(f(x) || f(x')), x' maximizing the KL term in the
    L-inf ball of ``eps`` (PGD from ``x + 0.001 N(0, 1)`` in budget units, crafted in eval mode)."""

    def __init__(self, eps: float, beta: float, steps: int, rel_stepsize: float, scale):
        self.eps, self.beta, self.steps, self.rel_stepsize = float(eps), float(beta), int(steps), float(rel_stepsize)
        self.scale = np.asarray(scale, np.float64)

    def batch_loss(self, model, X, y, logits, loss):
        if self.beta == 0:
            return None
        t0 = time.perf_counter()
        scale = self._scale(X)
        S = X / scale
        with eval_mode(model):
            target = BudgetSpace(model, self.scale).to(X.device)
            with torch.no_grad():
                p_clean = torch.softmax(target(S), 1)
            x = S + 0.001 * torch.randn_like(S)
            step = self.rel_stepsize * self.eps / self.steps
            for _ in range(self.steps):
                x.requires_grad_(True)
                with torch.enable_grad():
                    kl = nn.functional.kl_div(torch.log_softmax(target(x), 1), p_clean, reduction="sum")
                    (grad,) = torch.autograd.grad(kl, x)
                x = (S + (x.detach() + step * grad.sign() - S).clamp(-self.eps, self.eps)).detach()
        self.seconds += time.perf_counter() - t0
        adv_logits = model(x * scale)
        robust = nn.functional.kl_div(torch.log_softmax(adv_logits, 1), torch.softmax(logits, 1),
                                      reduction="batchmean")
        return loss + self.beta * robust

    def on_train_end(self, model):
        model.crafting_s_ = round(self.seconds, 2)

    def to_dict(self) -> dict:
        return {"callback": "trades", "eps": self.eps, "beta": self.beta, "steps": self.steps,
                "rel_stepsize": self.rel_stepsize}


def train_arm(arch: str, train, arm, *, train_config: dict | None = None, seed: int = 0, unit: str = "rel",
              device: str = "cpu", progress: bool = False):
    """Build and fit one victim of ``arch`` under ``arm`` (`Arm` or spec) with the one training loop.

    The model records the arm in ``model.arm_`` (`Arm.to_dict` plus the training and crafting seconds), which
    `models.save_bundle` writes to the bundle's ``training.arm``.
    """
    from ..models import TrainConfig, build_model, fit_model

    arm = Arm.make(arm).check_unit(unit)
    config = TrainConfig.from_dict({**(train_config or {}), "seed": seed, "show_progress": progress})
    t0 = time.perf_counter()
    data, callbacks, info = arm.training(train, seed=seed, unit=unit, val_fraction=config.val_fraction,
                                         device=device, progress=progress)
    t_fit = time.perf_counter()
    model = fit_model(build_model(arch, data, random_state=seed).to(device), data, config, callbacks=callbacks)
    info["fit_s"] = round(time.perf_counter() - t_fit, 2)
    info["prepare_s"] = round(t_fit - t0, 2)
    if hasattr(model, "crafting_s_"):
        info["crafting_s"] = model.crafting_s_
    model.arm_ = info
    return model.eval()
