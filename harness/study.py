"""Studies on the user's own data: `StudyConfig` (data + protocol + models + suite + seeds) and `run_study`.

A study loads a dataset (files or globs with BIDS subjects, a train/test pair, a bundled set, or MOABB), splits
it by a protocol into folds, plans every cell of every fold (nothing runs until all are planned and checked
against the store), then runs the cells the store does not hold yet. Victims come from the victim cache, so a
rerun trains nothing. Results: `SuiteResult` (rows and per-trial outcomes, all folds) plus analysis tables.
"""

from __future__ import annotations

import logging
import math
import re
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..attacks.budget import check_epsilons
from ..data import load_dataset, make_protocol
from ..data._checks import ConfigError, check_option, first_repeat
from .arms import parse_arms
from .cache import VictimCache
from .certify import make_certify_config, run_certification
from .config import PRESETS, SuiteConfig
from .engines import Engine, preflight
from .plan import check_attacks_planned
from .store import Store
from .suite import FoldKeys, execute_folds, plan_fold, plan_identity, suite_result

logger = logging.getLogger(__name__)

THREAT_ALIASES = {"white": "white_box", "gray": "gray_box", "grey": "gray_box", "black": "black_box",
                  "control": "control", "white_box": "white_box", "gray_box": "gray_box", "black_box": "black_box"}


def _tuple(value):
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (int, float)):
        return (value,)
    return tuple(value)


def parse_seeds(value) -> tuple:
    """Seeds from "0,1,2" or a list: non-negative integers, else ConfigError naming the value."""
    seeds = _tuple(value)
    out = []
    for s in seeds:
        try:
            if isinstance(s, bool) or (isinstance(s, float) and not s.is_integer()):
                raise ValueError
            if isinstance(s, str) and not re.fullmatch(r"\s*\+?[0-9]+\s*", s):  # int() reads "1_0" as 10
                raise ValueError
            n = int(s)
        except (TypeError, ValueError):
            raise ConfigError(f"seeds must be non-negative integers such as 0,1,2, got {s!r}.") from None
        if not 0 <= n < 2**32:
            raise ConfigError(f"seeds must be integers from 0 to 2**32 - 1 such as 0,1,2, got {s!r}.")
        out.append(n)
    if not out:
        raise ConfigError("seeds must name at least one integer, e.g. --seeds 0,1,2.")
    twice = first_repeat(out)
    if twice is not None:  # one victim per seed: a repeat would look like more seeds than the study has
        raise ConfigError(f"seeds lists {twice} more than once ({','.join(map(str, out))}); give each seed once.")
    return tuple(out)


