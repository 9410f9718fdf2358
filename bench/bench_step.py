"""Cost of one attack step, one prediction pass and one training step per architecture, braindecode's layers against
eegrobust's faster forms of them (`models.layers.fast_layers`: 1-D convolutions and pooling along time, the merged
first layer as a ``conv1d``, EEGNet's first block fused into one ``conv1d`` in eval mode).

On the bundled SCP1 test split (293 trials, 6 channels, 896 samples), in eval mode with frozen weights:
``step`` is the forward pass and the input gradient of the summed cross-entropy (what every white-box and
transfer step computes), ``predict`` one forward pass without gradient (what every query of a black-box attack
and every prediction computes). ``train`` is one training batch (32 trials, the default batch size) in train mode:
forward, cross-entropy and the backward pass to every weight (the optimizer's step is the same for both forms and
left out); the same dropout masks for both forms. The two forms run interleaved (A B A B ...) ``--repeats`` times
after a warm-up, so load on the machine hits both alike; reported are median wall and CPU seconds, their ratios,
the largest difference of the logits and of the gradient relative to its largest entry (float round-off; Deep4Net's
max-pooling can route a near-tie differently) and the agreement of predicted labels.

    python bench/bench_step.py                # -> bench/step.json
    python bench/bench_step.py --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from eegrobust.attacks.base import eval_mode  # noqa: E402
from eegrobust.data import epochs_to_data, load_bundled  # noqa: E402
from eegrobust.models import build_model  # noqa: E402
from eegrobust.harness.results import cpu_model  # noqa: E402
from eegrobust.models.layers import SWITCHES  # noqa: E402

BASES = {new: old for old, new in SWITCHES.items()}


def _step(model, X, y):
    x = X.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _predict(model, X, y):
    with torch.no_grad():
        return model(X)


def _train(model, X, y):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)  # the same dropout masks for both forms
    F.cross_entropy(model(X[:32]), y[:32]).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def _set_form(modules, fast: bool):
    for m, fast_cls in modules:
        m.__class__ = fast_cls if fast else BASES[fast_cls]


@contextlib.contextmanager
def _train_mode(model):
    model.train()
    try:
        yield model
    finally:
        model.eval()


def measure(arch, train, X, y, repeats):
    model = build_model(arch, train, random_state=0)
    switched = [(m, type(m)) for m in model.modules() if type(m) in BASES]
    out = {"arch": arch, "switched_layers": sorted({t.__name__ for _, t in switched})}
    forms = {"braindecode": False, "eegrobust": True}
    for what, fn in (("step", _step), ("predict", _predict), ("train", _train)):
        times = {k: {"wall": [], "cpu": []} for k in forms}
        values = {}
        with eval_mode(model) if what != "train" else _train_mode(model):
            for name, fast in forms.items():  # warm-up, and the values compared
                _set_form(switched, fast)
                values[name] = fn(model, X, y)
            for _ in range(repeats):
                for name, fast in forms.items():
                    _set_form(switched, fast)
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn(model, X, y)
                    times[name]["wall"].append(time.perf_counter() - t0)
                    times[name]["cpu"].append(time.process_time() - c0)
        for name in forms:
            out[f"{what}_{name}_wall_s"] = round(float(np.median(times[name]["wall"])), 4)
            out[f"{what}_{name}_cpu_s"] = round(float(np.median(times[name]["cpu"])), 4)
        for kind in ("wall", "cpu"):
            out[f"{what}_speedup_{kind}"] = round(out[f"{what}_braindecode_{kind}_s"]
                                                  / out[f"{what}_eegrobust_{kind}_s"], 2)
        v0, v1 = values["braindecode"], values["eegrobust"]
        if what == "step":
            out["max_rel_grad_diff"] = float((v0 - v1).abs().max() / v0.abs().max())
            out["grad_sign_agreement"] = float((v0.sign() == v1.sign()).float().mean())
        elif what == "train":
            out["max_rel_weight_grad_diff"] = float((v0 - v1).abs().max() / v0.abs().max())
        else:
            out["max_abs_logit_diff"] = float((v0 - v1).abs().max())
            out["label_agreement"] = float((v0.argmax(1) == v1.argmax(1)).float().mean())
    _set_form(switched, True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="eegnet,deep4,shallow")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default="bench/step.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    X, y = torch.from_numpy(test.X).float(), torch.from_numpy(test.y).long()
    load_before = [round(v, 2) for v in os.getloadavg()]
    rows = []
    for arch in args.models.split(","):
        rows.append(measure(arch.strip(), train, X, y, args.repeats))
        print(rows[-1], flush=True)
    payload = {"dataset": "scp1", "n_trials": len(X), "torch_threads": args.threads, "repeats": args.repeats,
               "cpu_count": os.cpu_count(), "machine": cpu_model(),
               "torch": torch.__version__, "load_before": load_before,
               "load_after": [round(v, 2) for v in os.getloadavg()],
               "what": "step: eval mode, frozen weights, forward and input gradient of the summed cross-entropy on all "
                       "trials; predict: one forward pass without gradient; train: train mode, forward and backward "
                       "to every weight on 32 trials; median over interleaved repeats",
               "results": rows}
    Path(args.out).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
