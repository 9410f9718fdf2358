"""`run_suite`: victims x threat models x attacks x epsilons x seeds, one row per cell and epsilon.

Evaluation follows AutoAttack: clean accuracy first, then every attack runs on the trials that are still
correctly classified (the control noise runs on all), and robust accuracy counts a trial only if it is correct
before and after. Black-box attacks evaluate on the test trials left after the attacker's seed set is removed.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from ..attacks import (JacobianSubstitute, SquareAttack, HopSkipJump, TransferAttack, channel_scale, make_attack)
from ..data import EEGData, split_disjoint
from ..data._checks import ConfigError, DataError
from ..models import TrainConfig, build_model, fit_model, predict

from .checks import run_checks
from .config import SuiteConfig
from .metrics import bca, perturbation_stats, rca
from .results import SuiteResult, environment, model_hash

logger = logging.getLogger(__name__)


def train_victims(config: SuiteConfig, train: EEGData, *, progress: bool = True) -> dict[str, nn.Module]:
    """Train one model per architecture in ``config.models`` on ``train`` (seed = first suite seed)."""
    tc = TrainConfig.from_dict({**config.train, "seed": config.seeds[0], "show_progress": progress})
    victims = {}
    for name in config.models:
        logger.info("training %s on %d trials", name, train.n_trials)
        victims[name] = fit_model(build_model(name, train, random_state=config.seeds[0]), train, tc).eval()
    return victims


def cell_key(row: Mapping) -> tuple:
    """Identity of the cell a row belongs to (all epsilons of one attack on one victim with one seed)."""
    return (row["model"], row["threat_model"], row["attack"], row.get("substitute", ""), row["seed"])


def _check_fits(name: str, model: nn.Module, test: EEGData) -> None:
    n_chans, n_times = getattr(model, "n_chans", None), getattr(model, "n_times", None)
    if n_chans is not None and (n_chans, n_times) != (test.n_chans, test.n_times):
        raise DataError(f"victim {name!r} expects {n_chans} channels x {n_times} samples, but the epochs have "
                        f"{test.n_chans} x {test.n_times}; use epochs recorded like the model's training data.")
    ch_names = getattr(model, "ch_names", None)
    if ch_names and tuple(ch_names) != tuple(test.ch_names):
        raise DataError(f"victim {name!r} expects channels {list(ch_names)}, the epochs have {list(test.ch_names)}.")
    classes = getattr(model, "classes", None)
    if classes and len(classes) != test.n_classes:
        raise DataError(f"victim {name!r} has {len(classes)} classes {list(classes)}, the epochs have "
                        f"{test.n_classes} {list(test.classes)}: labels outside the model's classes.")


class _Runner:
    """Holds what every cell of one suite shares (data, scale, clean predictions) and writes rows."""

    def __init__(self, config, test, scale, on_row):
        self.config, self.test, self.scale, self.on_row = config, test, scale, on_row
        self.rows: list[dict] = []
        self.examples: list[dict] = []
        self.done: set = set()
        self.epsilons = (0.0,) + tuple(e for e in config.epsilons if e != 0)

    def run_cell(self, victim_name, victim, attack, data, seed, *, threat, substitute="", all_trials=False,
                 info=None, epsilons=None):
        key = (victim_name, threat, attack.name, substitute, seed)
        if key in self.done:
            return
        epsilons = self.epsilons if epsilons is None else (0.0,) + tuple(e for e in epsilons if e != 0)
        clean = predict(victim, data.X)
        idx = np.arange(data.n_trials) if all_trials else np.flatnonzero(clean == data.y)
        t0 = time.perf_counter()
        if len(idx):
            outputs = attack(victim, data.X[idx], data.y[idx], epsilons=epsilons, scale=self.scale,
                             random_state=seed)
        else:
            outputs = [None] * len(epsilons)
        wall = (time.perf_counter() - t0) / len(epsilons)
        for eps, out in zip(epsilons, outputs):
            X_adv = data.X.copy()
            if out is not None:
                X_adv[idx] = out.X_adv
            adv = predict(victim, X_adv)
            correct = clean[idx] == data.y[idx]
            fooled = (adv[idx] != data.y[idx]) & correct
            row = {
                "model": victim_name, "threat_model": threat, "attack": attack.name, "substitute": substitute,
                "norm": attack.norm, "epsilon": eps, "seed": seed, "n_trials": data.n_trials,
                "clean_rca": rca(data.y, clean), "clean_bca": bca(data.y, clean),
                "adv_rca": rca(data.y, adv), "adv_bca": bca(data.y, adv),
                "success_rate": float(fooled.sum() / max(correct.sum(), 1)),
                **perturbation_stats(data.X, X_adv, self.scale),
                "median_min_norm": (float(np.median(out.min_norm)) if out is not None and out.min_norm is not None
                                    else None),
                "queries_per_trial": (float(np.mean(out.n_queries)) if out is not None and out.n_queries is not None
                                      else None),
                "wall_s": round(wall, 3), "info": dict(info or {}, **(out.info if out is not None else {})),
            }
            row["drop"] = row["clean_rca"] - row["adv_rca"]
            self.rows.append(row)
            if threat == "white_box" and fooled.any() and not any(e["model"] == victim_name for e in self.examples):
                self._keep_example(row, data, idx[np.flatnonzero(fooled)[0]], X_adv, clean, adv)
        self.done.add(key)
        if self.on_row is not None:
            self.on_row(self.rows)


    def _keep_example(self, row, data, i, X_adv, clean, adv):
        """Keep one fooled trial per victim so reports can draw it without re-running an attack."""
        self.examples.append({
            "model": row["model"], "attack": row["attack"], "epsilon": row["epsilon"], "trial": int(i),
            "sfreq": data.sfreq, "ch_names": list(data.ch_names), "label": data.classes[data.y[i]],
            "pred_clean": data.classes[clean[i]], "pred_adv": data.classes[adv[i]],
            "clean_uv": np.round(data.X[i].astype(np.float64), 4).tolist(),
            "adv_uv": np.round(X_adv[i].astype(np.float64), 4).tolist(),
        })


def _substitutes(config, victims, train, trained_here, seed, progress):
    """Gray-box substitutes: one model per architecture, trained on the victims' training data.

    When the suite trained the victims itself on the same data, the victims of the other architectures *are*
    such substitutes (same data, their own initial weights), so they are reused rather than trained again.
    """
    if trained_here and seed == config.seeds[0]:
        return dict(victims)
    tc = TrainConfig.from_dict({**config.train, "seed": seed + 1000, "show_progress": progress})
    return {arch: fit_model(build_model(arch, train, random_state=seed + 1000), train, tc).eval()
            for arch in config.models if set(victims) != {arch}}  # no victim needs a substitute of its own arch


def run_suite(config=None, *, test: EEGData, train: EEGData | None = None,
              victims: Mapping[str, nn.Module] | None = None, progress: bool = True, on_fail: str = "warn",
              previous: SuiteResult | None = None, on_row: Callable | None = None) -> SuiteResult:
    """Run a robustness suite and return its rows with provenance and sanity checks.

    Parameters
    ----------
    config : SuiteConfig, dict, preset name or None
        What to run (`SuiteConfig.make`); None is the "standard" preset.
    test : EEGData
        Evaluation trials (microvolts). Black-box attacks take their seed set from these and evaluate on the rest.
    train : EEGData or None
        The victims' training data: trains the victims when ``victims`` is None, and the gray-box substitutes.
        Without it gray-box is skipped (a note is recorded in ``provenance["skipped"]``).
    victims : mapping of str to torch.nn.Module or None
        Models to attack, by display name; they map microvolt EEG to logits.
    previous : SuiteResult or None
        Rows of an interrupted run: their cells are kept and not run again (resume).
    on_row : callable or None
        Called with the list of rows after every finished cell (e.g. to save progress).
    """
    config = SuiteConfig.make(config)
    if test.is_synthetic.any():
        raise DataError(f"test holds {int(test.is_synthetic.sum())} synthetic trials (is_synthetic); robustness is "
                        "measured on real trials only: evaluate on real epochs.")
    skipped = []
    trained_here = victims is None
    if victims is None:
        if train is None:
            raise ConfigError("run_suite needs victims=... or train=... (data to train the victims on).")
        victims = train_victims(config, train, progress=progress)
    for name, model in victims.items():
        _check_fits(name, model, test)
        if model.training and not trained_here:
            warnings.warn(f"victim {name!r} was in training mode (dropout, batch statistics); the suite evaluates "
                          "and attacks it in eval mode.", UserWarning, stacklevel=2)
    if config.n_trials is not None and config.n_trials < test.n_trials:
        test, _ = split_disjoint(test, config.n_trials, random_state=0)
    scale = channel_scale(test.X, config.unit)
    runner = _Runner(config, test, scale, on_row)
    if previous is not None:
        runner.rows = list(previous.rows)
        runner.examples = list(previous.examples)
        runner.done = {cell_key(r) for r in previous.rows}
    threats = config.threat_models
    n_seed = min(config.n_seed_trials, test.n_trials // 2)
    seed_set, bb_test = split_disjoint(test, n_seed, random_state=0)
    if "gray_box" in threats and train is None:
        skipped.append("gray_box: no training data given (the attacker of gray-box has the victim's training data)")
    cells = _count_cells(config, victims, threats, train)
    bar = tqdm(total=cells, desc="attacks", disable=not progress, unit="cell")
    extras: dict = {"substitute_agreement": {}, "substitute_training_queries": {}}
    for seed in config.seeds:
        subs = (_substitutes(config, victims, train, trained_here, seed, progress)
                if "gray_box" in threats and train is not None else {})
        for vname, victim in victims.items():
            victim.eval()
            if "white_box" in threats:
                for name in config.white_box:
                    params = {"steps": config.pgd_steps} if name.endswith("pgd") else {}
                    bar.set_postfix_str(f"{vname} {name}")
                    runner.run_cell(vname, victim, make_attack(name, **params), test, seed, threat="white_box")
                    bar.update()
            if "control" in threats:
                runner.run_cell(vname, victim, make_attack("noise"), test, seed, threat="control", all_trials=True)
                bar.update()
            if "black_box" in threats:
                _black_box(runner, config, vname, victim, seed_set, bb_test, seed, extras, bar)
        # gray-box, substitute by substitute: one TransferAttack crafts each test trial once for all victims, and
        # what it kept is dropped before the next substitute
        for sname, sub in subs.items():
            for base in config.gray_box:
                attack = TransferAttack(surrogate=sub, base=_base(config, base, transfer=True), surrogate_name=sname)
                for vname, victim in victims.items():
                    if sub is victim or sname == vname:  # gray-box transfers from *other* architectures
                        continue
                    bar.set_postfix_str(f"{vname} <- {sname} {base}")
                    runner.run_cell(vname, victim, attack, test, seed, threat="gray_box", substitute=sname)
                    bar.update()
    bar.close()
    provenance = {
        "test_data_hash": test.data_hash(), "train_data_hash": None if train is None else train.data_hash(),
        "n_test_trials": test.n_trials, "n_black_box_seed_trials": seed_set.n_trials,
        "n_black_box_eval_trials": bb_test.n_trials, "classes": list(test.classes), "ch_names": list(test.ch_names),
        "sfreq": test.sfreq, "budget_unit": config.unit, "budget_scale_uv": [float(s) for s in scale],
        "model_hashes": {n: model_hash(m) for n, m in victims.items()},
        "victims_trained_by_suite": trained_here, "skipped": skipped, **extras,
    }
    checks = run_checks(runner.rows, on_fail=on_fail)
    return SuiteResult(runner.rows, config.to_dict(), provenance, environment(), checks, runner.examples)


def _base(config, name, transfer=False):
    steps = config.transfer_steps if transfer else config.pgd_steps
    return make_attack(name, **({"steps": steps} if name.endswith("pgd") else {}))


def _black_box(runner, config, vname, victim, seed_set, bb_test, seed, extras, bar):
    for name in config.black_box:
        bar.set_postfix_str(f"{vname} black-box {name}")
        if name == "substitute":
            attack = JacobianSubstitute(seed=seed_set, arch=config.substitute_arch, rounds=config.substitute_rounds,
                                        base=_base(config, config.substitute_attack, transfer=True), random_state=seed,
                                        train_config=TrainConfig.from_dict(
                                            {"max_epochs": 10, "patience": None, "val_fraction": 0.0,
                                             "show_progress": False, "seed": seed}))
            key = (vname, "black_box", attack.name, config.substitute_arch, seed)
            if key not in runner.done:
                attack.fit(victim, runner.scale)
                agree = float(np.mean(predict(attack.substitute_, bb_test.X) == predict(victim, bb_test.X)))
                extras["substitute_agreement"][f"{vname}/seed{seed}"] = agree
                extras["substitute_training_queries"][f"{vname}/seed{seed}"] = attack.training_queries_
                runner.run_cell(vname, victim, attack, bb_test, seed, threat="black_box",
                                substitute=config.substitute_arch, info={"agreement": agree})
        else:
            cls = {"square": SquareAttack, "hopskipjump": HopSkipJump}[name]
            runner.run_cell(vname, victim, cls(max_queries=config.max_queries), bb_test, seed, threat="black_box",
                            epsilons=config.query_epsilons if name == "square" else None)
        bar.update()


def _count_cells(config, victims, threats, train):
    per_victim = (len(config.white_box) * ("white_box" in threats) + ("control" in threats)
                  + len(config.black_box) * ("black_box" in threats))
    n_gray = (len(config.gray_box) * max(len(config.models) - 1, 0)
              if "gray_box" in threats and train is not None else 0)
    return len(config.seeds) * len(victims) * (per_victim + n_gray)
