"""Control: random sign noise at the same budget, so a reader sees that an accuracy drop is adversarial."""

from __future__ import annotations

import torch

from .base import Attack


class RandomSignNoise(Attack):
    """Add ``epsilon * scale`` times an independent random sign to every sample (no access to the victim)."""

    name = "noise"
    threat_model = "control"
    nested = False

    def _target(self, victim):
        return None

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        signs = torch.from_numpy(rng.choice([-1.0, 1.0], size=tuple(S.shape)).astype("float32")).to(S.device)
        return S + epsilon * signs
