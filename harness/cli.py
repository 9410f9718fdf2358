"""The ``eegrobust`` command line: demo (--gan), run, train, audit, report, gan train|sample; ``python -m harness``.

Exit codes, one meaning each: 0 passed (or done), 1 a ``--max-drop`` threshold exceeded (or a GAN gate failed),
2 a usage or input error (options, files, folders, permissions), 3 no verdict possible (nothing was attacked) or an
internal error. Every error is one line on stderr; ``--debug`` (before or after the command) adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE, EXIT_NO_VERDICT, EXIT_INTERNAL = 0, 1, 2, 3, 3
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class UsageError(Exception):
    """A bad command-line value (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2), naming the option and the value."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _check_out(path, option: str = "--out", *, file: bool = False) -> Path:
    """Refuse an output path that cannot be written, before any work and without creating anything.

    ``file``: the path names a file (its folder must be writable), else a folder (created later if missing).
    """
    out = Path(path).expanduser()
    if not file and out.exists() and not out.is_dir():
        raise UsageError(f"{option} {str(out)!r} is a file; give a folder (it is created if missing).")
    if file and out.is_dir():
        raise UsageError(f"{option} {str(out)!r} is a folder; give a file name.")
    probe = out.parent if file else out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{option} {str(out)!r} lies below {str(probe)!r}, which is a file, not a folder.")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".eegrobust-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise UsageError(f"{option} {str(out)!r} is not writable ({err.strerror or type(err).__name__} in "
                         f"{str(probe)!r}); give a folder you can write to.") from None
    return out


def _out_dir(path, option: str = "--out") -> Path:
    out = _check_out(path, option)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{option} {str(out)!r} cannot be created ({err.strerror or type(err).__name__}).") from None
    return out


