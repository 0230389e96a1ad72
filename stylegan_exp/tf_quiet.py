"""Keep TensorFlow's log lines out of a user's terminal: only the package's own log is shown (the one place
that quiets TensorFlow).

TensorFlow writes its start-up notices (oneDNN, CUDA stubs, CPU features) straight to the stderr file
descriptor while it is imported, before its log level applies, and later logs CUDA and grappler errors that
are harmless on a CPU-only machine. `install` runs when the package is imported, before any module imports
TensorFlow: it sets the C++ log level to FATAL-only and filters those start-up lines out of the import.
A user who sets TF_CPP_MIN_LOG_LEVEL (to debug TensorFlow) sees everything.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
STARTUP_NOISE = re.compile(
    r"absl::InitializeLog\(\)|oneDNN custom operations are on|Could not find cuda drivers|cpu_feature_guard"
    r"|To enable the following instructions|rebuild TensorFlow with the appropriate compiler flags")


def install() -> None:
    # TensorFlow's Python loggers report every collective and trace at INFO under Hydra's root logger.
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if LOG_LEVEL in os.environ or "tensorflow" in sys.modules:
        return
    os.environ[LOG_LEVEL] = "3"
    sys.meta_path.insert(0, _QuietImportFinder())


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern[str] = STARTUP_NOISE) -> Iterator[None]:
    """Everything written to file descriptor 2 meanwhile, less the lines matching `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not noise.search(line)]
            sys.stderr.write("".join(kept))


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of `tensorflow` in `filtered_stderr`, then steps aside."""

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            with filtered_stderr():
                self.loader.exec_module(module)
        finally:
            module.__loader__ = module.__spec__.loader = self.loader
