"""numpy's legacy `RandomState(seed).randn(n)` as TensorFlow graph ops, so an exported generator's `seed`
means what it means in `sample.py` (which draws z = RandomState(seed).randn(latent_size)).

The steps are numpy's own: MT19937 seeded by `init_genrand` (a 32-bit seed), 53-bit doubles from two
32-bit draws, and the polar Box–Muller `legacy_gauss`, whose rejection loop keeps drawing pairs until one
falls inside the unit circle; each accepted pair gives two normals, the second one first. Every row of a
batch runs its own generator, so a seed's latent does not depend on the rest of the batch. States are laid
out words-first ([624, B]): oneDNN has no uint32 transpose and would log an error for one.
"""

from __future__ import annotations

import tensorflow as tf

N = 624  # MT19937 state words
M = 397
MATRIX_A = 0x9908B0DF
UPPER_MASK = 0x80000000
LOWER_MASK = 0x7FFFFFFF
INIT_MULTIPLIER = 1812433253
DRAWS_PER_ATTEMPT = 4  # two doubles, each from two 32-bit draws
ATTEMPTS_PER_BLOCK = N // DRAWS_PER_ATTEMPT  # one twist feeds exactly 156 polar attempts
MAX_SEED = 2**32 - 1


def _u32(value: int) -> tf.Tensor:
    return tf.constant(value, tf.uint32)


def _xor_shift(y: tf.Tensor, right: int) -> tf.Tensor:
    return tf.bitwise.bitwise_xor(y, tf.bitwise.right_shift(y, _u32(right)))


def _xor_shift_masked(y: tf.Tensor, left: int, mask: int) -> tf.Tensor:
    return tf.bitwise.bitwise_xor(y, tf.bitwise.bitwise_and(tf.bitwise.left_shift(y, _u32(left)), _u32(mask)))


def init_genrand(seeds: tf.Tensor) -> tf.Tensor:
    """MT19937 state [624, B] (uint32) of 32-bit seeds [B]: mt[i] = 1812433253·(mt[i-1] ^ mt[i-1]>>30) + i."""
    first = tf.cast(seeds, tf.uint32)

    def step(prev: tf.Tensor, i: tf.Tensor) -> tf.Tensor:
        return _u32(INIT_MULTIPLIER) * _xor_shift(prev, 30) + i

    rest = tf.scan(step, tf.cast(tf.range(1, N), tf.uint32), initializer=first)  # [623, B]
    return tf.concat([first[None], rest], axis=0)


def _twist_rows(current: tf.Tensor, following: tf.Tensor, far: tf.Tensor) -> tf.Tensor:
    """New words from mt[i] (upper bit), mt[i+1] (lower bits) and mt[i+M] (all three [k, B])."""
    y = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(current, _u32(UPPER_MASK)),
                              tf.bitwise.bitwise_and(following, _u32(LOWER_MASK)))
    odd = tf.equal(tf.bitwise.bitwise_and(y, _u32(1)), _u32(1))
    mixed = tf.bitwise.bitwise_xor(far, tf.bitwise.right_shift(y, _u32(1)))
    return tf.where(odd, tf.bitwise.bitwise_xor(mixed, _u32(MATRIX_A)), mixed)


def twist(mt: tf.Tensor) -> tf.Tensor:
    """The next 624 words. numpy's loop updates in place, so words from i = N-M on read words already
    renewed; the chunks below follow that order ([0, 227), [227, 454), [454, 623), then 623)."""
    split = N - M  # 227
    a = _twist_rows(mt[:split], mt[1 : split + 1], mt[M:])
    b = _twist_rows(mt[split : 2 * split], mt[split + 1 : 2 * split + 1], a)
    c = _twist_rows(mt[2 * split : N - 1], mt[2 * split + 1 :], b[: N - 1 - 2 * split])
    head = tf.concat([a, b, c], axis=0)  # words 0 … 622
    last = _twist_rows(mt[N - 1 :], head[:1], head[M - 1 : M])
    return tf.concat([head, last], axis=0)


