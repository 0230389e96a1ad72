"""G/D balance watch: a tick-level early warning that one network has beaten the other.

A GAN whose D loss sits near zero (D wins outright) or whose G loss keeps climbing rarely recovers,
and the runs are long: a warning after a few ticks saves hours. Pure Python, so it is cheap to test.
"""

from __future__ import annotations

import math

from stylegan_exp.config import BalanceConfig


class BalanceWatch:
    """Counts consecutive bad ticks; warns once per episode when the count reaches `patience_ticks`.

    A non-finite loss counts as a bad tick. After a warning, the watch stays quiet until a healthy
    tick re-arms it, so a stuck run produces one alert rather than one per tick.
    """

    def __init__(self, cfg: BalanceConfig) -> None:
        if cfg.patience_ticks < 1:
            raise ValueError(f"run.balance.patience_ticks must be >= 1, got {cfg.patience_ticks}")
        self.cfg = cfg
        self.d_streak = 0
        self.g_streak = 0

    def update(self, d_loss: float, g_loss: float) -> str | None:
        """Feed one tick's mean losses; returns a warning naming the numbers, or None."""
        if not self.cfg.enabled:
            return None
        d_bad = not math.isfinite(d_loss) or d_loss < self.cfg.d_loss_min
        g_bad = not math.isfinite(g_loss) or g_loss > self.cfg.g_loss_max
        self.d_streak = self.d_streak + 1 if d_bad else 0
        self.g_streak = self.g_streak + 1 if g_bad else 0
        n = self.cfg.patience_ticks
        problems = []
        if self.d_streak == n:
            problems.append(f"D loss {d_loss:.4g} < {self.cfg.d_loss_min:g} for {n} ticks (D collapse)")
        if self.g_streak == n:
            problems.append(f"G loss {g_loss:.4g} > {self.cfg.g_loss_max:g} for {n} ticks (G runaway)")
        if not problems:
            return None
        return "G/D imbalance: " + "; ".join(problems)
