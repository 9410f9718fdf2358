"""Benchmark the default training of the registry models on the bundled data sets.

Trains EEGNet, Deep4Net and ShallowFBCSPNet on the official training split of each bundled BCI Competition II data
set (SCP1: Ia, 6 ch x 896 samples at 256 Hz; finger: IV, 28 ch x 50 samples at 100 Hz) with ``TrainConfig()``,
evaluates on the official test split and writes ``bench/train.json``::

    python bench/bench_train.py                       # all models x both data sets
    python bench/bench_train.py --models eegnet --datasets scp1 --out /tmp/train.json

Wall-clock times depend on what else runs on the machine; the file also records CPU time, the torch thread count
and the load average before and after each fit, so noisy timings can be recognized as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow `python bench/bench_train.py` from a checkout
    sys.path.insert(0, str(ROOT))

from eegrobust.data.containers import EEGData  # noqa: E402
from eegrobust.models import TrainConfig, build_model, fit_model, predict  # noqa: E402
from eegrobust.models.io import package_versions  # noqa: E402

DATASETS = ("scp1", "finger")
MODELS = ("eegnet", "deep4", "shallow")


def read_bundled(name: str, split: str) -> EEGData:
    """Read ``data/bundled/{name}_{split}-epo.fif`` as EEGData in microvolts."""
    import mne

    epochs = mne.read_epochs(ROOT / "data" / "bundled" / f"{name}_{split}-epo.fif", verbose="error")
    by_code = sorted(epochs.event_id.items(), key=lambda kv: kv[1])
    return EEGData(epochs.get_data(copy=True) * 1e6, epochs.events[:, 2] - 1, epochs.info["sfreq"],
                   epochs.ch_names, tuple(k for k, _ in by_code))


def bench_one(name: str, train: EEGData, test: EEGData, config: TrainConfig) -> dict:
    """Train one model with ``config``; return its test scores and training cost."""
    model = build_model(name, train, random_state=config.seed)
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    fit_model(model, train, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    y_pred = predict(model, test)
    return {
        "accuracy": round(float(np.mean(y_pred == test.y)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(test.y, y_pred)), 4),
        "train_time_s": round(wall, 2),
        "train_cpu_time_s": round(cpu, 2),
        "epochs_run": len(model.history_),
        "best_epoch": int(model.best_epoch_),
        "regularization": model.regularization_,
        "n_train": train.n_trials,
        "n_test": test.n_trials,
        "n_params": sum(p.numel() for p in model.parameters()),
        "init_kwargs": model.init_kwargs,
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "train.json")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per fit")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice); 1 is faster on a busy machine")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    config = TrainConfig(show_progress=args.progress)
    results = {}
    for dataset in args.datasets:
        train, test = read_bundled(dataset, "train"), read_bundled(dataset, "test")
        for name in args.models:
            row = bench_one(name, train, test, config)
            results.setdefault(name, {})[dataset] = row
            print(f"{name:8s} {dataset:7s} acc={row['accuracy']:.3f} bacc={row['balanced_accuracy']:.3f} "
                  f"time={row['train_time_s']:.1f}s (cpu {row['train_cpu_time_s']:.1f}s) epochs={row['epochs_run']} "
                  f"load={row['load_avg_1min']}", flush=True)
    out = {
        "config": config.to_dict(),
        "results": results,
        "environment": {**package_versions(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
                        "torch_threads": torch.get_num_threads()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
