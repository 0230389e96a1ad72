"""The exported generator as a tf.Module: serving functions `(z or seed, truncation_psi, truncation_cutoff)
→ uint8 NHWC images`, traced once with fixed input signatures so every format converts the same graph."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.nets.compiled import graph_function
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.layers import inference_graph
from stylegan_exp.sample import randomstate

Z_SIGNATURE = "z"
SEED_SIGNATURE = "seed"
OUTPUT_IMAGES = "images"
OUTPUT_FLOAT = "images_float"


def uint8_images(images: tf.Tensor) -> tf.Tensor:
    """`grid.to_uint8` in graph ops: [-1, 1] → round((x + 1) · 127.5) clipped to [0, 255] (half to even)."""
    scaled = (images + 1.0) * 127.5
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0.0, 255.0), tf.uint8)


def _scalar_specs() -> list[tf.TensorSpec]:
    return [tf.TensorSpec([], tf.float32, name="truncation_psi"),
            tf.TensorSpec([], tf.int32, name="truncation_cutoff")]


class ExportedGenerator(tf.Module):
    """Gs with its serving functions. Truncation: w' = w_avg + ψ (w − w_avg) on the style layers below
    `truncation_cutoff` (a cutoff ≥ num_layers truncates every layer, as sample.py's `null`)."""

    def __init__(self, Gs: Generator, randomize_noise: bool = False) -> None:
        """Gs runs as it was trained (`Gs.lod`: a snapshot saved while growing exports at its level and
        fade, upscaled to the full size, like sample.py)."""
        super().__init__(name="exported_generator")
        self.Gs = Gs
        self.randomize_noise = randomize_noise
        self.from_z = graph_function(self._from_z, input_signature=[
            tf.TensorSpec([None, Gs.latent_size], tf.float32, name="z"), *_scalar_specs()])
        self.from_seed = graph_function(self._from_seed, input_signature=[
            tf.TensorSpec([None], tf.int64, name="seed"), *_scalar_specs()])

    def _from_z(self, z: tf.Tensor, truncation_psi: tf.Tensor,
                truncation_cutoff: tf.Tensor) -> dict[str, tf.Tensor]:
        with inference_graph():  # no custom gradients in a graph that is saved (see nets.layers)
            dlatents = self.Gs.truncate(self.Gs.map(z), truncation_psi, truncation_cutoff)
            images = self.Gs.synthesize(dlatents, self.randomize_noise)
        return {OUTPUT_IMAGES: uint8_images(images), OUTPUT_FLOAT: images}

    def _from_seed(self, seed: tf.Tensor, truncation_psi: tf.Tensor,
                   truncation_cutoff: tf.Tensor) -> dict[str, tf.Tensor]:
        """z = RandomState(seed).randn(latent_size) cast to float32, exactly as sample.py draws it."""
        z = tf.cast(randomstate.randn(seed, self.Gs.latent_size), tf.float32)
        return self._from_z(z, truncation_psi, truncation_cutoff)

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """For tf.saved_model.save; `serving_default` is the z signature, which every format carries."""
        z = self.from_z.get_concrete_function()
        return {"serving_default": z, Z_SIGNATURE: z, SEED_SIGNATURE: self.from_seed.get_concrete_function()}