#: A number as a person types it: ASCII digits, an optional sign, point and exponent; not Python's wider float()
#: syntax ("1_0" is 10 to Python, a typo to a person; "0x10", "nan" and "inf" are no budgets or seconds).
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _number(text: str) -> float:
    """``text`` as a float when it is a plain decimal number (`_NUMBER`), else ValueError; one that rounds to 0
    though its digits are not all zero (``1e-400``) is a ValueError too, never a silent 0."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    value = float(text)
    if value == 0 and re.search(r"[1-9]", re.split(r"[eE]", text)[0]):
        raise ValueError(text)
    return value


def _max_drop(text: str) -> float:
    """argparse type of --max-drop: a plain decimal (``0.05``, not ``5%``)."""
    try:
        return _number(text)
    except ValueError:
        hint = f"; for {text.strip()} write {float(text.strip()[:-1]) / 100:g}" if re.fullmatch(
            r"\s*[0-9]+(\.[0-9]*)?%\s*", text) else ""
        raise argparse.ArgumentTypeError(f"must be a drop of accuracy in [0, 1] such as 0.05, got {text!r}{hint}") \
            from None


def _seed(text: str) -> int:
    """argparse type of --seed: a non-negative integer."""
    try:
        value = int(text) if re.fullmatch(r"\s*\+?[0-9]+\s*", text) else -1
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1 such as 0, got {text!r}")
    return value


def _finite(text: str) -> float:
    """argparse type of --tmin/--tmax: a finite number of seconds."""
    try:
        value = _number(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, got {text!r}")
    return value


def _names(text: str) -> list:
    names = [n.strip() for n in text.split(",")]
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(f"must name at least two classes such as left,right, got {text!r}")
    return names


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"pool_mode\": \"max\"}}', got "
                                         f"{text!r} ({err.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"pool_mode\": \"max\"}}', got "
                                         f"{text!r}")
    return value


def _event_id(text: str) -> dict:
    """argparse type of --event-id: ``name=code,name=code`` (class names and their integer event codes)."""
    event_id = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise argparse.ArgumentTypeError(f"has an empty item in {text!r}; give name=code pairs such as "
                                             "left=1,right=2")
        name, sep, code = (t.strip() for t in part.partition("="))
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"must be name=code pairs such as left=1,right=2, got {part!r}")
        if not re.fullmatch(r"[+-]?[0-9]+", code):
            raise argparse.ArgumentTypeError(f"the event code of {name!r} must be an integer, got {code!r}")
        if name in event_id:
            raise argparse.ArgumentTypeError(f"names class {name!r} twice (codes {event_id[name]} and {int(code)}); "
                                             "give each class once")
        twin = next((other for other, c in event_id.items() if c == int(code)), None)
        if twin is not None:
            raise argparse.ArgumentTypeError(f"gives code {int(code)} to both {twin!r} and {name!r}; one code "
                                             "belongs to one class")
        event_id[name] = int(code)
    if len(event_id) < 2:
        raise argparse.ArgumentTypeError(f"must name at least two classes such as left=1,right=2, got {text!r}")
    return event_id


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {list(LOG_LEVELS)}, got {text!r}")
    return text.upper()


def _epochs_kwargs(args) -> dict:
    """--tmin/--tmax/--event-id as `data.load_epochs` keywords (only those given)."""
    return {k: getattr(args, k) for k in ("tmin", "tmax", "event_id") if getattr(args, k, None) is not None}


def add_epochs_options(p) -> None:
    """--tmin, --tmax and --event-id: how raw recordings (EDF, BDF, GDF, raw FIF ...) are cut into epochs."""
    p.add_argument("--tmin", type=_finite, default=None, help="epoch start in s relative to each event (raw "
                                                             "recordings; default 0)")
    p.add_argument("--tmax", type=_finite, default=None, help="epoch end in s relative to each event (raw "
                                                             "recordings: required)")
    p.add_argument("--event-id", type=_event_id, default=None, metavar="NAME=CODE,...",
                   help="classes and their event codes, e.g. left=1,right=2 (raw recordings: which events to cut; "
                        "epochs files: which conditions to keep)")


def _dataset(name):
    from ..data import epochs_to_data, load_bundled

    train, test = load_bundled(name)
    return epochs_to_data(train), epochs_to_data(test)


def _cmd_train(args) -> int:
    """Train EEGNet, Deep4Net and ShallowFBCSPNet on a bundled dataset and print clean test accuracy."""
    from .metrics import bca, rca
    from .tables import text_table
    from ..models import TrainConfig, build_model, fit_model, predict, save_bundle

    from ..data._checks import first_repeat

    names = [n.strip() for n in args.models.split(",")]
    twice = first_repeat(names)
    if twice is not None:  # the same seed: the same model trained twice (and one bundle written over the other)
        raise UsageError(f"--models lists {twice!r} more than once ({args.models}); give each model once.")
    device = _device(args.device)
    out = _out_dir(args.out) if args.out else None
    held = [n for n in names if out is not None and (out / n).exists()]
    if held and not args.overwrite:  # checked before any training: nothing is replaced, nothing is wasted
        raise UsageError(f"--out {str(out)!r} already holds {', '.join(repr(str(out / n)) for n in held)}; nothing "
                         "was changed. Give another --out, or --overwrite to replace those bundles.")
    train, test = _dataset(args.dataset)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        config = TrainConfig(seed=args.seed, show_progress=not args.quiet)
        model = fit_model(build_model(name.strip(), train, random_state=args.seed).to(device), train, config)
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
    from .study import StudyConfig

    given = [o for o, v in (("--gan-ratio", args.gan_ratio is not None), ("--force-gan", args.force_gan)) if v]
    if given and not args.gan:
        both = " and ".join(given)
        raise UsageError(f"{both} only {'applies' if len(given) == 1 else 'apply'} to 'demo --gan' (the augmentation "
                         f"comparison); add --gan or leave {both} out.")
    if args.quick and args.preset not in (None, "quick"):
        raise UsageError(f"--quick and --preset {args.preset} contradict each other; give one of them.")
    preset = "quick" if args.quick else args.preset or "standard"
    common = dict(dataset=args.dataset, protocol="official", preset=preset, models=args.models,
                  device=args.device or "auto", out=args.out, resume=args.resume, cache=not args.no_cache,
                  engine=args.engine or "serial", jobs=args.jobs, ray_address=args.ray_address)
    if args.gan:
        study = StudyConfig(**common, **gan_demo_study(args))
    else:
        study = StudyConfig(**common, seeds=_seeds(args))
    _check_out(study.out)
    return _run_and_print(study, args, formats=("md", "html", "csv"))


def gan_demo_study(args) -> dict:
    """``demo --gan`` as a study over arms: none, gated EEG-GAN and braindecode augmentation, 3 seeds, the suite
    of the augmentation comparison (`harness.gan.COMPARISON`)."""
    from .gan import COMPARISON

    first = _seeds(args)[0] if _seeds(args) else 0
    ratio = 1.0 if args.gan_ratio is None else args.gan_ratio
    arms = ("none", f"gan(ratio={ratio!r},force={'true' if args.force_gan else 'false'})", f"augment(ratio={ratio!r})")
    return {"seeds": (first, first + 1, first + 2), "arms": arms, "suite": dict(COMPARISON)}


def _names(text):
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _seeds(args):
    """``--seeds LIST`` or ``--seed N`` (None: the preset's seeds)."""
    from .study import parse_seeds

    if getattr(args, "seeds", None) is not None and getattr(args, "seed", None) is not None:
        raise UsageError("give --seed or --seeds, not both.")
    value = args.seeds if getattr(args, "seeds", None) is not None else getattr(args, "seed", None)
    return None if value is None else parse_seeds(value)


def _run_and_print(study, args, *, formats=("md", "csv")) -> int:
    from .study import run_study
    from .tables import accuracy_table, text_table

    t0 = time.perf_counter()
    res = run_study(study, progress=not args.quiet)
    result, out = res.result, res.out
    _write_reports(result, out, formats)
    single = "folds" not in result.provenance
    if single:
        clean = {r["model"] + ("" if len(study.suite_config().seeds) == 1 else f" seed {r['train_seed']}"):
                 (r["clean_rca"], r["clean_bca"]) for r in result.rows
                 if r["threat_model"] == "white_box" and r["epsilon"] == 0}
        print(f"\nClean accuracy on the {result.provenance['dataset']} test split "
              f"({result.provenance['n_test_trials']} trials):")
        print(text_table(["model", "RCA", "BCA"], [[m, *v] for m, v in clean.items()]))
        print(f"\nAccuracy under attack (budget relative to each channel's std; black-box on "
              f"{result.provenance['n_black_box_eval_trials']} trials outside the attacker's seed set):")
        print(accuracy_table(result.rows))
    else:
        _print_study_tables(out)
    agree = result.provenance.get("substitute_agreement")
    if agree:
        print("\nBlack-box substitute agreement with its victim: "
              + ", ".join(f"{k} {v:.3f}" for k, v in agree.items()))
    for key, pick in (result.provenance.get("substitute_members") or {}).items():
        print(f"  {key}: chose {pick['chosen']} by held-out agreement ("
              + ", ".join(f"{a} {v:.3f}" for a, v in pick["agreement"].items()) + ")")
    print("\nSanity checks:")
    for c in result.checks:
        print(f"  [{'ok' if c['passed'] else 'FAIL'}] {c['name']}: {c['detail']}")
    print(f"\n{res.n_cells} cells ({res.n_cells_run} run, {res.n_cells - res.n_cells_run} from the store); "
          f"victims trained {res.n_trained}, from the cache {res.n_loaded}")
    print(f"Results: {out / 'results.json'}, {out / 'results.csv'}, {out / 'summary.csv'} "
          f"({time.perf_counter() - t0:.0f} s)")
    return EXIT_OK


#: Text columns of subjects.csv and summary.csv: read as written (subject "01" stays "01", "NA" stays "NA").
_TEXT_COLUMNS = ("kind", "dataset", "subject", "session", "fold", "protocol", "model", "arm", "threat_model",
                 "attack", "substitute", "norm", "n_note")


def _read_table(path):
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in table.columns:
        if column not in _TEXT_COLUMNS:
            table[column] = pd.to_numeric(table[column].replace("", float("nan")), errors="coerce")
    return table


def _print_study_tables(out) -> None:
    """Per-subject worst case and the across-subject summary, from the CSV files the study wrote."""
    subjects, summary = _read_table(out / "subjects.csv"), _read_table(out / "summary.csv")
    wc = subjects[subjects["kind"] == "worst_case"]
    if len(wc):
        table = wc.pivot_table(index=["model", "norm", "epsilon"], columns="subject", values="adv_rca",
                               aggfunc="mean")
        print("\nWhite-box worst case per trial (robust accuracy), per subject (mean over folds and seeds):")
        print(table.round(3).to_string())
    s = summary[summary["kind"] == "worst_case"] if len(wc) else summary
    cols = [c for c in ("model", "norm", "epsilon", "mean", "sd", "ci_low", "ci_high", "n", "n_note") if c in s]
    print("\nAcross subjects (mean, sd with ddof=1, 95 % t-interval):")
    print(s[cols].round(3).to_string(index=False))


def _cmd_run(args) -> int:
    """Run a robustness study on your own data: subjects, a protocol, a grid of cells, a store."""
    from .study import StudyConfig

    fields = {"data": args.data, "train": args.train, "test": args.test, "moabb": args.moabb,
              "dataset": args.dataset, "subjects": args.subjects, "protocol": args.protocol, "folds": args.folds,
              "models": args.models, "preset": args.preset, "seeds": _seeds(args), "threat": args.threat,
              "attacks": args.attacks, "eps": _float_list(args.eps, "--eps") if args.eps is not None else None,
              "arms": args.arms, "certify": args.certify,
              "device": args.device, "out": args.out, "resume": args.resume or None, "engine": args.engine,
              "jobs": args.jobs, "ray_address": args.ray_address,
              "cache": False if args.no_cache else None, "paradigm": args.paradigm,
              "epochs_kwargs": _epochs_kwargs(args) or None}
    if args.config:
        study = StudyConfig.from_toml(args.config, **fields)
    else:
        study = StudyConfig.from_dict({k: v for k, v in fields.items() if v is not None})
    _check_out(study.out)
    return _run_and_print(study, args)


def _float_list(text, option):
    """``--eps 0.05,0.1``: budgets, each once, no empty item (``0.05,,0.1`` is a typo, not two budgets)."""
    from ..attacks.budget import check_epsilons

    items = [t.strip() for t in text.split(",")]
    if text.strip() and not all(items):
        raise UsageError(f"{option} {text!r} has an empty item; give budgets separated by single commas, e.g. "
                         f"{option} 0.05,0.1.")
    for item in items if text.strip() else ():
        try:
            _number(item)
        except ValueError:
            if _NUMBER.fullmatch(item):
                raise UsageError(f"{option} item {item!r} is too small to be told from 0 in floating point; give "
                                 "0 or a budget of at least 1e-300.") from None
            raise UsageError(f"{option} item {item!r} is not a plain number; give decimal budgets separated by "
                             f"commas, e.g. {option} 0.05,0.1.") from None
    return check_epsilons(items if text.strip() else (), unique=True, name=option)


def _audit_config(args):
    from .config import SuiteConfig, attack_overrides
    from ..data._checks import check_option

    threat_alias = {"white": "white_box", "gray": "gray_box", "grey": "gray_box", "black": "black_box",
                    "control": "control"}
    threats = []
    for t in args.threat.split(","):
        t = t.strip().replace("-", "_")
        known = sorted(set(threat_alias) | set(threat_alias.values()))
        threats.append(threat_alias.get(t, check_option("--threat", t, known)))
    config = SuiteConfig.make(args.preset)
    overrides = {"threat_models": tuple(dict.fromkeys(threats + ["control"]))}
    seeds = _seeds(args)
    if seeds is not None:  # otherwise the preset's seeds (paper: 0, 1, 2)
        overrides["seeds"] = seeds
    if args.eps is not None:
        overrides["epsilons"] = _float_list(args.eps, "--eps")
    if args.attacks is not None:
        overrides.update(attack_overrides(args.attacks))
    return SuiteConfig.make(config, **overrides)


def _device(name):
    from .study import resolve_device

    return resolve_device(name)


def _cmd_audit(args) -> int:
    """Audit a saved BCI model: load it safely, attack it, write results and a verdict."""
    from .audit import run_audit, verdict_line
    from .tables import accuracy_table

    if args.max_drop is not None and not 0 <= args.max_drop <= 1:
        raise UsageError(f"--max-drop must lie in [0, 1] (an accuracy drop), got {args.max_drop}.")
    if not Path(args.model).exists():
        raise UsageError(f"MODEL {args.model!r} does not exist.")
    from .audit import ChanceLevelWarning

    config = _audit_config(args)
    out = _check_out(args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChanceLevelWarning)  # printed below as a note, and kept in results.json
        result = run_audit(args.model, args.data, config=config, out_dir=out, train_path=args.train_data,
                           arch=args.arch, input_unit=args.input_unit, standardize=args.standardize,
                           device=_device(args.device), resume=args.resume, progress=not args.quiet,
                           epochs_kwargs=_epochs_kwargs(args), trust_code=args.trust_code, classes=args.classes,
                           arch_kwargs=args.arch_kwargs)
    paths = result.save(out)
    _write_reports(result, out, ("md",))
    print(accuracy_table(result.rows))
    n_bb, n_seed = (result.provenance.get(k) for k in ("n_black_box_eval_trials", "n_black_box_seed_trials"))
    if n_bb and any(r["threat_model"] == "black_box" for r in result.rows):
        print(f"(black-box rows are on {n_bb} of the {result.provenance.get('n_test_trials')} evaluated trials, the "
              f"others being the attacker's {n_seed} seed trials: their clean accuracy is on those {n_bb})")
    for note in dict.fromkeys(result.provenance["audit"]["notes"] + result.provenance.get("skipped", [])):
        print(f"note: {note}")
    print(f"results: {paths['json']}")
    from .audit import no_verdict_reason, worst_case_table, worst_cases, worst_drop
    from .metrics import exceeds

    reason = no_verdict_reason(result, args.max_drop)
    if reason is not None:
        print(f"verdict: no verdict possible: {reason}")
        print(f"eegrobust: no verdict possible: {reason} (results: {paths['json']})", file=sys.stderr)
        return EXIT_NO_VERDICT
    table = worst_case_table(worst_cases(result))
    if table:
        print("\nPer-trial worst case over each threat model's attacks of one norm (robust accuracy; a trial counts "
              "as robust only if no attack fooled it; L-inf and L2 apart):")
        print(table)
    print(verdict_line(result, args.max_drop))
    worst = worst_drop(result)
    if args.max_drop is not None and worst is not None and exceeds(worst[0], args.max_drop):
        return EXIT_THRESHOLD
    return EXIT_OK


def _cmd_certify(args) -> int:
    """Certify a saved model by randomized smoothing (Cohen et al. 2019): certified accuracy against the L2 radius."""
    from ..data import epochs_to_data, load_epochs
    from ..models import conform_data
    from .certify import PRESETS, run_certification, with_overrides
    from .loaders import load_victim
    from .tables import text_table

    if not Path(args.model).exists():
        raise UsageError(f"MODEL {args.model!r} does not exist.")
    if (args.data is None) == (args.dataset is None):
        raise UsageError("give exactly one of --data FILE (epochs to certify on) or --dataset NAME (its test split).")
    if args.dataset is not None and _epochs_kwargs(args):
        raise UsageError("--tmin/--tmax/--event-id apply to --data files only, not to --dataset.")
    config = with_overrides(PRESETS["quick" if args.quick else "cohen"], sigmas=args.sigma, n0=args.n0, n=args.n,
                            alpha=args.alpha, radii=args.radii, n_trials=args.n_trials,
                            batch_size=args.batch_size)
    out = _check_out(args.out)
    held = [n for n in ("certification.json", "certification.csv") if (Path(out) / n).exists()]
    if held:
        raise UsageError(f"--out {str(out)!r} already holds a certification ({', '.join(held)}); nothing was changed. "
                         "Give another --out (or delete those files).")
    data = _dataset(args.dataset)[1] if args.dataset else epochs_to_data(load_epochs(args.data, **_epochs_kwargs(args)))
    model, info = load_victim(args.model, data, arch=args.arch, input_unit=args.input_unit,
                              standardize=args.standardize, trust_code=args.trust_code, classes=args.classes,
                              arch_kwargs=args.arch_kwargs)
    for note in info.pop("notes", []):
        print(f"note: {note}")
    if info.get("batch_size"):  # an exported model with a static batch: noisy copies go in batches of that size
        config = with_overrides(config, batch_size=int(info["batch_size"]))
    model = model.to(_device(args.device))
    data = conform_data(model, data, name="the model")
    result = run_certification(model, data, config, seed=args.seed, model_name=info["arch"] or "model",
                               progress=not args.quiet)
    result["provenance"].update({"model": str(args.model), "format": info["format"],
                                 "arm": getattr(model, "arm_", None),
                                 "data": args.data or f"{args.dataset} (test split)"})
    out.mkdir(parents=True, exist_ok=True)
    import json

    import pandas as pd

    from .results import atomic_write

    atomic_write(out / "certification.json", json.dumps(result, indent=1))
    atomic_write(out / "certification.csv", pd.DataFrame(result["rows"]).to_csv(index=False))
    note = (f" (n={config.n} < Cohen's 100,000: certificates are looser, still valid at alpha {config.alpha:g})"
            if config.reduced else "")
    print(f"Certified accuracy of the smoothed model on {result['rows'][0]['n_trials']} trials, "
          f"N0={config.n0}, N={config.n}, alpha={config.alpha:g}{note}.")
    print("L2 radius in budget units (||delta / per-channel std||_2 over all channels and samples):")
    radii = list(config.radii)
    body = [[f"{sigma:g}"] + [f"{r['certified_accuracy']:.3f}" for r in result["rows"] if r["sigma"] == sigma]
            for sigma in config.sigmas]
    print(text_table(["sigma"] + [f"r={r:g}" for r in radii], body))
    spt = {r["sigma"]: r["seconds_per_trial"] for r in result["rows"]}
    print("seconds per trial: " + ", ".join(f"sigma {k:g}: {v:.2f}" for k, v in spt.items()))
    print(f"Results: {out / 'certification.json'}, {out / 'certification.csv'}")
    return EXIT_OK


def _write_reports(result, out, formats):
    try:
        from .report import write_report
    except ImportError:  # the report module is optional until it lands
        return {}
    return write_report(result, out, formats=formats)


def _cmd_report(args) -> int:
    """Render tables and figures from a results file (never re-runs an attack)."""
    from .results import SuiteResult
    from .report import check_formats, write_report

    result = SuiteResult.from_json(args.results)
    out = _check_out(args.out or Path(args.results).parent)
    formats = check_formats(args.format)  # before anything is written: an empty item or a repeat is refused
    if args.out is not None and not _same_file(out, Path(args.results).parent):
        # next to RESULTS the report is rewritten from the same numbers; elsewhere it must not replace another
        # study's results.csv, report or figures
        held = [n for n in (*REPORT_FILES, "study.json", "results.json") if (out / n).exists()]
        if held and not _report_of(out, result):
            raise UsageError(f"--out {str(out)!r} already holds {', '.join(held)} (another study's or report's); "
                             "nothing was changed. Give a new or empty folder, or leave --out out to rewrite the "
                             "report next to RESULTS.")
    paths = write_report(result, out, formats=formats)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
    return EXIT_OK


def _report_of(folder: Path, result) -> bool:
    """Whether ``folder`` holds an earlier report of the same study (its config.json is ``result``'s config) and
    no study of its own, so writing the report there again replaces only what the same numbers gave."""
    if (folder / "study.json").exists() or (folder / "results.json").exists():
        return False
    try:
        return json.loads((folder / "config.json").read_text()) == json.loads(json.dumps(result.config))
    except (OSError, ValueError):
        return False


#: What `report.write_report` writes into its folder (figures/ and paper/ are folders).
REPORT_FILES = ("report.md", "report.html", "report.tex", "results.csv", "config.json", "environment.json", "figures",
                "paper", "cells")


# -- eegrobust demo --gan, eegrobust gan ------------------------------------------------------------------------
def _gan_ratio(text: str) -> float:
    from ..data._checks import ConfigError
    from ..data.augment import check_ratio

    try:
        return check_ratio(float(text), "--gan-ratio")
    except (ValueError, ConfigError) as err:
        raise argparse.ArgumentTypeError(str(err) if isinstance(err, ConfigError) else
                                         f"--gan-ratio must be a number >= 0, got {text!r}.") from None


def add_gan_demo_options(parser) -> None:
    """Add ``--gan``, ``--gan-ratio`` and ``--force-gan`` to the ``demo`` parser."""
    parser.add_argument("--gan", action="store_true",
                        help="compare no augmentation, EEG-GAN and braindecode augmentation (3 seeds)")
    parser.add_argument("--gan-ratio", type=_gan_ratio, default=None,
                        help="synthetic trials per real training trial (default 1.0)")
    parser.add_argument("--force-gan", action="store_true", help="augment even when a GAN quality gate fails")


def _load_train(args):
    """Training EEGData and event_id from --data EPOCHS or --dataset NAME."""
    from ..data import epochs_to_data, load_bundled, load_epochs

    if args.data:
        epochs = load_epochs(args.data, **_epochs_kwargs(args))
        return epochs_to_data(epochs), dict(epochs.event_id)
    if _epochs_kwargs(args):
        raise UsageError("--tmin/--tmax/--event-id apply to --data files only, not to --dataset.")
    epochs = load_bundled(args.dataset)[0]
    return epochs_to_data(epochs), dict(epochs.event_id)


def cmd_gan_train(args) -> int:
    """Train an EEG-GAN on a training split, gate it on held-out training trials, save generator and gates."""
    import json

    from .gan import gate_failures, train_gan_with_gates
    from .results import atomic_write
    from ..models.gan import CONFIG_FILE, WEIGHTS_FILE, GANConfig, save_gan

    if args.minutes is not None and args.iterations is not None:
        raise UsageError("give --minutes or --iterations, not both.")
    bad_minutes = args.minutes is not None and not 0 < args.minutes < math.inf  # nan and inf too
    if bad_minutes or args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--minutes must be finite and > 0 and --iterations >= 1, got {args.minutes} and "
                         f"{args.iterations}.")
    out = _check_out(args.out)
    held = [n for n in (CONFIG_FILE, WEIGHTS_FILE, "gates.json") if (out / n).exists()]
    if held and not args.overwrite:
        raise UsageError(f"--out {str(out)!r} already holds a generator ({', '.join(held)}); nothing was changed. "
                         "Pass --overwrite to replace it, or give another --out.")
    train, event_id = _load_train(args)
    overrides = {"n_stages": args.stages, "show_progress": not args.quiet}
    if args.minutes is not None:
        overrides.update(n_iterations=None, max_minutes=args.minutes)
    elif args.iterations is not None:
        overrides["n_iterations"] = args.iterations
    gan, report = train_gan_with_gates(train, GANConfig(**overrides), seed=args.seed, event_id=event_id,
                                       device=_device(args.device))
    _out_dir(out)
    save_gan(gan, out)
    atomic_write(out / "gates.json", json.dumps(report, indent=1, default=float) + "\n")
    print(f"EEG-GAN trained on {report['n_fit']} trials in {report['fit_seconds']:.0f} s; gates on "
          f"{report['n_holdout']} held-out training trials:")
    for g in report["gates"]:
        print(f"  [{'ok' if g['passed'] else 'FAIL'}] {g['name']} = {g['value']:.3f} ({g['op']} "
              f"{g['threshold']:.3f}): {g['detail']}")
    print(f"generator: {out}/ (gates.json holds every number)")
    if not report["passed"]:
        print("eegrobust: gate failed: " + "; ".join(gate_failures(report)) + " (augmentation with this "
              "generator is refused unless forced)", file=sys.stderr)
        return EXIT_THRESHOLD
    return EXIT_OK


