"""Suites, metrics, checks, results, CLI and the pytest plugin.

Kept free of heavy imports: pytest imports ``harness.pytest_plugin`` at start-up. Import the API from the
submodules (``from harness.suite import run_suite``) or through the lazy names below.
"""

__all__ = ["run_suite", "SuiteConfig", "SuiteResult", "PRESETS"]


def __getattr__(name):
    if name == "run_suite":
        from .suite import run_suite

        return run_suite
    if name in ("SuiteConfig", "PRESETS"):
        from . import config

        return getattr(config, name)
    if name == "SuiteResult":
        from .results import SuiteResult

        return SuiteResult
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
