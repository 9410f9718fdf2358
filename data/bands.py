"""EEG frequency bands (Hz) in which perturbations and signals are compared (`attacks.budget.band_snr_db`, the
report's band table). A module of its own so a report can name them without importing torch."""

#: EEG frequency bands in Hz, [low, high). "slow" holds the slow cortical potentials below delta (DC excluded);
#: gamma stops at 100 Hz or the Nyquist frequency.
BANDS = {"slow": (0.0, 1.0), "delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0),
         "gamma": (30.0, 100.0)}
