"""sample.py task=export on a tiny snapshot of each architecture (StyleGAN at 32², StyleGAN2 at 16²): the
exported files are opened in a fresh Python process that does not import stylegan_exp and compared with Gs;
numpy's RandomState in graph ops; refusals."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, run_task, user_env
from hydra.errors import ConfigCompositionException

from stylegan_exp.data.images import load_image
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.sample.export_graph import ExportedGenerator
from stylegan_exp.sample.generate import generate, seed_latents
from stylegan_exp.sample.randomstate import randn

SEEDS = [0, 1, 5, 123456789, 2**32 - 1]
CASES = [(0.7, 8), (1.0, 8), (0.5, None)]  # (ψ, cutoff); None = every layer
ALL_LAYERS = 99
# Bounds the measured errors must stay within (measured on this model: see the README's export section).
FLOAT_TOLERANCE = {"saved_model": 1e-4, "onnx_z": 1e-4, "onnx_seed": 1e-4, "tflite_float32": 1e-4,
                   "tflite_float16": 0.05}
UINT8_TOLERANCE = {"tflite_float16": 8}


@pytest.fixture(scope="module")
def stylegan_snapshot(random_snapshots) -> Path:
    """StyleGAN at 32² with fused up-scaling from 32² on, so the export covers both the resample+conv and the
    transposed-conv paths; noise inputs and w_avg that matter (both are zero at init)."""
    return random_snapshots("stylegan", res=32, w_avg_scale=0.3, fused_scale_min_res=32)


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def snapshot(request, stylegan_snapshot, random_snapshots) -> Path:
    """Each architecture's snapshot: stylegan_snapshot, and StyleGAN2's at 16²."""
    return stylegan_snapshot if request.param == "stylegan" else random_snapshots("stylegan2")


@pytest.fixture(scope="module")
def exported(snapshot, tmp_path_factory) -> Path:
    """sample.py task=export as a user runs it with its output going to a file (`> export.log 2>&1`, as under
    nohup): the export folder, with that output in `export.log` beside it."""
    out = tmp_path_factory.mktemp("export")
    with open(out.with_suffix(".log"), "wb") as log:
        proc = subprocess.run([sys.executable, str(REPO / "sample.py"), f"snapshot={snapshot}", "task=export",
                               "task.formats=[saved_model,tflite,onnx]", f"hydra.run.dir={out}"],
                              stdout=log, stderr=subprocess.STDOUT, cwd=out, env=user_env(), timeout=600)
    assert proc.returncode == 0, out.with_suffix(".log").read_text()[-3000:]
    return out


def fresh_python(*args: str) -> subprocess.CompletedProcess:
    """A new interpreter without this repo on its path (the venv may still have the package installed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_randn_in_graph_equals_numpy_randomstate():
    seeds = np.concatenate([np.arange(300), [2**31 - 1, 2**31, 2**32 - 1],
                            np.random.RandomState(7).randint(0, 2**32 - 1, 300, dtype=np.int64)])
    for n in (512, 7, 1):
        got = tf.function(randn)(tf.constant(seeds), n).numpy()
        want = np.stack([np.random.RandomState(s).randn(n) for s in seeds])
        np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))  # what sample.py uses
        np.testing.assert_allclose(got, want, rtol=2e-15, atol=0)  # float64: a few ulp (libm vs Eigen log)
    assert randn(tf.constant([], tf.int64), 4).shape == (0, 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="seeds must be in"):
        randn(tf.constant([2**32], tf.int64), 4)


def test_a_growing_snapshot_exports_as_trained(stylegan_snapshot):
    """At lod 1.75 a 32² generator runs at 16² with 0.75 of 8² faded in, upscaled to 32², as sample.py."""
    Gs = network(load_snapshot(stylegan_snapshot), "Gs")
    Gs.lod = 1.75
    z = seed_latents([3, 4], Gs.latent_size)
    out = ExportedGenerator(Gs).from_z(tf.constant(z), tf.constant(0.7), tf.constant(8))
    w = Gs.truncate(Gs.map(tf.constant(z)), 0.7, 8)
    want = np.repeat(np.repeat(Gs.synthesis(w, 4, 0.75, randomize_noise=False).numpy(), 2, axis=1), 2, axis=2)
    assert out["images"].shape == (2, 32, 32, 3) and out["images"].dtype == tf.uint8
    np.testing.assert_allclose(out["images_float"].numpy(), want, atol=1e-5)


