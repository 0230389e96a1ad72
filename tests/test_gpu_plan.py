"""gpus=auto and the memory plan: the estimate's arithmetic, the split it picks, what a CPU-only machine plans
and records, a run that accumulates at one resolution only, and `python -m stylegan_exp.plan`."""

import json
import logging

import pytest
import yaml
from conftest import TINY, compose_config

from stylegan_exp import plan
from stylegan_exp.config import ConfigError, Strategy, to_object
from stylegan_exp.config_checks import check_values
from stylegan_exp.gpu_plan import cluster_workers, resolve_gpus
from stylegan_exp.memory_plan import (
    ACTIVATION_FACTOR,
    GIB,
    RUNTIME_BYTES,
    USABLE_FRACTION,
    NetworkCost,
    activation_bytes,
    peak_bytes,
    plan_resolution,
    weight_bytes,
)
from stylegan_exp.network_cost import network_costs
from stylegan_exp.schedule import training_schedule
from stylegan_exp.train.loop import Trainer

COST = NetworkCost(params_G=1000, params_D=500, act_G=300, act_D=200)


def test_peak_memory_is_weights_optimizer_state_and_the_larger_steps_activations():
    # G, D: weights + gradients + 2 Adam moments (+ the gradient sum when accumulating); Gs: weights.
    assert weight_bytes(COST, 1) == 4 * (4 * 1500 + 1000)
    assert weight_bytes(COST, 2) == 4 * (5 * 1500 + 1000)
    # The G step (G then D: 500 per image) outweighs the D step (D twice: 400).
    assert activation_bytes(COST, 8, element_bytes=4) == int(ACTIVATION_FACTOR * 8 * 500 * 4)
    assert activation_bytes(COST, 8, element_bytes=2) == int(ACTIVATION_FACTOR * 8 * 500 * 2)
    heavy_d = NetworkCost(1000, 500, act_G=100, act_D=200)
    assert activation_bytes(heavy_d, 10, 4) == int(ACTIVATION_FACTOR * 10 * 400 * 4)
    assert peak_bytes(COST, 8, 2, 2) == RUNTIME_BYTES + weight_bytes(COST, 2) + activation_bytes(COST, 8, 2)


def _budget_for(micro: int, accumulate: int) -> int:
    """A memory size whose usable part fits exactly that split."""
    return int(peak_bytes(COST, micro, accumulate) / USABLE_FRACTION) + 1


def test_the_plan_keeps_the_global_minibatch_and_accumulates_only_as_much_as_memory_needs():
    roomy = plan_resolution(64, 32, devices=2, memory_bytes=_budget_for(16, 1), cost=COST)
    assert (roomy.minibatch, roomy.per_device, roomy.accumulate, roomy.micro_batch) == (32, 16, 1, 16)
    assert roomy.fits
    tight = plan_resolution(64, 32, devices=2, memory_bytes=_budget_for(4, 4), cost=COST)
    assert (tight.minibatch, tight.per_device, tight.accumulate, tight.micro_batch) == (32, 16, 4, 4)
    assert tight.fits
    # 24 per device: micro-batches of 6 cannot hold whole minibatch-stddev groups of 4, so room for 5 makes
    # 6 micro-batches of 4.
    odd = plan_resolution(64, 24, devices=1, memory_bytes=_budget_for(5, 5), cost=COST)
    assert (odd.accumulate, odd.micro_batch) == (6, 4)
    never = plan_resolution(64, 32, devices=1, memory_bytes=weight_bytes(COST, 2), cost=COST)
    assert (never.fits, never.micro_batch) == (False, 1)
    # At least schedule.accumulate; 3 devices train 30 of 32 (the schedule rounds to whole devices).
    assert plan_resolution(64, 32, devices=1, memory_bytes=GIB, cost=COST, min_accumulate=2).accumulate == 2
    assert plan_resolution(64, 32, devices=3, memory_bytes=GIB, cost=COST).minibatch == 30


def _tiny_auto(*overrides: str):
    return to_object(compose_config("train", *TINY, "gpus=auto", *overrides))


def test_auto_on_a_machine_without_gpus_plans_for_the_cpu_and_records_every_decision(caplog):
    with caplog.at_level(logging.INFO):
        cfg = resolve_gpus(_tiny_auto())
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("gpus=auto: TensorFlow sees no GPU: planning for the CPU (") for m in messages)
    table = next(m for m in messages if "per CPU" in m)
    assert "   8² " in table and "  16² " in table  # the tiny run trains from 8² up to 16²
    g = cfg.gpus
    assert (g.auto, g.gpu, g.num_gpus, g.strategy, g.accumulate_dict) == (False, False, 1, Strategy.default,
                                                                          {8: 1, 16: 1})
    assert g.minibatch_dict[8] == 16 and g.minibatch_dict[16] == 8 and g.memory_gb > 0
    assert resolve_gpus(cfg) is cfg  # decided: a resumed run keeps it


