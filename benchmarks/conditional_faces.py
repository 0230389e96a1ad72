"""Does a conditional model draw the hair colour it is asked for? Trains the small StyleGAN at 32² on the
synthetic faces labelled with their hair colour (13 values, a categorical group) and whether they smile, once
conditional (model.conditional=true) and once unconditional, for the same kimg; then

- samples every hair colour with `tags=[<colour>_hair]` (what sample.py does) and classifies the hair of each
  image: the share that matches the request, against chance (1/13) and against the classifier on real faces;
- the unconditional model's samples, classified the same way, against requests drawn at random (its chance);
- SWD of both against the dataset (the conditional fakes' labels drawn from the real label distribution).

The hair classifier is the synthetic faces' own palette: the median colour of a patch of the fringe, nearest
HAIR_PALETTE entry; it is validated on the real faces first (its accuracy is in the table).

Prints a table, writes benchmarks/results/conditional_faces.json.

    .venv/bin/python benchmarks/conditional_faces.py                 # 40 kimg per model
    .venv/bin/python benchmarks/conditional_faces.py --kimg 0.2 --count 200 --per-colour 4   # smoke run
"""

from __future__ import annotations

import argparse
import colorsys
import importlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

# First the package: it quiets TensorFlow's start-up log before TensorFlow is imported.
importlib.import_module("stylegan_exp")

import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from stylegan_exp.config import MetricsConfig, to_object  # noqa: E402
from stylegan_exp.data.dataset_format import LabelSpace  # noqa: E402
from stylegan_exp.data.synthetic import HAIR_COLORS, HAIR_PALETTE, render_face, sample_face_params  # noqa: E402
from stylegan_exp.data.writer import pack_arrays  # noqa: E402
from stylegan_exp.grid import to_uint8  # noqa: E402
from stylegan_exp.metrics.evaluate import evaluate  # noqa: E402
from stylegan_exp.models import load_snapshot, network  # noqa: E402
from stylegan_exp.sample.generate import seed_dlatents, synthesize  # noqa: E402
from stylegan_exp.sample.labels import label_vector  # noqa: E402
from stylegan_exp.schemas import register_configs  # noqa: E402
from stylegan_exp.train.loop import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
HAIR_TAGS = [f"{c}_hair" for c in HAIR_COLORS]
LABELS = LabelSpace([*HAIR_TAGS, "smile"], {"hair_color": HAIR_TAGS})
PALETTE_RGB = 255 * np.array([colorsys.hsv_to_rgb((h % 360) / 360, s, v)
                              for h, s, v in HAIR_PALETTE.values()])
FRINGE = (0.25, 0.35, 0.40, 0.60)  # rows, columns (fractions of the image) inside the fringe of every style
log = logging.getLogger("conditional_faces")


