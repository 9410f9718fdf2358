"""EEG in: recordings and epochs to ``mne.Epochs`` and `EEGData` (microvolts); synthetic data; splits."""

from ._checks import ConfigError, DataError, EEGRobustError, ModelFileError, check_option
from .augment import BatchAugmentation, mix_synthetic, synthetic_mask
from .bundled import bundled_names, load_bundled
from .containers import EEGData
from .epochs import epochs_to_data, load_epochs, to_microvolts
from .splits import split_disjoint, train_val_split
from .synthetic import make_synthetic_epochs

__all__ = [
    "EEGData",
    "load_epochs",
    "epochs_to_data",
    "to_microvolts",
    "load_bundled",
    "bundled_names",
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
