"""Tests that need ../shared/data skip visibly on a clone without it (one summary line: count and reason) and
fail under CI=true: conftest's logic (data_guard.py) on a throwaway test file in a pytester run."""

import pytest

CONFTEST = """
from pathlib import Path

import data_guard
import pytest

FOLDER = Path({folder!r})


@pytest.fixture
def shared_data():
    return data_guard.require_folder(FOLDER)


def pytest_terminal_summary(terminalreporter):
    data_guard.report_skips(terminalreporter, FOLDER)
"""
TESTS = """
def test_reads_the_images(shared_data):
    assert shared_data.is_dir()

def test_reads_them_too(shared_data):
    assert shared_data.is_dir()

def test_needs_nothing():
    pass
"""


@pytest.fixture
def suite(pytester, tmp_path, monkeypatch):
    """`suite(folder_exists)`: a pytester run of TESTS with conftest's guard on a folder that does (not)
    exist, outside CI unless CI is set."""
    monkeypatch.delenv("CI", raising=False)

    def run(folder_exists: bool):
        folder = tmp_path / "shared" / "data"
        if folder_exists:
            folder.mkdir(parents=True)
        pytester.makeconftest(CONFTEST.format(folder=str(folder)))
        pytester.makepyfile(test_guarded=TESTS)
        return pytester.runpytest("-p", "no:cacheprovider"), folder

    return run


def test_missing_images_skip_with_one_summary_line(suite):
    result, folder = suite(folder_exists=False)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == 0
    line = f"2 tests skipped: the real test images are not at {folder} (not in the repository; CI=true"
    assert len([text for text in result.outlines if line in text]) == 1


def test_missing_images_fail_under_ci(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result, folder = suite(folder_exists=False)
    result.assert_outcomes(passed=1, errors=2)
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*the real test images are not at {folder}: CI=true needs them*"])
    assert not [text for text in result.outlines if "tests skipped" in text]


def test_present_images_run_without_a_summary_line(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result, _ = suite(folder_exists=True)
    result.assert_outcomes(passed=3)
    assert not [text for text in result.outlines if "skipped" in text]
