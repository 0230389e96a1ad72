"""The one power-of-two check: image sizes, training resolutions and network levels all pass through it."""

from __future__ import annotations

MIN_RESOLUTION = 4


def is_resolution(value: int) -> bool:
    """A size networks and datasets accept: a power of two of at least MIN_RESOLUTION."""
    return value >= MIN_RESOLUTION and value & (value - 1) == 0


def log2_int(value: int, what: str = "resolution") -> int:
    """log2 of a power of two ≥ 4, or a ValueError naming the value."""
    if not is_resolution(value):
        raise ValueError(f"{what} must be a power of two ≥ {MIN_RESOLUTION}, got {value}")
    return value.bit_length() - 1
