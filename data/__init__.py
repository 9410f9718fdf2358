"""EEG in: recordings and epochs to ``mne.Epochs`` and `EEGData` (microvolts); datasets; protocols; splits."""

from ._checks import ConfigError, DataError, EEGRobustError, ModelFileError, check_option
from .augment import BatchAugmentation, mix_synthetic, synthetic_mask
from .bundled import bundled_names, load_bundled
from .containers import EEGData, concat_data
from .datasets import (
    bids_entities,
    load_bundled_dataset,
    load_dataset,
    load_files,
    load_moabb,
    load_pair,
    select_subjects,
)
from .epochs import epochs_to_data, load_epochs, to_microvolts
from .protocols import PROTOCOLS, Fold, make_protocol
from .splits import split_disjoint, train_val_split
from .synthetic import make_synthetic_epochs

__all__ = [
    "EEGData",
    "concat_data",
    "load_epochs",
    "epochs_to_data",
    "to_microvolts",
    "load_bundled",
    "bundled_names",
    "bids_entities",
    "load_files",
    "load_pair",
    "load_bundled_dataset",
    "load_moabb",
    "load_dataset",
    "select_subjects",
    "PROTOCOLS",
    "Fold",
    "make_protocol",
    "make_synthetic_epochs",
    "train_val_split",
    "split_disjoint",
    "DataError",
    "ConfigError",
    "ModelFileError",
    "EEGRobustError",
    "check_option",
    "mix_synthetic",
    "BatchAugmentation",
    "synthetic_mask",
]
