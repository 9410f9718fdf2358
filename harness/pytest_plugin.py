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
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value!r}")
    return seed


def pytest_addoption(parser):
    group = parser.getgroup("eeg-robustness", "adversarial robustness of EEG decoders (eegrobust)")
    group.addoption("--robustness-preset", action="store", default=DEFAULT_PRESET, choices=PRESET_NAMES,
                    help="attack strength of assert_robust: PGD steps and black-box query budgets of the "
                         f"harness.config preset (default: {DEFAULT_PRESET}).")
    group.addoption("--robustness-seed", action="store", default=DEFAULT_SEED, type=_seed, metavar="N",
                    help=f"seed of the attacks in assert_robust (default: {DEFAULT_SEED}).")


def pytest_configure(config):
    config.addinivalue_line("markers", MARKER)
    options = {"preset": config.getoption("robustness_preset"), "seed": config.getoption("robustness_seed")}
    config.stash[_SESSION_KEY] = options
    _sessions.append(options)


def pytest_unconfigure(config):
    mine = config.stash.get(_SESSION_KEY, None)
    for i in range(len(_sessions) - 1, -1, -1):
        if _sessions[i] is mine:
            del _sessions[i]
            break


def pytest_report_header(config):
    return (f"eeg-robustness: preset={config.getoption('robustness_preset')}, "
            f"seed={config.getoption('robustness_seed')} (--robustness-preset, --robustness-seed)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "assert_robust" in getattr(item, "fixturenames", ()):
            item.add_marker("robustness")


@pytest.fixture
def robustness_seed(request) -> int:
    """The attacks' seed: ``--robustness-seed`` (default 0). Override the fixture to pin it in one module."""
    return request.config.getoption("robustness_seed")


@pytest.fixture
def robustness_preset(request):
    """The `harness.config.SuiteConfig` named by ``--robustness-preset`` (default "quick")."""
    from .config import PRESETS

    return PRESETS[request.config.getoption("robustness_preset")]


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
