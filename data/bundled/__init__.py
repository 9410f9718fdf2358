"""Three small real EEG data sets shipped with the package (BCI Competition II, via the UEA archive).

See ``README.md`` in this folder for provenance, channel layout, units and how to rebuild the files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from numbers import Real

from .._checks import ConfigError, check_option


@dataclass(frozen=True)
class BundledDataset:
    """What one bundled data set holds; the files are ``{name}_train-epo.fif`` and ``{name}_test-epo.fif``."""

    name: str
    uea_name: str
    description: str
    sfreq: float
    n_chans: int  # channels in the files, all types
    n_times: int
    classes: tuple
    n_train: int
    n_test: int
    n_eeg: int = 0  # EEG channels (what `epochs_to_data` keeps); 0 means all n_chans

    @property
    def n_eeg_chans(self) -> int:
        return self.n_eeg or self.n_chans

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
    "scp2": BundledDataset(
        name="scp2",
        uea_name="SelfRegulationSCP2",
        description="BCI Competition II data set Ib (Tübingen): an ALS patient regulating slow cortical potentials; "
                    "scp1's six EEG channels plus vEOG, 4.5 s trials.",
        sfreq=256.0, n_chans=7, n_times=1152, classes=("negativity", "positivity"), n_train=200, n_test=180,
        n_eeg=6,
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


def load_bundled(name: str = "scp1", *, tmax=None):
    """Load a bundled data set's official train and test epochs.

    Parameters
    ----------
    name : str, default="scp1"
        ``"scp1"`` (alias ``"SelfRegulationSCP1"``), ``"scp2"`` (alias ``"SelfRegulationSCP2"``) or ``"finger"``
        (alias ``"FingerMovements"``), any case.
    tmax : float, default=None
        If given, keep only the samples with time ``t < tmax`` seconds (the half-open window ``[0, tmax)``, so
        ``round(tmax * sfreq)`` samples). Epochs start at ``t = 0``: for ``scp1`` and ``scp2`` that is the
        onset of the feedback period, so ``load_bundled("scp2", tmax=3.5)`` gives scp2's first 3.5 s of feedback,
        896 samples, the same window and length as ``scp1``. Must lie in ``(0, duration]``; None keeps all.

    Returns
    -------
    train, test : mne.Epochs
        Preloaded epochs in volts, ``event_id`` mapping class names to codes 1 and 2. Channel types are EEG,
        except scp2's ``vEOG`` (type ``eog``, which `epochs_to_data` leaves out).

    Raises
    ------
    ConfigError
        ``name`` is not a bundled data set (the message suggests the closest one), or ``tmax`` is outside the
        epochs or shorter than one sample.
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
    if tmax is not None:
        out = [_crop(epochs, tmax) for epochs in out]
    return tuple(out)


def _crop(epochs, tmax):
    if isinstance(tmax, bool) or not isinstance(tmax, Real):
        raise TypeError(f"tmax must be a number of seconds or None, got {type(tmax).__name__}.")
    sfreq = epochs.info["sfreq"]
    duration = len(epochs.times) / sfreq
    n_times = int(round(float(tmax) * sfreq)) if math.isfinite(tmax) else 0
    if not (1 <= n_times and tmax <= duration + 0.5 / sfreq):
        raise ConfigError(
            f"tmax must be in (0, {duration:g}] s (the epochs hold {len(epochs.times)} samples at {sfreq:g} Hz, "
            f"from t = 0), got {tmax!r}."
        )
    return epochs.crop(tmin=epochs.times[0], tmax=epochs.times[n_times - 1], include_tmax=True)