def cmd_gan_sample(args) -> int:
    """Draw class-balanced synthetic epochs from a saved generator into an -epo.fif file."""
    from ..models.gan import load_gan

    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}.")
    out = Path(args.out).expanduser()
    if not out.name.endswith(("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")):
        raise UsageError(f"--out must end in -epo.fif (MNE's epochs naming), got {str(out)!r}.")
    if args.data and _same_file(out, args.data):
        raise UsageError(f"--out {str(out)!r} is the --data file; synthetic epochs would replace the real ones. "
                         "Give another --out.")
    _check_out(out, file=True)
    ch_names = sfreq = None
    tmin = 0.0
    if args.data:
        from ..data import epochs_to_data, load_epochs

        ref_epochs = load_epochs(args.data, **_epochs_kwargs(args))
        ref = epochs_to_data(ref_epochs)
        ch_names, sfreq, tmin = ref.ch_names, ref.sfreq, float(ref_epochs.tmin)
    gan = load_gan(args.generator, ch_names=ch_names, sfreq=sfreq)
    if out.exists() and not getattr(args, "overwrite", False):
        raise UsageError(f"--out {str(out)!r} already exists; nothing was changed. Pass --overwrite to replace it, "
                         "or give another --out.")
    need = args.n * len(gan.ch_names) * gan.n_times * 12  # float32 samples, then MNE's float64 epochs
    have = _physical_memory()
    if have and need > have:
        raise UsageError(f"--n {args.n} synthetic epochs of {len(gan.ch_names)} channels x {gan.n_times} samples need "
                         f"about {need / 2**30:.1f} GiB, more than this machine's {have / 2**30:.1f} GiB; draw "
                         "fewer (several files if need be).")
    if not Path(args.generator, "gates.json").is_file():
        logger.warning("no gates.json next to the generator: its quality was not checked")
    epochs = gan.sample_epochs(args.n, random_state=args.seed, tmin=tmin)  # the --data windows' start
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {str(out)!r}: its folder cannot be created ({err.strerror}).") from None
    _save_epochs_atomic(epochs, out)
    labels = list(epochs.metadata["label"])
    counts = ", ".join(f"{c} {labels.count(c)}" for c in gan.classes)
    print(f"{args.n} synthetic epochs ({len(gan.ch_names)} channels, {gan.sfreq:g} Hz; per class: {counts}; "
          f"metadata is_synthetic=True) written to {out}")
    return EXIT_OK


