"""The store of a study: one JSON file per finished cell, written atomically, named by the cell's digest.

Layout of a study folder::

    study.json            what was planned: the study configuration, every cell's digest, data and victim hashes
    cells/<digest>.json   one finished cell: the cell, its rows (one per budget), per-trial outcomes, an example

Resume is a lookup: cells whose file exists are not run again. A folder that already holds a study is never
overwritten: without ``resume`` the study refuses to start; with it, a stored cell that is not part of the new
plan (other data, another model, other attack settings) is refused, naming what differs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..data._checks import ConfigError, DataError
from .cell import CellResult
from .plan import Cell, differences
from .results import _check_rows, atomic_write

logger = logging.getLogger(__name__)

STORE_FORMAT = "eegrobust-study"
STORE_VERSION = 2  # 2: budgets of the demeaned std (results format 3)
#: Files whose presence means a folder already holds results of some run.
#: Files a study, demo or audit writes at the top of its folder: any of them there means the folder holds a run (or
#: a user's file of that name), which is never overwritten without --resume.
RESULT_FILES = ("study.json", "results.json", "results.csv", "config.json", "environment.json", "summary.csv",
                "subjects.csv", "report.md", "report.html")


class MemoryStore:
    """A store that keeps cells in memory (for `run_suite` without a folder and for `assert_robust`)."""

    def __init__(self):
        self._cells: dict = {}

    def has(self, cell: Cell) -> bool:
        return cell.digest in self._cells

    def get(self, cell: Cell) -> CellResult:
        return self._cells[cell.digest]

    def put(self, result: CellResult) -> None:
        self._cells[result.cell.digest] = result

    def results(self, cells) -> list:
        return [self._cells[c.digest] for c in cells if c.digest in self._cells]

    def open(self, plan: dict, cells, *, resume: bool) -> None:
        """Nothing to check in memory."""


class Store(MemoryStore):
    """Cells on disk under ``root`` (see the module docstring); reads them lazily and caches what it read."""

    def __init__(self, root):
        super().__init__()
        self.root = Path(root)
        self.cell_dir = self.root / "cells"

    def _path(self, cell: Cell) -> Path:
        return self.cell_dir / f"{cell.digest}.json"

    def has(self, cell: Cell) -> bool:
        return cell.digest in self._cells or self._path(cell).is_file()

    def get(self, cell: Cell) -> CellResult:
        if cell.digest not in self._cells:
            path = self._path(cell)
            try:
                d = json.loads(path.read_text())
                if not isinstance(d, dict):
                    raise TypeError(f"a JSON {type(d).__name__}, not a cell object")
                result = CellResult.from_dict(d)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
                raise DataError(f"stored cell {str(path)!r} is unreadable ({_why_unreadable(err)}); delete it and "
                                "resume to run that cell again.") from None
            if result.cell.digest != cell.digest:
                raise DataError(f"stored cell {str(path)!r} does not hold the cell its name says (edited?); delete "
                                "it and resume.")
            try:
                _check_rows(result.rows, f"stored cell {str(path)!r}")
            except DataError as err:
                raise DataError(f"{str(err).rstrip('.')}; delete it and resume to run that cell again.") from None
            self._cells[cell.digest] = result
        return self._cells[cell.digest]

    def put(self, result: CellResult) -> None:
        self.cell_dir.mkdir(parents=True, exist_ok=True)
        from .results import _jsonable

        atomic_write(self._path(result.cell), json.dumps(result.to_dict(), default=_jsonable, allow_nan=True))
        self._cells[result.cell.digest] = result

    def stored_digests(self) -> set:
        return {p.stem for p in self.cell_dir.glob("*.json")} if self.cell_dir.is_dir() else set()

    def open(self, plan: dict, cells, *, resume: bool) -> None:
        """Check the folder against the plan, then write ``study.json``.

        Raises ConfigError when the folder holds results and ``resume`` is False, and when ``resume`` is True but
        the stored study was made with other data, another model or other settings (naming what differs).
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"--out {str(self.root)!r} cannot be created as a folder "
                              f"({err.strerror or type(err).__name__}); give a writable folder.") from None
        held = [name for name in RESULT_FILES if (self.root / name).exists()] + (
            ["cells/"] if self.stored_digests() else [])
        if held and not resume:
            raise ConfigError(f"--out {str(self.root)!r} already holds results ({', '.join(held)}); nothing was "
                              "changed. Pass --resume to continue or re-use that run, or give another --out.")
        if resume:
            self._check_resume(plan, cells)
        atomic_write(self.root / "study.json", json.dumps({"format": STORE_FORMAT, "format_version": STORE_VERSION,
                                                            **plan}, indent=1, default=str))

    def _check_resume(self, plan: dict, cells) -> None:
        self._check_study_file()
        planned = {c.digest: c for c in cells}
        foreign = sorted(self.stored_digests() - set(planned))
        if foreign:
            stored = self.get_any(foreign[0])
            reason = _why_foreign(stored, cells) if stored is not None else "unreadable cell file"
            raise ConfigError(f"--resume: {str(self.root)!r} holds {len(foreign)} cell(s) of another study "
                              f"({reason}); resume with the same data, model and options, or give another --out.")
        old = self.root / "results.json"
        if old.exists() and not (self.root / "study.json").exists():
            raise ConfigError(f"--resume: {str(self.root)!r} holds a results.json but no study.json (the per-cell "
                              "store): written by an older eegrobust, or not by eegrobust; give another --out.")
        n_done = sum(self.has(c) for c in cells)
        logger.info("resuming: %d of %d cells already in %s", n_done, len(cells), self.root)

    def _check_study_file(self) -> None:
        """A ``study.json`` being resumed must be a study of this format (not ``[]``, not garbage)."""
        path = self.root / "study.json"
        if not path.exists():
            return
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as err:
            raise DataError(f"--resume: {str(path)!r} is unreadable ({_why_unreadable(err)}); it is not a study "
                            "written by eegrobust. Give another --out (nothing was changed).") from None
        if not isinstance(d, dict) or d.get("format") != STORE_FORMAT:
            got = f"format {d.get('format')!r}" if isinstance(d, dict) else f"a JSON {type(d).__name__}"
            raise DataError(f"--resume: {str(path)!r} is not an eegrobust study (field 'format' must be "
                            f"{STORE_FORMAT!r}, got {got}). Give another --out (nothing was changed).")
        if d.get("format_version") != STORE_VERSION:
            raise DataError(f"--resume: {str(path)!r} has study format_version {d.get('format_version')!r}; this "
                            f"eegrobust resumes version {STORE_VERSION}. Give another --out (nothing was changed).")

    def get_any(self, digest: str):
        try:
            return CellResult.from_dict(json.loads((self.cell_dir / f"{digest}.json").read_text())).cell
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None


def _why_unreadable(err) -> str:
    """What is wrong with a stored JSON file, naming the field where one is missing."""
    if isinstance(err, KeyError):
        return f"missing field {err}"
    if isinstance(err, RecursionError):
        return "nested too deeply"
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")


def _why_foreign(stored: Cell, cells) -> str:
    """Name the fields in which a stored cell differs from the closest planned cell."""
    best = min(cells, key=lambda c: len(differences(stored, c)), default=None)
    if best is None:
        return "nothing is planned"
    diff = differences(stored, best)
    names = {"train_hash": "other training data", "test_hash": "other evaluation data",
             "victim_id": "another model", "attack": "other attack settings", "model": "another model name"}
    return ", ".join(names.get(d, d) for d in diff) or "identical fields, other version"
