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

from harness.gan import add_gan_demo_options, add_gan_parser

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
    overrides = {"models": tuple(m.strip() for m in args.models.split(",") if m.strip())} if args.models else {}
    config = SuiteConfig.make(args.preset, dataset=args.dataset, seeds=(args.seed,), **overrides)
    train, test = _dataset(config.dataset)
    t0 = time.perf_counter()
    if args.gan:
        return _gan_demo(args, config, train, test, out, t0)
    result = run_suite(config, train=train, test=test, progress=not args.quiet)
    paths = result.save(out)
    _write_reports(result, out, ("md", "html", "csv"))
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


def _gan_demo(args, config, train, test, out, t0) -> int:
    """``demo --gan``: no augmentation vs EEG-GAN vs braindecode augmentation, seeds 0-2, same attacks."""
    from harness.config import SuiteConfig
    from harness.gan import COMPARISON, format_comparison, run_gan_comparison

    seeds = (args.seed, args.seed + 1, args.seed + 2)
    config = SuiteConfig.make(config, **COMPARISON)
    result = run_gan_comparison(config, train, test, seeds=seeds, gan_ratio=args.gan_ratio,
                                force_gan=args.force_gan, progress=not args.quiet)
    paths = result.save(out)
    _write_reports(result, out, ("md", "html", "csv"))
    print()
    print(format_comparison(result))
    print(f"Results: {paths['json']} and {paths['csv']} ({time.perf_counter() - t0:.0f} s)")
    return EXIT_OK


def _float_list(text, option):
    from attacks.budget import check_epsilons

    return check_epsilons([t.strip() for t in text.split(",") if t.strip()]) if text.strip() else check_epsilons(())


def _audit_config(args):
    from harness.config import BLACK_BOX_ATTACKS, TRANSFER_BASES, SuiteConfig
    from attacks.registry import attack_names
    from data._checks import check_option

    threat_alias = {"white": "white_box", "gray": "gray_box", "grey": "gray_box", "black": "black_box",
                    "control": "control"}
    threats = []
    for t in args.threat.split(","):
        t = t.strip().replace("-", "_")
        threats.append(threat_alias.get(t, check_option("--threat", t, list(threat_alias) + list(threat_alias.values()))))
    config = SuiteConfig.make(args.preset)
    overrides = {"threat_models": tuple(dict.fromkeys(threats + ["control"])), "seeds": (args.seed,)}
    if args.eps is not None:
        overrides["epsilons"] = _float_list(args.eps, "--eps")
    if args.attacks:
        names = [a.strip() for a in args.attacks.split(",") if a.strip()]
        known = set(attack_names("white_box")) | set(TRANSFER_BASES) | set(BLACK_BOX_ATTACKS)
        for a in names:
            check_option("--attacks", a, known)
        overrides["white_box"] = tuple(a for a in names if a in attack_names("white_box"))
        overrides["gray_box"] = tuple(a for a in names if a in TRANSFER_BASES)
        overrides["black_box"] = tuple(a for a in names if a in BLACK_BOX_ATTACKS)
    return SuiteConfig.make(config, **overrides)


def _device(name):
    import torch

    from data._checks import check_option

    check_option("--device", name, ("auto", "cpu", "cuda"))
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here; use --device cpu or auto.")
    return name


def _cmd_audit(args) -> int:
    """Audit a saved BCI model: load it safely, attack it, write results and a verdict."""
    from harness.audit import run_audit, verdict_line
    from harness.tables import accuracy_table

    if args.max_drop is not None and not 0 <= args.max_drop <= 1:
        raise UsageError(f"--max-drop must lie in [0, 1] (an accuracy drop), got {args.max_drop}.")
    if not Path(args.model).exists():
        raise UsageError(f"MODEL {args.model!r} does not exist.")
    out = _out_dir(args.out)
    config = _audit_config(args)
    result = run_audit(args.model, args.data, config=config, out_dir=out, train_path=args.train_data,
                       arch=args.arch, input_unit=args.input_unit, standardize=args.standardize,
                       device=_device(args.device), resume=args.resume, progress=not args.quiet)
    paths = result.save(out)
    _write_reports(result, out, ("md",))
    print(accuracy_table(result.rows))
    for note in result.provenance["audit"]["notes"] + result.provenance.get("skipped", []):
        print(f"note: {note}")
    print(f"results: {paths['json']}")
    print(verdict_line(result.rows, args.max_drop))
    from harness.audit import worst_row

    worst = worst_row(result.rows)
    if args.max_drop is not None and worst is not None and worst["drop"] > args.max_drop:
        return EXIT_THRESHOLD
    return EXIT_OK


def _write_reports(result, out, formats):
    try:
        from harness.report import write_report
    except ImportError:  # the report module is optional until it lands
        return {}
    return write_report(result, out, formats=formats)


def _cmd_report(args) -> int:
    """Render tables and figures from a results file (never re-runs an attack)."""
    from harness.results import SuiteResult
    from harness.report import write_report

    result = SuiteResult.from_json(args.results)
    out = _out_dir(args.out or Path(args.results).parent)
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    paths = write_report(result, out, formats=formats)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
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
    p.add_argument("--models", default=None, help="comma-separated victims (default: eegnet,deep4,shallow)")
    add_gan_demo_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help=_cmd_train.__doc__, description=_cmd_train.__doc__)
    common(p)
    p.add_argument("--models", default="eegnet,deep4,shallow", help="comma-separated registry names")
    p.add_argument("--out", default=None, help="also save a model bundle per model into this folder")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("audit", help=_cmd_audit.__doc__, description=_cmd_audit.__doc__)
    p.add_argument("model", help="eegrobust bundle folder, state dict (.pt, with --arch), TorchScript or ONNX file")
    p.add_argument("--data", required=True, help="audit epochs: -epo.fif (or any file data.load_epochs reads)")
    p.add_argument("--train-data", default=None, help="the model's training epochs (enables gray-box)")
    p.add_argument("--arch", default=None, help="architecture of a bare state dict: eegnet, deep4 or shallow")
    p.add_argument("--input-unit", default="uV", help="unit the model expects: uV (default) or V")
    p.add_argument("--standardize", default="none",
                   help="preprocessing the model expects: none (default) or per-channel")
    p.add_argument("--threat", default="white,gray,black", help="threat models (default white,gray,black)")
    p.add_argument("--attacks", default=None, help="comma-separated attack names (default: the preset's)")
    p.add_argument("--eps", default=None, help="comma-separated budgets (default: the preset's grid)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="eegrobust-audit", help="results folder (default ./eegrobust-audit)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--preset", default="standard", help="quick | standard (default) | paper")
    p.add_argument("--max-drop", type=float, default=None,
                   help="exit 1 when any accuracy drop exceeds this value in [0, 1]")
    p.add_argument("--resume", action="store_true", help="keep finished cells of an interrupted audit in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("report", help=_cmd_report.__doc__, description=_cmd_report.__doc__)
    p.add_argument("results", help="results.json written by demo, audit or run_suite")
    p.add_argument("--format", default="md,html,tex,csv", help="comma-separated: md, html, tex, csv")
    p.add_argument("--out", default=None, help="folder for the report (default: next to RESULTS)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=_cmd_report)

    add_gan_parser(sub)
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
