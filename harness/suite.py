"""`run_suite` (one train/test pair) and `run_fold` (one fold of a study): plan cells, then run them through `run_cell`.

Evaluation follows AutoAttack: clean accuracy first, then every attack runs on the trials that are still
correctly classified (the control noise runs on all), and robust accuracy counts a trial only if it is correct
before and after. Black-box attacks evaluate on the test trials left after the attacker's seed set is removed.

Seeds: with trained victims, each seed of ``config.seeds`` trains its own victims (and substitutes) and seeds
their attacks; a model given by the user is attacked once per seed.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from tqdm.auto import tqdm

from ..data import EEGData, split_disjoint
from ..data._checks import ConfigError, DataError
from ..models import conform_data, conform_pair
from .arms import Arm
from .cache import VictimCache, victim_key
from .cell import CellResult, FoldContext, record_victim, run_cell
from .checks import run_checks
from .config import SuiteConfig
from .engines import build_tasks, make_engine, preflight, run_tasks
from .plan import Cell, attack_specs, check_attacks_planned, digest_of
from .results import SuiteResult, environment, model_hash
from .store import MemoryStore, Store

logger = logging.getLogger(__name__)


def train_victims(config: SuiteConfig, train: EEGData, *, progress: bool = True, seed=None) -> dict[str, nn.Module]:
    """Train one model per architecture in ``config.models`` on ``train`` (seed: ``config.seeds[0]``)."""
    cache = VictimCache(enabled=False, progress=progress)
    seed = config.seeds[0] if seed is None else seed
    return {arch: cache.get(train, arch, config.train, seed=seed)[0] for arch in config.models}


@dataclass(frozen=True)
class FoldKeys:
    """Where a fold's trials come from: the key columns of its rows."""

    dataset: str = "custom"
    subject: str = "1"
    session: str = ""
    fold: str = "official"
    protocol: str = "official"

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "subject": self.subject, "session": self.session, "fold": self.fold,
                "protocol": self.protocol}


class _Victim:
    """A victim as the plan knows it: name, architecture, identity; the model is trained or loaded on first use."""

    def __init__(self, name, arch, victim_id, train_seed, *, model=None, load=None, arm="none"):
        self.name, self.arch, self.victim_id, self.train_seed, self.arm = name, arch, victim_id, train_seed, arm
        self._model, self._load = model, load
        #: an ONNX model (forward only) has no gradients: white-box attacks are not planned for it
        self.has_gradients = bool(getattr(model, "has_gradients", True)) if model is not None else True

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model = self._load()
        return self._model


@dataclass
class FoldResult:
    """Rows, outcomes, examples and provenance of one fold."""

    cells: list = field(default_factory=list)
    results: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def rows(self) -> list:
        return [r for res in self.results for r in res.rows]


def _arch_of(name: str, model: nn.Module) -> str:
    arch = getattr(model, "arch", None)
    return arch if isinstance(arch, str) else ""


def plan_fold(config: SuiteConfig, *, test: EEGData, train: EEGData | None = None,
              victims: Mapping[str, nn.Module] | None = None, keys: FoldKeys = FoldKeys(),
              cache: VictimCache, device: str = "cpu") -> FoldPlan:
    """Plan every cell of one fold (nothing is trained or attacked): parameters as for `run_suite`.

    ``keys`` names the fold in every row; ``cache`` (a `harness.cache.VictimCache`) will train or load the
    victims when a cell first needs them.
    """
    config = SuiteConfig.make(config)
    if test.is_synthetic.any():
        raise DataError(f"test holds {int(test.is_synthetic.sum())} synthetic trials (is_synthetic); robustness is "
                        "measured on real trials only: evaluate on real epochs.")
    trained_here = victims is None
    if trained_here and train is None:
        raise ConfigError("run_suite needs victims=... or train=... (data to train the victims on).")
    skipped = []
    if "gray_box" in config.threat_models and train is None:
        skipped.append("gray_box: no training data given (the attacker of gray-box has the victim's training data)")
    if config.n_trials is not None and config.n_trials < test.n_trials:
        test, _ = split_disjoint(test, config.n_trials, random_state=0)
    by_seed = _victims_by_seed(config, victims, train, test, cache)
    for v in by_seed[config.seeds[0]]:  # labels by class name, channels, window and sampling rate
        if v.loaded:
            test = conform_data(v.model, test, name=f"victim {v.name!r}")
    if train is not None:  # trained victims and substitutes learn the training data's classes: one class order
        if trained_here:
            test = conform_pair(train, test)
        else:
            train = conform_pair(test, train)
    common = dict(**keys.as_dict(), train_hash="" if train is None else train.data_hash(),
                  test_hash=test.data_hash(), budget_unit=config.unit, train_config=digest_of(config.train),
                  n_trials=config.n_trials,
                  n_seed_trials=config.n_seed_trials, device=device)
    plan = []  # (cell, victim, substitutes) in execution order: per seed, victims, then gray-box by substitute
    for seed, vics in by_seed.items():
        subs = _substitutes(config, vics, train, cache, seed) if train is not None else {}
        gray = []
        for v in vics:
            for spec in attack_specs(config, v.arch, substitutes=tuple(subs), has_gradients=v.has_gradients):
                cell = Cell(model=v.name, arch=v.arch, arm=v.arm, train_seed=v.train_seed, attack=spec,
                            attack_seed=seed, victim_id=v.victim_id, **common)
                (gray if spec.threat_model == "gray_box" else plan).append((cell, v, subs))
        plan += sorted(gray, key=lambda t: list(subs).index(t[0].attack.substitute))
    return FoldPlan(config, keys, test, train, plan, trained_here, skipped, len(by_seed), device,
                    str(cache.root) if cache.enabled else None)


