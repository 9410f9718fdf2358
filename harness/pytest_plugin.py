"""pytest plugin for users' robustness suites, registered as the ``pytest11`` entry point ``eeg_robustness``.

pytest imports every installed plugin at start-up, so this module imports neither torch nor braindecode (nor
anything of eegrobust that does): the helpers live in `harness.robustness` and are imported by the fixtures, or
on first access to the names re-exported here (``from harness.pytest_plugin import parametrize_with_attacks``).

What it adds
------------
- options (group "eeg-robustness"): ``--robustness-preset {quick,standard,paper}`` (default quick) sets the
  attack strength (PGD steps, black-box query budgets; see `harness.config.PRESETS`) and ``--robustness-seed N``
  (default 0) the attacks' seed; both are shown in the report header;
- the ``robustness`` marker (tests that use the ``assert_robust`` fixture get it automatically, so
  ``-m "not robustness"`` skips them);
- fixtures ``robustness_seed`` (int), ``robustness_preset`` (`harness.config.SuiteConfig`) and ``assert_robust``
  (`harness.robustness.assert_robust` with ``random_state`` and ``preset`` taken from those two fixtures);
- ``parametrize_with_attacks(attacks, epsilons)`` and ``assert_robust`` / ``assert_accuracy_drop_below``,
  re-exported lazily.
"""

from __future__ import annotations

import argparse
import re

import pytest

#: Names of `harness.config.PRESETS` (kept here so that parsing the command line imports nothing heavy; a test
#: checks that the two agree).
PRESET_NAMES = ("quick", "standard", "paper")
DEFAULT_PRESET = "quick"
DEFAULT_SEED = 0
MARKER = "robustness: adversarial robustness check (eegrobust); select with -m robustness"

_LAZY = ("assert_robust", "assert_accuracy_drop_below", "parametrize_with_attacks", "RobustnessError",
         "RobustnessResult", "ChanceLevelError")
# Options of the running sessions, innermost last (pytester runs sessions inside sessions).
_sessions: list[dict] = []
_SESSION_KEY = pytest.StashKey[dict]()


def __getattr__(name):
    if name in _LAZY:
        from . import robustness

        return getattr(robustness, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def current_options() -> dict | None:
    """``{"preset": name, "seed": int}`` of the innermost running pytest session with this plugin, else None."""
    return dict(_sessions[-1]) if _sessions else None


def _seed(value: str) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]+", value):  # plain decimal: no '1_0', '+5', ' 3'
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 written in decimal digits, got {value!r}")
    return int(value)


def pytest_addoption(parser):
    group = parser.getgroup("eeg-robustness", "adversarial robustness of EEG decoders (eegrobust)")
    group.addoption("--robustness-preset", action="store", default=None, choices=PRESET_NAMES,
                    help="attack strength of assert_robust: PGD steps and black-box query budgets of the "
                         f"harness.config preset (default: the ini's robustness_preset, else {DEFAULT_PRESET}).")
    group.addoption("--robustness-seed", action="store", default=None, type=_seed, metavar="N",
                    help=f"seed of the attacks in assert_robust (default: the ini's robustness_seed, else "
                         f"{DEFAULT_SEED}).")
    parser.addini("robustness_preset", f"default --robustness-preset: one of {', '.join(PRESET_NAMES)}",
                  default="")
    parser.addini("robustness_seed", "default --robustness-seed: an integer >= 0", default="")


def _options(config) -> dict:
    """Preset and seed: the command line, else the ini file (robustness_preset, robustness_seed), else the
    defaults; a bad ini value stops the session with one line (it was ignored with a config warning)."""
    preset = config.getoption("robustness_preset")
    if preset is None:
        preset = str(config.getini("robustness_preset")).strip() or DEFAULT_PRESET
        if preset not in PRESET_NAMES:
            raise pytest.UsageError(f"robustness_preset = {preset!r} in the ini file: must be one of "
                                    f"{', '.join(PRESET_NAMES)}.")
    seed = config.getoption("robustness_seed")
    if seed is None:
        ini = str(config.getini("robustness_seed")).strip()
        try:
            seed = _seed(ini) if ini else DEFAULT_SEED
        except argparse.ArgumentTypeError as err:
            raise pytest.UsageError(f"robustness_seed in the ini file {err}.") from None
    return {"preset": preset, "seed": seed}


def pytest_configure(config):
    config.addinivalue_line("markers", MARKER)
    options = _options(config)
    config.stash[_SESSION_KEY] = options
    _sessions.append(options)


def pytest_unconfigure(config):
    mine = config.stash.get(_SESSION_KEY, None)
    for i in range(len(_sessions) - 1, -1, -1):
        if _sessions[i] is mine:
            del _sessions[i]
            break


def pytest_report_header(config):
    options = config.stash[_SESSION_KEY]
    return (f"eeg-robustness: preset={options['preset']}, seed={options['seed']} (--robustness-preset, "
            "--robustness-seed, or robustness_preset / robustness_seed in the ini file)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "assert_robust" in getattr(item, "fixturenames", ()):
            item.add_marker("robustness")


@pytest.fixture
def robustness_seed(request) -> int:
    """The attacks' seed: ``--robustness-seed`` (default 0). Override the fixture to pin it in one module."""
    return request.config.stash[_SESSION_KEY]["seed"]


@pytest.fixture
def robustness_preset(request):
    """The `harness.config.SuiteConfig` named by ``--robustness-preset`` (default "quick")."""
    from .config import PRESETS

    return PRESETS[request.config.stash[_SESSION_KEY]["preset"]]


@pytest.fixture
def assert_robust(robustness_seed, robustness_preset):
    """`harness.robustness.assert_robust` with ``random_state`` and ``preset`` defaulting to the fixtures.

    ``assert_robust(model, epochs, attack="pgd", eps=0.05, max_drop=0.2)`` returns the measured numbers or
    raises an AssertionError whose message gives clean and adversarial accuracy, epsilon, SNR and the seed.
    """
    from .robustness import assert_robust as _assert_robust

    def check(model, epochs, **kwargs):
        __tracebackhide__ = True
        kwargs.setdefault("random_state", robustness_seed)
        kwargs.setdefault("preset", robustness_preset)
        return _assert_robust(model, epochs, **kwargs)

    check.__name__ = check.__qualname__ = "assert_robust"
    check.__doc__ = _assert_robust.__doc__
    return check