def test_a_minibatch_that_cannot_fit_is_one_line_naming_the_knobs():
    with pytest.raises(ConfigError, match=r"gpus=auto: at 8² even micro-batches of 1 need an estimated .* "
                       r"lower gpus.minibatch_dict\[8\], set model.precision=mixed_float16"):
        resolve_gpus(_tiny_auto("gpus.memory_gb=0.0001"))


@pytest.mark.slow
def test_a_run_accumulates_at_the_resolution_whose_memory_needs_it(tmp_path):
    cfg = _tiny_auto(f"dataset.path={tmp_path / 'data'}", "logger=none", f"outputs_root={tmp_path}",
                     "schedule.total_kimg=0.4", "model.precision=float32")
    costs = network_costs(cfg.model, 16, 3, [8, 16])
    # Room for 16 images at 8² and for micro-batches of 4 at 16², not for 8 at 16².
    need = max(peak_bytes(costs[8], 16), peak_bytes(costs[16], 4, 2))
    assert need < peak_bytes(costs[16], 8)
    memory_gb = need / USABLE_FRACTION / GIB * 1.0001
    cfg = to_object(compose_config("train", *TINY, "gpus=auto", f"dataset.path={tmp_path / 'data'}",
                                   "logger=none", f"outputs_root={tmp_path}", "schedule.total_kimg=0.4",
                                   "model.precision=float32", f"gpus.memory_gb={memory_gb}"))
    trainer = Trainer(cfg, tmp_path / "run")
    assert trainer.cfg.gpus.accumulate_dict == {8: 1, 16: 2}
    assert training_schedule(350, trainer.cfg.schedule, trainer.cfg.gpus, 16).accumulate == 2
    assert trainer.steps.accumulation(3) == 1 and trainer.steps.accumulation(4) == 2
    trainer.run()
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["gpus"]
    assert recorded["auto"] is False and recorded["accumulate_dict"] == {8: 1, 16: 2}
    assert recorded["minibatch_dict"][16] == 8
    assert (tmp_path / "run" / "metrics.jsonl").is_file()


def test_plan_command_prints_the_table_and_refuses_what_cannot_fit(capsys):
    assert plan.main([*TINY, "gpus=auto", "gpus.memory_gb=4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("TensorFlow sees no GPU: planning for the CPU (4.0 GB of memory)")
    assert out[1] == "gpus=auto: 1 × CPU, 4.0 GB each, default strategy"
    assert "peak GB" in out[2] and out[3].startswith("   8²") and out[4].startswith("  16²")
    assert plan.main([*TINY, "gpus=1gpu", "gpus.memory_gb=0.0001"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("error: gpus=1gpu: at 8² even micro-batches of 16 need")


def test_cluster_workers_come_from_the_slurm_job_step_else_tf_config():
    assert cluster_workers({}) == 1
    assert cluster_workers({"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2"}) == 4
    tf_config = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
                 "task": {"type": "worker", "index": 0}}
    assert cluster_workers({"TF_CONFIG": json.dumps(tf_config)}) == 3
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        cluster_workers({"TF_CONFIG": "{not json"})


def test_auto_in_a_slurm_job_step_trains_every_task_as_a_worker(monkeypatch, caplog):
    """Two tasks of a simulated Slurm job step on CPU nodes: a replica each, the minibatch split over both."""
    for key, value in {"SLURM_JOB_ID": "42", "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2",
                       "SLURM_STEP_NODELIST": "node[1-2]", "SLURM_STEP_TASKS_PER_NODE": "1(x2)"}.items():
        monkeypatch.setenv(key, value)
    with caplog.at_level(logging.INFO):
        cfg = resolve_gpus(_tiny_auto())
    assert (cfg.gpus.strategy, cfg.gpus.num_gpus, cfg.gpus.accumulate_dict) == (Strategy.multiworker, 2,
                                                                                {8: 1, 16: 1})
    table = next(r.getMessage() for r in caplog.records if "per CPU" in r.getMessage())
    assert table.startswith("gpus=auto: 2 workers × 1 × CPU") and "multiworker strategy" in table
    rows = table.splitlines()[2:]  # after the machine's line and the header
    assert [row.split()[4:6] for row in rows] == [["16", "8"], ["8", "4"]]  # global, per worker


def test_an_accumulation_below_one_is_one_line_naming_the_resolution():
    with pytest.raises(ConfigError, match=r"^gpus.accumulate_dict\[16\]=0 \(must be >= 1\)$"):
        check_values(to_object(compose_config("train", *TINY, "+gpus.accumulate_dict={16: 0}")))