@dataclass
class FoldPlan:
    """The planned cells of one fold, in execution order, with the (lazily trained) victims they need."""

    config: SuiteConfig
    keys: FoldKeys
    test: EEGData
    train: EEGData | None
    entries: list
    trained_here: bool
    skipped: list
    n_seeds: int
    device: str = "cpu"
    cache_dir: str | None = None  # the victim cache's folder (black-box substitutes are cached there too)

    @property
    def cells(self) -> list:
        return [c for c, _, _ in self.entries]


def run_fold(config: SuiteConfig, *, test: EEGData, train: EEGData | None = None,
             victims: Mapping[str, nn.Module] | None = None, keys: FoldKeys = FoldKeys(), store=None,
             cache: VictimCache | None = None, progress: bool = True, device: str = "cpu",
             resume: bool = False, require_attack: bool = False, engine=None) -> FoldResult:
    """Plan every cell of one fold, check the store, run the cells not stored yet (see `run_suite`)."""
    engine = preflight(engine)  # before any victim is trained
    cache = VictimCache(enabled=False, progress=progress, device=device) if cache is None else cache
    store = MemoryStore() if store is None else store
    plan = plan_fold(config, test=test, train=train, victims=victims, keys=keys, cache=cache, device=device)
    if require_attack:
        check_attacks_planned(plan.cells, skipped=plan.skipped)
    store.open(plan_identity(plan.config, plan.cells), plan.cells, resume=resume)
    return execute_folds([plan], store, progress=progress, engine=engine)[0]


def execute_folds(plans, store, *, progress: bool = True, engine=None) -> list:
    """Run the planned cells of every fold that ``store`` does not hold yet, on ``engine`` (`harness.engines`):
    serial runs them here fold by fold; process and ray run the cells of all folds as one pool of tasks, then the
    folds are read back from the store."""
    engine = make_engine(engine)
    todo = [(p, [t for t in p.entries if not store.has(t[0])]) for p in plans]
    n_todo = sum(len(t) for _, t in todo)
    if engine.name != "serial" and n_todo:
        bar = tqdm(total=n_todo, desc=f"attacks ({engine.name}, {engine.n_jobs} jobs)", disable=not progress,
                   unit="cell")
        disk = isinstance(store, Store)
        with tempfile.TemporaryDirectory(prefix="eegrobust-engine-") as model_dir:
            saved: dict = {}
            tasks = [task for p, entries in todo if entries
                     for task in build_tasks(entries, test=p.test, unit=p.config.unit,
                                             n_seed_trials=p.config.n_seed_trials,
                                             store_root=str(store.root) if disk else None, device=p.device,
                                             cache_dir=p.cache_dir,
                                             model_dir=Path(model_dir), saved=saved)]
            done = run_tasks(engine, tasks, on_done=lambda t: bar.update(len(t["cells"])))
        bar.close()
        if not disk:
            for d in (d for results in done for d in results):
                store.put(CellResult.from_dict(d))
    return [execute_fold(p, store, progress=progress, n_run=len(entries)) for p, entries in todo]