@dataclass(frozen=True)
class StudyConfig:
    """One robustness study, as the CLI (``eegrobust run``), a TOML file and Python give it.

    Data (exactly one): ``data`` (epochs files or quoted globs; subjects from BIDS ``sub-XX`` names, metadata, or
    one per file), ``train`` + ``test`` (an explicit pair), ``dataset`` (a bundled set) or ``moabb`` (a MOABB
    dataset name, with ``paradigm``). ``subjects`` keeps some subjects only.

    Parameters
    ----------
    protocol : {"official", "within-subject", "cross-session", "cross-subject"}, default="official"
    folds : int, default=5
        K of within-subject K-fold.
    models : tuple of str or None
        Architectures to train (None: the preset's).
    preset : str, default="standard"
        `harness.config.PRESETS` name: attack strength and grid.
    seeds : tuple of int or None
        One victim is trained per seed, and the seed drives its attacks (None: the preset's seeds).
    threat, attacks, eps : optional overrides of the preset's threat models, attack names and budgets.
    arms : str, tuple or None
        Training arms (`harness.arms`, e.g. ``"none,pgd_at,trades(beta=1)"`` or a list): every architecture is
        trained once per arm and every arm meets the same attacks (None: the preset's, "none").
    certify : str, dict or None
        Also certify every trained victim of every fold by randomized smoothing (`harness.certify`): a preset
        ("quick": sigma 0.25 and 0.5, n=1000; "cohen": Cohen et al.'s 100 / 100,000 / 0.001) or a table of
        `CertifyConfig` fields; written to ``certification.csv`` / ``certification.json`` (not in the store: it
        runs again on resume).
    suite : dict
        Any other `SuiteConfig` field (e.g. ``{"n_trials": 100, "train": {"max_epochs": 30}}``).
    device : {"auto", "cpu", "cuda"}
    engine : {"serial", "process", "ray"}, default="serial"
        Where the cells run (`harness.engines`); ``jobs`` workers (None: one per core), ``ray_address`` an existing
        Ray cluster. Not part of the study's identity: a study resumes on any engine, with the same rows.
    out : str
        Study folder (store, results, tables).
    resume : bool
        Continue a study in ``out``; without it a folder holding results is refused.
    cache : bool
        Use the victim cache (``--no-cache``: always train, write nothing there).
    cache_dir : str or None
        Victim cache folder (default `harness.cache.default_cache_dir`).
    epochs_kwargs : dict
        Passed to `data.load_epochs` for every file of ``data`` or ``train``/``test`` (``tmin``, ``tmax``,
        ``event_id`` to epoch raw recordings; the CLI's ``--tmin/--tmax/--event-id``).
    """

    data: tuple | None = None
    train: str | None = None
    test: str | None = None
    dataset: str | None = None
    moabb: str | None = None
    paradigm: str | None = None
    subjects: tuple | None = None
    protocol: str = "official"
    folds: int = 5
    models: tuple | None = None
    preset: str = "standard"
    seeds: tuple | None = None
    threat: tuple | None = None
    attacks: tuple | None = None
    eps: tuple | None = None
    arms: tuple | None = None
    certify: str | dict | None = None
    suite: dict = field(default_factory=dict)
    device: str = "auto"
    engine: str = "serial"
    jobs: int | None = None
    ray_address: str | None = None
    out: str = "eegrobust-study"
    resume: bool = False
    cache: bool = True
    cache_dir: str | None = None
    epochs_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        self._check_types()
        for name in ("data", "subjects", "models", "threat", "attacks"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        if self.subjects is not None:
            object.__setattr__(self, "subjects", tuple(str(s) for s in self.subjects))
            twice = first_repeat(self.subjects)
            if twice is not None:  # a subject listed twice would be evaluated, and averaged, twice
                raise ConfigError(f"subjects lists {twice!r} more than once ({','.join(self.subjects)}); give each "
                                  "subject once.")
        if self.seeds is not None:
            object.__setattr__(self, "seeds", parse_seeds(self.seeds))
        if self.eps is not None:
            object.__setattr__(self, "eps", check_epsilons(_tuple(self.eps), unique=True, name="eps"))
        if self.arms is not None:
            object.__setattr__(self, "arms", parse_arms(self.arms))
        object.__setattr__(self, "suite", dict(self.suite))
        object.__setattr__(self, "epochs_kwargs", dict(self.epochs_kwargs or {}))
        given = [k for k in ("data", "dataset", "moabb") if getattr(self, k)] + (
            ["train/test"] if self.train or self.test else [])
        if len(given) != 1:
            raise ConfigError("give exactly one data source: --data PATH..., --train PATH --test PATH, --dataset "
                              f"NAME or --moabb NAME (got {', '.join(given) or 'none'}).")
        if (self.train is None) != (self.test is None):
            raise ConfigError("--train and --test go together: give both files (or use --data with a protocol).")
        if self.epochs_kwargs and not (self.data or self.train):
            raise ConfigError(f"epochs_kwargs {sorted(self.epochs_kwargs)} (--tmin/--tmax/--event-id) apply to "
                              "files (--data, --train/--test) only, not to --dataset or --moabb.")
        check_option("preset", self.preset, PRESETS)
        check_option("device", self.device, ("auto", "cpu", "cuda"))
        Engine(self.engine, self.jobs, self.ray_address)  # validates the engine, --jobs and --ray-address
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(f"folds must be an integer >= 2, got {self.folds!r}.")
        make_protocol(self.protocol, n_folds=self.folds)  # validates the name
        if self.folds != 5 and self.protocol != "within-subject":  # 5: the default, which every protocol accepts
            raise ConfigError(f"folds={self.folds} applies to the within-subject protocol only; the "
                              f"{self.protocol!r} protocol makes its own folds (official: the given split; "
                              "cross-session/cross-subject: one per session/subject). Drop --folds, or use "
                              "--protocol within-subject.")
        if self.certify is not None:
            make_certify_config(self.certify)
        self.suite_config()  # validates models, threats, attacks, budgets and the suite overrides

    def _check_types(self) -> None:
        """Refuse values of the wrong type (a study file's ``resume = "no"`` would otherwise read as true)."""
        def bad(name, value, want):
            raise ConfigError(f"{name} must be {want}, got {value!r}.")

        for name in ("resume", "cache"):
            if not isinstance(getattr(self, name), bool):
                bad(name, getattr(self, name), "true or false")
        for name in ("device", "engine", "protocol", "preset", "out"):
            if not isinstance(getattr(self, name), (str, Path)):
                bad(name, getattr(self, name), "text")
        for name in ("dataset", "moabb", "paradigm", "ray_address", "cache_dir"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), (str, Path)):
                bad(name, getattr(self, name), "text")
        for name in ("data", "train", "test"):
            value = getattr(self, name)
            items = value if isinstance(value, (list, tuple)) else [value]
            if value is not None and not all(isinstance(v, (str, Path)) for v in items):
                bad(name, value, "a path or a list of paths")
        for name in ("suite", "epochs_kwargs"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dict):
                bad(name, getattr(self, name), "a table (mapping)")
        examples = {"models": '["eegnet", "shallow"]', "threat": '["white", "black"]',
                    "attacks": '["fgsm", "linf_pgd"]'}
        for name, example in examples.items():  # names: text, or a list of text
            value = getattr(self, name)
            items = value if isinstance(value, (list, tuple)) else [value]
            if value is not None and not all(isinstance(v, str) for v in items):
                bad(name, value, f"text or a list of text (e.g. {example})")
        unknown = sorted(set(self.epochs_kwargs or {}) - {"tmin", "tmax", "event_id"})
        if unknown:
            check_option("epochs_kwargs key", unknown[0], ("tmin", "tmax", "event_id"))
        for name in ("tmin", "tmax"):
            value = (self.epochs_kwargs or {}).get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                bad(f"epochs_kwargs.{name}", value, "a finite number of seconds")

    # -- the suite each fold runs ----------------------------------------------------------------------------
    def suite_config(self) -> SuiteConfig:
        """The preset with this study's overrides (models, seeds, threat models, attacks, budgets, suite)."""
        from .config import attack_overrides

        overrides = dict(self.suite)
        unknown = sorted(set(overrides) - {f.name for f in fields(SuiteConfig)})
        if unknown:
            check_option("suite key", unknown[0], [f.name for f in fields(SuiteConfig)])
        if self.models is not None:
            overrides["models"] = self.models
        if self.seeds is not None:
            overrides["seeds"] = self.seeds
        if self.eps is not None:
            overrides["epsilons"] = self.eps
        if self.arms is not None:
            overrides["arms"] = self.arms
        if self.threat is not None:
            if not [t for t in self.threat if t.strip()]:  # --threat "" would attack nothing: a usage error
                raise ConfigError("threat names no threat model; give e.g. --threat white,gray,black (or leave it "
                                  "out for all of them).")
            threats = [THREAT_ALIASES.get(t.replace("-", "_"), None) or check_option("threat", t, THREAT_ALIASES)
                       for t in self.threat]
            overrides["threat_models"] = tuple(dict.fromkeys(threats + ["control"]))
        if self.attacks is not None:
            overrides.update(attack_overrides(self.attacks))
        if self.dataset is not None:
            overrides["dataset"] = self.dataset
        return SuiteConfig.make(self.preset, **overrides)

    # -- round trips -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> StudyConfig:
        known = {f.name: f for f in fields(cls)}
        for key, value in d.items():
            if key not in known:
                check_option("study key", key, list(known))
            if isinstance(value, dict) and "dict" not in str(known[key].type):  # a TOML table where a value goes
                example = {"tuple": f"{key} = [...]", "int": f"{key} = 5", "bool": f"{key} = true"}
                kind = next((k for k in example if k in str(known[key].type)), "str")
                raise ConfigError(f"study key {key!r} must be {'a list' if kind == 'tuple' else 'a ' + kind}, got the "
                                  f"table {value!r} (a [{key}] section); write it as "
                                  f"{example.get(kind, key + ' = ' + chr(34) + '...' + chr(34))}.")
        return cls(**d)

    @classmethod
    def from_toml(cls, path, **overrides) -> StudyConfig:
        try:
            with open(path, "rb") as f:
                d = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"study file {str(path)!r} does not exist.") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"study file {str(path)!r} is not valid TOML: {err}.") from None
        except OSError as err:
            raise ConfigError(f"study file {str(path)!r} cannot be read ({err.strerror or type(err).__name__}).") \
                from None
        return cls.from_dict({**d, **{k: v for k, v in overrides.items() if v is not None}})


