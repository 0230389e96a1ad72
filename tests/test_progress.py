"""progress_bar: tqdm on a terminal, silent when stdout or stderr goes to a file or pipe."""

import io

import pytest

from stylegan_exp.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stdout_tty, stderr_tty, enabled, shown", [
    (True, True, True, True), (False, True, True, False), (True, False, True, False),
    (True, True, False, False)])
def test_the_bar_shows_only_on_a_terminal(monkeypatch, stdout_tty, stderr_tty, enabled, shown):
    err = _Terminal() if stderr_tty else io.StringIO()
    monkeypatch.setattr("sys.stdout", _Terminal() if stdout_tty else io.StringIO())
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress_bar(range(3), desc="work", enabled=enabled)) == [0, 1, 2]
    assert ("work: 100%" in err.getvalue()) == shown
