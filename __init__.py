"""eegrobust: adversarial-robustness test harness for EEG brain-computer interfaces.

One namespace for the public API; the subpackages are ``eegrobust.data`` (EEG in), ``eegrobust.models`` (decoders,
the training loop, bundles), ``eegrobust.attacks`` (perturbations by threat model) and ``eegrobust.harness``
(studies, cells, store, analysis, reports, CLI, pytest plugin). Names load lazily, so ``import eegrobust`` (which
pytest does at start-up for the plugin) imports neither torch nor MNE.

>>> import eegrobust as er
>>> train, test = (er.epochs_to_data(e) for e in er.load_bundled("scp1"))
>>> model = er.fit_model(er.build_model("eegnet", train), train, er.TrainConfig(seed=0))
"""

from importlib import import_module

__version__ = "0.3.3"

#: public name -> submodule that defines it
_API = {
    # data
    "EEGData": "data", "load_epochs": "data", "epochs_to_data": "data", "load_bundled": "data",
    "bundled_names": "data", "make_synthetic_epochs": "data", "DataError": "data", "ConfigError": "data",
    "ModelFileError": "data", "EEGRobustError": "data", "load_dataset": "data", "PROTOCOLS": "data",
    "make_protocol": "data",
    # models
    "build_model": "models", "fit_model": "models", "TrainConfig": "models", "save_bundle": "models",
    "load_bundle": "models", "predict": "models", "model_names": "models",
    # attacks
    "make_attack": "attacks", "attack_names": "attacks", "channel_scale": "attacks",
    # harness
    "SuiteConfig": "harness.config", "PRESETS": "harness.config", "run_suite": "harness.suite",
    "SuiteResult": "harness.results", "write_report": "harness.report", "assert_robust": "harness.robustness",
    "RobustnessError": "harness.robustness", "parametrize_with_attacks": "harness.robustness",
    "StudyConfig": "harness.study", "run_study": "harness.study", "Cell": "harness.plan",
    "plan_fold": "harness.suite", "run_cell": "harness.cell", "Store": "harness.store",
    "Arm": "harness.arms", "train_arm": "harness.arms", "CertifyConfig": "harness.certify",
    "certify": "harness.certify", "run_certification": "harness.certify", "SmoothedClassifier": "harness.certify",
}

__all__ = sorted(_API)


def __getattr__(name):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'eegrobust' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