def resolve_device(name: str) -> str:
    """"auto" -> "cuda" when available, else "cpu"; "cuda" without a GPU -> ConfigError."""
    import torch

    check_option("device", name, ("auto", "cpu", "cuda"))
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu or auto.")
    return name


@dataclass
class StudyResult:
    """What `run_study` measured: the `SuiteResult` of every fold, the folder, and what it trained."""

    result: object
    out: Path
    folds: list
    n_cells: int
    n_cells_run: int
    n_trained: int
    n_loaded: int
    seconds: float

    @property
    def rows(self):
        return self.result.rows

    def frame(self):
        return self.result.to_frame()

    def outcomes(self):
        return self.result.outcomes_frame()


def run_study(config, *, progress: bool = True, on_fail: str = "warn", **overrides) -> StudyResult:
    """Run a study: load data, split by protocol, plan every cell, run those not in the store, save everything.

    Parameters
    ----------
    config : StudyConfig, dict or str (a TOML file)
        The study (`StudyConfig`); ``overrides`` replace its fields.
    progress : bool, default=True
        Progress bars.

    Returns
    -------
    StudyResult
        Also written to ``config.out``: ``study.json`` and ``cells/`` (the store), ``results.json`` /
        ``results.csv`` (every row, every fold, with per-trial outcomes in the JSON) and the analysis tables
        ``subjects.csv`` (per subject) and ``summary.csv`` (across subjects and seeds).
    """
    t0 = time.perf_counter()
    if isinstance(config, (str, Path)):
        config = StudyConfig.from_toml(config)
    elif isinstance(config, dict):
        config = StudyConfig.from_dict(config)
    if overrides:
        config = replace(config, **overrides)
    suite = config.suite_config()
    device = resolve_device(config.device)
    engine = preflight(Engine(config.engine, config.jobs, config.ray_address))  # before any victim is trained
    name, data = _load_study_data(config)
    protocol = make_protocol(config.protocol, n_folds=config.folds)
    protocol.check(data)
    cache = VictimCache(config.cache_dir, enabled=config.cache, device=device, progress=progress)
    plans = []
    for fold in protocol.split(data):
        train, test = data.subset(fold.train_idx), data.subset(fold.test_idx)
        keys = FoldKeys(dataset=name, subject=str(fold.subject), session=str(fold.session or ""), fold=fold.name,
                        protocol=protocol.name)
        plans.append(plan_fold(replace(suite, dataset=name), test=test, train=train, keys=keys, cache=cache,
                               device=device))
    cells = [c for p in plans for c in p.cells]
    check_attacks_planned(cells, skipped=plans[0].skipped if plans else ())
    store = Store(config.out)
    identity = plan_identity(suite, cells)
    store.open({**identity, "study": config.to_dict(), "dataset": name, "protocol": protocol.name,
                "folds": [p.keys.as_dict() for p in plans]}, cells, resume=config.resume)
    logger.info("%d folds, %d cells, engine %s", len(plans), len(cells), config.engine)
    folds = execute_folds(plans, store, progress=progress,
                          engine=engine)
    extra = {"study": config.to_dict(), "dataset": name, "protocol": protocol.name,
             "n_subjects": len(data.subjects), "n_folds": len(plans)}
    result = suite_result(replace(suite, dataset=name), folds, on_fail=on_fail, extra_provenance=extra)
    out = Path(config.out)
    result.save(out)
    write_analysis(result, out)
    if config.certify is not None:
        result.provenance["certification"] = certify_victims(plans, make_certify_config(config.certify), out,
                                                             progress=progress)
    n_run = sum(f.provenance["n_cells_run"] for f in folds)
    return StudyResult(result, out, folds, len(cells), n_run, cache.n_trained, cache.n_loaded,
                       time.perf_counter() - t0)


