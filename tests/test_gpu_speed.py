"""benchmarks/gpu_speed.py on the CPU at a tiny size: one configuration, its row in the peers' format
(sec/kimg, GB) printed and written as JSON."""

import importlib.util
import json

import pytest
from conftest import REPO

TINY_MODEL = ["model.fmap_base=32", "model.fmap_max=8", "model.latent_size=8", "model.dlatent_size=8",
              "model.mapping_layers=1", "model.mapping_fmaps=8"]


@pytest.mark.slow
def test_gpu_speed_prints_and_writes_its_table_on_the_cpu(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_speed", REPO / "benchmarks" / "gpu_speed.py")
    gpu_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_speed)
    out = tmp_path / "speed.json"
    args = ["--models", "stylegan", "--resolutions", "8", "--precision", "float32", "--xla", "off",
            "--steps", "1", "--warmup", "0", "--same-process", "--override", *TINY_MODEL, "--out", str(out)]
    assert gpu_speed.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3].split() == ["model", "res", "GPUs", "batch", "precision", "XLA", "sec/kimg", "GB"]
    assert printed[-2].split()[:6] == ["stylegan", "8²", "1", "16", "float32", "off"]
    (row,) = json.loads(out.read_text())["rows"]
    # On the CPU the peak is RSS above the process's earlier peak (TensorFlow's start): 0 for a net so small.
    assert row["sec_per_kimg"] > 0 and 0 <= row["peak_gb"] < 4 and row["steps"] == 1 and row["devices"] == 1
