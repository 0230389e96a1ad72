"""Per-image affine warps without aliasing: reflect-pad, upsample 2× with an orthogonal wavelet low-pass,
sample bilinearly, filter and downsample back (the scheme of ADA's geometric augmentations).

Every step is linear in the pixels and built from ops with second derivatives (pad, transposed/strided
convolution, gather), so gradients reach the input images, also inside the R1 penalty. Coordinates follow
the (x = column, y = row) convention with pixel centres at integers; matrices are [N, 3, 3] acting on
homogeneous (x, y, 1) column vectors, centred on the image.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Symlet-6 decomposition low-pass filter: orthonormal under even shifts, so downsampling by the same filter
# after upsampling by it returns the image exactly (an identity warp changes nothing).
SYM6 = np.array([0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
                 0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
                 -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148],
                dtype=np.float32)
_TAPS = SYM6.size
# 2× index of an original pixel centre: pixel k sits at 2k + 5, the whole 2× sample nearest the filter's
# centroid (5.1), so mirrored warps stay centred.
_OFFSET = 5.0
_SUPPORT = _TAPS / 4 + 0.5  # original pixels either side that one bilinear 2× sample can depend on


def matrices(*rows: list[tf.Tensor | float]) -> tf.Tensor:
    """A batch of matrices [N, R, C] from rows of per-image values [N] or scalars (broadcast); [1, R, C]
    when every value is a scalar."""
    batched = [v for row in rows for v in row if isinstance(v, tf.Tensor) and v.shape.rank == 1]
    n = tf.shape(batched[0])[0] if batched else 1
    return tf.stack([tf.stack([tf.broadcast_to(tf.cast(v, tf.float32), [n]) for v in row], axis=-1)
                     for row in rows], axis=1)


def translate(tx: tf.Tensor | float, ty: tf.Tensor | float) -> tf.Tensor:
    return matrices([1, 0, tx], [0, 1, ty], [0, 0, 1])


def scale(sx: tf.Tensor | float, sy: tf.Tensor | float) -> tf.Tensor:
    return matrices([sx, 0, 0], [0, sy, 0], [0, 0, 1])


def rotate(theta: tf.Tensor) -> tf.Tensor:
    c, s = tf.cos(theta), tf.sin(theta)
    return matrices([c, -s, 0], [s, c, 0], [0, 0, 1])


def remap(images: tf.Tensor, inverse: tf.Tensor) -> tf.Tensor:
    """images [N, H, W, C] with output pixel p showing input pixel `inverse` @ p exactly, for integer maps
    (flips, quarter turns, whole-pixel shifts: centred matrices whose results are whole pixels); beyond
    the border the image is mirrored (reflect, as the padding of `warp`)."""
    height, width = images.shape[1], images.shape[2]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    ys, xs = tf.meshgrid(tf.range(height, dtype=tf.float32) - cy, tf.range(width, dtype=tf.float32) - cx,
                         indexing="ij")
    grid = tf.stack([tf.reshape(xs, [-1]), tf.reshape(ys, [-1]), tf.ones([height * width])])
    source = tf.broadcast_to(inverse, [tf.shape(images)[0], 3, 3]) @ grid  # [N, 3, H·W], centred
    x = _reflect(tf.cast(tf.round(source[:, 0] + cx), tf.int32), width)
    y = _reflect(tf.cast(tf.round(source[:, 1] + cy), tf.int32), height)
    flat = tf.reshape(images, [tf.shape(images)[0], height * width, -1])
    return tf.reshape(tf.gather(flat, y * width + x, batch_dims=1), tf.shape(images))


def _reflect(index: tf.Tensor, size: int) -> tf.Tensor:
    """Whole-pixel positions folded into [0, size) by mirroring about the edge pixels (REFLECT padding)."""
    period = max(2 * (size - 1), 1)
    return (size - 1) - tf.abs(tf.math.floormod(index, period) - (size - 1))


def _resample(x: tf.Tensor, transpose: bool) -> tf.Tensor:
    """2× up (transposed strided convolution) or down (strided convolution) with SYM6 along both spatial
    axes of channel-less images [B, H, W]; the two are adjoint, and down∘up is the identity."""
    x = x[..., None]
    for kernel in (SYM6.reshape(1, _TAPS, 1, 1), SYM6.reshape(_TAPS, 1, 1, 1)):
        strides = (1, 2) if kernel.shape[0] == 1 else (2, 1)
        if transpose:
            shape = tf.shape(x)
            out = tf.stack([shape[0], (shape[1] - 1) * strides[0] + kernel.shape[0],
                            (shape[2] - 1) * strides[1] + kernel.shape[1], 1])
            x = tf.nn.conv2d_transpose(x, kernel, out, strides=strides, padding="VALID")
        else:
            x = tf.nn.conv2d(x, kernel, strides=strides, padding="VALID")
    return x[..., 0]


def _bilinear(images: tf.Tensor, qx: tf.Tensor, qy: tf.Tensor) -> tf.Tensor:
    """images [B, H, W] sampled at float pixel positions [B, h, w]; zero outside the image."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    flat = tf.reshape(images, [tf.shape(images)[0], -1])
    x0, y0 = tf.floor(qx), tf.floor(qy)
    fx, fy = qx - x0, qy - y0
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = tf.cast(x0, tf.int32) + dx, tf.cast(y0, tf.int32) + dy
            inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
            index = tf.clip_by_value(yi, 0, height - 1) * width + tf.clip_by_value(xi, 0, width - 1)
            out += tf.gather(flat, index, batch_dims=1) * wx * wy * tf.cast(inside, images.dtype)
    return out


