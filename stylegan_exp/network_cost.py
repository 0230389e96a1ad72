"""What the memory plan needs to know about the networks: their parameters and the activations one image
makes, counted from the traced forward passes in a graph of their own (no device is touched, no strategy
fixed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.config import ModelConfig
from stylegan_exp.memory_plan import NetworkCost
from stylegan_exp.models import build_discriminator, build_generator

_NOT_ACTIVATIONS = frozenset({"ReadVariableOp", "Const", "Placeholder", "VarHandleOp", "Identity"})


def _forward_elements(graph: tf.Graph, fn: Callable[[tf.Tensor], tf.Tensor], shape: Sequence[int],
                      batch: int) -> int:
    """Elements of every floating-point tensor the forward pass adds to `graph` for a batch of `batch`.
    Built op by op in graph mode, not traced by tf.function, which would initialize TensorFlow's runtime
    before train.py has made its strategy."""
    first = len(graph.get_operations())
    fn(tf.compat.v1.placeholder(tf.float32, [batch, *shape]))
    total = 0
    for op in graph.get_operations()[first:]:
        if op.type in _NOT_ACTIVATIONS:
            continue
        for out in op.outputs:
            if out.dtype.is_floating and out.shape.is_fully_defined():
                total += out.shape.num_elements()
    return total


def per_image(graph: tf.Graph, fn: Callable[[tf.Tensor], tf.Tensor], shape: Sequence[int]) -> int:
    """Activation elements one more image adds: tensors that do not scale with the batch (scaled weights,
    styles' affine maps of the weights) are left out by differencing batches of 2 and 1."""
    return _forward_elements(graph, fn, shape, 2) - _forward_elements(graph, fn, shape, 1)


def network_costs(model: ModelConfig, resolution: int, channels: int,
                  resolutions: Sequence[int], aspect: Aspect = SQUARE) -> dict[int, NetworkCost]:
    """The cost of training at each of `resolutions` (levels of a `resolution` network of `aspect`)."""
    costs = {}
    graph = tf.Graph()
    with graph.as_default():
        G = build_generator(model, resolution, channels, aspect=aspect)
        D = build_discriminator(model, resolution, channels, aspect=aspect)
        params_G = sum(v.shape.num_elements() for v in G.trainable_variables)
        params_D = sum(v.shape.num_elements() for v in D.trainable_variables)
        for res in resolutions:
            level = res.bit_length() - 1
            act_G = per_image(graph, lambda z, lv=level: G.synthesis(G.map(z), lv, 0.0, False),
                              [G.latent_size])
            act_D = per_image(graph, lambda x, lv=level: D(x, lv, 0.0), [*aspect.shape(res), channels])
            costs[res] = NetworkCost(params_G, params_D, act_G, act_D)
    return costs
