"""Attack strength and speed on bundled SCP1: the suite's PGD against a hand-written reference PGD.

For each victim (EEGNet, Deep4Net, ShallowFBCSPNet trained with default settings on the official training
split), on the official test split:
- robust accuracy of the suite's L-inf PGD and of a reference PGD written directly with torch.autograd.grad
  (same epsilon, steps, step size 2.5*eps/steps, random start, one restart) at every epsilon of the grid;
- cost per trial per step of both, timed alternately in the same run (ratio suite / reference). The suite's PGD
  leaves a trial at the first iterate that fools it, so its trial-steps are counted (gradient passes of the
  loop, the template's one gradient check excluded; ``speed_ratio_per_gradient_pass`` counts it) and its whole
  wall time, template checks included, is divided by them; the reference
  pays every step on every trial. Both wall times are recorded too (the saving of the early exit);
- random sign noise at the same budgets;
- transfer (gray-box) strength against the number of PGD steps on the substitute, for the pairs of the issue.
Writes bench/attacks.json.  Usage: python bench/bench_attacks.py [--steps 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from eegrobust.attacks import DEFAULT_EPSILONS, LinfPGD, RandomSignNoise, TransferAttack, channel_scale
from eegrobust.data import epochs_to_data, load_bundled
from eegrobust.harness.config import SuiteConfig
from eegrobust.harness.suite import train_victims
from eegrobust.models import predict


def reference_pgd(model, X, y, scale, eps, steps, seed=0):
    """Plain PGD in budget space, the textbook loop (Madry et al. 2018)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(X)
    s = torch.as_tensor(scale, dtype=torch.float32)[None, :, None]
    yt = torch.from_numpy(y)
    alpha = 2.5 * eps / steps
    d = (torch.rand(x.shape, generator=g) * 2 - 1) * eps
    for _ in range(steps):
        d.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(x + d * s), yt)
        (grad,) = torch.autograd.grad(loss, d)
        d = (d.detach() + alpha * grad.sign()).clamp(-eps, eps)
    return (x + d * s).numpy()


class GradPasses(torch.nn.Module):
    """Counts the trials of every forward pass made with gradients enabled (the loop's steps)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.trials = model, 0

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            self.trials += len(x)
        return self.model(x)


def robust_acc(model, X, y, correct, X_adv_correct):
    X_adv = X.copy()
    X_adv[correct] = X_adv_correct
    return float(np.mean(predict(model, X_adv) == y))


def transfer_vs_steps(victims, test, scale, steps=(5, 10, 20, 40), epsilons=(0.1, 0.2)):
    """Victim accuracy under PGD transferred from a substitute, by the substitute's PGD steps."""
    out = {}
    for sub, victim in (("deep4", "eegnet"), ("eegnet", "deep4"), ("deep4", "shallow")):
        correct = predict(victims[victim], test.X) == test.y
        Xc, yc = test.X[correct], test.y[correct]
        cell = out[f"{sub}->{victim}"] = {}
        for n in steps:
            t = time.perf_counter()
            outs = TransferAttack(surrogate=victims[sub], base=LinfPGD(steps=n))(victims[victim], Xc, yc,
                                                                                   epsilons=epsilons, scale=scale)
            cell[str(n)] = {"wall_s": round(time.perf_counter() - t, 1), **{
                str(e): robust_acc(victims[victim], test.X, test.y, correct, o.X_adv) for e, o in zip(epsilons, outs)}}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5, help="alternations of suite and reference for the timing")
    parser.add_argument("--out", default=str(Path(__file__).with_name("attacks.json")))
    args = parser.parse_args(argv)
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    t0 = time.perf_counter()
    victims = train_victims(SuiteConfig(), train, progress=False)
    report = {"dataset": "scp1", "steps": args.steps, "repeats": args.repeats, "epsilons": list(DEFAULT_EPSILONS),
              "train_s": round(time.perf_counter() - t0, 1), "torch_threads": torch.get_num_threads(), "models": {}}
    scale = channel_scale(test.X)
    for name, model in victims.items():
        model.eval().requires_grad_(False)
        clean = predict(model, test.X)
        correct = clean == test.y
        Xc, yc = test.X[correct], test.y[correct]
        entry = {"clean_rca": float(np.mean(clean == test.y)), "suite_pgd": {}, "reference_pgd": {}, "noise": {}}
        outs = LinfPGD(steps=args.steps)(model, Xc, yc, epsilons=DEFAULT_EPSILONS, scale=scale)
        for eps, out in zip(DEFAULT_EPSILONS, outs):
            entry["suite_pgd"][str(eps)] = robust_acc(model, test.X, test.y, correct, out.X_adv)
            ref = reference_pgd(model, Xc, yc, scale, eps, args.steps)
            entry["reference_pgd"][str(eps)] = robust_acc(model, test.X, test.y, correct, ref)
        for eps, out in zip(DEFAULT_EPSILONS, RandomSignNoise()(model, test.X, test.y, epsilons=DEFAULT_EPSILONS,
                                                                 scale=scale)):
            entry["noise"][str(eps)] = float(np.mean(predict(model, out.X_adv) == test.y)) - entry["clean_rca"]
        # speed: one epsilon, same trials, alternate the two --repeats times and keep the fastest of each
        eps, times, cpu = 0.1, {"suite": [], "reference": []}, {"suite": [], "reference": []}
        single, counting = LinfPGD(steps=args.steps), GradPasses(model)
        for _ in range(args.repeats):
            counting.trials = 0
            t, c = time.perf_counter(), time.process_time()
            single(counting, Xc, yc, epsilons=(eps,), scale=scale)
            times["suite"].append(time.perf_counter() - t)
            cpu["suite"].append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            reference_pgd(model, Xc, yc, scale, eps, args.steps)
            times["reference"].append(time.perf_counter() - t)
            cpu["reference"].append(time.process_time() - c)
        trial_steps = {"suite": counting.trials - min(len(Xc), 512), "reference": len(Xc) * args.steps}
        per = {k: min(v) / trial_steps[k] * 1e3 for k, v in times.items()}
        entry["trial_steps_at_0.1"] = trial_steps
        entry["wall_s_at_0.1"] = {k: round(min(v), 3) for k, v in times.items()}
        entry["cpu_s_at_0.1"] = {k: round(min(v), 3) for k, v in cpu.items()}
        entry["ms_per_trial_step"] = {k: round(v, 4) for k, v in per.items()}
        entry["speed_ratio_suite_over_reference"] = round(per["suite"] / per["reference"], 3)
        # the same with the template's input-gradient check counted as the gradient pass it is
        passes = trial_steps["suite"] + min(len(Xc), 512)
        entry["speed_ratio_per_gradient_pass"] = round(min(times["suite"]) / passes / (per["reference"] / 1e3), 3)
        entry["suite_minus_reference_max"] = round(max(entry["suite_pgd"][e] - entry["reference_pgd"][e]
                                                        for e in entry["suite_pgd"]), 4)
        report["models"][name] = entry
        print(name, json.dumps(entry))
    report["transfer_steps"] = transfer_vs_steps(victims, test, scale)
    print("transfer", json.dumps(report["transfer_steps"]))
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
