"""`sample.py task=export`: a snapshot's Gs as a SavedModel, TFLite files (float32 and float16 weights) and
ONNX files that generate images without this package, plus `export.json` (shapes, signatures, sizes and
each file's measured agreement with Gs) and `generate.py` (the standalone export_reader). A conditional
snapshot's files take a label vector `c` beside z or seed, and export.json records its vocabulary."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import tensorflow as tf

from stylegan_exp.atomic import write_atomic
from stylegan_exp.config import ExportFormat, ExportTask, SampleConfig, TFLiteWeights
from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.grid import to_uint8
from stylegan_exp.models import network
from stylegan_exp.nets.generator import Generator
from stylegan_exp.progress import progress_bar
from stylegan_exp.sample import export_reader
from stylegan_exp.sample.export_graph import (
    LABEL_INPUT,
    OUTPUT_FLOAT,
    OUTPUT_IMAGES,
    SEED_SIGNATURE,
    Z_SIGNATURE,
    ExportedGenerator,
)
from stylegan_exp.sample.generate import SampleError, seed_latents, synthesize
from stylegan_exp.sample.labels import CENTER_SAMPLES, CENTER_SEED, labelled_dlatents
from stylegan_exp.sample.truncation import describe_truncation
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)

READER_NAME = "generate.py"
MIN_ONNX_OPSET = 18  # BitwiseAnd/Or/Xor, used by the seed signature's MT19937
TFLITE_SEED_NOTE = ("no seed signature: TFLite builtins have no float64 Log, Sqrt or Mul, which numpy's "
                    "53-bit Box-Muller draws need; generate.py draws z from the seed with numpy instead")
TRUNCATION = ("w' = w_avg + truncation_psi * (w - w_avg) on the style layers below truncation_cutoff; "
              "a cutoff >= num_layers truncates every layer (sample.py's null)")
LABEL_TRUNCATION = ("a conditional generator truncates each row toward its label's average w instead of "
                    "w_avg: the mean of mapping(z_k, c) over the fixed latents z_k = "
                    "numpy.random.RandomState(center_seed).randn(center_samples, latent_size) as float32, "
                    "computed in the graph on every call (N x center_samples mapping rows), as "
                    "sample.py tags=[...] does")
TRUNCATION_DEFAULTS = ("generate.py's truncation when --psi/--cutoff are not given: the snapshot's model "
                       "config unless set when exporting, as in sample.py")


@contextmanager
def _held_stderr() -> Iterator[BinaryIO]:
    """Hold the converters' C++ chatter (written straight to fd 2) back; yields it for error messages."""
    with tempfile.TemporaryFile(mode="w+b") as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _converter_error(what: str, exc: Exception, held: BinaryIO) -> SampleError:
    held.seek(0)
    lines = [line for line in (str(exc) + "\n" + held.read().decode(errors="replace")).splitlines()
             if "error" in line.lower()] or [str(exc)]
    return SampleError(f"{what} failed: {lines[0].strip()[:300]}")


def tflite_model(saved_model: Path, weights: TFLiteWeights) -> bytes:
    """The z signature as TFLite builtins; float16 stores the weights in half precision (half the size)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[Z_SIGNATURE])
    if weights == TFLiteWeights.float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with _held_stderr() as held:
        try:
            return converter.convert()
        except Exception as exc:  # the converter raises ConverterError, RuntimeError … with the MLIR log
            raise _converter_error(f"TFLite ({weights}) conversion", exc, held) from exc


def onnx_model(function: tf.types.experimental.GenericFunction, opset: int) -> bytes:
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    with _held_stderr() as held:
        try:
            proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature,
                                                     opset=opset)
        except Exception as exc:  # tf2onnx raises whatever its op handlers raise
            raise _converter_error("ONNX conversion", exc, held) from exc
    return proto.SerializeToString()


def _check_task(task: ExportTask, randomize_noise: bool) -> list[ExportFormat]:
    """Refuse, before any work, what cannot be exported."""
    formats = list(dict.fromkeys(task.formats))
    if not formats:
        raise SampleError("task.formats is empty: give one or more of " + ", ".join(ExportFormat))
    if ExportFormat.tflite in formats and not task.tflite_weights:
        raise SampleError("task.tflite_weights is empty: give float32 and/or float16")
    if ExportFormat.tflite in formats and randomize_noise:
        raise SampleError("randomize_noise=true cannot go to TFLite (its builtins cannot shape fresh noise "
                          "maps): export tflite with fixed noise, or drop it from task.formats")
    if ExportFormat.onnx in formats:
        if task.onnx_opset < MIN_ONNX_OPSET:
            raise SampleError(f"task.onnx_opset={task.onnx_opset}: the seed signature needs opset ≥ "
                              f"{MIN_ONNX_OPSET} (bitwise ops)")
        try:
            import onnxruntime  # noqa: F401  (checks the converted files)
            import tf2onnx  # noqa: F401
        except ImportError as exc:
            raise SampleError(f"task.formats has onnx but {exc.name} is not installed: "
                              "pip install 'stylegan_exp[export]'") from None
    return formats


def size_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (a SavedModel)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _spec(shape: tf.TensorShape, dtype: tf.DType) -> dict[str, Any]:
    return {"shape": shape.as_list() if shape.rank is not None else None, "dtype": dtype.name}


def describe_signatures(module: ExportedGenerator) -> dict[str, Any]:
    """Inputs and outputs (shape with null for the batch, dtype) of each serving function."""
    described = {}
    for name, function in ((Z_SIGNATURE, module.from_z), (SEED_SIGNATURE, module.from_seed)):
        outputs = function.get_concrete_function().structured_outputs
        described[name] = {
            "inputs": {s.name: _spec(s.shape, s.dtype) for s in function.input_signature},
            "outputs": {k: _spec(v.shape, v.dtype) for k, v in outputs.items()},
        }
    described[Z_SIGNATURE]["outputs"][OUTPUT_FLOAT]["range"] = [-1.0, 1.0]
    described[SEED_SIGNATURE]["outputs"][OUTPUT_FLOAT]["range"] = [-1.0, 1.0]
    return described


def reference_images(Gs: Generator, z: np.ndarray, psi: float, cutoff: int,
                     labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eager Gs's float output and uint8 images, as sample.py computes them (with `labels` [N, c_dim] for a
    conditional Gs: truncated toward each label's average w)."""
    if labels is None:
        out = Gs(tf.constant(z), psi=psi, cutoff=cutoff, randomize_noise=False).numpy()
    else:
        out = synthesize(Gs, labelled_dlatents(Gs, z, labels, psi=psi, cutoff=cutoff))
    return out, to_uint8(out)


