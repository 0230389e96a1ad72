"""The exported generator as a tf.Module: serving functions `(z or seed, truncation_psi, truncation_cutoff)
→ uint8 NHWC images`, traced once with fixed input signatures so every format converts the same graph.
A conditional generator's functions take a label vector `c` after z or seed and truncate each row toward its
label's average w, computed in the graph over sample.py's fixed latents (sample.labels.center_latents)."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.nets.compiled import graph_function
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.layers import inference_graph
from stylegan_exp.sample import randomstate
from stylegan_exp.sample.labels import center_latents

Z_SIGNATURE = "z"
SEED_SIGNATURE = "seed"
LABEL_INPUT = "c"
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
        z_spec = tf.TensorSpec([None, Gs.latent_size], tf.float32, name="z")
        seed_spec = tf.TensorSpec([None], tf.int64, name="seed")
        if Gs.c_dim:
            self.center_z = center_latents(Gs.latent_size)  # a constant in the graph (no captured input)
            c_spec = tf.TensorSpec([None, Gs.c_dim], tf.float32, name=LABEL_INPUT)
            self.from_z = graph_function(self._from_z_labelled, input_signature=[
                z_spec, c_spec, *_scalar_specs()])
            self.from_seed = graph_function(self._from_seed_labelled, input_signature=[
                seed_spec, c_spec, *_scalar_specs()])
        else:
            self.from_z = graph_function(self._from_z, input_signature=[z_spec, *_scalar_specs()])
            self.from_seed = graph_function(self._from_seed, input_signature=[seed_spec, *_scalar_specs()])

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

    def label_centers(self, c: tf.Tensor) -> tf.Tensor:
        """Each row's label average w [N, dlatent]: mapping(z_k, c) averaged over the K fixed latents
        (N·K mapping rows per call)."""
        samples, rows = self.center_z.shape[0], tf.shape(c)[0]
        z = tf.tile(tf.constant(self.center_z), [rows, 1])
        labels = tf.reshape(tf.tile(tf.expand_dims(c, 1), [1, samples, 1]), [-1, self.Gs.c_dim])
        w = self.Gs.mapping(z, labels)
        return tf.reduce_mean(tf.reshape(w, [rows, samples, -1]), axis=1)

    def _from_z_labelled(self, z: tf.Tensor, c: tf.Tensor, truncation_psi: tf.Tensor,
                         truncation_cutoff: tf.Tensor) -> dict[str, tf.Tensor]:
        with inference_graph():
            dlatents = self.Gs.truncate(self.Gs.map(z, c), truncation_psi, truncation_cutoff,
                                        center=self.label_centers(c))
            images = self.Gs.synthesize(dlatents, self.randomize_noise)
        return {OUTPUT_IMAGES: uint8_images(images), OUTPUT_FLOAT: images}

    def _from_seed_labelled(self, seed: tf.Tensor, c: tf.Tensor, truncation_psi: tf.Tensor,
                            truncation_cutoff: tf.Tensor) -> dict[str, tf.Tensor]:
        z = tf.cast(randomstate.randn(seed, self.Gs.latent_size), tf.float32)
        return self._from_z_labelled(z, c, truncation_psi, truncation_cutoff)

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """For tf.saved_model.save; `serving_default` is the z signature, which every format carries."""
        z = self.from_z.get_concrete_function()
        return {"serving_default": z, Z_SIGNATURE: z, SEED_SIGNATURE: self.from_seed.get_concrete_function()}
