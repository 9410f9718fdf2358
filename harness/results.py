"""`SuiteResult`: rows plus provenance, saved as JSON and CSV (atomically)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..data._checks import DataError

RESULTS_FORMAT = "eegrobust-results"
RESULTS_VERSION = 3
#: Long-table columns: where a row comes from (MOABB-like keys), then what was measured. ``seed`` is the attack
#: seed (kept for scripts written against format 1); ``train_seed`` is None for a model given by the user.
COLUMNS = ("dataset", "subject", "session", "fold", "protocol", "model", "arm", "train_seed", "attack_seed",
           "threat_model", "attack", "substitute", "norm", "epsilon", "seed", "n_trials", "clean_rca",
           "clean_bca", "adv_rca", "adv_bca", "drop", "success_rate", "linf_uv", "linf_rel", "l2_uv", "snr_db",
           "snr_fooled_db", "median_min_norm", "queries_per_trial", "wall_s")
#: Optional measures that older rows lack: l2_rel, the largest L2 norm in budget units over sqrt(C * T).
EXTRA_COLUMNS = ("l2_rel",)
#: Per-band SNR (`attacks.budget.BANDS`), present when the sampling rate is known; None above Nyquist.
BAND_COLUMNS = ("snr_slow_db", "snr_delta_db", "snr_theta_db", "snr_alpha_db", "snr_beta_db", "snr_gamma_db")
#: What the budget unit and SNR mean in this format (format 3; formats 1 and 2 used the raw, not demeaned, std).
BUDGET_DEFINITION = ("epsilon in unit 'rel' is a fraction of each channel's std over trials x time after removing "
                     "each trial's per-channel mean; SNR = 10 log10(sum x_demeaned^2 / sum delta^2), pooled over the "
                     "attacked trials (snr_fooled_db: over the trials that flipped)")


OUTCOME_COLUMNS = ("dataset", "subject", "session", "fold", "protocol", "model", "arm", "train_seed",
                   "attack_seed", "threat_model", "attack", "substitute", "norm", "epsilon", "trial", "y",
                   "clean_pred", "adv_pred")


def environment() -> dict:
    """Package versions, platform and git commit: what a reviewer asks to reproduce a number."""
    from .. import __version__

    versions = {"eegrobust": __version__}  # the code that ran (an editable install's metadata can be stale)
    for pkg in ("torch", "braindecode", "mne", "foolbox", "numpy", "scipy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    import torch

    return {"versions": versions, "python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "git_sha": sha,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def cpu_model() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what `platform` knows: timings depend on it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_hash(model) -> str:
    """SHA-256 over a module's state dict (names, shapes and values)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def atomic_write(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a reader never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class SuiteResult:
    """What `run_suite` measured: one row per model x threat model x attack x epsilon x seed.

    Attributes
    ----------
    rows : list of dict
        Columns in `COLUMNS` (plus ``info`` with attack-specific extras such as substitute agreement).
    config : dict
        The `SuiteConfig` as a dict.
    provenance : dict
        Data hash, model hashes, budget scale, trial counts, attack reprs.
    environment : dict
        Package versions, platform, git commit, time.
    checks : list of dict
        Sanity-check outcomes (`harness.checks`).
    examples : list of dict
        One fooled trial per victim (clean and adversarial microvolts, channel names, sfreq, labels), so that
        reports can draw traces and spectra without re-running an attack.
    """

    rows: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)
    examples: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"format": RESULTS_FORMAT, "format_version": RESULTS_VERSION, "budget_definition": BUDGET_DEFINITION,
                "config": self.config,
                "provenance": self.provenance, "environment": self.environment, "checks": self.checks,
                "rows": self.rows, "examples": self.examples, "outcomes": self.outcomes}

    def to_json(self, path=None) -> str:
        text = json.dumps(self.to_dict(), indent=1, default=_jsonable, allow_nan=True)
        if path is not None:
            atomic_write(path, text)
        return text

    @classmethod
    def from_json(cls, path) -> "SuiteResult":
        """Read a results file written by `to_json`, checking its structure field by field.

        Raises
        ------
        DataError
            The file is missing, a folder, unreadable, not JSON, not an eegrobust results file, of another format
            version, or a field has the wrong type (rows not a list of objects, a row without a column ...): the
            message names the file and the field.
        """
        path = Path(path)
        where = f"results file {str(path)!r}"
        if path.is_dir():
            hint = " (it holds a results.json: give that file)" if (path / "results.json").is_file() else ""
            raise DataError(f"{where} is a folder, not a results.json{hint}.")
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(f"{where} does not exist.") from None
        except OSError as err:
            raise DataError(f"{where} cannot be read ({err.strerror or type(err).__name__}).") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{where} is not valid JSON ({err}).") from None
        except RecursionError:
            raise DataError(f"{where} is nested too deeply to be an eegrobust results file.") from None
        if not isinstance(d, dict):
            raise DataError(f"{str(path)!r} is not an eegrobust results file (it holds a JSON {_kind(d)}, not an "
                            "object with a 'format' field).")
        if d.get("format") != RESULTS_FORMAT:
            kind = ""
            if "trials" in d and "rows" in d and "format" not in d:
                kind = ": it is a certification (eegrobust certify), whose tables are in certification.csv"
            elif path.name == "study.json":
                kind = ": it is a study's plan; give the study's results.json"
            what = f"format {d.get('format')!r}" if "format" in d else "no 'format' field"
            raise DataError(f"{str(path)!r} is not an eegrobust results file ({what}){kind}.")
        if d.get("format_version") not in (1, 2, RESULTS_VERSION):
            raise DataError(f"{str(path)!r} has results format_version {d.get('format_version')!r}; this "
                            f"eegrobust reads versions 1 to {RESULTS_VERSION}. Re-run the suite with this version.")
        missing = [k for k in ("rows", "config", "provenance", "environment", "checks") if k not in d]
        if missing:
            raise DataError(f"{where} lacks the field(s) {missing}.")
        _check_fields(d, where)
        if d["format_version"] == 1:  # rows without the study keys: one subject, the official split
            defaults = {"dataset": d["config"].get("dataset", ""), "subject": "1", "session": "", "fold": "official",
                        "protocol": "official", "arm": "none", "train_seed": None}
            d["rows"] = [{**defaults, "attack_seed": r.get("seed"), **r} if isinstance(r, dict) else r
                         for r in d["rows"]]
        if d["format_version"] < 3:  # budgets and SNR of the raw std (see BUDGET_DEFINITION); no flipped-trial SNR
            d["rows"] = [{"snr_fooled_db": None, **r} if isinstance(r, dict) else r for r in d["rows"]]
        _check_rows(d["rows"], where)
        _check_outcomes(d.get("outcomes", []), d["rows"], where)
        return cls(d["rows"], d["config"], d["provenance"], d["environment"], d["checks"], d.get("examples", []),
                   d.get("outcomes", []))

    def to_csv(self, path=None) -> str:
        buf = io.StringIO()
        bands = [c for c in (*BAND_COLUMNS, *EXTRA_COLUMNS) if any(c in r for r in self.rows)]
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS) + bands, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        if path is not None:
            atomic_write(path, buf.getvalue())
        return buf.getvalue()

    def to_frame(self):
        """The rows as a pandas DataFrame (pandas is imported here only)."""
        import pandas as pd

        bands = [c for c in (*BAND_COLUMNS, *EXTRA_COLUMNS) if any(c in r for r in self.rows)]
        return pd.DataFrame(self.rows, columns=list(COLUMNS) + bands + ["info"])

    def outcomes_frame(self):
        """Per-trial outcomes as a long DataFrame: one row per cell x budget x trial (see `harness.analysis`).

        Consecutive blocks whose columns and value types agree are built as one frame (one small frame per cell and
        budget, concatenated, took 0.6 s on a demo's 250 blocks), so dtypes and missing values are those of
        concatenating the per-block frames."""
        import numpy as np
        import pandas as pd

        lists = ("trial", "y", "clean_pred", "adv_pred", "queries")  # per-trial columns; the others are scalars
        groups: list = []  # [signature, {column: list of values}]
        for block in self.outcomes:
            keys = {k: v for k, v in block.items() if k not in ("trial", "y", "clean_pred", "adv_pred", "queries")}
            n = len(block["trial"])
            for eps, adv in block["adv_pred"].items():
                frame = {**keys, "epsilon": float(eps), "trial": block["trial"], "y": block["y"],
                         "clean_pred": block["clean_pred"], "adv_pred": adv}
                if eps in block.get("queries", {}):  # query attacks: queries until the trial was first fooled
                    frame["queries"] = [np.nan if q is None else q for q in block["queries"][eps]]
                if n == 0:  # a frame of its own, as pandas builds it (scalars typed, no rows)
                    groups.append([None, pd.DataFrame(frame)])
                    continue
                signature = tuple((k, "list" if k in lists else type(v).__name__) for k, v in frame.items())
                if not groups or groups[-1][0] != signature:
                    groups.append([signature, {k: [] for k in frame}])
                columns = groups[-1][1]
                for k, v in frame.items():
                    columns[k].extend(v if k in lists else [v] * n)
        if not groups:
            return pd.DataFrame(columns=[*OUTCOME_COLUMNS])
        frames = [columns if signature is None else pd.DataFrame(columns) for signature, columns in groups]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def save(self, out_dir) -> dict:
        """Write results.json, results.csv, config.json and environment.json into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "results.json", "csv": out / "results.csv", "config": out / "config.json",
                 "environment": out / "environment.json"}
        self.to_json(paths["json"])
        self.to_csv(paths["csv"])
        atomic_write(paths["config"], json.dumps(self.config, indent=1))
        atomic_write(paths["environment"], json.dumps(self.environment, indent=1))
        return paths


#: Row columns whose values must be numbers (the report computes with them).
_NUMERIC = ("epsilon", "clean_rca", "clean_bca", "adv_rca", "adv_bca", "drop")
#: Row columns whose values must be text.
_TEXT = ("model", "threat_model", "attack", "norm")


def _kind(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _check_fields(d: dict, where: str) -> None:
    """Top-level fields have the JSON types `to_dict` writes."""
    for key, kind in (("rows", list), ("config", dict), ("provenance", dict), ("environment", dict),
                      ("checks", list), ("examples", list), ("outcomes", list)):
        if key in d and not isinstance(d[key], kind):
            raise DataError(f"{where}: field {key!r} must be a JSON {_kind(kind())}, got a {_kind(d[key])} "
                            f"({str(d[key])[:40]!r}).")
    for i, check in enumerate(d["checks"]):
        if not isinstance(check, dict) or not isinstance(check.get("name"), str):
            raise DataError(f"{where}: checks[{i}] must be an object with a 'name', got {str(check)[:40]!r}.")


def _check_rows(rows: list, where: str) -> None:
    """Every row is an object with every column of `COLUMNS`, numbers where the report computes."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{where}: row {i} must be a JSON object, got a {_kind(row)} ({str(row)[:40]!r}).")
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise DataError(f"{where}: row {i} ({row.get('model')!r}/{row.get('attack')!r}) lacks the field(s) "
                            f"{missing}; it was not written by this eegrobust's run_suite.")
        for c in _NUMERIC:
            if isinstance(row[c], bool) or not isinstance(row[c], (int, float)):
                raise DataError(f"{where}: row {i} field {c!r} must be a number, got {row[c]!r}.")
        for c in _TEXT:
            if not isinstance(row[c], str):
                raise DataError(f"{where}: row {i} field {c!r} must be text, got {row[c]!r}.")
        if row["substitute"] is not None and not isinstance(row["substitute"], str):
            raise DataError(f"{where}: row {i} field 'substitute' must be text or null, got {row['substitute']!r}.")
        for c, low in (("clean_rca", 0.0), ("clean_bca", 0.0), ("adv_rca", 0.0), ("adv_bca", 0.0), ("drop", -1.0)):
            if c in row and not (isinstance(row[c], (int, float)) and low <= row[c] <= 1.0):  # NaN fails too
                raise DataError(f"{where}: row {i} ({row.get('model')!r}/{row.get('attack')!r} at epsilon "
                                f"{row.get('epsilon')!r}) has {c}={row[c]!r}, not an accuracy{' drop' * (c == 'drop')}"
                                f" in [{low:g}, 1]; the file was edited or damaged.")
        what = f"row {i} ({row.get('model')!r}/{row.get('attack')!r} at epsilon {row.get('epsilon')!r})"
        if not 0 <= row["epsilon"] < float("inf"):  # NaN fails too
            raise DataError(f"{where}: {what} has an epsilon that is not a finite budget >= 0; the file was edited or "
                            "damaged.")
        if isinstance(row["n_trials"], bool) or not isinstance(row["n_trials"], int) or row["n_trials"] < 0:
            raise DataError(f"{where}: {what} field 'n_trials' must be a whole number >= 0, got {row['n_trials']!r}.")
        if abs(row["drop"] - (row["clean_rca"] - row["adv_rca"])) > 1e-6:
            raise DataError(f"{where}: {what} has drop {row['drop']!r}, but clean_rca - adv_rca is "
                            f"{row['clean_rca'] - row['adv_rca']!r}; the file was edited or damaged.")
    seen = {}
    for i, row in enumerate(rows):
        key = tuple(str(row.get(k)) for k in (*_CELL_KEYS, "seed"))
        if key in seen:
            raise DataError(f"{where}: rows {seen[key]} and {i} are the same cell ({row['model']!r}/{row['attack']!r} "
                            f"at epsilon {row['epsilon']!r}, seed {row.get('seed')!r}) twice; the file was edited or "
                            "damaged (a repeated row would count as another seed).")
        seen[key] = i


