"""SIGINT/SIGTERM end a run cleanly: the current step finishes, then the run writes a checkpoint and stops.
With several workers, every one stops at the same step: what any worker received is agreed by all-reduce
before anyone acts, together with the other wall-clock decisions of the tick."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

from stylegan_exp.train.distribute import WorkerGroup

log = logging.getLogger("stylegan_exp.train.loop")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self, workers: WorkerGroup) -> None:
        self.workers = workers
        self.received: int | None = None  # by this process
        self.stop: int | None = None  # agreed by all workers

    def _handler(self, signum: int, _frame: object) -> None:
        self.received = signum
        log.warning("received %s: finishing this step, then writing a checkpoint",
                    signal.Signals(signum).name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._handler) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def agree(self, *flags: bool) -> tuple[bool, ...]:
        """The flags as any worker has them, and `stop` set once any worker received a signal."""
        answers = self.workers.any_of([self.received == s for s in SIGNALS] + list(flags))
        received, agreed = answers[:len(SIGNALS)], answers[len(SIGNALS):]
        if self.stop is None:
            self.stop = next((s for s, r in zip(SIGNALS, received, strict=True) if r), None)
        return tuple(agreed)
