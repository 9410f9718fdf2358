"""Which black-box substitute transfers best: one EEGNet, the three-architecture ensemble, or the one chosen by agreement.

On bundled SCP1 (victims EEGNet, Deep4Net and ShallowFBCSPNet from the victim cache, default training, seed 0), the
black-box Jacobian substitute of the "standard" preset (150 held-out seed trials, 2 augmentation rounds, PGD-10
transferred) with ``substitute_arch`` = eegnet, ensemble and agreement; robust accuracy on the black-box evaluation
trials at every budget, the substitute's agreement with its victim, the oracle queries spent on training, and wall /
CPU time per victim. Writes bench/substitute.json.

    python bench/bench_substitute.py [--archs eegnet,ensemble,agreement]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from eegrobust.data import epochs_to_data, load_bundled
from eegrobust.harness.cache import VictimCache
from eegrobust.harness.config import PRESETS
from eegrobust.harness.suite import run_suite


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default="eegnet,ensemble,agreement")
    parser.add_argument("--out", default=str(Path(__file__).with_name("substitute.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    cache = VictimCache(progress=False)
    base = PRESETS["standard"]
    victims = {m: cache.get(train, m, base.train, seed=0)[0] for m in base.models}
    report = {"dataset": "scp1", "preset": "standard", "epsilons": list(base.epsilons),
              "n_seed_trials": base.n_seed_trials, "substitute_rounds": base.substitute_rounds, "archs": {}}
    for arch in args.archs.split(","):
        config = replace(base, threat_models=("black_box",), black_box=("substitute",), substitute_arch=arch)
        w, c = time.perf_counter(), time.process_time()
        res = run_suite(config, test=test, train=train, victims=victims, progress=False)
        entry = {"wall_s": round(time.perf_counter() - w, 1), "cpu_s": round(time.process_time() - c, 1),
                 "robust_rca": {}, "agreement": res.provenance["substitute_agreement"],
                 "training_queries": res.provenance["substitute_training_queries"],
                 "members": res.provenance.get("substitute_members") or None}
        for r in res.rows:
            entry["robust_rca"].setdefault(r["model"], {})[str(r["epsilon"])] = round(r["adv_rca"], 4)
        report["archs"][arch] = entry
        print(arch, json.dumps(entry), flush=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
