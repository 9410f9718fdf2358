"""The pytest plugin (STYLE.md section 8), tested with ``pytester`` as pytest-randomly tests its plugin.

User suites run in-process (``pytester.runpytest``): torch and the models are already imported, so each run costs
only what the suite itself does (a toy model trained in about a second). pytester drops the modules an inner run
imported when it ends; MNE loads its submodules lazily, so `_warm_imports` runs the suites' code paths once first,
or objects made later would fail MNE's ``isinstance`` checks against classes of a dropped module.
"""

import importlib.metadata
import subprocess
import sys

import pytest

from eegrobust.data import ConfigError, DataError, epochs_to_data, make_synthetic_epochs
from eegrobust.models import TrainConfig, build_model, fit_model

pytest_plugins = ["pytester"]

USER_SUITE = """
import pytest

from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.models import TrainConfig, build_model, fit_model


@pytest.fixture(scope="module")
def epochs():
    return make_synthetic_epochs(n_trials=64, n_chans=4, n_times=128, random_state=0)


@pytest.fixture(scope="module")
def model(epochs):
    data = epochs_to_data(epochs)
    config = TrainConfig(max_epochs=5, patience=None, show_progress=False)
    return fit_model(build_model("toy", data), data, config)


def test_tiny_budget(model, epochs, assert_robust):
    result = assert_robust(model, epochs, attack="pgd", eps=0.001, max_drop=0.5)
    assert result.attack == "linf_pgd" and result.seed == {seed}
    assert result.clean_accuracy > 0.6 and result.drop <= 0.5


def test_huge_budget(model, epochs, assert_robust):
    assert_robust(model, epochs, attack="pgd", eps=1.0, max_drop=0.05)
"""


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    from eegrobust.harness.robustness import assert_robust

    epochs = make_synthetic_epochs(n_trials=8, random_state=0)
    data = epochs_to_data(epochs)
    model = fit_model(build_model("toy", data), data, TrainConfig(max_epochs=1, val_fraction=0, show_progress=False))
    assert_robust(model, epochs, epsilon=0.01, max_drop=1.0, allow_chance=True)  # one epoch on 8 trials


def test_entry_point_is_registered():
    eps = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "eeg_robustness"]
    assert [ep.value for ep in eps] == ["eegrobust.harness.pytest_plugin"]


def test_import_is_light(tmp_path):
    code = ("import sys, eegrobust, eegrobust.harness.pytest_plugin; "
            "print(sorted(m for m in ('torch', 'braindecode', 'foolbox', 'mne') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"


def test_preset_names_match_config():
    from eegrobust.harness.config import PRESETS
    from eegrobust.harness.pytest_plugin import DEFAULT_PRESET, PRESET_NAMES

    assert PRESET_NAMES == tuple(PRESETS)
    assert DEFAULT_PRESET in PRESETS


def test_assert_robust_passes_and_fails_with_numbers(pytester):
    pytester.makepyfile(test_user=USER_SUITE.format(seed=3))
    result = pytester.runpytest("--robustness-seed=3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        ("*RobustnessError: robust accuracy dropped by 0.* > max_drop 0.050 under linf_pgd at epsilon=1 (rel): "
         "clean 0.* -> adversarial 0.* (BCA 0.* -> 0.*), SNR * dB, seed 3, 64 trials"),
    ])
    # the failure points at the user's line, not into the helper
    result.stdout.fnmatch_lines(["*assert_robust(model, epochs, attack=\"pgd\", eps=1.0, max_drop=0.05)"])
    result.stdout.no_fnmatch_line("*robustness.py:*RobustnessError*")


def test_options_reach_fixtures_and_header(pytester):
    pytester.makepyfile("""
        from eegrobust.harness.pytest_plugin import current_options

        def test_options(robustness_seed, robustness_preset):
            assert robustness_seed == 7
            assert robustness_preset.pgd_steps == 20 and robustness_preset.max_queries == 200
            assert current_options() == {"preset": "standard", "seed": 7}

        def test_plain_helper_uses_the_options():
            from eegrobust.harness.config import PRESETS
            from eegrobust.harness.robustness import _session_defaults

            assert _session_defaults() == (7, PRESETS["standard"])
    """)
    from eegrobust.harness.pytest_plugin import current_options

    before = current_options()
    result = pytester.runpytest("--robustness-preset", "standard", "--robustness-seed", "7")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["eeg-robustness: preset=standard, seed=7*"])
    assert current_options() == before  # the inner session's options are gone again


