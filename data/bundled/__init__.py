"""Two small real EEG data sets shipped with the package (BCI Competition II, via the UEA archive).

See ``README.md`` in this folder for provenance, channel layout, units and how to rebuild the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from .._checks import check_option


@dataclass(frozen=True)
class BundledDataset:
    """What one bundled data set holds; the files are ``{name}_train-epo.fif`` and ``{name}_test-epo.fif``."""

    name: str
    uea_name: str
    description: str
    sfreq: float
    n_chans: int
    n_times: int
    classes: tuple
    n_train: int
    n_test: int

    @property
    def files(self) -> tuple:
        return f"{self.name}_train-epo.fif", f"{self.name}_test-epo.fif"


BUNDLED = {
    "scp1": BundledDataset(
        name="scp1",
        uea_name="SelfRegulationSCP1",
        description="BCI Competition II data set Ia (Tübingen): one subject regulating slow cortical potentials.",
        sfreq=256.0, n_chans=6, n_times=896, classes=("negativity", "positivity"), n_train=268, n_test=293,
    ),
    "finger": BundledDataset(
        name="finger",
        uea_name="FingerMovements",
        description="BCI Competition II data set IV (Berlin): self-paced left/right finger tapping, 130 ms "
                    "before the key press.",
        sfreq=100.0, n_chans=28, n_times=50, classes=("left", "right"), n_train=316, n_test=100,
    ),
}

# Accepted names, matched case-insensitively: the short names and the UEA archive names.
_ALIASES = {**{k: k for k in BUNDLED}, **{d.uea_name: k for k, d in BUNDLED.items()}}
_BY_LOWER = {alias.lower(): name for alias, name in _ALIASES.items()}


def bundled_names() -> list:
    """Short names of the bundled data sets, for ``load_bundled``."""
    return sorted(BUNDLED)


def load_bundled(name: str = "scp1"):
    """Load a bundled data set's official train and test epochs.

    Parameters
    ----------
    name : str, default="scp1"
        ``"scp1"`` (alias ``"SelfRegulationSCP1"``) or ``"finger"`` (alias ``"FingerMovements"``), any case.

    Returns
    -------
    train, test : mne.Epochs
        Preloaded epochs in volts, EEG channel types, ``event_id`` mapping class names to codes 1 and 2.

    Raises
    ------
    ConfigError
        ``name`` is not a bundled data set (the message suggests the closest one).
    """
    from ..epochs import load_epochs

    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}.")
    key = _BY_LOWER.get(name.lower())
    if key is None:
        check_option("name", name, list(_ALIASES))
    folder = resources.files(__name__)
    out = []
    for fname in BUNDLED[key].files:
        with resources.as_file(folder / fname) as path:
            out.append(load_epochs(path))
    return tuple(out)