def execute_fold(fold_plan: FoldPlan, store, *, progress: bool = True, n_run: int | None = None) -> FoldResult:
    """Run the planned cells of one fold that ``store`` does not hold yet, here; read the others from it.

    ``n_run``: cells of this fold an engine ran just before (recorded as ``n_cells_run``)."""
    config, keys, test, train, plan = (fold_plan.config, fold_plan.keys, fold_plan.test, fold_plan.train,
                                       fold_plan.entries)
    out = FoldResult(cells=fold_plan.cells)
    todo = [t for t in plan if not store.has(t[0])]
    bar = tqdm(total=len(todo), desc="attacks", disable=not progress or not todo, unit="cell")
    ctx_by_seed: dict = {}
    for cell, victim, subs in todo:
        ctx = ctx_by_seed.get(cell.attack_seed)
        if ctx is None:
            ctx_by_seed.clear()
            ctx = ctx_by_seed[cell.attack_seed] = FoldContext(test, config.unit, config.n_seed_trials,
                                                              _LazyModels(subs), fold_plan.cache_dir)
        bar.set_postfix_str(cell.describe())
        # every white-box cell keeps one fooled trial (the report shows each model's first, in plan order)
        result = record_victim(run_cell(cell, victim.model, ctx, keep_example=cell.attack.threat_model == "white_box"),
                               victim.model, model_hash(victim.model))
        store.put(result)
        bar.update()
    bar.close()
    out.results = [store.get(cell) for cell in fold_plan.cells]
    ctx = FoldContext(test, config.unit, config.n_seed_trials)
    agreement = {f"{r.cell.model}/seed{r.cell.attack_seed}": r.info["agreement"] for r in out.results
                 if "agreement" in r.info}
    queries = {f"{r.cell.model}/seed{r.cell.attack_seed}": r.info["training_queries"] for r in out.results
               if "training_queries" in r.info}
    chosen = {f"{r.cell.model}/seed{r.cell.attack_seed}": {"chosen": r.info["substitute_chosen"],
                                                           "agreement": r.info["substitute_members"]}
              for r in out.results if "substitute_members" in r.info}
    out.provenance = {
        **keys.as_dict(), "test_data_hash": test.data_hash(),
        "train_data_hash": None if train is None else train.data_hash(), "n_test_trials": test.n_trials,
        "n_black_box_seed_trials": len(ctx.seed_idx), "n_black_box_eval_trials": len(ctx.bb_idx),
        "classes": list(test.classes), "ch_names": list(test.ch_names), "ch_pos": test.ch_pos, "sfreq": test.sfreq,
        "budget_unit": config.unit, "budget_scale_uv": [float(s) for s in ctx.scale],
        "model_hashes": {(r.cell.model if fold_plan.n_seeds == 1 else f"{r.cell.model}/seed{r.cell.attack_seed}"):
                         r.info.get("victim_hash") for r in out.results},
        "victim_ids": sorted({c.victim_id for c in out.cells}),
        "arms": {f"{r.cell.model}/seed{r.cell.attack_seed}": r.info["arm"] for r in out.results if "arm" in r.info},
        "victims_trained_by_suite": fold_plan.trained_here, "skipped": fold_plan.skipped, "substitute_agreement": agreement,
        "substitute_training_queries": queries, "substitute_members": chosen, "n_cells": len(plan), "n_cells_run": len(todo) if n_run is None else n_run,
    }
    return out


def _victims_by_seed(config, victims, train, test, cache) -> dict:
    """Per seed, the victims: trained (one per architecture, arm and seed, from the cache) or given (same each seed).

    A victim of arm "none" is named after its architecture; one of another arm ``a`` is named ``arch+a`` (the
    ``model`` column tells the victims apart; the ``arch`` and ``arm`` columns say what each is)."""
    if victims is None:
        return {seed: [_trained(cache, train, arch, config, seed, arm=Arm.make(arm))
                       for arch in config.models for arm in config.arms] for seed in config.seeds}
    defended = [a for a in config.arms if a != "none"]
    if defended:
        raise ConfigError(f"arms {','.join(defended)} train the victims, and the victims here are given models "
                          "(--model); drop --arms, or train the victims on your data (--data/--dataset).")
    given = []
    for name, model in victims.items():
        if not isinstance(model, nn.Module):
            raise TypeError(f"victim {name!r} must be a torch.nn.Module, got {type(model).__name__}.")
        if model.training:
            warnings.warn(f"victim {name!r} was in training mode (dropout, batch statistics); the suite evaluates "
                          "and attacks it in eval mode.", UserWarning, stacklevel=3)
        model.eval()
        given.append(_Victim(name, _arch_of(name, model), "m-" + model_hash(model)[:20], None, model=model))
    return {seed: given for seed in config.seeds}


def victim_name(arch: str, arm: str) -> str:
    """The ``model`` column of a victim trained by a study: ``arch``, or ``arch+arm`` for arms other than none."""
    return arch if arm == "none" else f"{arch}+{arm}"


