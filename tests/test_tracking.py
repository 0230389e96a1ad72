"""Trackers: metrics.jsonl rows, fan-out, and an offline wandb run read back from its transaction log."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan_exp.tracking import JsonlTracker, MultiTracker, WandbTracker, offline_history, wandb_records


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_rows_alerts_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    t = JsonlTracker(path)
    t.log({"loss/G": 1.5, "loss/D": float("nan")}, 0.5)
    t.log_image("fakes", tmp_path / "fakes000000.png", 0.5)
    t.alert("G/D imbalance", "D loss 0.01 < 0.05 for 3 ticks")
    t.log_artifact(tmp_path / "snap", "snapshot", "model")
    t.close()
    JsonlTracker(path).log({"loss/G": 1.0}, 1.0)  # a resumed run appends to the same file
    assert read_jsonl(path) == [
        {"kimg": 0.5, "loss/G": 1.5, "loss/D": None},
        {"kimg": 0.5, "fakes": str(tmp_path / "fakes000000.png")},
        {"alert": "G/D imbalance", "text": "D loss 0.01 < 0.05 for 3 ticks"},
        {"kimg": 1.0, "loss/G": 1.0},
    ]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append((name, *args))


def test_multi_tracker_fans_out_every_call(tmp_path: Path) -> None:
    a, b = Recorder(), Recorder()
    multi = MultiTracker([a, b])
    multi.log({"x": 1.0}, 2.0)
    multi.log_image("fakes", tmp_path / "f.png", 2.0)
    multi.alert("title", "text")
    multi.log_artifact(tmp_path / "s", "snap", "model")
    multi.close()
    expected = [("log", {"x": 1.0}, 2.0), ("log_image", "fakes", tmp_path / "f.png", 2.0),
                ("alert", "title", "text"), ("log_artifact", tmp_path / "s", "snap", "model"), ("close",)]
    assert a.calls == expected and b.calls == expected


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory) -> Path:
    """An offline run as the training loop writes it: ticks of scalars, a fakes grid, an alert, a snapshot."""
    run_dir = tmp_path_factory.mktemp("run")
    grid = run_dir / "fakes000001.png"
    Image.fromarray(np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)).save(grid)
    snapshot = run_dir / "network-snapshot-000001.npz"
    np.savez(snapshot, w=np.zeros(3))
    t = WandbTracker(run_dir, mode="offline", project="stylegan-exp-test", name="demo/run", group="demo",
                     config={"schedule": {"total_kimg": 2}, "name": "demo"})
    t.log({"loss/G": 2.0, "loss/D": 1.0, "lod": 1.0, "resolution": 16}, 0.5)
    t.log({"loss/G": 1.5, "loss/D": 0.8, "lod": 0.5, "resolution": 16}, 1.0)
    t.log_image("fakes", grid, 1.0)
    t.log({"metrics/swd_mean": 42.0}, 1.0)
    t.log_artifact(snapshot, "demo-snapshot", "model")
    t.close()
    return run_dir


def test_offline_wandb_history_is_keyed_by_kimg(offline_run: Path) -> None:
    rows = offline_history(offline_run)
    scalars = [(r["kimg"], r["loss/G"], r["lod"]) for r in rows if "loss/G" in r]
    assert scalars == [(0.5, 2.0, 1.0), (1.0, 1.5, 0.5)]
    assert [r["kimg"] for r in rows if "metrics/swd_mean" in r] == [1.0]
    assert all("kimg" in r for r in rows)


def test_offline_wandb_images_are_stored_under_media(offline_run: Path) -> None:
    images = [r for r in offline_history(offline_run) if "fakes/path" in r]
    assert len(images) == 1 and images[0]["kimg"] == 1.0 and images[0]["fakes/_type"] == "image-file"
    assert images[0]["fakes/path"].startswith("media/images/fakes_")
    (stored,) = offline_run.glob(f"wandb/offline-run-*/files/{images[0]['fakes/path']}")
    original = np.asarray(Image.open(offline_run / "fakes000001.png"))
    assert np.array_equal(np.asarray(Image.open(stored)), original)


def test_offline_wandb_run_record_has_config_kimg_step_and_artifact(offline_run: Path) -> None:
    (log_file,) = offline_run.glob("wandb/offline-run-*/run-*.wandb")
    records = list(wandb_records(log_file))
    kinds = {r.WhichOneof("record_type") for r in records}
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.display_name, run.run_group, run.project) == ("demo/run", "demo", "stylegan-exp-test")
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["schedule"] == {"total_kimg": 2} and config["name"] == "demo"
    metrics = [r.metric for r in records if r.WhichOneof("record_type") == "metric"]
    assert any(m.glob_name == "*" and m.step_metric == "kimg" for m in metrics)
    assert "artifact" in kinds
    (artifact,) = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert (artifact.name, artifact.type) == ("demo-snapshot", "model")


def test_offline_alert_is_logged_not_sent(tmp_path: Path, caplog) -> None:
    t = WandbTracker(tmp_path, mode="offline", project="stylegan-exp-test", name="alert", config={})
    with caplog.at_level(logging.WARNING, logger="stylegan_exp.tracking"):
        t.alert("G/D imbalance", "G loss 9.5 > 8 for 3 ticks")
    t.close()
    assert "alert not sent: G/D imbalance: G loss 9.5 > 8 for 3 ticks" in caplog.text
    (log_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    assert not any(r.WhichOneof("record_type") == "alert" for r in wandb_records(log_file))


def test_wandb_records_refuses_other_files(tmp_path: Path) -> None:
    (tmp_path / "x.wandb").write_bytes(b"not a log at all")
    with pytest.raises(ValueError, match="not a wandb transaction log"):
        list(wandb_records(tmp_path / "x.wandb"))


def test_online_alert_is_sent_as_a_warning() -> None:
    import wandb

    class Run:
        offline = False

        def alert(self, **kwargs) -> None:
            self.sent = kwargs

    tracker = WandbTracker.__new__(WandbTracker)  # an online run without a server
    tracker._wandb, tracker.run = wandb, Run()
    tracker.alert("G/D imbalance", "D loss 0.01 < 0.05 for 3 ticks")
    assert tracker.run.sent == {"title": "G/D imbalance", "text": "D loss 0.01 < 0.05 for 3 ticks",
                                "level": wandb.AlertLevel.WARN}
