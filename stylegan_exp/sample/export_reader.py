"""Run an exported generator without stylegan_exp: only numpy and the format's runtime (tensorflow for a
SavedModel, ai_edge_litert or tensorflow for TFLite, onnxruntime for ONNX). `sample.py task=export` copies
this file into every export as `generate.py`:

    python generate.py saved_model --seeds 0 1 2 --psi 0.7 --out images/
    python generate.py generator-float16.tflite --seeds 5      # z drawn as sample.py draws it

    python generate.py saved_model --tags blonde_hair,smile --seeds 5   # a conditional model's labels

A file without the `seed` signature (TFLite) gets z = RandomState(seed).randn(latent_size), as in sample.py.
A conditional model (export.json has `labels`) needs --tags from its vocabulary, as sample.py's tags=[…].
Without --psi/--cutoff the truncation is the one export.json (beside the model) records: the snapshot's own
(StyleGAN: ψ 0.7 below layer 8, StyleGAN2: ψ 0.5 on every layer) unless set when exporting.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

Z_SIGNATURE = "z"
SEED_SIGNATURE = "seed"
LABEL_INPUT = "c"
DESCRIPTION = "export.json"  # written beside the exported files; its "truncation_defaults" are the defaults


def seed_latents(seeds: list[int], latent_size: int) -> np.ndarray:
    """What sample.py feeds the generator for these seeds."""
    return np.stack([np.random.RandomState(s).randn(latent_size) for s in seeds]).astype(np.float32)


def _tflite_interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that it moves to ai_edge_litert
        warnings.simplefilter("ignore")
        return Interpreter(model_path=str(path))


def recorded_truncation(path: Path) -> dict[str, float] | None:
    """{"truncation_psi", "truncation_cutoff"} that export.json beside the exported file records, if any."""
    return recorded(path).get("truncation_defaults")


def recorded(path: Path) -> dict[str, Any]:
    """export.json beside the exported file ({} without one)."""
    description = path.parent / DESCRIPTION
    return json.loads(description.read_text()) if description.is_file() else {}


def label_vector(labels: dict[str, Any], tags: list[str]) -> np.ndarray:
    """The multi-hot vector of `tags` over export.json's vocabulary; an unknown tag lists the vocabulary, two
    values of one group are refused (as sample.py)."""
    names = labels["names"]
    for tag in tags:
        if tag not in names:
            raise ValueError(f"unknown tag {tag!r}; this model's tags are: {', '.join(names)}")
    for group, members in labels.get("groups", {}).items():
        chosen = [t for t in members if t in tags]
        if len(chosen) > 1:
            raise ValueError(f"tags {', '.join(chosen)} are values of the one group {group!r}: pick one")
    c = np.zeros([len(names)], np.float32)
    c[[names.index(t) for t in tags]] = 1.0
    return c


def check_tags(path: Path, tags: list[str] | None) -> None:
    """The --tags against export.json's vocabulary, before any runtime is loaded (so a typo costs nothing)."""
    labels = recorded(path).get("labels")
    if labels is None and tags:
        raise ValueError(f"--tags needs a conditional model; {DESCRIPTION} beside {path.name} records no "
                         "labels")
    if labels is not None and not tags:
        raise ValueError(f"{path.name} is conditional: give --tags from its vocabulary: "
                         f"{', '.join(labels['names'])}")
    if labels is not None:
        label_vector(labels, tags)