def verification_labels(names: list[str], count: int) -> tuple[list[str], np.ndarray]:
    """One tag per verification seed, cycling through the vocabulary, and their label vectors."""
    tags = [names[i % len(names)] for i in range(count)]
    return tags, np.eye(len(names), dtype=np.float32)[[names.index(t) for t in tags]]


def agreement(outputs: dict[str, np.ndarray], ref_float: np.ndarray,
              ref_uint8: np.ndarray) -> dict[str, float]:
    """How far an exported file's outputs are from Gs's: float outputs and uint8 images."""
    off = np.abs(outputs[OUTPUT_IMAGES].astype(np.int16) - ref_uint8.astype(np.int16))
    return {"max_abs_float_error": float(np.abs(outputs[OUTPUT_FLOAT] - ref_float).max()),
            "max_uint8_error": int(off.max()), "uint8_mismatch_fraction": float(np.mean(off > 0))}


def verify(path: Path, Gs: Generator, seeds: list[int], psi: float, cutoff: int,
           labels: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Each signature of an exported file against eager Gs on `seeds` (z drawn as sample.py draws it), a
    conditional one's with `labels` [N, c_dim]."""
    exported = export_reader.Exported(path)
    z = seed_latents(seeds, Gs.latent_size)
    ref_float, ref_uint8 = reference_images(Gs, z, psi, cutoff, labels)
    scalars = {"truncation_psi": np.array(psi, np.float32), "truncation_cutoff": np.array(cutoff, np.int32)}
    if labels is not None:
        scalars[LABEL_INPUT] = labels
    inputs = {Z_SIGNATURE: z, SEED_SIGNATURE: np.asarray(seeds, np.int64)}
    return {name: agreement(exported.run(name, {name: inputs[name], **scalars}), ref_float, ref_uint8)
            for name in exported.signatures}


def _write_saved_model(module: ExportedGenerator, path: Path) -> Path:
    """Saved beside `path` and renamed into place, so a failed save leaves no partial folder."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tf.saved_model.save(module, str(scratch / path.name), signatures=module.signatures())
    os.replace(scratch / path.name, path)
    scratch.rmdir()
    return path


def export_files(module: ExportedGenerator, task: ExportTask, formats: list[ExportFormat],
                 out_dir: Path) -> dict[str, dict[str, Any]]:
    """Write every requested file; returns {key: {path, signatures[, note]}}."""
    jobs: list[tuple[str, str]] = []
    if ExportFormat.tflite in formats:
        jobs += [(f"tflite_{w}", f"generator-{w}.tflite") for w in dict.fromkeys(task.tflite_weights)]
    if ExportFormat.onnx in formats:
        jobs += [(f"onnx_{name}", f"generator-{name}.onnx") for name in (Z_SIGNATURE, SEED_SIGNATURE)]
    files: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as scratch:
        saved = _write_saved_model(module, out_dir / "saved_model" if ExportFormat.saved_model in formats
                                   else Path(scratch) / "saved_model")
        if ExportFormat.saved_model in formats:
            files["saved_model"] = {"path": saved.name, "signatures": [Z_SIGNATURE, SEED_SIGNATURE]}
        for key, name in progress_bar(jobs, desc="export", unit="file"):
            if key.startswith("tflite_"):
                data = tflite_model(saved, TFLiteWeights(key.removeprefix("tflite_")))
                files[key] = {"path": name, "signatures": [Z_SIGNATURE], "note": TFLITE_SEED_NOTE}
            else:
                signature = key.removeprefix("onnx_")
                function = module.from_z if signature == Z_SIGNATURE else module.from_seed
                data = onnx_model(function, task.onnx_opset)
                files[key] = {"path": name, "signatures": [signature], "opset": task.onnx_opset}
            write_atomic(out_dir / name, data)
    return files


def describe_labels(space: LabelSpace) -> dict[str, Any]:
    """export.json's `labels`: the label input and the vocabulary generate.py's --tags are checked against."""
    return {"input": LABEL_INPUT, "names": list(space.names), "groups": dict(space.groups),
            "meaning": "c [N, len(names)] float32 multi-hot over names; at most one name of each group",
            "center_samples": CENTER_SAMPLES, "center_seed": CENTER_SEED, "truncation": LABEL_TRUNCATION}


def export(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """Export the snapshot's Gs, as it was trained (its lod), in `cfg.task.formats`."""
    task: ExportTask = cfg.task
    formats = _check_task(task, cfg.randomize_noise)
    if cfg.tags:
        raise SampleError(f"task=export takes no tags (tags={list(cfg.tags)}): a conditional snapshot's "
                          "files take the label as an input; give the tags to generate.py --tags")
    run_dir = Path(run_dir)
    Gs = network(snap, "Gs")
    module = ExportedGenerator(Gs, randomize_noise=cfg.randomize_noise)
    labelled, check_labels = {}, None
    if snap.labels is not None:
        check_tags, check_labels = verification_labels(snap.labels.names, len(task.verify_seeds))
        labelled = {"labels": describe_labels(snap.labels)}
        log.info("conditional snapshot: every file takes a label vector %s over %d tags (%s); truncation "
                 "toward each label's average w over %d fixed latents, computed in the graph", LABEL_INPUT,
                 snap.labels.dim, ", ".join(snap.labels.names), CENTER_SAMPLES)
    cutoff = Gs.num_layers if cfg.truncation_cutoff is None else cfg.truncation_cutoff
    log.info("generate.py's default truncation (in export.json): %s",
             describe_truncation(cfg.truncation_psi, cfg.truncation_cutoff, snap.model, Gs.num_layers))
    files = export_files(module, task, formats, run_dir)
    broken = []
    for key, entry in files.items():
        entry["bytes"] = size_on_disk(run_dir / entry["path"])
        checked = ""
        if task.verify_seeds and not cfg.randomize_noise:  # fresh noise on every call: nothing to compare
            with _held_stderr():  # TFLite announces its XNNPACK delegate
                entry["verified"] = verify(run_dir / entry["path"], Gs, list(task.verify_seeds),
                                           cfg.truncation_psi, cutoff, check_labels)
            worst = max(v["max_abs_float_error"] for v in entry["verified"].values())
            checked = f", max |output − Gs| {worst:.2g}"
            if not math.isfinite(worst):
                broken.append(entry["path"])
        log.info("%s: %s, %.2f MB, signatures %s%s", key, entry["path"], entry["bytes"] / 1e6,
                 ", ".join(entry["signatures"]), checked)
    level, fade = Gs.level_and_fade()
    description = {
        "snapshot": str(snap.path),
        "kimg": snap.kimg,
        "arch": snap.model.ARCH,
        "model": asdict(snap.model),
        "resolution": Gs.resolution,
        **({} if Gs.aspect.square else {"aspect": str(Gs.aspect), "width": Gs.aspect.size(Gs.resolution)[0],
                                        "height": Gs.aspect.size(Gs.resolution)[1]}),
        "num_channels": Gs.num_channels,
        "latent_size": Gs.latent_size,
        "num_layers": Gs.num_layers,
        "lod": {"lod": Gs.lod, "level": level, "fade": fade,
                "meaning": "a snapshot saved while growing runs at 2**level pixels with `fade` of the level "
                           "below, upscaled (nearest) to the resolution, as it was trained"},
        "noise": "random" if cfg.randomize_noise else "fixed",
        "truncation": TRUNCATION,
        **labelled,
        "truncation_defaults": {"truncation_psi": cfg.truncation_psi, "truncation_cutoff": cutoff,
                                "meaning": TRUNCATION_DEFAULTS},
        "seed": "z = numpy.random.RandomState(seed).randn(latent_size) as float32, as sample.py draws it",
        "signatures": describe_signatures(module),
        "verification": {"seeds": list(task.verify_seeds), "truncation_psi": cfg.truncation_psi,
                         "truncation_cutoff": cutoff, **({"tags": check_tags} if labelled else {})},
        "files": files,
    }
    reader = run_dir / READER_NAME
    write_atomic(reader, Path(export_reader.__file__).read_bytes())
    meta = run_dir / "export.json"
    write_atomic(meta, (json.dumps(description, indent=2) + "\n").encode())
    if broken:
        raise SampleError(f"{', '.join(broken)} in {run_dir} computed non-finite images for the verification "
                          "seeds (export.json has the errors): do not use them; float16 TFLite weights do "
                          "not hold every model, task.tflite_weights=[float32] does")
    return [run_dir / entry["path"] for entry in files.values()] + [reader, meta]