def _trained(cache, train, arch, config, seed, *, arm: Arm | None = None) -> _Victim:
    arm = Arm.make("none") if arm is None else arm
    key = victim_key(train, arch, config.train, arm.key(config.unit), seed)
    return _Victim(victim_name(arch, arm.label), arch, key, seed, arm=arm.label,
                   load=lambda: cache.get(train, arch, config.train, arm=arm, seed=seed, unit=config.unit)[0])


def _substitutes(config, vics, train, cache, seed) -> dict:
    """Gray-box substitutes by architecture: models of the suite's architectures trained on the victims' data.

    Substitutes are trained without a defence (arm "none"): the gray-box attacker has the training data, not the
    victim's training recipe. A victim of arm "none" trained by the suite is itself such a substitute for the
    victims of the other architectures (same data, its own initial weights); for given models they are trained
    (or loaded from the cache) with seed + 1000.
    """
    if all(v.train_seed is not None for v in vics):
        subs = {v.arch: v for v in vics if v.arm == "none"}
        subs.update({arch: _trained(cache, train, arch, config, seed) for arch in config.models if arch not in subs})
    else:
        own = {v.arch for v in vics}
        subs = {arch: _trained(cache, train, arch, config, seed + 1000) for arch in config.models if {arch} != own}
    return {a: subs[a] for a in config.models if a in subs}


class _LazyModels(dict):
    """Substitutes by architecture; each is trained or loaded when a cell first needs it."""

    def __getitem__(self, arch):
        return dict.__getitem__(self, arch).model


def plan_identity(config: SuiteConfig, cells) -> dict:
    """What ``study.json`` records of a plan: the configuration and every cell's digest."""
    return {"config": config.to_dict(), "cells": [c.digest for c in cells]}


def run_suite(config=None, *, test: EEGData, train: EEGData | None = None,
              victims: Mapping[str, nn.Module] | None = None, progress: bool = True, on_fail: str = "warn",
              store=None, cache: VictimCache | None = None, keys: FoldKeys | None = None,
              device: str = "cpu", resume: bool = False, require_attack: bool = False, engine=None) -> SuiteResult:
    """Run a robustness suite on one train/test pair and return its rows with provenance and sanity checks.

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
    store : harness.store.Store or None
        Keeps every finished cell (one file each); with ``resume`` the cells already there are not run again.
        A folder that already holds results is refused without ``resume``.
    cache : harness.cache.VictimCache or None
        Trains or loads the victims and substitutes (None: train them, cache nothing).
    keys : FoldKeys or None
        Dataset, subject and fold named in every row (default: dataset ``config.dataset``, official split).
    require_attack : bool, default=False
        Raise ConfigError when the plan holds no attack at a budget > 0 (CI gates fail closed).
    engine : harness.engines.Engine, str or None
        Where the cells run: "serial" (None, this process), "process" (a local pool) or "ray" (`harness.engines`);
        every engine gives the same rows apart from timing fields.
    """
    config = SuiteConfig.make(config)
    keys = FoldKeys(dataset=config.dataset if victims is None else "custom") if keys is None else keys
    fold = run_fold(config, test=test, train=train, victims=victims, keys=keys, store=store, cache=cache,
                    progress=progress, device=device, resume=resume, require_attack=require_attack, engine=engine)
    return suite_result(config, [fold], on_fail=on_fail)


def suite_result(config: SuiteConfig, folds, *, on_fail: str = "warn", extra_provenance=None) -> SuiteResult:
    """One `SuiteResult` from the folds of a study (rows, per-trial outcomes, examples, provenance, checks)."""
    rows = [r for f in folds for r in f.rows]
    outcomes = [{**{k: res.rows[0][k] for k in OUTCOME_KEYS}, **res.outcomes} for f in folds
                for res in f.results if res.rows]
    examples, seen = [], set()
    for e in (e for f in folds for res in f.results for e in res.examples):  # one fooled trial per model
        if e["model"] not in seen:
            seen.add(e["model"])
            examples.append(e)
    provenance = dict(folds[0].provenance) if len(folds) == 1 else {"folds": [f.provenance for f in folds]}
    provenance.update(extra_provenance or {})
    checks = run_checks(rows, on_fail=on_fail)
    return SuiteResult(rows, config.to_dict(), provenance, environment(), checks, examples, outcomes)


#: Columns that identify the cell of a block of per-trial outcomes.
OUTCOME_KEYS = ("dataset", "subject", "session", "fold", "protocol", "model", "arm", "train_seed", "attack_seed",
                "threat_model", "attack", "substitute", "norm")
