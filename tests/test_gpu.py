"""CUDA: training, attacks, the suite and the GAN on a GPU, and seeding that leaves the caller's CUDA generator alone.

Marked ``gpu``: skipped (and the header says so) where no CUDA device exists; run wherever one does.
"""

import numpy as np
import pytest
import torch

from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.harness.config import SuiteConfig
from eegrobust.harness.suite import run_suite
from eegrobust.models import TrainConfig, build_model, fit_model, predict

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def data():
    train = epochs_to_data(make_synthetic_epochs(n_trials=60, snr=2.0, random_state=0))
    test = epochs_to_data(make_synthetic_epochs(n_trials=40, snr=2.0, random_state=1))
    return train, test


def test_seeding_leaves_the_callers_cuda_generator(data):
    train, _ = data
    torch.cuda.manual_seed_all(1234)
    before = torch.cuda.get_rng_state()
    model = build_model("eegnet", train, random_state=0).cuda()
    fit_model(model, train, TrainConfig(max_epochs=2, patience=None, show_progress=False))
    assert torch.equal(torch.cuda.get_rng_state(), before)


def test_suite_on_cuda_matches_cpu_accuracy(data):
    train, test = data
    config = SuiteConfig(models=("eegnet",), white_box=("fgsm", "linf_pgd", "apgd_ce"), gray_box=("ufgsm",),
                         black_box=("substitute", "square", "simba"), epsilons=(0.3,), n_seed_trials=10,
                         max_queries=30, pgd_steps=5, substitute_rounds=1, train={"max_epochs": 5, "patience": None})
    cpu_model = fit_model(build_model("eegnet", train, random_state=0), train,
                          TrainConfig(max_epochs=5, patience=None, show_progress=False)).eval()
    cuda_model = build_model("eegnet", train, random_state=0)
    cuda_model.load_state_dict(cpu_model.state_dict())
    cuda_model = cuda_model.cuda().eval()
    assert np.mean(predict(cuda_model, test.X) == predict(cpu_model, test.X)) >= 0.95
    result = run_suite(config, train=train, test=test, victims={"eegnet": cuda_model}, device="cuda",
                       progress=False)
    rows = {(r["attack"], r["epsilon"]): r for r in result.rows}
    assert rows[("linf_pgd", 0.3)]["adv_rca"] < rows[("linf_pgd", 0.3)]["clean_rca"]
    assert all(r["linf_rel"] <= 0.3 + 1e-4 for r in result.rows if r["norm"] == "linf")


def test_gan_trains_on_cuda(data):
    from eegrobust.models.gan import GANConfig, fit_gan

    train, _ = data
    config = GANConfig(n_stages=1, n_filters=4, latent_dim=4, kernel_size=3, n_iterations=3, batch_size=8,
                       show_progress=False)
    gan = fit_gan(train, config, device="cuda")
    assert next(gan.parameters()).device.type == "cpu"
    assert gan.sample(4, random_state=0).shape == (4, train.n_chans, train.n_times)