def test_defaults(pytester):
    pytester.makepyfile("""
        def test_defaults(robustness_seed, robustness_preset):
            assert robustness_seed == 0 and robustness_preset.pgd_steps == 10
    """)
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("args, message", [
    (["--robustness-preset=fast"], "*--robustness-preset: invalid choice: 'fast' (choose from *quick*standard*paper*"),
    (["--robustness-seed=abc"], "*--robustness-seed: must be an integer >= 0*, got 'abc'"),
    (["--robustness-seed=-1"], "*--robustness-seed: must be an integer >= 0*, got '-1'"),
    (["--robustness-seed=1_0"], "*--robustness-seed: must be an integer >= 0 written in decimal digits, got '1_0'"),
    (["--robustness-seed=+5"], "*--robustness-seed: must be an integer >= 0*, got '+5'"),
])
def test_bad_options_error_clearly(pytester, args, message):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_ini_options_set_the_defaults_and_the_command_line_wins(pytester):
    """robustness_preset / robustness_seed in the ini file were ignored (a config warning only), so a CI gate ran
    the quick preset's weaker attacks; a bad ini value stops the session with one line."""
    pytester.makeini("[pytest]\nrobustness_preset = paper\nrobustness_seed = 4\n")
    pytester.makepyfile("""
        def test_options(robustness_seed, robustness_preset):
            assert robustness_seed == 4 and robustness_preset.pgd_steps == 40
    """)
    result = pytester.runpytest("-W", "error::pytest.PytestConfigWarning")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["eeg-robustness: preset=paper, seed=4*"])
    pytester.runpytest("--robustness-seed", "4", "--robustness-preset", "paper").assert_outcomes(passed=1)
    assert pytester.runpytest("--robustness-preset", "quick").ret == pytest.ExitCode.TESTS_FAILED
    pytester.makeini("[pytest]\nrobustness_preset = strong\n")
    bad = pytester.runpytest()
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*robustness_preset = 'strong' in the ini file: must be one of quick, standard, paper*"])
    pytester.makeini("[pytest]\nrobustness_seed = 1_0\n")
    bad = pytester.runpytest()
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*robustness_seed in the ini file must be an integer >= 0*got '1_0'*"])


