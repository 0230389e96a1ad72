"""Does a tag direction learnt by `sample.py task=edit task.tag=…` move an unconditional model's faces
towards the tag? Trains the small StyleGAN at 32² on labelled synthetic faces (or takes --snapshot), learns
the direction for `smile` and for one hair colour with the edit task itself, then reads the edited faces
with the synthetic-face attribute reader (stylegan_exp.data.face_attributes) at every strength: the share
of faces with the tag (and, for smile, the mean smile margin), against the same reader on the reals.

Prints a table, writes benchmarks/results/tag_edit.json and copies each edit.png beside it.

    .venv/bin/python benchmarks/tag_edit.py                                   # 150 kimg, then the edits
    .venv/bin/python benchmarks/tag_edit.py --snapshot path/network-snapshot-000150.npz
    .venv/bin/python benchmarks/tag_edit.py --kimg 1 --count 300 --seeds 8 --probe-samples 64   # smoke
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# First the package: it quiets TensorFlow's start-up log before TensorFlow is imported.
importlib.import_module("stylegan_exp")

import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from stylegan_exp.config import to_object  # noqa: E402
from stylegan_exp.data.dataset_format import LabelSpace  # noqa: E402
from stylegan_exp.data.face_attributes import classify_faces, smile_margins  # noqa: E402
from stylegan_exp.data.synthetic import HAIR_COLORS, render_faces, sample_face_params  # noqa: E402
from stylegan_exp.data.writer import pack_arrays  # noqa: E402
from stylegan_exp.grid import to_uint8  # noqa: E402
from stylegan_exp.models import load_snapshot, network  # noqa: E402
from stylegan_exp.run import start_sampling  # noqa: E402
from stylegan_exp.sample.generate import seed_dlatents, synthesize  # noqa: E402
from stylegan_exp.schemas import register_configs  # noqa: E402
from stylegan_exp.train.loop import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
RES = 32
log = logging.getLogger("tag_edit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--snapshot", type=Path, help="an unconditional 32² snapshot (skips training)")
    p.add_argument("--kimg", type=float, default=150, help="training length when no --snapshot is given")
    p.add_argument("--count", type=int, default=4000, help="labelled synthetic faces (train and probe data)")
    p.add_argument("--hair", default="blonde", choices=HAIR_COLORS, help="the hair colour to edit towards")
    p.add_argument("--methods", nargs="+", default=["probe"], choices=["probe", "invert"])
    p.add_argument("--strengths", type=float, nargs="+", default=[-2, -1, 0, 1, 2])
    p.add_argument("--seeds", type=int, default=200, help="seeds edited and read per strength")
    p.add_argument("--probe-samples", type=int, default=2000, help="task.probe_samples")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--work", type=Path, default=RESULTS / "tag_edit", help="dataset, run, edit grids")
    p.add_argument("--out", type=Path, default=RESULTS / "tag_edit.json", help="JSON results file")
    return p.parse_args(argv)


def hair_tag(name: str) -> str:
    return f"{name}_hair"


def pack_labelled_faces(work: Path, count: int, seed: int) -> Path:
    """Synthetic faces at 32² tagged with their hair colour (a categorical group) and `smile`."""
    path = work / f"faces-{RES}-n{count}-seed{seed}"
    if path.exists():
        shutil.rmtree(path)
    hair = [hair_tag(c) for c in HAIR_COLORS]
    space = LabelSpace([*hair, "smile"], {"hair_color": hair})
    labels = []
    for i in range(count):
        p = sample_face_params(np.random.default_rng([seed, i]))
        smile = float(p.mouth_style == "smile")
        labels.append([*(float(c == p.hair_color_name) for c in HAIR_COLORS), smile])
    pack_arrays(render_faces(count, RES, seed), path, label_space=space, labels=labels,
                meta={"synthetic": {"count": count, "resolution": RES, "seed": seed}})
    return path


def train(dataset: Path, args: argparse.Namespace) -> Path:
    """The small model, unconditional, at 32² from the start; returns its last network snapshot."""
    overrides = [
        "model=small", "gpus=cpu", "dataset=folder", f"dataset.path={dataset}", f"dataset.resolution={RES}",
        "schedule=demo", f"schedule.lod_initial_resolution={RES}", f"schedule.total_kimg={args.kimg}",
        "schedule.max_minutes=null", f"schedule.tick_kimg_base={max(args.kimg / 10, 0.5)}", "logger=none",
        f"seed={args.seed}", "name=tag_edit", f"outputs_root={args.work / 'runs'}",
    ]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = to_object(compose("train", overrides=overrides))
    run_dir = args.work / "runs" / "unconditional"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    Trainer(cfg, run_dir).run()
    return sorted(run_dir.glob("network-snapshot-*.npz"))[-1]


def run_edit(snapshot: Path, dataset: Path, tag: str, method: str, args: argparse.Namespace) -> Path:
    """sample.py task=edit task.tag=<tag> in-process; returns its run dir."""
    run_dir = args.work / f"edit-{tag}-{method}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    overrides = [f"snapshot={snapshot}", "task=edit", f"task.tag={tag}", f"task.dataset={dataset}",
                 f"task.method={method}", f"task.probe_samples={args.probe_samples}",
                 f"task.seeds=[{','.join(map(str, range(8)))}]",
                 f"task.strengths=[{','.join(map(str, args.strengths))}]"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        start_sampling(compose("sample", overrides=overrides), str(run_dir))
    return run_dir


def read_edits(snapshot: Path, run_dir: Path, tag: str, args: argparse.Namespace) -> list[dict[str, float]]:
    """The reader's verdict on `--seeds` faces moved along the run's direction, per strength."""
    snap = load_snapshot(snapshot)
    Gs = network(snap, "Gs")
    direction = np.load(run_dir / "direction.npy")
    w = seed_dlatents(Gs, list(range(args.seeds)), psi=snap.model.truncation_psi,
                      cutoff=snap.model.truncation_cutoff)
    rows = []
    for strength in args.strengths:
        faces = to_uint8(synthesize(Gs, w + strength * direction))
        rows.append({"strength": strength, **verdict(faces, tag)})
    return rows


def verdict(faces: np.ndarray, tag: str) -> dict[str, float]:
    found = classify_faces(faces)
    if tag == "smile":
        return {"share_with_tag": float(found.smile.mean()),
                "smile_margin": float(smile_margins(faces).mean())}
    return {"share_with_tag": float(np.mean([hair_tag(n) == tag for n in found.hair_names]))}


def format_table(rows: list[dict[str, Any]], reals: dict[str, dict[str, float]]) -> str:
    from train_speed import aligned

    head = ("tag", "method", "probe balanced acc", "strength", "share with tag", "smile margin")
    body = []
    for r in rows:
        acc = f"{r['report']['probe_held_out_balanced_accuracy']:.3f}"
        for s in r["edits"]:
            margin = f"{s['smile_margin']:+.3f}" if "smile_margin" in s else "-"
            body.append((r["tag"], r["method"], acc, f"{s['strength']:+g}", f"{s['share_with_tag']:.3f}",
                         margin))
    for tag, v in reals.items():
        margin = f"{v['smile_margin']:+.3f}" if "smile_margin" in v else "-"
        body.append((tag, "reals", "", "", f"{v['share_with_tag']:.3f}", margin))
    return aligned(head, body)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from train_speed import machine_info, write_results

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    register_configs()
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    dataset = pack_labelled_faces(args.work, args.count, args.seed)
    snapshot = args.snapshot or train(dataset, args)
    trained_min = (time.time() - start) / 60
    tags = ["smile", hair_tag(args.hair)]
    real_faces = render_faces(min(args.count, 1000), RES, args.seed, progress=False)
    reals = {tag: verdict(real_faces, tag) for tag in tags}
    rows = []
    for tag in tags:
        for method in args.methods:
            run_dir = run_edit(snapshot, dataset, tag, method, args)
            shutil.copyfile(run_dir / "edit.png", args.work / f"edit-{tag}-{method}.png")
            report = json.loads((run_dir / "edit.json").read_text())
            rows.append({"tag": tag, "method": method, "report": report,
                         "edits": read_edits(snapshot, run_dir, tag, args)})
    print()
    print(format_table(rows, reals))
    result = {"machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()},
              "snapshot": str(snapshot), "kimg": load_snapshot(snapshot).kimg,
              "minutes_to_snapshot": trained_min,
              "reals": reals, "rows": rows}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
