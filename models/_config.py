"""Dict round trips shared by the frozen dataclass configs of this layer (`TrainConfig`, `GANConfig`)."""

from __future__ import annotations

from dataclasses import asdict, fields

from ..data._checks import check_option


class ConfigMixin:
    """``to_dict``, ``from_dict`` (unknown keys raise ConfigError with a "did you mean") and ``make``."""

    def to_dict(self) -> dict:
        """Plain dict of all fields (JSON-serializable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Build from a mapping; unknown keys raise ConfigError with a "did you mean"."""
        names = [f.name for f in fields(cls)]
        for key in values:
            check_option(f"{cls.__name__} key", key, names)
        return cls(**values)

    @classmethod
    def make(cls, value):
        """Accept an instance, a dict or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        raise TypeError(f"config must be a {cls.__name__}, a dict or None, got {type(value).__name__}.")