def test_marker_and_readable_parametrize_ids(pytester):
    pytester.makepyfile("""
        import pytest
        from eegrobust.harness.pytest_plugin import parametrize_with_attacks

        @pytest.mark.robustness
        @parametrize_with_attacks(["pgd", "fgsm"], [0.05, 0.1])
        def test_grid(attack, epsilon):
            assert attack in ("pgd", "fgsm") and epsilon in (0.05, 0.1)

        def test_uses_helper(assert_robust):
            pass

        def test_other():
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines_random(["*test_grid?linf_pgd-eps0.05? PASSED*", "*test_grid?linf_pgd-eps0.1? PASSED*",
                                        "*test_grid?fgsm-eps0.05? PASSED*", "*test_grid?fgsm-eps0.1? PASSED*"])
    # tests using the assert_robust fixture carry the marker too, so -m selects them
    selected = pytester.runpytest("--strict-markers", "-m", "robustness", "-q")
    selected.assert_outcomes(passed=5, deselected=1)
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.robustness: adversarial robustness check*"])


def test_parametrize_with_attacks_rejects_unknown_names():
    from eegrobust.harness.pytest_plugin import parametrize_with_attacks

    with pytest.raises(ConfigError, match="attack must be one of .*got 'lin_pgd'.*Did you mean 'linf_pgd'"):
        parametrize_with_attacks(["lin_pgd"], [0.05])
    with pytest.raises(ConfigError, match="epsilons must be finite and >= 0"):
        parametrize_with_attacks("fgsm", [-0.1])
    with pytest.raises(ConfigError, match=r"attacks name \['linf_pgd'\] more than once"):
        parametrize_with_attacks(["pgd", "linf_pgd"], [0.05])
    with pytest.raises(ConfigError, match="epsilons repeat a budget"):
        parametrize_with_attacks("fgsm", [0.05, 0.05])
    mark = parametrize_with_attacks("fgsm", [0.1, 0.1000001])
    assert [p.id for p in mark.args[1]] == ["fgsm-eps0.1", "fgsm-eps0.1000001"]  # %g gave both 'fgsm-eps0.1'


def test_preset_sets_attack_strength():
    from eegrobust.harness.config import PRESETS
    from eegrobust.harness.robustness import resolve_attack

    assert resolve_attack("pgd", preset=PRESETS["quick"]).steps == 10
    assert resolve_attack("linf_pgd", preset=PRESETS["paper"]).steps == 40
    assert resolve_attack("square", preset=PRESETS["standard"]).max_queries == PRESETS["standard"].max_queries
    for name in ("simba", "rays", "hopskipjump"):  # every query attack takes the preset's query budget
        assert resolve_attack(name, preset=PRESETS["paper"]).max_queries == PRESETS["paper"].max_queries
    assert resolve_attack("fgsm", preset=PRESETS["paper"]).name == "fgsm"


@pytest.fixture(scope="module")
def untrained_toy():
    # shape and argument checks run before any prediction, so an untrained model is enough here
    return build_model("toy", epochs_to_data(make_synthetic_epochs(n_trials=8, random_state=0)))


def test_epochs_that_do_not_fit_raise_data_error(untrained_toy):
    from eegrobust.harness.robustness import assert_robust

    wrong = make_synthetic_epochs(n_trials=8, n_chans=3, random_state=0)
    with pytest.raises(DataError, match=r"expects 4 channels x 128 samples, the epochs have 3 channels x 128"):
        assert_robust(untrained_toy, wrong)
    renamed = make_synthetic_epochs(n_trials=8, random_state=0).rename_channels(lambda name: name.replace("EEG", "C"))
    with pytest.raises(DataError, match=r"expects channels \['EEG000'.*the epochs have \['C000'"):
        assert_robust(untrained_toy, renamed)


def test_plain_module_that_fails_on_the_epochs_names_shapes():
    import torch

    from eegrobust.harness.robustness import assert_robust

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 128, 2))
    wrong = epochs_to_data(make_synthetic_epochs(n_trials=8, n_chans=3, random_state=0))
    with pytest.raises(DataError, match=r"fails on input of shape \(2, 3, 128\) \(n_chans=3, n_times=128\)"):
        assert_robust(net, wrong)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_drop": 1.5}, r"max_drop must be a number in \[0, 1\].*got 1.5"),
    ({"max_drop": -0.1}, r"max_drop must be a number in \[0, 1\]"),
    ({"epsilon": -1.0}, "epsilons must be finite and >= 0"),
    ({"epsilon": 0.05, "eps": 0.1}, "either epsilon= or eps="),
    ({"attack": "pgdd"}, "Did you mean 'pgd'"),
    ({"unit": "volts"}, "unit must be one of"),
])
def test_bad_arguments_raise_value_error(untrained_toy, kwargs, match):
    from eegrobust.harness.robustness import assert_robust

    data = epochs_to_data(make_synthetic_epochs(n_trials=8, random_state=0))
    with pytest.raises(ValueError, match=match):
        assert_robust(untrained_toy, data, **kwargs)


def test_model_must_be_a_module():
    from eegrobust.harness.robustness import assert_robust

    with pytest.raises(TypeError, match="clf.module_"):
        assert_robust(object(), epochs_to_data(make_synthetic_epochs(n_trials=8, random_state=0)))


def test_alias_name():
    from eegrobust.harness.robustness import assert_accuracy_drop_below, assert_robust

    assert assert_accuracy_drop_below is assert_robust