def temper(y: tf.Tensor) -> tf.Tensor:
    """MT19937's output tempering of each state word."""
    y = _xor_shift(y, 11)
    y = _xor_shift_masked(y, 7, 0x9D2C5680)
    y = _xor_shift_masked(y, 15, 0xEFC60000)
    return _xor_shift(y, 18)


def _doubles(high: tf.Tensor, low: tf.Tensor) -> tf.Tensor:
    """numpy's random_double: (a·2²⁶ + b) / 2⁵³ with a = high>>5, b = low>>6, in float64."""
    a = tf.cast(tf.bitwise.right_shift(high, _u32(5)), tf.float64)
    b = tf.cast(tf.bitwise.right_shift(low, _u32(6)), tf.float64)
    return (a * 67108864.0 + b) / 9007199254740992.0


def polar_attempts(words: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """For tempered draws [4k, B]: the two normals of each attempt [B, k, 2] (in output order) and
    whether the attempt was accepted (0 < r² < 1) [B, k]."""
    quads = tf.reshape(words, [-1, DRAWS_PER_ATTEMPT, tf.shape(words)[1]])
    u = tf.transpose(_doubles(quads[:, 0::2], quads[:, 1::2]), [2, 0, 1])  # [B, k, 2] float64
    x1 = 2.0 * u[..., 0] - 1.0
    x2 = 2.0 * u[..., 1] - 1.0
    r2 = x1 * x1 + x2 * x2
    accepted = tf.logical_and(r2 < 1.0, r2 > 0.0)
    safe = tf.where(accepted, r2, tf.ones_like(r2))
    f = tf.sqrt(-2.0 * tf.math.log(safe) / safe)
    return tf.stack([f * x2, f * x1], axis=-1), accepted


def randn(seeds: tf.Tensor, n: int) -> tf.Tensor:
    """float64 [B, n]: row b equals `np.random.RandomState(seeds[b]).randn(n)`; seeds in [0, 2³²)."""
    seeds = tf.convert_to_tensor(seeds, tf.int64)
    tf.debugging.assert_less_equal(seeds, tf.constant(MAX_SEED, tf.int64),
                                   message=f"seeds must be in [0, {MAX_SEED}]")
    tf.debugging.assert_non_negative(seeds, message=f"seeds must be in [0, {MAX_SEED}]")
    pairs = (n + 1) // 2
    batch = tf.shape(seeds)[0]

    def more_needed(mt: tf.Tensor, normals: tf.Tensor, accepted: tf.Tensor) -> tf.Tensor:
        counts = tf.reduce_sum(tf.cast(accepted, tf.int32), axis=1)
        return tf.logical_or(tf.shape(accepted)[1] == 0, tf.reduce_any(counts < pairs))  # one block if B = 0

    def next_block(mt: tf.Tensor, normals: tf.Tensor,
                   accepted: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        mt = twist(mt)
        more, ok = polar_attempts(temper(mt))
        return mt, tf.concat([normals, more], axis=1), tf.concat([accepted, ok], axis=1)

    start = (init_genrand(seeds), tf.zeros([batch, 0, 2], tf.float64), tf.zeros([batch, 0], tf.bool))
    invariants = (tf.TensorShape([N, None]), tf.TensorShape([None, None, 2]), tf.TensorShape([None, None]))
    _, normals, accepted = tf.while_loop(more_needed, next_block, start, shape_invariants=invariants)
    # The first `pairs` accepted attempts of each row, in order: rejected ones sort after every accepted one.
    position = tf.range(tf.shape(accepted)[1])
    key = tf.where(accepted, position, position + tf.shape(accepted)[1])
    first = tf.math.top_k(-key, k=pairs, sorted=True).indices
    chosen = tf.gather(normals, first, batch_dims=1)  # [B, pairs, 2]
    return tf.reshape(chosen, [batch, 2 * pairs])[:, :n]