def warp(images: tf.Tensor, inverse: tf.Tensor, static_padding: bool = False) -> tf.Tensor:
    """images [N, H, W, C] resampled so that output pixel p shows input pixel `inverse` @ p (centred coords).

    The image is reflect-padded just enough for this batch's transforms (at most H - 1 per side; beyond
    that reads zeros). `static_padding` always pads H - 1, for XLA, which needs static shapes; each image's
    result is the same either way, since it never reads past the margin it needs.
    """
    shape = tf.shape(images)
    n, height, width, channels = shape[0], images.shape[1], images.shape[2], shape[3]
    inverse = tf.broadcast_to(inverse, [n, 3, 3])
    cx, cy = (width - 1) / 2, (height - 1) / 2
    # Output samples at 2×: index m is output pixel (m - 5) / 2; they reach 3 pixels past the border.
    beyond = max(_OFFSET, _TAPS - 1 - _OFFSET) / 2
    reach_x, reach_y = cx + beyond, cy + beyond
    if static_padding:
        lo = hi = tf.constant([width - 1, height - 1], tf.int32)
    else:
        corners = tf.constant([[-reach_x, reach_x, reach_x, -reach_x], [-reach_y, -reach_y, reach_y, reach_y],
                               [1, 1, 1, 1]], tf.float32)
        reached = (inverse @ corners)[:, :2]  # [N, xy, corner], centred input coordinates
        centre = tf.constant([cx, cy])
        lo = tf.math.ceil(tf.reduce_max(-reached, axis=[0, 2]) - centre + _SUPPORT)
        hi = tf.math.ceil(tf.reduce_max(reached, axis=[0, 2]) - centre + _SUPPORT)
        limit = tf.constant([width - 1, height - 1], tf.float32)
        lo = tf.cast(tf.clip_by_value(lo, 0.0, limit), tf.int32)
        hi = tf.cast(tf.clip_by_value(hi, 0.0, limit), tf.int32)
    planes = tf.reshape(tf.transpose(images, [0, 3, 1, 2]), [-1, height, width])  # [N·C, H, W]
    planes = tf.pad(planes, [[0, 0], [lo[1], hi[1]], [lo[0], hi[0]]], mode="REFLECT")
    planes = _resample(planes, transpose=True)
    # 2× output index → output pixel → centred → input centred → padded input pixel → 2× input index.
    to_input = (translate(_OFFSET, _OFFSET) @ scale(2.0, 2.0)
                @ translate(cx + tf.cast(lo[0], tf.float32), cy + tf.cast(lo[1], tf.float32)) @ inverse
                @ translate(-cx, -cy) @ scale(0.5, 0.5) @ translate(-_OFFSET, -_OFFSET))
    size_x, size_y = 2 * width + _TAPS - 2, 2 * height + _TAPS - 2
    my, mx = tf.meshgrid(tf.range(size_y, dtype=tf.float32), tf.range(size_x, dtype=tf.float32),
                         indexing="ij")
    grid = tf.stack([tf.reshape(mx, [-1]), tf.reshape(my, [-1]), tf.ones([size_x * size_y])])
    q = tf.stop_gradient(to_input @ grid)  # [N, 3, h·w]
    q = tf.reshape(tf.repeat(q, channels, axis=0), [-1, 3, size_y, size_x])  # one per plane, as planes
    planes = _bilinear(planes, q[:, 0], q[:, 1])
    planes = _resample(planes, transpose=False)
    return tf.transpose(tf.reshape(planes, [n, channels, height, width]), [0, 2, 3, 1])