def hair_colour(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC faces → index into HAIR_COLORS: the nearest palette colour to the fringe patch's median."""
    size = images.shape[1]
    top, bottom, left, right = (int(f * size) for f in FRINGE)
    patch = images[:, top:bottom, left:right].reshape(len(images), -1, 3).astype(np.float64)
    median = np.median(patch, axis=1)
    return np.argmin(((median[:, None, :] - PALETTE_RGB[None]) ** 2).sum(-1), axis=1)


def pack_faces(out: Path, count: int, resolution: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The labelled synthetic faces (images, true hair indices), packed to `out`."""
    images, labels, hair = [], [], []
    for i in range(count):
        p = sample_face_params(np.random.default_rng([seed, i]))
        images.append(render_face(p, resolution))
        hair.append(HAIR_COLORS.index(p.hair_color_name))
        smile = ["smile"] if p.mouth_style == "smile" else []
        labels.append(label_vector(LABELS, [f"{p.hair_color_name}_hair", *smile]))
    if out.exists():
        shutil.rmtree(out)
    pack_arrays(np.stack(images), out, label_space=LABELS, labels=labels)
    return np.stack(images), np.array(hair)


def train(conditional: bool, args: argparse.Namespace, data: Path) -> tuple[Path, float]:
    name = "conditional" if conditional else "unconditional"
    overrides = [
        f"model={args.model}", "gpus=cpu", "dataset=folder", f"dataset.path={data}",
        f"dataset.resolution={args.resolution}", "dataset.mirror=false", "schedule=demo",
        f"schedule.lod_initial_resolution={args.resolution}", f"schedule.total_kimg={args.kimg}",
        "schedule.max_minutes=null", f"schedule.tick_kimg_base={max(args.kimg / 4, 0.05)}",
        "logger=none", f"seed={args.seed}", f"name=cond-{name}", f"outputs_root={args.work / 'runs'}",
        f"model.conditional={str(conditional).lower()}", f"model.r1_gamma={args.r1_gamma}",
        "run.checkpoint_kimg=1000", "run.checkpoint_minutes=1000",
    ]
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = to_object(compose("train", overrides=overrides))
    run_dir = args.work / "runs" / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    start = time.time()
    snapshot = Trainer(cfg, run_dir).run()
    return snapshot, time.time() - start


def sample_by_colour(snapshot: Path, per_colour: int, psi: float) -> dict[str, Any]:
    """Every hair colour requested `per_colour` times (seeds 0…); the share classified as requested."""
    snap = load_snapshot(snapshot)
    Gs = network(snap, "Gs")
    seeds = list(range(per_colour))
    hits = {}
    for i, tag in enumerate(HAIR_TAGS):
        w = seed_dlatents(Gs, seeds, psi=psi, cutoff=None, labels=label_vector(snap.labels, [tag]))
        hits[tag] = float(np.mean(hair_colour(to_uint8(synthesize(Gs, w))) == i))
    return {"match": float(np.mean(list(hits.values()))), "per_colour": hits}


def unconditional_match(snapshot: Path, count: int, seed: int) -> float:
    """The unconditional model's samples against hair colours requested at random: its chance."""
    Gs = network(load_snapshot(snapshot), "Gs")
    w = seed_dlatents(Gs, list(range(count)))
    found = hair_colour(to_uint8(synthesize(Gs, w)))
    requested = np.random.RandomState(seed).randint(len(HAIR_COLORS), size=count)
    return float(np.mean(found == requested))


def swd(snapshot: Path, data: Path, resolution: int, images: int) -> float:
    cfg = MetricsConfig(kinds=["swd"], num_images=images)
    result = evaluate(network(load_snapshot(snapshot), "Gs"), data, resolution, cfg,
                      Path("~/.cache/stylegan_exp/metrics"))
    return float(np.mean([v for k, v in result.items() if k.startswith("metrics/swd")]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--kimg", type=float, default=40, help="training length of each model")
    p.add_argument("--count", type=int, default=2000, help="synthetic faces to train on")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--model", default="small", help="model preset (small = StyleGAN, stylegan2_small)")
    p.add_argument("--per-colour", type=int, default=50, help="samples per requested hair colour")
    p.add_argument("--psi", type=float, default=1.0, help="truncation of the tag samples (toward each label)")
    p.add_argument("--r1-gamma", type=float, default=1.0)
    p.add_argument("--models", nargs="+", default=["conditional", "unconditional"],
                   choices=["conditional", "unconditional"], help="which models to train and measure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("/tmp/conditional_faces"))
    p.add_argument("--out", type=Path, default=RESULTS / "conditional_faces.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = args.work / "faces"
    images, truth = pack_faces(data, args.count, args.resolution, args.seed)
    classifier = float(np.mean(hair_colour(images) == truth))
    runs = {kind: train(kind == "conditional", args, data) for kind in args.models}
    n = args.per_colour * len(HAIR_TAGS)
    result = {
        "kimg": args.kimg, "count": args.count, "resolution": args.resolution, "model": args.model,
        "psi": args.psi, "samples": n, "chance": 1 / len(HAIR_TAGS), "classifier_on_reals": classifier,
        "swd": {kind: swd(snap, data, args.resolution, min(args.count, 2000))
                for kind, (snap, _) in runs.items()},
        "train_seconds": {kind: sec for kind, (_, sec) in runs.items()},
    }
    if "conditional" in runs:
        by_colour = sample_by_colour(runs["conditional"][0], args.per_colour, args.psi)
        result.update({"conditional_match": by_colour["match"], "per_colour": by_colour["per_colour"]})
    if "unconditional" in runs:
        result["unconditional_match"] = unconditional_match(runs["unconditional"][0], n, args.seed)
    print(f"\nhair colour asked for vs drawn, {args.model} at {args.resolution}², {args.kimg:g} kimg each, "
          f"{n} samples per model (psi {args.psi:g})")
    print(f"{'':32}{'match':>8}{'SWD':>10}{'train s':>10}")
    print(f"{'classifier on real faces':32}{classifier:8.3f}")
    print(f"{'chance (1/13)':32}{1 / 13:8.3f}")
    for kind in runs:
        print(f"{kind + ' model':32}{result[kind + '_match']:8.3f}{result['swd'][kind]:10.2f}"
              f"{result['train_seconds'][kind]:10.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
