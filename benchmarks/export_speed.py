"""Images per second of each exported format on this CPU, beside the eager Gs they came from.

Exports a randomly initialised generator of a `model` preset (the weights do not change the cost) with
the same code as `sample.py task=export`, then times each file through the export's own reader on a batch
of z (and of seeds where the file has the seed signature). Rounds alternate between the formats so that
load from other processes is shared among them; the median round counts.

    .venv/bin/python benchmarks/export_speed.py                          # model=small at 64², batch 8
    .venv/bin/python benchmarks/export_speed.py --resolutions 32 128 --batch 1
"""

from __future__ import annotations

import argparse
import importlib
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# First the package: it quiets TensorFlow's start-up log before TensorFlow is imported.
importlib.import_module("stylegan_exp")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402
from train_speed import aligned, load_model, machine_info, write_results  # noqa: E402

from stylegan_exp.config import ExportFormat, ExportTask, ModelConfig  # noqa: E402
from stylegan_exp.models import build_generator  # noqa: E402
from stylegan_exp.resolution import log2_int  # noqa: E402
from stylegan_exp.sample.export import export_files, size_on_disk  # noqa: E402
from stylegan_exp.sample.export_graph import ExportedGenerator  # noqa: E402
from stylegan_exp.sample.export_reader import Exported  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "export_speed.json"
PSI, CUTOFF = 0.7, 8
log = logging.getLogger("export_speed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="small", help="the `model` preset (conf/model/<name>.yaml)")
    p.add_argument("--resolutions", type=int, nargs="+", default=[64])
    p.add_argument("--batch", type=int, default=8, help="images per call")
    p.add_argument("--calls", type=int, default=5, help="timed calls per format in each round")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median counts")
    p.add_argument("--formats", nargs="+", choices=list(ExportFormat), default=list(ExportFormat))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = p.parse_args(argv)
    for res in args.resolutions:
        log2_int(res, "--resolutions")
    if min(args.batch, args.calls, args.rounds) < 1:
        p.error("--batch, --calls and --rounds must be ≥ 1")
    return args


def runners(Gs: Any, files: dict[str, dict[str, Any]], out_dir: Path, batch: int, psi: float = PSI,
            cutoff: int = CUTOFF) -> dict[str, Callable[[], Any]]:
    """One zero-argument call per (format, signature), each generating `batch` images."""
    seeds = np.arange(batch, dtype=np.int64)
    z = np.random.RandomState(0).randn(batch, Gs.latent_size).astype(np.float32)
    scalars = {"truncation_psi": np.array(psi, np.float32), "truncation_cutoff": np.array(cutoff, np.int32)}
    calls: dict[str, Callable[[], Any]] = {
        "eager Gs (z)": lambda: Gs(tf.constant(z), psi=psi, cutoff=cutoff, randomize_noise=False).numpy()}
    for key, entry in files.items():
        exported = Exported(out_dir / entry["path"])
        for signature in exported.signatures:
            given = z if signature == "z" else seeds
            inputs = {signature: given, **scalars}
            calls[f"{key} ({signature})"] = lambda e=exported, s=signature, i=inputs: e.run(s, i)
    return calls


def measure(calls: dict[str, Callable[[], Any]], args: argparse.Namespace) -> dict[str, float]:
    """Median img/s over alternating rounds (one warm-up call each first)."""
    for call in calls.values():
        call()
    per_round: dict[str, list[float]] = {name: [] for name in calls}
    for _ in tqdm(range(args.rounds), desc="rounds", leave=False):
        for name, call in calls.items():
            t0 = time.perf_counter()
            for _ in range(args.calls):
                call()
            per_round[name].append(args.calls * args.batch / (time.perf_counter() - t0))
    return {name: statistics.median(values) for name, values in per_round.items()}


def bench_resolution(model: ModelConfig, res: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    tf.random.set_seed(0)
    Gs = build_generator(model, res)
    task = ExportTask(formats=list(args.formats))
    with tempfile.TemporaryDirectory(prefix="export-speed-") as tmp:
        files = export_files(ExportedGenerator(Gs), task, list(args.formats), Path(tmp))
        sizes = {key: size_on_disk(Path(tmp, entry["path"])) for key, entry in files.items()}
        speeds = measure(runners(Gs, files, Path(tmp), args.batch), args)
    eager = speeds["eager Gs (z)"]
    rows = []
    for name, speed in speeds.items():
        key = name.split(" (")[0]
        rows.append({"resolution": res, "batch": args.batch, "format": name, "img_per_sec": speed,
                     "vs_eager": speed / eager, "megabytes": sizes[key] / 1e6 if key in sizes else None})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = ("resolution", "batch", "format (signature)", "img/s", "vs eager Gs", "MB")
    body = [(f"{r['resolution']}²", str(r["batch"]), r["format"], f"{r['img_per_sec']:.1f}",
             f"{r['vs_eager']:.2f}×", "-" if r["megabytes"] is None else f"{r['megabytes']:.2f}")
            for r in rows]
    return aligned(head, body)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("absl", "tensorflow"):  # SavedModel and the converters log every step at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    args = parse_args(argv)
    model = load_model(args.model)
    rows = []
    for res in args.resolutions:
        log.info("%d²: exporting %s, then %d rounds of %d calls of %d images", res,
                 ", ".join(args.formats), args.rounds, args.calls, args.batch)
        rows += bench_resolution(model, res, args)
    print()
    print(format_table(rows))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result = {"machine": machine_info(), "settings": settings, "results": rows}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
