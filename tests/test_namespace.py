"""One namespace: `import eegrobust` gives the API, and nothing generic (data, models, attacks, harness) is installed.

The README's plugin example is run verbatim with ``python -m pytest`` inside a throw-away user project that has
its own ``data/`` and ``models/`` folders and a ``models.py`` module: exactly the layout that broke 0.1.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ("load_epochs", "load_bundled", "EEGData", "build_model", "fit_model", "save_bundle", "load_bundle",
          "make_attack", "SuiteConfig", "run_suite", "run_study", "write_report", "assert_robust")


def _readme_block(first_line: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


def _resolves(module, name) -> bool:
    try:
        getattr(module, name)
    except AttributeError:
        return False
    return True


def test_public_api_in_one_namespace():
    import eegrobust

    missing = [name for name in PUBLIC if not hasattr(eegrobust, name)]
    assert not missing
    assert set(PUBLIC) <= set(eegrobust.__all__)
    unresolved = [name for name in eegrobust.__all__ if not _resolves(eegrobust, name)]
    assert not unresolved, unresolved  # every name __all__ promises exists
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        eegrobust.nope  # noqa: B018


def test_no_generic_top_level_modules_are_installed(tmp_path):
    code = ("import importlib.util, eegrobust; "
            "print([m for m in ('data', 'models', 'attacks', 'harness') if importlib.util.find_spec(m)])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert importlib.util.find_spec("eegrobust").origin == str(ROOT / "__init__.py")  # the editable install


def test_importing_the_models_prints_no_warning_about_braindecode_internals(tmp_path):
    # braindecode 1.8's import asks MNE for a montage name MNE 1.13 deprecates; every command used to print it
    code = "import warnings; warnings.simplefilter('always'); import eegrobust.models"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "standard_1020" not in out.stderr, out.stderr


def test_readme_plugin_example_in_a_hostile_user_project(tmp_path):
    from eegrobust import epochs_to_data, make_synthetic_epochs
    from eegrobust.models import TrainConfig, build_model, fit_model, save_bundle

    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "data").mkdir()
    (project / "models").mkdir()
    # the user's own modules named like eegrobust's old top-level packages
    (project / "data" / "__init__.py").write_text("raise ImportError('this is the user data package')\n")
    (project / "models.py").write_text("raise ImportError('this is the user models module')\n")
    (project / "tests" / "models.py").write_text("raise ImportError('this is the user tests/models.py')\n")
    train = make_synthetic_epochs(n_trials=64, snr=3.0, random_state=0)  # a clear signal: a robust toy decoder
    test = make_synthetic_epochs(n_trials=64, snr=3.0, random_state=1)
    data = epochs_to_data(train)
    model = fit_model(build_model("toy", data), data, TrainConfig(max_epochs=6, patience=None, show_progress=False))
    save_bundle(model, project / "models" / "eegnet-scp1")
    test.save(project / "data" / "sub01_test-epo.fif", verbose="error")
    (project / "tests" / "conftest.py").write_text(_readme_block("# tests/conftest.py"))
    (project / "tests" / "test_robustness.py").write_text(_readme_block("# tests/test_robustness.py"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=project,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert "ImportError" not in out and "error" not in out.splitlines()[-1], out[-3000:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed)", out.splitlines()[-1])}
    assert sum(counts.values()) == 5, out[-2000:]  # every README test ran against the user's model
    # a toy decoder may well be fooled: then the failure is the harness's verdict, never a crash
    assert out.count("RobustnessError: robust accuracy dropped") >= counts.get("failed", 0), out[-3000:]
    assert counts.get("passed", 0) >= 1 and proc.returncode in (0, 1)


def test_layers_point_one_way(tmp_path):
    """import-linter's layers contract in pyproject.toml: harness -> attacks -> models -> data, never upwards."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "1 kept, 0 broken" in proc.stdout, proc.stdout[-3000:]
