"""The real test images (../shared/data) are not in the repository (their licences), so a clone without them
skips the tests that read them — visibly: one line at the end of the run counts them and says why. Under CI
(CI=true) a missing folder fails those tests instead, so a green CI run means the whole suite ran.

conftest.py wires these into its `shared_data` fixture and its terminal summary; test_data_guard.py runs them
on a throwaway test file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest


def missing_reason(folder: Path) -> str:
    return f"the real test images are not at {folder}"


def on_ci(env: Mapping[str, str] = os.environ) -> bool:
    """CI services set CI=true (some CI=1)."""
    return env.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_folder(folder: Path, env: Mapping[str, str] = os.environ) -> Path:
    """`folder` if it exists; else skip the test, or fail it under CI."""
    if folder.is_dir():
        return folder
    if on_ci(env):
        pytest.fail(f"{missing_reason(folder)}: CI=true needs them, so that a green run ran every test",
                    pytrace=False)
    pytest.skip(missing_reason(folder))


def skipped_for(folder: Path, stats: Mapping[str, list]) -> int:
    """How many of the run's skipped tests skipped for want of `folder` (stats: the terminal reporter's)."""
    reason = missing_reason(folder)
    return sum(1 for report in stats.get("skipped", []) if reason in str(report.longrepr))


def summary_line(folder: Path, count: int) -> str:
    tests = "test" if count == 1 else "tests"
    return (f"{count} {tests} skipped: {missing_reason(folder)} (not in the repository; CI=true makes this "
            "an error)")


def report_skips(terminalreporter, folder: Path) -> None:
    """The terminal summary's line for the tests that skipped for want of `folder`, if any did."""
    count = skipped_for(folder, terminalreporter.stats)
    if count:
        terminalreporter.write_line(summary_line(folder, count), yellow=True, bold=True)
