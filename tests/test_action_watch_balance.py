"""WatchBalance: a warning and one tracker alert when D or G stays beaten for the patience."""

from action_helpers import RecordingTracker, tick

from stylegan_exp.config import BalanceConfig
from stylegan_exp.train.actions.watch_balance import WatchBalance
from stylegan_exp.train.balance import BalanceWatch


def test_alerts_once_after_the_patience(caplog):
    tracker = RecordingTracker()
    action = WatchBalance(BalanceWatch(BalanceConfig(patience_ticks=2)), tracker)
    collapsed = {"loss/D": 0.01, "loss/G": 9.0}
    for i in range(1, 5):
        action(tick(index=i, stats=collapsed))
    assert len(tracker.alerts) == 1 and tracker.alerts[0][0] == "G/D imbalance"
    assert "D collapse" in tracker.alerts[0][1] and "D collapse" in caplog.text
