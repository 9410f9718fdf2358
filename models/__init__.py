"""Decoders for EEG: the architecture registry, building, the one training loop, and safe saving/loading."""

from .compat import conform_data, conform_pair
from .build import build_model, default_kwargs, instantiate, min_n_times
from .decoder import EEGDecoder, Standardize, predict, predict_logits
from .gan import EEGGAN, GANConfig, fit_gan, load_gan, save_gan
from .io import load_bundle, save_bundle
from .registry import MODEL_REGISTRY, ModelSpec, get_spec, model_names
from .toy import ToyNet
from .train import REGULARIZATIONS, TrainConfig, fit_model, set_dropout, stratified_split

__all__ = [
    "EEGDecoder",
    "EEGGAN",
    "GANConfig",
    "MODEL_REGISTRY",
    "ModelSpec",
    "REGULARIZATIONS",
    "Standardize",
    "ToyNet",
    "TrainConfig",
    "build_model",
    "conform_data",
    "conform_pair",
    "default_kwargs",
    "fit_gan",
    "fit_model",
    "get_spec",
    "instantiate",
    "load_bundle",
    "load_gan",
    "min_n_times",
    "model_names",
    "predict",
    "predict_logits",
    "save_bundle",
    "save_gan",
    "set_dropout",
    "stratified_split",
]