def _physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _same_file(a, b) -> bool:
    """Whether two paths name the same file (after resolving links, ``..`` and case where the filesystem folds it)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _save_epochs_atomic(epochs, out: Path) -> None:
    """Save ``epochs`` to a temporary ``*-epo.fif`` next to ``out`` (MNE wants the suffix), make it readable
    (0666 minus the umask), then rename it over ``out``: a reader never sees half a file."""
    suffix = next(s for s in ("-epo.fif.gz", "_epo.fif.gz", "-epo.fif", "_epo.fif") if out.name.endswith(s))
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name[: -len(suffix)]}.", suffix=suffix)
    os.close(fd)
    try:
        epochs.save(tmp, overwrite=True, verbose="error")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_gan_parser(subparsers) -> None:
    """Add ``gan train`` and ``gan sample`` to the ``eegrobust`` sub-command parsers."""
    gan = subparsers.add_parser("gan", help="train an EEG-GAN and sample synthetic epochs",
                                description="EEG-GAN (Hartmann et al. 2018) for augmentation, with quality gates.")
    sub = gan.add_subparsers(dest="gan_command", required=True)
    p = sub.add_parser("train", help=cmd_gan_train.__doc__, description=cmd_gan_train.__doc__)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--dataset", default="scp1", help="bundled dataset whose training split is used "
                                                          "(default scp1)")
    source.add_argument("--data", default=None, help="training epochs (-epo.fif or any file data.load_epochs reads)")
    p.add_argument("--out", default="eegrobust-gan", help="generator folder (default ./eegrobust-gan)")
    p.add_argument("--overwrite", action="store_true", help="replace a generator already in --out")
    add_epochs_options(p)
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--stages", type=int, default=3, help="progressive stages over time, 1-3 (default 3)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--iterations", type=int, default=None, help="generator steps (default 1200)")
    budget.add_argument("--minutes", type=float, default=None, help="train for this wall time instead")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    add_global_options(p)
    p.set_defaults(func=cmd_gan_train)

    p = sub.add_parser("sample", help=cmd_gan_sample.__doc__, description=cmd_gan_sample.__doc__)
    p.add_argument("generator", metavar="GENERATOR_DIR", help="folder written by 'eegrobust gan train'")
    p.add_argument("--n", type=int, required=True,
                   help="number of epochs, spread over the classes as evenly as n allows (the message counts them)")
    p.add_argument("--out", required=True, help="output file, FILE-epo.fif")
    p.add_argument("--data", default=None, help="epochs the samples are for: channels and sfreq must match")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_epochs_options(p)
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    add_global_options(p)
    p.set_defaults(func=cmd_gan_sample)


def add_study_options(p) -> None:
    """Options every study command shares: device, resume, cache, quiet, debug."""
    p.add_argument("--device", default=None, help="auto (default, or a study file's device), cpu or cuda")
    p.add_argument("--engine", default=None, help="where cells run: serial (default), process or ray")
    p.add_argument("--jobs", type=int, default=None, help="parallel workers of --engine process/ray (default: cores)")
    p.add_argument("--ray-address", default=None, help="host:port of a running Ray cluster (default: start one)")
    p.add_argument("--resume", action="store_true", help="continue (or re-use) the study already in --out")
    p.add_argument("--no-cache", action="store_true", help="train every victim, do not use the victim cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_global_options(p)


def add_global_options(p, *, top: bool = False) -> None:
    """--debug, -v/--verbose and --log-level; on a sub-command they default to what was given before it."""
    keep = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--debug", action="store_true", help="show the traceback of an error", **keep)
    p.add_argument("-v", "--verbose", action="count", help="more log messages (-v info, -vv debug)",
                   **(keep or {"default": 0}))
    p.add_argument("--log-level", type=_log_level, metavar="LEVEL", help=f"log level: {', '.join(LOG_LEVELS)}",
                   **(keep or {"default": None}))


def _version() -> str:
    from .. import __version__  # the code that runs (an editable install's metadata can be stale)

    return __version__


def add_model_options(p) -> None:
    """How to read a saved model (audit, certify): ``--arch``, ``--input-unit``, ``--standardize``, the epochs
    options and ``--trust-code``."""
    p.add_argument("--arch", default=None, help="architecture of a bare state dict: eegnet, deep4 or shallow")
    p.add_argument("--input-unit", default="uV", help="unit the model expects: uV (default) or V")
    p.add_argument("--standardize", default="none",
                   help="preprocessing the model expects: none (default) or per-channel (statistics from "
                        "--train-data when given, else from --data)")
    p.add_argument("--classes", type=_names, default=None, metavar="NAME,...",
                   help="a foreign model's classes in the order of its outputs (default: the epochs' event codes, "
                        "ascending), e.g. feet,left,right,tongue for alphabetical labels")
    p.add_argument("--arch-kwargs", type=_json_object, default=None, metavar="JSON",
                   help="braindecode settings a bare state dict was built with beyond the epochs' shape, e.g. "
                        "'{\"pool_mode\": \"max\"}' (default: braindecode's defaults)")
    add_epochs_options(p)
    p.add_argument("--trust-code", action="store_true",
                   help="allow model formats that are programs (TorchScript): only for files you trust")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="eegrobust", description="Adversarial-robustness harness for EEG BCIs.",
                     epilog="exit codes: 0 passed, 1 a --max-drop threshold exceeded, 2 usage or input error, "
                            "3 no verdict possible (nothing attacked) or internal error")
    parser.add_argument("--version", action="version", version=f"eegrobust {_version()}")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--dataset", default="scp1", help="bundled dataset: scp1 (default) or finger")
        p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        add_global_options(p)

    p = sub.add_parser("demo", help=_cmd_demo.__doc__, description=_cmd_demo.__doc__)
    p.add_argument("--dataset", default="scp1", help="bundled dataset: scp1 (default), scp2 or finger")
    p.add_argument("--seed", type=_seed, default=None, help="one seed (default: the preset's seeds)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds: one victim per seed")
    p.add_argument("--preset", default=None, help="quick | standard (default) | paper")
    p.add_argument("--quick", action="store_true", help="same as --preset quick")
    p.add_argument("--out", default="eegrobust-demo", help="results folder (default ./eegrobust-demo)")
    p.add_argument("--models", default=None, help="comma-separated victims (default: eegnet,deep4,shallow)")
    add_study_options(p)
    add_gan_demo_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("run", help=_cmd_run.__doc__, description=_cmd_run.__doc__)
    p.add_argument("--config", default=None, help="study TOML file (StudyConfig fields); options override it")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", nargs="+", default=None, help="epochs files or quoted globs ('data/sub-*_epo.fif')")
    src.add_argument("--dataset", default=None, help="bundled dataset: scp1, scp2 or finger")
    src.add_argument("--moabb", default=None, help="MOABB dataset class name (pip install 'eegrobust[moabb]')")
    p.add_argument("--train", default=None, help="training epochs (with --test: an explicit pair)")
    p.add_argument("--test", default=None, help="test epochs (with --train)")
    add_epochs_options(p)
    p.add_argument("--paradigm", default=None, help="MOABB paradigm (default: from the dataset)")
    p.add_argument("--subjects", default=None, help="comma-separated subjects to keep")
    p.add_argument("--protocol", default=None,
                   help="official (default) | within-subject | cross-session | cross-subject")
    p.add_argument("--folds", type=int, default=None, help="K of within-subject K-fold (default 5)")
    p.add_argument("--models", default=None, help="comma-separated architectures (default: the preset's)")
    p.add_argument("--preset", default=None, help="quick | standard (default) | paper")
    p.add_argument("--seeds", default=None, help="comma-separated seeds: one victim per seed (default: preset's)")
    p.add_argument("--threat", default=None, help="threat models, e.g. white,gray,black (default: preset's)")
    p.add_argument("--attacks", default=None, help="comma-separated attack names (default: the preset's)")
    p.add_argument("--eps", default=None, help="comma-separated budgets (default: the preset's grid)")
    p.add_argument("--arms", default=None, metavar="ARM,...",
                   help="training arms, each victim trained once per arm: none (default), augment, gan, noise, "
                        "fgsm_at, pgd_at, trades; parameters as pgd_at(eps=0.05,steps=7)")
    p.add_argument("--certify", default=None, metavar="PRESET",
                   help="also certify every victim by randomized smoothing: quick (n=1000) or cohen (n=100000)")
    p.add_argument("--out", default=None, help="study folder (default ./eegrobust-study)")
    add_study_options(p)
    p.set_defaults(func=_cmd_run, seed=None)

    p = sub.add_parser("train", help=_cmd_train.__doc__, description=_cmd_train.__doc__)
    common(p)
    p.add_argument("--models", default="eegnet,deep4,shallow", help="comma-separated registry names")
    p.add_argument("--out", default=None, help="also save a model bundle per model into this folder")
    p.add_argument("--overwrite", action="store_true", help="replace bundles of the same names already in --out")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("audit", help=_cmd_audit.__doc__, description=_cmd_audit.__doc__)
    p.add_argument("model", help="eegrobust bundle folder, state dict (.pt, with --arch), TorchScript or ONNX file")
    p.add_argument("--data", required=True, help="audit epochs: -epo.fif (or any file data.load_epochs reads)")
    p.add_argument("--train-data", default=None, help="the model's training epochs (enables gray-box)")
    add_model_options(p)
    p.add_argument("--threat", default="white,gray,black", help="threat models (default white,gray,black)")
    p.add_argument("--attacks", default=None, help="comma-separated attack names (default: the preset's)")
    p.add_argument("--eps", default=None, help="comma-separated budgets (default: the preset's grid)")
    p.add_argument("--seed", type=_seed, default=None, help="attack seed (default: the preset's seeds)")
    p.add_argument("--seeds", default=None, help="comma-separated attack seeds")
    p.add_argument("--out", default="eegrobust-audit", help="results folder (default ./eegrobust-audit)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--preset", default="standard", help="quick | standard (default) | paper")
    p.add_argument("--max-drop", type=_max_drop, default=None,
                   help="exit 1 when an accuracy drop (of one attack, or of the per-trial worst case over a "
                        "threat model's attacks of one norm) exceeds this value in [0, 1]")
    p.add_argument("--resume", action="store_true", help="keep finished cells of an interrupted audit in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_global_options(p)
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("certify", help=_cmd_certify.__doc__, description=_cmd_certify.__doc__)
    p.add_argument("model", help="eegrobust bundle folder, state dict (.pt, with --arch), TorchScript or ONNX file")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default=None, help="epochs to certify on: -epo.fif (or any file load_epochs reads)")
    src.add_argument("--dataset", default=None, help="bundled dataset whose test split is certified")
    add_model_options(p)
    p.add_argument("--sigma", default=None, help="noise levels in budget units (default 0.12,0.25,0.5,1.0)")
    p.add_argument("--n0", type=int, default=None, help="samples that select the class (default 100)")
    p.add_argument("--n", type=int, default=None, help="samples that bound its probability (default 100000)")
    p.add_argument("--alpha", type=float, default=None, help="failure probability per trial (default 0.001)")
    p.add_argument("--radii", default=None, help="L2 radii to tabulate (default 0,0.25,0.5,0.75,1,1.5,2)")
    p.add_argument("--n-trials", type=int, default=None, help="certify the first N trials only (default all)")
    p.add_argument("--batch-size", type=int, default=None, help="noisy copies per forward pass (default 1000)")
    p.add_argument("--quick", action="store_true", help="sigma 0.25,0.5 and n=1000 (looser certificates)")
    p.add_argument("--seed", type=_seed, default=0, help="noise seed (default 0)")
    p.add_argument("--out", default="eegrobust-certify", help="results folder (default ./eegrobust-certify)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_global_options(p)
    p.set_defaults(func=_cmd_certify)

    p = sub.add_parser("report", help=_cmd_report.__doc__, description=_cmd_report.__doc__)
    p.add_argument("results", help="results.json written by demo, audit or run_suite")
    p.add_argument("--format", default="md,html,tex,csv", help="comma-separated: md, html, tex, csv")
    p.add_argument("--out", default=None, help="folder for the report (default: next to RESULTS)")
    add_global_options(p)
    p.set_defaults(func=_cmd_report)

    add_gan_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``eegrobust`` with ``argv`` (default ``sys.argv[1:]``); return the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed one line (an error) or the help / version
        return EXIT_USAGE if exc.code else EXIT_OK
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    package, old_level = logging.getLogger("eegrobust"), logging.getLogger("eegrobust").level
    if args.log_level or args.verbose:
        package.setLevel(args.log_level or ("DEBUG" if args.verbose >= 2 else "INFO"))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            return _dispatch(args)
    finally:
        package.setLevel(old_level)


def _dispatch(args) -> int:
    from ..data._checks import EEGRobustError, NoVerdictError

    try:
        return args.func(args)
    except NoVerdictError as err:
        return _fail(args, err, EXIT_NO_VERDICT, "no verdict possible", _first_line(err))
    except (UsageError, EEGRobustError) as err:
        return _fail(args, err, EXIT_USAGE, "error", _cli_wording(_first_line(err)))
    except OSError as err:  # permissions, a full disk, a path below a file: the user's environment, not a bug
        return _fail(args, err, EXIT_USAGE, "error", _os_message(err))
    except KeyboardInterrupt:
        print("eegrobust: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - anything else is a bug: one line, the traceback with --debug
        hint = "" if args.debug else " (run with --debug for the traceback; please report it)"
        return _fail(args, err, EXIT_INTERNAL, "internal error", f"{type(err).__name__}: {_first_line(err)}{hint}")


def _fail(args, err, code: int, kind: str, message: str) -> int:
    if args.debug:
        traceback.print_exception(err)
    print(f"eegrobust: {kind}: {message}", file=sys.stderr)
    return code


#: Library wording -> the option a command-line user has for it.
_CLI_WORDING = {"pass tmax=<seconds>": "give --tmax SECONDS (and --tmin, --event-id NAME=CODE,...)"}


def _cli_wording(message: str) -> str:
    for library, option in _CLI_WORDING.items():
        message = message.replace(library, option)
    return message


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _os_message(err: OSError) -> str:
    where = " -> ".join(repr(str(f)) for f in (err.filename, err.filename2) if f is not None)
    what = err.strerror or _first_line(err)
    return f"{where}: {what} ({type(err).__name__})" if where else f"{what} ({type(err).__name__})"


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one log line (``WARNING: Category: message``), not Python's two lines with source code."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else ""
    logging.getLogger("eegrobust").warning("%s: %s", category.__name__, text)


if __name__ == "__main__":
    sys.exit(main())