def certify_victims(plans, config, out: Path, *, progress: bool = False) -> dict:
    """Randomized smoothing of every victim of every fold on that fold's test trials; writes ``certification.csv``
    (one row per fold, victim, sigma and radius) and ``certification.json``; returns what the provenance records."""
    import json

    import pandas as pd

    from .results import atomic_write

    rows, t0 = [], time.perf_counter()
    for plan in plans:
        seen = set()
        for _, victim, _ in plan.entries:
            if victim.victim_id in seen:
                continue
            seen.add(victim.victim_id)
            res = run_certification(victim.model, plan.test, config, seed=victim.train_seed or 0,
                                    model_name=victim.name, progress=progress)
            rows += [{**plan.keys.as_dict(), "arm": victim.arm, "train_seed": victim.train_seed, **r}
                     for r in res["rows"]]
    info = {"config": config.to_dict(), "n_rows": len(rows), "seconds": round(time.perf_counter() - t0, 1),
            "method": "Cohen, Rosenfeld and Kolter (2019) CERTIFY in budget space; L2 radius in budget units"}
    atomic_write(out / "certification.csv", pd.DataFrame(rows).to_csv(index=False))
    atomic_write(out / "certification.json", json.dumps({"rows": rows, **info}, indent=1))
    return info


def _load_study_data(config: StudyConfig):
    """`data.load_dataset` of the study's source; files are read with ``config.epochs_kwargs`` when given."""
    if not config.epochs_kwargs:
        return load_dataset(data=config.data, train=config.train, test=config.test, bundled=config.dataset,
                            moabb=config.moabb, subjects=config.subjects, paradigm=config.paradigm)
    from ..data import load_files
    from ..data.datasets import _files_name

    kw = config.epochs_kwargs
    if config.data is not None:
        return _files_name(config.data), load_dataset(data=load_files(config.data, **kw), subjects=config.subjects)[1]
    return load_dataset(train=load_files(config.train, **kw), test=load_files(config.test, **kw),
                        subjects=config.subjects)


