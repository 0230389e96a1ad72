"""sample.py task=export of a conditional snapshot: every file takes a label vector `c` beside z or seed and
truncates toward the label's average w in the graph; the export's generate.py takes --tags and gives
sample.py tags=[…]'s images; bad tags are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, run_task, user_env
from labelled_faces import LABELS

from stylegan_exp.data.images import load_image
from stylegan_exp.models import (
    build_discriminator,
    build_generator,
    load_snapshot,
    model_config,
    network,
    save_snapshot,
)
from stylegan_exp.nets.weights import variables_by_path
from stylegan_exp.sample.export_graph import ExportedGenerator
from stylegan_exp.sample.generate import generate, seed_latents
from stylegan_exp.sample.labels import label_vector

TINY = {"name": "tiny", "fmap_base": 64, "fmap_max": 16, "latent_size": 16, "dlatent_size": 16,
        "mapping_layers": 2, "mapping_fmaps": 16}
SEEDS = [0, 5, 2**32 - 1]
TAGS = ["blonde_hair", "smile"]


def conditional_snapshot(folder: Path, arch: str) -> Path:
    """A random conditional tiny snapshot at 16² over the labelled faces' vocabulary, with a w_avg that
    differs from every label's average (so truncating toward the wrong one shows) and noise strengths 0.5
    (as conftest's random snapshots: all-zero weights come out of float16 TFLite as NaN)."""
    tf.random.set_seed(0)
    model = model_config(arch, TINY)
    nets = {"G": build_generator(model, 16, 3, c_dim=LABELS.dim),
            "D": build_discriminator(model, 16, 3, c_dim=LABELS.dim),
            "Gs": build_generator(model, 16, 3, c_dim=LABELS.dim)}
    for name, var in variables_by_path(nets["Gs"]).items():
        if name.endswith("noise/weight"):
            var.assign(np.full(var.shape, 0.5, np.float32))
    nets["Gs"].w_avg.assign(np.random.RandomState(1).randn(16).astype(np.float32))
    return save_snapshot(folder / "network-snapshot-000001.npz", nets, model=model, resolution=16,
                         num_channels=3, kimg=1.0, labels=LABELS)


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def conditional(request, tmp_path_factory) -> Path:
    return conditional_snapshot(tmp_path_factory.mktemp("cond"), request.param)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """sample.py task=export of a conditional StyleGAN snapshot, every format, as a user runs it."""
    out = tmp_path_factory.mktemp("export")
    snapshot = conditional_snapshot(tmp_path_factory.mktemp("cond-export"), "stylegan")
    proc = subprocess.run([sys.executable, str(REPO / "sample.py"), f"snapshot={snapshot}", "task=export",
                           "task.formats=[saved_model,tflite,onnx]", f"hydra.run.dir={out}"],
                          capture_output=True, text=True, cwd=out, env=user_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out / "export.log").write_text(proc.stdout + proc.stderr)
    (out / "snapshot").write_text(str(snapshot))
    return out


def reader(*args: str) -> subprocess.CompletedProcess:
    """The export's generate.py in a fresh interpreter without this repo on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd="/")


def test_the_graph_truncates_toward_each_rows_label_average(conditional):
    """z and seed signatures against sample.py's generate, one label for all rows and one per row, at ψ 0
    (every seed is the label's average image) and at the snapshot's truncation."""
    Gs = network(load_snapshot(conditional), "Gs")
    module = ExportedGenerator(Gs)
    one = np.repeat(label_vector(LABELS, TAGS)[None], len(SEEDS), axis=0)
    per_row = np.stack([label_vector(LABELS, t) for t in (["red_hair"], ["smile"], ["black_hair", "smile"])])
    for labels in (one, per_row):
        for psi, cutoff in ((0.0, 99), (0.7, 4), (1.0, 99)):
            scalars = (tf.constant(psi), tf.constant(cutoff))
            by_z = module.from_z(tf.constant(seed_latents(SEEDS, 16)), tf.constant(labels), *scalars)
            by_seed = module.from_seed(tf.constant(SEEDS, tf.int64), tf.constant(labels), *scalars)
            want = np.stack([generate(Gs, [s], psi=psi, cutoff=None if cutoff == 99 else cutoff, labels=c)[0]
                             for s, c in zip(SEEDS, labels, strict=True)])
            got = by_z["images"].numpy()
            np.testing.assert_array_equal(got, by_seed["images"].numpy())
            off = np.abs(got.astype(int) - want)
            assert off.max() <= 1 and np.mean(off > 0) < 0.01, (psi, cutoff, off.max(), np.mean(off > 0))
    zero = module.from_z(tf.constant(seed_latents(SEEDS, 16)), tf.constant(one), tf.constant(0.0),
                         tf.constant(99))["images_float"].numpy()
    assert np.abs(zero - zero[:1]).max() < 1e-5  # ψ 0: every seed is the label's average w


def test_export_refuses_tags_in_one_line(conditional, tmp_path):
    with pytest.raises(SystemExit, match=r"task=export takes no tags .*generate\.py --tags") as info:
        run_task(conditional, tmp_path / "run", "task=export", "task.formats=[saved_model]", "tags=[smile]")
    assert "\n" not in str(info.value.code)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_export_json_records_the_vocabulary_and_the_label_input(exported):
    meta = json.loads((exported / "export.json").read_text())
    labels = meta["labels"]
    assert labels["names"] == LABELS.names and labels["groups"] == LABELS.groups
    assert labels["input"] == "c" and labels["center_samples"] == 4096 and labels["center_seed"] == 123
    for name in ("z", "seed"):
        assert meta["signatures"][name]["inputs"]["c"] == {"shape": [None, LABELS.dim], "dtype": "float32"}
    assert set(meta["files"]) == {"saved_model", "tflite_float32", "tflite_float16", "onnx_z", "onnx_seed"}
    seeds = meta["verification"]["seeds"]
    assert meta["verification"]["tags"] == [LABELS.names[i] for i in range(len(seeds))]
    for key, entry in meta["files"].items():
        worst = max(v["max_abs_float_error"] for v in entry["verified"].values())
        assert worst <= (0.05 if key == "tflite_float16" else 1e-4), (key, worst)
    assert "takes a label vector c over 14 tags" in (exported / "export.log").read_text()


@pytest.mark.slow
def test_generate_py_tags_give_sample_py_tags_images(exported, tmp_path):
    snapshot = (exported / "snapshot").read_text()
    sampled = run_task(snapshot, tmp_path / "sample", f"tags=[{','.join(TAGS)}]", "seeds=[0,5]")
    for model in ("saved_model", "generator-seed.onnx", "generator-z.onnx", "generator-float32.tflite"):
        out = tmp_path / model
        proc = reader(str(exported / "generate.py"), str(exported / model), "--tags", ",".join(TAGS),
                      "--seeds", "0", "5", "--out", str(out))
        assert proc.returncode == 0, proc.stderr[-3000:]
        for path in sampled:
            diff = np.abs(load_image(out / path.name).astype(int) - load_image(path).astype(int))
            assert diff.max() <= 1 and np.mean(diff > 0) < 0.01, (model, diff.max(), np.mean(diff > 0))


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--tags", "golden_hair"], "unknown tag 'golden_hair'; this model's tags are: black_hair, dark_brown"),
    (["--tags", "red_hair,blonde_hair"], "blonde_hair, red_hair are values of the one group 'hair_color'"),
    ([], "saved_model is conditional: give --tags from its vocabulary: black_hair"),
])
def test_generate_py_bad_tags_are_one_line(exported, tmp_path, args, message):
    proc = reader(str(exported / "generate.py"), str(exported / "saved_model"), *args, "--out", str(tmp_path))
    assert proc.returncode == 2 and message in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert not list(tmp_path.iterdir())


def test_generate_py_checks_tags_against_export_json(tmp_path):
    """generate.py's checks before any runtime loads: the vocabulary export.json records, or none."""
    from stylegan_exp.sample import export_reader

    labels = {"names": LABELS.names, "groups": LABELS.groups}
    (tmp_path / "cond").mkdir()
    (tmp_path / "cond" / "export.json").write_text(json.dumps({"labels": labels}))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "export.json").write_text(json.dumps({"truncation_defaults": {}}))
    check_tags = export_reader.check_tags
    check_tags(tmp_path / "cond" / "saved_model", TAGS)
    check_tags(tmp_path / "plain" / "saved_model", None)
    np.testing.assert_array_equal(export_reader.label_vector(labels, TAGS), label_vector(LABELS, TAGS))
    with pytest.raises(ValueError, match="--tags needs a conditional model; export.json beside saved_model"):
        check_tags(tmp_path / "plain" / "saved_model", ["smile"])
    with pytest.raises(ValueError, match="unknown tag 'golden_hair'; this model's tags are: black_hair"):
        check_tags(tmp_path / "cond" / "saved_model", ["golden_hair"])
