"""Trained victims, cached on disk as safe bundles and keyed by what determines their weights.

The key covers the training data's hash, the architecture, the training configuration, the arm, the training
seed and the eegrobust version, so a rerun of a study (or another study on the same data) trains nothing, and a
victim trained on other data can never be served. Bundles are safetensors + JSON (`models.save_bundle`): loading
one never unpickles anything.

Location: ``cache_dir`` if given, else ``$EEGROBUST_CACHE``, else ``$XDG_CACHE_HOME/eegrobust`` (``~/.cache``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..data import EEGData
from ..data._checks import ModelFileError
from ..models import TrainConfig, build_model, fit_model, load_bundle, save_bundle
from .arms import Arm, train_arm
from .plan import digest_of

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    env = os.environ.get("EEGROBUST_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eegrobust" / "victims"


def victim_key(train: EEGData, arch: str, train_config: dict, arm, seed: int) -> str:
    """Cache key of a victim: digest of (data hash, architecture, training config, arm, seed, version)."""
    from .. import __version__

    return "v-" + digest_of({"data": train.data_hash(), "arch": arch, "train": train_config, "arm": arm,
                             "seed": seed, "eegrobust": __version__})


class VictimCache:
    """Train-or-load victims. ``enabled=False`` (``--no-cache``) always trains and writes nothing.

    Attributes
    ----------
    n_trained, n_loaded : int
        How many victims this cache trained and how many it served from disk.
    """

    def __init__(self, cache_dir=None, *, enabled: bool = True, device: str = "cpu", progress: bool = False):
        self.root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.enabled, self.device, self.progress = enabled, device, progress
        self.n_trained = self.n_loaded = 0
        self._memory: dict = {}

    def get(self, train: EEGData, arch: str, train_config: dict, *, arm="none", seed: int = 0, unit: str = "rel"):
        """The victim for this key, as (model in eval mode on ``device``, key).

        ``arm``: a training arm (`harness.arms.Arm` or spec such as ``"pgd_at(eps=0.05)"``) in budget ``unit``."""
        arm = Arm.make(arm)
        key = victim_key(train, arch, train_config, arm.key(unit), seed)
        if key in self._memory:
            return self._memory[key], key
        model = self._load(key) if self.enabled else None
        if model is None:
            model = self._train(train, arch, train_config, seed, arm, unit)
            if self.enabled:
                self._save(model, key)
        model = model.to(self.device).eval()
        self._memory[key] = model
        return model, key

    def _train(self, train, arch, train_config, seed, arm, unit):
        logger.info("training %s (seed %d, arm %s) on %d trials", arch, seed, arm.label, train.n_trials)
        self.n_trained += 1
        if arm.name == "none":
            config = TrainConfig.from_dict({**train_config, "seed": seed, "show_progress": self.progress})
            return fit_model(build_model(arch, train, random_state=seed), train, config)
        return train_arm(arch, train, arm, train_config=train_config, seed=seed, unit=unit, device=self.device,
                         progress=self.progress)

    def _load(self, key):
        path = self.root / key
        if not (path / "model.json").is_file():
            return None
        try:
            model = load_bundle(path)
        except ModelFileError as err:
            logger.warning("ignoring a damaged cached victim %s (%s); training it again", path, err)
            shutil.rmtree(path, ignore_errors=True)  # so the retrained one can take its place
            return None
        self.n_loaded += 1
        return model

    def _save(self, model, key):
        _write_folder(self.root / key, lambda tmp: save_bundle(model, tmp), "victim")


def _write_folder(path: Path, write, what: str) -> None:
    """``write(tmp)`` fills a temporary sibling folder, renamed to ``path`` atomically (a reader sees a whole cache
    entry or none). A failure (an unwritable cache, or another process that wrote ``path`` first) only warns: the
    entry is computed again next time."""
    tmp = path.parent / f".{path.name}.tmp{os.getpid()}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.exists():
            logger.warning("could not cache the %s in %s (%s); it will be trained again next time", what,
                           path.parent, err)


# -- black-box substitutes ----------------------------------------------------------------------------------------
def substitute_key(attack, victim, scale) -> str:
    """Cache key of a `attacks.JacobianSubstitute`'s trained substitute: digest of the victim's weights (it labels
    every queried trial), the seed trials, the budget scale (the augmentation step is in its units), the attack's
    training parameters and seed, and the eegrobust version (what determines the substitute's weights)."""
    from .. import __version__
    from .results import model_hash

    train = None if attack.train_config is None else attack.train_config.to_dict()
    return "s-" + digest_of({"victim": model_hash(victim), "seed": attack.seed.data_hash(),
                             "scale": [float(s) for s in scale], "arch": attack.arch, "members": list(attack.members),
                             "rounds": attack.rounds, "lam": float(attack.lam), "train": train,
                             "random_state": attack.random_state, "eegrobust": __version__})


def fit_substitute(attack, victim, scale, cache_dir=None):
    """``attack.fit(victim, scale)``, or its fitted state read from ``cache_dir`` (the victim cache's folder).

    A `attacks.JacobianSubstitute` is a deterministic function of what `substitute_key` covers, so a rerun of a
    study (a demo rerun, more budgets, another report) queries and trains nothing: the substitute, its members'
    agreements and the training queries it cost are read back (safe bundles and JSON, never a pickle). ``cache_dir``
    None (``--no-cache``): always fitted, nothing written. Returns ``attack``, fitted."""
    if cache_dir is None:
        return attack.fit(victim, scale)
    path = Path(cache_dir) / substitute_key(attack, victim, scale)
    if _load_substitute(attack, path):
        return attack
    attack.fit(victim, scale)
    _save_substitute(attack, path)
    return attack


def _load_substitute(attack, path: Path) -> bool:
    import json

    from ..attacks.substitute import SubstituteEnsemble

    meta_file = path / "substitute.json"
    if not meta_file.is_file():
        return False
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        models = [load_bundle(path / f"m{i}") for i in range(int(meta["n_models"]))]
        if meta["kind"] == "ensemble":
            substitute = SubstituteEnsemble(models)
        elif len(models) == 1:
            substitute = models[0]
        else:
            raise ValueError(f"kind {meta['kind']!r} with {len(models)} models")
        members = {str(k): float(v) for k, v in meta["members"].items()}
        queries = int(meta["training_queries"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ModelFileError) as err:
        logger.warning("ignoring a damaged cached substitute %s (%s); training it again", path, err)
        shutil.rmtree(path, ignore_errors=True)  # so the retrained one can take its place
        return False
    attack.substitute_, attack.members_, attack.training_queries_ = substitute.eval(), members, queries
    return True


def _save_substitute(attack, path: Path) -> None:
    import json

    from ..attacks.substitute import SubstituteEnsemble

    sub = attack.substitute_
    ensemble = isinstance(sub, SubstituteEnsemble)
    models = list(sub.members) if ensemble else [sub]
    meta = {"kind": "ensemble" if ensemble else "single", "n_models": len(models), "members": attack.members_,
            "training_queries": int(attack.training_queries_)}

    def write(tmp):
        for i, m in enumerate(models):
            save_bundle(m, tmp / f"m{i}")
        (tmp / "substitute.json").write_text(json.dumps(meta), encoding="utf-8")

    _write_folder(path, write, "substitute")
