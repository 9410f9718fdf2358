"""MOABB without a network: a real dataset that cannot be downloaded fails in one line; FakeDataset still loads.

Every test points MNE_DATA at an empty folder and every HTTP(S) proxy at a closed local port, so MOABB finds no
files and no download can get through, on this machine (which has no network) and on one with internet alike; MNE's
config is read from and written to a temporary home (``_MNE_FAKE_HOME_DIR``), never to ``~/.mne``.
"""

import pytest
from eegrobust.data import DataError, load_dataset, load_moabb

pytest.importorskip("moabb")

# MOABB's FakeDataset uses a montage name that MNE 1.13 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Montage name:FutureWarning")

DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there, the connection is refused


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty MNE_DATA, a throw-away MNE config, proxies that refuse, and MOABB's own downloader (no NEMAR
    mirror first: its client retries for about 20 s before MOABB falls back to the upstream host)."""
    data, home = tmp_path / "mne_data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    monkeypatch.setenv("MNE_DATA", str(data))
    monkeypatch.setenv("_MNE_FAKE_HOME_DIR", str(home))
    monkeypatch.setenv("MOABB_DOWNLOAD_PROVIDER", "upstream")
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(key, DEAD_PROXY)
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    return data


def test_a_dataset_that_cannot_be_downloaded_fails_in_one_line_naming_it_and_the_fix(offline):
    with pytest.raises(DataError) as info:
        load_moabb("BNCI2014_001", subjects=[1])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("MOABB dataset BNCI2014_001 (subject 1) is not on disk and could not be downloaded "
                              "from lampx.tugraz.at (no network, or the server did not answer).")
    assert "Download it once on a machine with internet" in message
    assert "moabb.datasets.BNCI2014_001().download()" in message
    assert f"to {offline} (MNE_DATA here), or set MNE_DATA to a folder that holds a copy" in message
    assert message.endswith("(ProxyError).")  # the original error class, a requests.ConnectionError
    assert type(info.value.__cause__).__name__ == "ProxyError"  # the original traceback stays reachable


def test_load_dataset_and_a_study_see_the_same_error(offline):
    with pytest.raises(DataError, match=r"^MOABB dataset BNCI2014_001 \(subject 1\) is not on disk"):
        load_dataset(moabb="BNCI2014_001", subjects=[1])


def test_cli_run_reports_the_download_failure_in_one_line(offline, tmp_path, capsys):
    from eegrobust.harness.cli import EXIT_USAGE, main

    out = tmp_path / "study"
    assert main(["run", "--moabb", "BNCI2014_001", "--subjects", "1", "--preset", "quick", "--out", str(out),
                 "--quiet"]) == EXIT_USAGE
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("eegrobust:")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("eegrobust: error: MOABB dataset BNCI2014_001 (subject 1) is not on disk")
    assert lines[0].endswith("(ProxyError).") and "HTTPSConnectionPool" not in lines[0]


def test_fake_dataset_still_loads_offline(offline):
    data = load_moabb("FakeDataset", subjects=[1])
    assert data.subjects == ("1",) and data.n_trials > 0
    assert not any(offline.iterdir())  # nothing was downloaded (or tried)
