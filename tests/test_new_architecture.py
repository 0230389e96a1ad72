"""A third architecture lands by adding its package and one registry line: the throwaway `toy_model`
package, registered in `stylegan_exp.models.ARCHITECTURES`, composes, trains, snapshots, resumes and samples
through the house's own code, which nothing was edited to know it."""

import numpy as np
import pytest
import toy_model
from conftest import TINY, compose_config

from stylegan_exp import models
from stylegan_exp.config import to_object
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.run import training_config
from stylegan_exp.sample.generate import generate
from stylegan_exp.schemas import register_configs
from stylegan_exp.train.loop import Trainer


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(models.ARCHITECTURES, "toy", toy_model.ARCHITECTURE)  # the one registry line
    register_configs()
    yield
    monkeypatch.undo()
    register_configs()


@pytest.mark.slow
def test_a_toy_model_trains_resumes_and_samples_through_the_registry(tmp_path, toy_registered):
    common = (*TINY, "model=toy_schema", "model.name=toy", "model.toy_channels=4", "logger=none",
              f"outputs_root={tmp_path}", f"dataset.path={tmp_path / 'data'}", "schedule.total_kimg=0.2")
    cfg = to_object(compose_config("train", *common))
    assert isinstance(cfg.model, toy_model.ToyConfig)
    run_dir = tmp_path / "tiny" / "first"
    snapshot = Trainer(cfg, run_dir).run()
    snap = load_snapshot(snapshot)
    assert isinstance(snap.model, toy_model.ToyConfig) and snap.model.toy_channels == 4
    images = generate(network(snap, "Gs"), [0, 1], psi=0.5, cutoff=None)
    assert images.shape == (2, 16, 16, 3) and not np.array_equal(images[0], images[1])
    # resume=latest continues the toy run from its config.yaml, without being told the model
    overrides = ["name=tiny", "resume=latest", "logger=none", f"outputs_root={tmp_path}",
                 "schedule.total_kimg=0.3"]
    resumed, target = training_config(compose_config("train", *overrides), compose_config("train"), overrides)
    assert isinstance(resumed.model, toy_model.ToyConfig) and target.parent == run_dir
    again = Trainer(resumed, tmp_path / "tiny" / "second", resume_from=target)
    assert again.state.nimg == snap.kimg * 1000
    assert load_snapshot(again.run()).kimg >= 0.3