class Exported:
    """One exported file (a SavedModel folder, a .tflite or an .onnx file) and the signatures it carries."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"exported generator not found: {self.path}")
        self.truncation = recorded_truncation(self.path)
        self.labels = recorded(self.path).get("labels")  # a conditional model's vocabulary
        if self.path.is_dir():
            import tensorflow as tf

            self._model = tf.saved_model.load(str(self.path))
            self.signatures = sorted(k for k in self._model.signatures if k != "serving_default")
        elif self.path.suffix == ".tflite":
            self._model = _tflite_interpreter(self.path)
            self.signatures = sorted(self._model.get_signature_list())
        elif self.path.suffix == ".onnx":
            import onnxruntime

            self._model = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            names = {i.name for i in self._model.get_inputs()}
            self.signatures = [SEED_SIGNATURE if SEED_SIGNATURE in names else Z_SIGNATURE]
        else:
            raise ValueError(f"{self.path}: not an exported generator (SavedModel folder, .tflite or .onnx)")

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs `images` (uint8 NHWC) and `images_float` (the network's [-1, 1] output) as numpy."""
        if signature not in self.signatures:
            raise ValueError(f"{self.path.name} has no {signature!r} signature (it has {self.signatures})")
        if self.path.is_dir():
            import tensorflow as tf

            outputs = self._model.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
            return {k: v.numpy() for k, v in outputs.items()}
        if self.path.suffix == ".tflite":
            return dict(self._model.get_signature_runner(signature)(**inputs))
        names = [o.name for o in self._model.get_outputs()]
        return dict(zip(names, self._model.run(names, inputs), strict=True))

    def inputs(self, signature: str) -> list[str]:
        """The input names of one signature."""
        if self.path.is_dir():
            return list(self._model.signatures[signature].structured_input_signature[1])
        if self.path.suffix == ".tflite":
            return list(self._model.get_signature_runner(signature).get_input_details())
        return [i.name for i in self._model.get_inputs()]

    def label_inputs(self, signature: str, tags: list[str] | None) -> dict[str, np.ndarray]:
        """{"c": the tags' label vector} for a conditional file, {} for an unconditional one."""
        if LABEL_INPUT not in self.inputs(signature):
            if tags:
                raise ValueError(f"--tags needs a conditional model; {self.path.name} takes no labels")
            return {}
        if self.labels is None:
            raise ValueError(f"{self.path.name} is conditional but no {DESCRIPTION} with its vocabulary is "
                             "beside it")
        if not tags:
            raise ValueError(f"{self.path.name} is conditional: give --tags from its vocabulary: "
                             f"{', '.join(self.labels['names'])}")
        return {LABEL_INPUT: label_vector(self.labels, tags)}

    @property
    def latent_size(self) -> int:
        if self.path.is_dir():
            return int(self._model.signatures[Z_SIGNATURE].structured_input_signature[1]["z"].shape[1])
        if self.path.suffix == ".tflite":
            details = self._model.get_signature_runner(Z_SIGNATURE).get_input_details()
            return int(details["z"]["shape_signature"][1])
        shapes = {i.name: i.shape for i in self._model.get_inputs()}
        if Z_SIGNATURE not in shapes:
            raise ValueError(f"{self.path.name} takes seeds, not z")
        return int(shapes[Z_SIGNATURE][1])

    def generate(self, *, seeds: list[int] | None = None, z: np.ndarray | None = None,
                 psi: float | None = None, cutoff: int | None = None,
                 tags: list[str] | None = None) -> dict[str, np.ndarray]:
        """Images for `seeds` (through the seed signature when the file has one) or for latents `z`; `psi` and
        `cutoff` default to the truncation export.json records (the snapshot's); a conditional model's `tags`
        (every image the same)."""
        if psi is None or cutoff is None:
            if self.truncation is None:
                raise ValueError(f"give psi and cutoff: no {DESCRIPTION} with the snapshot's truncation "
                                 f"beside {self.path}")
            psi = self.truncation["truncation_psi"] if psi is None else psi
            cutoff = self.truncation["truncation_cutoff"] if cutoff is None else cutoff
        scalars = {"truncation_psi": np.array(psi, np.float32),
                   "truncation_cutoff": np.array(cutoff, np.int32)}
        signature = SEED_SIGNATURE if seeds is not None and SEED_SIGNATURE in self.signatures else Z_SIGNATURE
        labels = self.label_inputs(signature, tags)
        if signature == SEED_SIGNATURE:
            given = np.asarray(seeds, np.int64)
        elif z is None:
            if seeds is None:
                raise ValueError("give seeds or z")
            given = seed_latents(seeds, self.latent_size)
        else:
            given = np.asarray(z, np.float32)
        labels = {k: np.repeat(v[None], len(given), axis=0) for k, v in labels.items()}
        return self.run(signature, {signature: given, **labels, **scalars})


def main(argv: list[str] | None = None) -> None:
    from PIL import Image

    parser = argparse.ArgumentParser(description="Images from an exported StyleGAN generator.")
    parser.add_argument("model", help="a SavedModel folder, .tflite or .onnx file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--psi", type=float, help="truncation ψ (1 = none; default: export.json's)")
    parser.add_argument("--cutoff", type=int, help="truncate the style layers below this one (≥ the number "
                        "of layers: every layer; default: export.json's)")
    parser.add_argument("--tags", help="a conditional model's tags, comma-separated: blonde_hair,smile")
    parser.add_argument("--out", default=".", help="folder for example-<seed>.png")
    args = parser.parse_args(argv)
    tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
    try:
        check_tags(Path(args.model), tags)
        images = Exported(args.model).generate(seeds=args.seeds, psi=args.psi, cutoff=args.cutoff,
                                               tags=tags)["images"]
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed, image in zip(args.seeds, images, strict=True):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out / f"example-{seed}.png")
        print(out / f"example-{seed}.png")


if __name__ == "__main__":
    main()
