"""Cost of one attack step (forward pass and input gradient, frozen weights) per architecture, with braindecode's
merged ``conv2d`` (``CombinedConv``) against eegrobust's ``conv1d`` form of it (`models.layers`).

On the bundled SCP1 test split (293 trials, 6 channels, 896 samples), cross-entropy summed over the batch, the
gradient with respect to the microvolt input: what every white-box and transfer step computes. The two forms run
interleaved (A B A B ...) ``--repeats`` times after a warm-up, so load on the machine hits both alike; reported are
the median wall and CPU seconds per step, their ratio, and the largest gradient difference relative to the
gradient's largest entry (float round-off; Deep4Net's max-pooling can route a tie differently).

    python bench/bench_step.py                # -> bench/step.json
    python bench/bench_step.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from eegrobust.attacks.base import eval_mode  # noqa: E402
from eegrobust.data import epochs_to_data, load_bundled  # noqa: E402
from eegrobust.models import build_model  # noqa: E402
from eegrobust.models.layers import CombinedConv, Conv1dCombinedConv  # noqa: E402


def _step(model, X, y):
    x = X.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _set_form(model, cls):
    for m in model.modules():
        if isinstance(m, CombinedConv):
            m.__class__ = cls


def measure(arch, train, X, y, repeats):
    model = build_model(arch, train, random_state=0)
    merged = [m for m in model.modules() if isinstance(m, CombinedConv)]
    out = {"arch": arch, "merged_layers": len(merged)}
    forms = {"braindecode_conv2d": CombinedConv, "eegrobust_conv1d": Conv1dCombinedConv}
    times = {k: {"wall": [], "cpu": []} for k in forms}
    grads = {}
    with eval_mode(model):
        for name, cls in forms.items():  # warm-up, and the gradients compared
            _set_form(model, cls)
            grads[name] = _step(model, X, y)
        for _ in range(repeats):
            for name, cls in forms.items():
                _set_form(model, cls)
                t0, c0 = time.perf_counter(), time.process_time()
                _step(model, X, y)
                times[name]["wall"].append(time.perf_counter() - t0)
                times[name]["cpu"].append(time.process_time() - c0)
    _set_form(model, Conv1dCombinedConv)
    for name in forms:
        out[f"{name}_wall_s"] = round(float(np.median(times[name]["wall"])), 4)
        out[f"{name}_cpu_s"] = round(float(np.median(times[name]["cpu"])), 4)
    out["speedup_wall"] = round(out["braindecode_conv2d_wall_s"] / out["eegrobust_conv1d_wall_s"], 2)
    out["speedup_cpu"] = round(out["braindecode_conv2d_cpu_s"] / out["eegrobust_conv1d_cpu_s"], 2)
    g0, g1 = grads["braindecode_conv2d"], grads["eegrobust_conv1d"]
    out["max_rel_grad_diff"] = float((g0 - g1).abs().max() / g0.abs().max())
    out["grad_sign_agreement"] = float((g0.sign() == g1.sign()).float().mean())
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
    rows = []
    for arch in args.models.split(","):
        rows.append(measure(arch.strip(), train, X, y, args.repeats))
        print(rows[-1], flush=True)
    load = os.getloadavg()
    payload = {"dataset": "scp1", "n_trials": len(X), "torch_threads": args.threads, "repeats": args.repeats,
               "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
               "torch": torch.__version__, "load_after": [round(v, 2) for v in load],
               "what": "one attack step: forward and input gradient of the summed cross-entropy, weights frozen, "
                       "eval mode; median over interleaved repeats", "results": rows}
    Path(args.out).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