def write_analysis(result, out: Path) -> dict:
    """Per-subject and aggregate tables (CSV) from a result: worst case per norm, every attack, mean ± sd, CI."""
    from .results import atomic_write

    tables = analysis_tables(result)
    paths = {}
    for name, frame in tables.items():
        paths[name] = out / f"{name}.csv"
        atomic_write(paths[name], frame.to_csv(index=False))
    return paths


def analysis_tables(result) -> dict:
    """``subjects`` (per subject: robust accuracy per attack and the per-trial worst case per norm), ``summary``
    (across subjects and seeds: mean, sd with ddof=1, 95 % CI, n) and, with two models or more, ``tests`` (paired
    Wilcoxon signed-rank tests of the white-box worst case between models across subjects, Holm-corrected; fewer
    than 5 subjects give a note instead of a p-value)."""
    import pandas as pd

    from . import analysis

    rows = result.to_frame()
    rows = rows[rows["epsilon"] > 0] if len(rows) else rows
    per_attack = rows.assign(kind="attack")[["kind", *analysis.UNIT_KEYS, "threat_model", "attack", "substitute",
                                             "norm", "epsilon", "clean_rca", "adv_rca", "adv_bca"]]
    outcomes = result.outcomes_frame()
    frames = [per_attack]
    white = (outcomes[(outcomes["threat_model"] == "white_box") & (outcomes["epsilon"] > 0)] if len(outcomes)
             else outcomes)
    if len(white):
        wc = analysis.worst_case(outcomes[outcomes["epsilon"] > 0], threat_models=("white_box",))
        frames.append(pd.DataFrame({
            "kind": "worst_case", **{k: wc[k] for k in analysis.UNIT_KEYS}, "threat_model": "white_box",
            "attack": "worst(" + wc["attacks"] + ")", "substitute": "", "norm": wc["norm"], "epsilon": wc["epsilon"],
            "clean_rca": wc["clean_rca"], "adv_rca": wc["robust_rca"], "adv_bca": wc["robust_bca"]}))
    subjects = pd.concat(frames, ignore_index=True)
    by = ("kind", "model", "arm", "threat_model", "attack", "substitute", "norm", "epsilon")
    summary = analysis.aggregate(subjects, value="adv_rca", by=by,
                                 over=("subject", "session", "fold", "train_seed", "attack_seed"))
    tables = {"subjects": subjects, "summary": summary}
    worst = subjects[subjects["kind"] == "worst_case"]
    if worst["model"].nunique() >= 2:  # models compared on the same subjects: paired Wilcoxon, Holm-corrected
        tables["tests"] = analysis.paired_tests(worst, between="model", value="adv_rca", pair_on="subject",
                                                by=("norm", "epsilon"))
    return tables