@pytest.mark.slow
def test_exported_files_match_gs_in_a_fresh_process(snapshot, exported, tmp_path):
    snap = load_snapshot(snapshot)
    Gs, res = network(snap, "Gs"), snap.resolution
    meta = json.loads((exported / "export.json").read_text())
    assert set(meta["files"]) == set(FLOAT_TOLERANCE) and meta["arch"] == snap.model.ARCH
    assert meta["resolution"] == res and meta["latent_size"] == 16 and meta["noise"] == "fixed"
    assert meta["signatures"]["seed"]["inputs"]["seed"] == {"shape": [None], "dtype": "int64"}
    assert meta["signatures"]["z"]["outputs"]["images"] == {"shape": [None, res, res, 3], "dtype": "uint8"}
    for entry in meta["files"].values():
        assert entry["bytes"] > 0 and (exported / entry["path"]).exists()
    assert meta["files"]["tflite_float16"]["bytes"] < meta["files"]["tflite_float32"]["bytes"]
    assert meta["files"]["tflite_float32"]["signatures"] == ["z"]  # no float64 in TFLite builtins

    reference = {"seeds": np.array(SEEDS, np.int64), "z": seed_latents(SEEDS, Gs.latent_size),
                 "cases": np.array([(psi, ALL_LAYERS if cut is None else cut) for psi, cut in CASES])}
    for i, (psi, cutoff) in enumerate(CASES):
        z = tf.constant(reference["z"])
        reference[f"float_{i}"] = Gs(z, psi=psi, cutoff=cutoff, randomize_noise=False).numpy()
        reference[f"uint8_{i}"] = generate(Gs, SEEDS, psi=psi, cutoff=cutoff)  # sample.py's images
    np.savez(tmp_path / "reference.npz", **reference)

    report = json.loads(fresh_python(str(REPO / "tests" / "export_check.py"), str(exported),
                                     str(tmp_path / "reference.npz")).stdout.strip().splitlines()[-1])
    assert not report["imported_stylegan_exp"]
    rows = report["results"]
    print("\nfile             signature  psi  cutoff  max|float err|  max uint8 err  uint8 mismatches")
    for r in rows:
        print(f"{r['file']:16} {r['signature']:9} {r['psi']:4} {r['cutoff']:6}  "
              f"{r['max_abs_float_error']:13.2e}  {r['max_uint8_error']:13}  {r['uint8_mismatches']:6}")
    assert {(r["file"], r["signature"]) for r in rows} == {
        ("saved_model", "z"), ("saved_model", "seed"), ("tflite_float32", "z"), ("tflite_float16", "z"),
        ("onnx_z", "z"), ("onnx_seed", "seed")}
    for r in rows:
        assert r["images_shape"] == [len(SEEDS), res, res, 3] and r["images_dtype"] == "uint8"
        assert r["max_abs_float_error"] <= FLOAT_TOLERANCE[r["file"]], r
        if FLOAT_TOLERANCE[r["file"]] <= 1e-4:  # uint8 equal but where 1e-4 can cross a rounding boundary
            assert r["uint8_mismatches_beyond_1e-4"] == 0, r
        else:
            assert r["max_uint8_error"] <= UINT8_TOLERANCE[r["file"]], r
    # every file checked itself at export time, with the same measure
    for key, entry in meta["files"].items():
        assert max(v["max_abs_float_error"] for v in entry["verified"].values()) <= FLOAT_TOLERANCE[key], key


@pytest.mark.slow
def test_export_prints_no_absl_warnings(exported):
    """The exported graph carries no custom gradients, so reloading it (TFLite conversion, verification)
    has none to warn about."""
    log = exported.with_suffix(".log").read_text()
    assert "saved_model: saved_model" in log and "onnx_seed" in log  # the export's own log lines
    assert "[absl]" not in log and "custom gradients" not in log
    ours = re.compile(r"\[[^]]+\]\[stylegan_exp[\w.]*\]\[INFO\] - ")  # Hydra's format, the package's loggers
    assert not [line for line in log.splitlines() if not ours.match(line)]


@pytest.mark.slow
def test_a_redirected_export_log_has_no_progress_bar_fragments(exported):
    log = exported.with_suffix(".log").read_bytes()
    assert b"tflite_float32" in log and b"\r" not in log and b"export:" not in log


