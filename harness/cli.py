"""The ``eegrobust`` command line: ``demo``, ``train`` (and ``python -m harness``).

Exit codes: 0 success, 1 a ``--max-drop`` threshold exceeded, 2 a usage, config or input error (one line on
stderr; the traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command-line value (exit code 2)."""


def _out_dir(path) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file; give a folder (it is created if missing).")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _dataset(name):
    from data import epochs_to_data, load_bundled

    train, test = load_bundled(name)
    return epochs_to_data(train), epochs_to_data(test)


def _cmd_train(args) -> int:
    """Train EEGNet, Deep4Net and ShallowFBCSPNet on a bundled dataset and print clean test accuracy."""
    from harness.metrics import bca, rca
    from harness.tables import text_table
    from models import TrainConfig, build_model, fit_model, predict, save_bundle

    out = _out_dir(args.out) if args.out else None
    train, test = _dataset(args.dataset)
    rows = []
    for name in args.models.split(","):
        t0 = time.perf_counter()
        config = TrainConfig(seed=args.seed, show_progress=not args.quiet)
        model = fit_model(build_model(name.strip(), train, random_state=args.seed), train, config)
        wall = time.perf_counter() - t0
        pred = predict(model, test.X)
        rows.append([name, rca(test.y, pred), bca(test.y, pred), len(model.history_), round(wall, 1)])
        if out:
            save_bundle(model, out / name)
    print(f"\nClean accuracy on the official test split of {args.dataset} ({test.n_trials} trials):")
    print(text_table(["model", "RCA", "BCA", "epochs", "train s"], rows))
    if out:
        print(f"\nModel bundles written to {out}/")
    return EXIT_OK


def _cmd_demo(args) -> int:
    """Train the three models on bundled SCP1, attack them under three threat models, save the results."""
    from harness.config import SuiteConfig
    from harness.suite import run_suite
    from harness.tables import accuracy_table, text_table

    out = _out_dir(args.out)
    config = SuiteConfig.make(args.preset, dataset=args.dataset, seeds=(args.seed,))
    train, test = _dataset(config.dataset)
    t0 = time.perf_counter()
    result = run_suite(config, train=train, test=test, progress=not args.quiet)
    paths = result.save(out)
    clean = {(r["model"]): (r["clean_rca"], r["clean_bca"]) for r in result.rows
             if r["threat_model"] == "white_box" and r["epsilon"] == 0}
    print(f"\nClean accuracy on the {config.dataset} test split ({result.provenance['n_test_trials']} trials):")
    print(text_table(["model", "RCA", "BCA"], [[m, *v] for m, v in clean.items()]))
    print(f"\nAccuracy under attack (budget relative to each channel's std; black-box on "
          f"{result.provenance['n_black_box_eval_trials']} trials outside the attacker's seed set):")
    print(accuracy_table(result.rows))
    agree = result.provenance.get("substitute_agreement")
    if agree:
        print("\nBlack-box substitute agreement with its victim: "
              + ", ".join(f"{k} {v:.3f}" for k, v in agree.items()))
    print("\nSanity checks:")
    for c in result.checks:
        print(f"  [{'ok' if c['passed'] else 'FAIL'}] {c['name']}: {c['detail']}")
    print(f"\nResults: {paths['json']} and {paths['csv']} ({time.perf_counter() - t0:.0f} s)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eegrobust", description="Adversarial-robustness harness for EEG BCIs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--dataset", default="scp1", help="bundled dataset: scp1 (default) or finger")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--debug", action="store_true", help="show tracebacks")

    p = sub.add_parser("demo", help=_cmd_demo.__doc__, description=_cmd_demo.__doc__)
    common(p)
    p.add_argument("--preset", default="standard", help="quick | standard (default) | paper")
    p.add_argument("--quick", dest="preset", action="store_const", const="quick", help="same as --preset quick")
    p.add_argument("--out", default="eegrobust-demo", help="results folder (default ./eegrobust-demo)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help=_cmd_train.__doc__, description=_cmd_train.__doc__)
    common(p)
    p.add_argument("--models", default="eegnet,deep4,shallow", help="comma-separated registry names")
    p.add_argument("--out", default=None, help="also save a model bundle per model into this folder")
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its usage message
        return EXIT_USAGE if exc.code else EXIT_OK
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from data._checks import EEGRobustError

    try:
        return args.func(args)
    except (UsageError, EEGRobustError, FileNotFoundError) as err:
        if args.debug:
            raise
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"eegrobust: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("eegrobust: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