#: What identifies one row of a results file (a cell at one budget), besides its seed.
_CELL_KEYS = ("dataset", "subject", "session", "fold", "protocol", "model", "arm", "train_seed", "attack_seed",
              "threat_model", "attack", "substitute", "norm", "epsilon")


def _check_outcomes(outcomes: list, rows: list, where: str) -> None:
    """Per-trial outcome blocks have their lists of one length, and agree with the rows: each budget's accuracy
    over a block's trials is its row's ``adv_rca`` (a block edited apart from its rows would make the per-trial
    worst case and the per-attack tables say different things)."""
    by_key = {tuple(str(r.get(k)) for k in _CELL_KEYS[:-1]) + (repr(float(r["epsilon"])),): r for r in rows}
    for i, block in enumerate(outcomes):
        name = f"outcomes[{i}]"
        if not isinstance(block, dict):
            raise DataError(f"{where}: {name} must be a JSON object, got a {_kind(block)} ({str(block)[:40]!r}).")
        lists = {k: block.get(k) for k in ("trial", "y", "clean_pred")}
        bad = [k for k, v in lists.items() if not isinstance(v, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) for x in v)]
        if bad or not isinstance(block.get("adv_pred"), dict):
            field = bad[0] if bad else "adv_pred"
            raise DataError(f"{where}: {name} field {field!r} must be a list of class indices (adv_pred: an object of "
                            "such lists per budget); the file was edited or damaged.")
        n = len(lists["trial"])
        if len(lists["y"]) != n or len(lists["clean_pred"]) != n:
            raise DataError(f"{where}: {name} has {n} trials but {len(lists['y'])} labels and "
                            f"{len(lists['clean_pred'])} clean predictions; the file was edited or damaged.")
        for eps, adv in block["adv_pred"].items():
            try:
                e = float(eps)
            except ValueError:
                e = float("nan")
            if not (0 <= e < float("inf")) or not isinstance(adv, list) or len(adv) != n:
                raise DataError(f"{where}: {name} adv_pred[{eps!r}] must be a list of {n} class indices under a "
                                "finite budget >= 0; the file was edited or damaged.")
            row = by_key.get(tuple(str(block.get(k)) for k in _CELL_KEYS[:-1]) + (repr(e),))
            if row is not None and n and row["n_trials"] == n:
                acc = sum(a == t for a, t in zip(adv, lists["y"])) / n
                if abs(acc - row["adv_rca"]) > 1e-6:
                    raise DataError(f"{where}: {name} ({block.get('model')!r}/{block.get('attack')!r} at epsilon "
                                    f"{eps}) gives accuracy {acc:.6f} over its trials, but its row says adv_rca "
                                    f"{row['adv_rca']:.6f}; the file was edited or damaged.")


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