@pytest.mark.slow
def test_generate_py_seed_gives_sample_py_image(snapshot, exported, tmp_path):
    (sampled,) = run_task(snapshot, tmp_path / "sample", "seeds=[5]")
    for model in ("saved_model", "generator-seed.onnx", "generator-float32.tflite"):
        out = tmp_path / model
        fresh_python(str(exported / "generate.py"), str(exported / model), "--seeds", "5", "--out", str(out))
        diff = np.abs(load_image(out / "example-5.png").astype(int) - load_image(sampled).astype(int))
        assert diff.max() <= 1 and np.mean(diff > 0) < 0.01, (model, diff.max(), np.mean(diff > 0))


def test_export_refuses_bad_input_with_one_line(stylegan_snapshot, tmp_path):
    snapshot = stylegan_snapshot
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(snapshot.read_bytes()[:1000])
    (tmp_path / "empty.npz").write_bytes(b"")
    cases = [
        ((tmp_path / "missing.npz", "task=export"), "network snapshot not found"),
        ((corrupt, "task=export"), "corrupt.npz is not a readable network snapshot"),
        ((tmp_path / "empty.npz", "task=export"), "empty.npz is not a readable network snapshot"),
        ((snapshot, "task=export", "task.formats=[]"), "task.formats is empty"),
        ((snapshot, "task=export", "task.formats=[tflite]", "task.tflite_weights=[]"),
         "tflite_weights is empty"),
        ((snapshot, "task=export", "task.formats=[onnx]", "task.onnx_opset=17"), "onnx_opset=17"),
        ((snapshot, "task=export", "randomize_noise=true"), "randomize_noise=true cannot go to TFLite"),
    ]
    for i, ((snap, *overrides), message) in enumerate(cases):
        with pytest.raises(SystemExit, match=message) as info:
            run_task(snap, tmp_path / f"run{i}", *overrides)
        assert "\n" not in str(info.value.code)
        assert not (tmp_path / f"run{i}").exists()  # a failed start leaves no run directory
    with pytest.raises(ConfigCompositionException, match="task.formats"):  # before any work
        run_task(snapshot, tmp_path / "bad-format", "task=export", "task.formats=[jpeg]")


@pytest.mark.slow
def test_export_of_an_original_pkl_matches_the_original_network(tmp_path):
    from original_stylegan import MODELS, ref_g_style, write_pkl

    kw = MODELS["res32"]
    raw = write_pkl(tmp_path / "net.pkl", kw)
    run_task(tmp_path / "net.pkl", tmp_path / "out", "task=export", "task.formats=[saved_model]")
    seeds = [0, 5]
    z = seed_latents(seeds, kw["latent_size"])
    ref = ref_g_style(raw["Gs"], kw, z, 0.7, 5).transpose(0, 2, 3, 1)
    model = tf.saved_model.load(str(tmp_path / "out" / "saved_model"))
    scalars = {"truncation_psi": tf.constant(0.7), "truncation_cutoff": tf.constant(5)}
    by_z = model.signatures["z"](z=tf.constant(z), **scalars)["images_float"].numpy()
    by_seed = model.signatures["seed"](seed=tf.constant(seeds, tf.int64), **scalars)["images_float"].numpy()
    assert np.abs(by_z - ref).max() < 1e-3
    np.testing.assert_array_equal(by_seed, by_z)
    assert json.loads((tmp_path / "out" / "export.json").read_text())["resolution"] == 32


@pytest.mark.slow
def test_an_export_that_computes_non_finite_images_fails_in_one_line(random_snapshots, tmp_path):
    """A file whose verification images are not finite (as float16 TFLite weights of some models) is named in
    one line after export.json is written; the other files are kept."""
    with np.load(random_snapshots("stylegan")) as saved:
        arrays = dict(saved)
    top = max(k for k in arrays if k.startswith("Gs/synthesis/blocks/") and k.endswith("/torgb/bias"))
    arrays[top] = np.full_like(arrays[top], np.nan)
    snapshot = tmp_path / "network-snapshot-000000.npz"
    np.savez(snapshot, **arrays)
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"generator-float32\.tflite in .*non-finite") as info:
        run_task(snapshot, run_dir, "task=export", "task.formats=[tflite]", "task.tflite_weights=[float32]")
    assert "\n" not in str(info.value.code)
    files = json.loads((run_dir / "export.json").read_text())["files"]
    errors = [v["max_abs_float_error"] for v in files["tflite_float32"]["verified"].values()]
    assert errors and not any(math.isfinite(e) for e in errors)
    assert (run_dir / "generator-float32.tflite").is_file()
