"""CPU cost of the metrics per 1,000 images, through the project's own metric code.

The real network files cannot be downloaded on a machine without internet, so every network here has
same-shape random weights, which cost the same to run: the standard Inception path runs a GraphDef of
keras' InceptionV3 architecture (the 2015-12-05 graph's, 2048-d pool_3) frozen with the original's
ExpandDims/pool_3 node names and its 299² ResizeBilinear, loaded from a file:// .tgz by the real loader;
PR's VGG16 (fc2) and PPL's VGG16 taps are keras' VGG16 with weights=None.

    .venv/bin/python benchmarks/metrics_speed.py                   # 200 images per network, 64² images
    .venv/bin/python benchmarks/metrics_speed.py --images 500 --resolution 128
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

# First the package: it quiets TensorFlow's start-up log before TensorFlow is imported.
importlib.import_module("stylegan_exp")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import aligned, load_model, machine_info, write_results  # noqa: E402

from stylegan_exp.config import FIDConfig, NetworkFile, PPLConfig  # noqa: E402
from stylegan_exp.metrics import networks as nets  # noqa: E402
from stylegan_exp.metrics.fid import fid  # noqa: E402
from stylegan_exp.metrics.kid import kid  # noqa: E402
from stylegan_exp.metrics.ppl import lpips_distance, perceptual_path_length  # noqa: E402
from stylegan_exp.metrics.pr import precision_recall  # noqa: E402
from stylegan_exp.models import build_generator  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "metrics_speed.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=200, help="images timed per network (scaled to 1,000)")
    p.add_argument("--resolution", type=int, default=64, help="generated image size")
    p.add_argument("--model", default="small", help="a model preset (conf/model/<name>.yaml)")
    p.add_argument("--batch", type=int, default=25, help="images per network call")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    return p.parse_args(argv)


def random_inception_archive(folder: Path) -> Path:
    """InceptionV3 (random weights) frozen behind the original graph's input and output node names."""
    import keras
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    tf.random.set_seed(0)
    body = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                          input_shape=(299, 299, 3))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def graph(images):
        x = tf.identity(images, name="ExpandDims")
        x = tf.raw_ops.ResizeBilinear(images=x, size=tf.constant([299, 299]), name="ResizeBilinear")
        pool = body((x - 128.0) / 128.0, training=False)
        return tf.reshape(pool, [-1, 1, 1, 2048], name="pool_3")

    graph_def = convert_variables_to_constants_v2(graph.get_concrete_function()).graph.as_graph_def()
    data = graph_def.SerializeToString()
    path = folder / "inception-2015-12-05.tgz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(nets.GRAPH_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def per_1000(seconds: float, count: int) -> float:
    return seconds * 1000.0 / count


def timed(fn, *args) -> tuple[Any, float]:
    fn(*(a[:8] if isinstance(a, np.ndarray) else a for a in args))  # warm-up: tracing, first allocations
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import keras

    args = parse_args(argv)
    rng = np.random.RandomState(0)
    n, res = args.images, args.resolution
    images = rng.uniform(-1, 1, (n, res, res, 3)).astype(np.float32)
    rows: list[dict[str, Any]] = []

    def row(what: str, network: str, seconds: float, count: int, note: str = "") -> None:
        rows.append({"what": what, "network": network, "measured_s": seconds, "count": count,
                     "sec_per_1000": per_1000(seconds, count), "note": note})
        print(f"  {what}: {seconds:.2f}s for {count}", file=sys.stderr)

    Gs = build_generator(load_model(args.model), res, 3)
    z = rng.randn(n, Gs.latent_size).astype(np.float32)
    _, t = timed(lambda zz: [Gs(tf.constant(zz[i:i + args.batch])) for i in range(0, len(zz), args.batch)], z)
    row("generate fakes", f"G ({args.model}, {res}²)", t, n, "shared by FID, KID and PR")

    with tempfile.TemporaryDirectory() as tmp:
        archive = random_inception_archive(Path(tmp))
        cfg = FIDConfig(batch_size=args.batch, standard=NetworkFile(archive.as_uri()))
        _, inception = nets.inception_features(cfg, Path(tmp) / "cache")
        _, t = timed(inception, images)
    row("Inception features (FID, KID)", "standard graph path, 299²", t, n, "reals once, then cached")

    tf.random.set_seed(0)
    keras_inception = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                                     input_shape=(299, 299, 3))
    keras_fn = nets.batched(lambda x: keras_inception(keras.applications.inception_v3.preprocess_input(
        tf.image.resize(nets.to_uint8_range(x), (299, 299))), training=False).numpy(), args.batch)
    _, t = timed(keras_fn, images)
    row("Inception features (FID, KID)", "metrics.fid.network=keras", t, n)

    vgg = keras.applications.VGG16(weights=None)
    fc2 = nets.batched(nets.fc2_features(vgg), args.batch)
    _, t = timed(fc2, images)
    row("VGG16 fc2 features (PR)", "keras VGG16, 224²", t, n, "reals once, then cached")
    del vgg

    real, fake = rng.randn(1000, 2048), rng.randn(1000, 2048) + 0.1
    _, t = timed(fid, real, fake)
    row("Fréchet distance", "2048-d, 1,000 + 1,000", t, 1000, "grows with the dimension, not much with N")
    _, t = timed(lambda a, b: kid(a, b, 100, 1000, np.random.RandomState(0)), real, fake)
    row("KID, 100 subsets × 1,000", "2048-d", t, 1000, "fixed cost once N ≥ 1,000")
    for count in (1000, 4000):
        a = rng.randn(count, 4096).astype(np.float32)
        b = a + rng.randn(count, 4096).astype(np.float32) * 0.1
        _, t = timed(lambda x, y: precision_recall(x, y, 3, 1000), a, b)
        row(f"PR distances, N = {count:,}", "4096-d, k = 3", t, count, "O(N²): ×N/1,000 per 1,000 images")

    conv = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    taps = keras.Model(conv.input, [conv.get_layer(name).output for name in nets.LPIPS_TAPS])
    distance = lpips_distance(lambda pixels: taps(nets.vgg_preprocess(pixels), training=False))
    ppl_cfg = PPLConfig(num_samples=n, minibatch=args.batch // 2 or 1)
    perceptual_path_length(Gs, distance, PPLConfig(num_samples=2, minibatch=2), 0)
    start = time.perf_counter()
    perceptual_path_length(Gs, distance, ppl_cfg, 0)
    row("PPL pairs (2 images each)", f"G + VGG16 taps, crop → {res // 2}²", time.perf_counter() - start, n)

    print()
    head = ("metric step", "network", "measured", "sec per 1,000", "note")
    body = [(r["what"], r["network"], f"{r['measured_s']:.2f}s / {r['count']:,}", f"{r['sec_per_1000']:.1f}",
             r["note"]) for r in rows]
    print(aligned(head, body))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result = {"machine": machine_info(), "settings": settings, "results": rows,
              "notes": ["same-shape random weights for every network (no downloads here)"]}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
