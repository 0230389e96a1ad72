"""Sampling speed and export sizes of an imported StyleGAN3 pickle (issue 24's Measure): T and R at 256².

Writes a random-weight stylegan3 pickle of the genuine structure with the tests' writers
(tests/original_stylegan3_torch.py, train.py's sizes as benchmarks/import_pickles.py's 1024² config T; config
R doubles G's channel_base/channel_max, 1×1 convolutions, radial filters), opens it with
`stylegan_exp.models.load_snapshot` and builds its Gs as sample.py does, then
  * samples as `sample.py` does (`generate()`: compiled, padded batches) at each of `--batches`, ψ `--psi`,
    the snapshot's cutoff (every layer): the first call of each batch size (trace + one batch; the very
    first also starts TensorFlow's runtime) is timed alone, then rounds alternate between the batch sizes;
    the best round counts (other processes only slow a run down);
  * exports Gs with `sample.py task=export`'s code (`export_files`), one format at a time (its time includes
    the SavedModel every format is converted from), records each file's size, and times every file through the
    export's own reader beside compiled `generate()`, rounds alternating, the median counting (as
    benchmarks/export_speed.py). A format that refuses the model is listed with its one-line reason.
The weights do not change the cost. Convolution GFLOP per image count the modulated convolutions only.
Peak memory of sampling at 256² (measured at batches 1 and 2): T 1.9 GB at batch 1, ~11 GB at 8; R 3.2 GB at
batch 1, ~20 GB at 8 (too much for a 23 GB machine: time R at batches 1 and 4). tf2onnx's conversion peaked
at 7.7 GB at 32².

    .venv/bin/python benchmarks/sg3_sampling.py                     # T at 256², batch 1 and 8
    .venv/bin/python benchmarks/sg3_sampling.py --configs R --batches 1 4 \\
        --out benchmarks/results/sg3_sampling_r.json
    .venv/bin/python benchmarks/sg3_sampling.py --formats           # T, no export
    .venv/bin/python benchmarks/sg3_sampling.py --resolution 32 --batches 1 2 --images 2 \\
        --rounds 1 --export-calls 1 --export-rounds 1 --out /tmp/sg3.json     # a smoke run
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests")]
# First the package: it quiets TensorFlow's start-up log before TensorFlow is imported.
importlib.import_module("stylegan_exp")

from export_speed import measure, runners  # noqa: E402
from import_pickles import SG3_T  # noqa: E402
from train_speed import aligned, machine_info, write_results  # noqa: E402

from stylegan_exp.config import ExportFormat, ExportTask  # noqa: E402
from stylegan_exp.models import load_snapshot, network  # noqa: E402
from stylegan_exp.models.stylegan3.config import StyleGAN3Config  # noqa: E402
from stylegan_exp.models.stylegan3.generator import layout_of  # noqa: E402
from stylegan_exp.nets.generator import Generator  # noqa: E402
from stylegan_exp.resolution import log2_int  # noqa: E402
from stylegan_exp.sample.export import export_files, size_on_disk  # noqa: E402
from stylegan_exp.sample.export_graph import ExportedGenerator  # noqa: E402
from stylegan_exp.sample.generate import SampleError, generate  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "results" / "sg3_sampling.json"
CONFIGS = {"T": SG3_T, "R": dict(SG3_T, conv_kernel=1, channel_base=2 * SG3_T["channel_base"],
                                 channel_max=2 * SG3_T["channel_max"], use_radial_filters=True)}
SAMPLE_PY = "generate() (sample.py)"
log = logging.getLogger("sg3_sampling")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["T"], help="stylegan3 configs")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="sample.py batch sizes to time")
    p.add_argument("--psi", type=float, default=0.7, help="truncation ψ (the snapshot's cutoff: every layer)")
    p.add_argument("--images", type=int, default=8,
                   help="images per timed round and batch size (rounded up to a whole number of batches)")
    p.add_argument("--rounds", type=int, default=3,
                   help="sampling rounds alternating batch sizes; the best counts")
    p.add_argument("--formats", nargs="*", choices=[f.value for f in ExportFormat],
                   default=[f.value for f in ExportFormat],
                   help="export formats (none: no export)")
    p.add_argument("--export-batch", type=int, default=1, help="images per call of an exported file")
    p.add_argument("--export-calls", type=int, default=1, help="timed calls per file in each export round")
    p.add_argument("--export-rounds", type=int, default=3, help="alternating rounds; the median counts")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = p.parse_args(argv)
    log2_int(args.resolution, "--resolution")
    args.formats = [ExportFormat(f) for f in args.formats]
    if min(args.batches + [args.images, args.rounds, args.export_batch, args.export_calls,
                           args.export_rounds]) < 1:
        p.error("--batches, --images, --rounds and --export-* must be ≥ 1")
    return args


def write_pickle(kw: dict[str, Any], path: Path) -> None:
    """The training loop's stylegan3 snapshot pickle (G, D, G_ema) as the tests write it."""
    from original_stylegan2_torch import write_network_pkl
    from original_stylegan3_torch import network_data

    data, _ = network_data(kw)
    write_network_pkl(path, data)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (a high-water mark: it only grows)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def conv_gflop(model: StyleGAN3Config, resolution: int) -> float:
    """GFLOP of the synthesis layers' modulated convolutions for one image (filters and mapping left out)."""
    _, layers = layout_of(model, resolution, 3)
    macs = sum(s.in_size**2 * (1 if s.is_torgb else s.conv_kernel) ** 2 * s.in_channels * s.out_channels
               for s in layers)
    return 2 * macs / 1e9


def time_sampling(Gs: Generator, cutoff: int | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per batch size: the first generate() call (trace + one batch) alone, then the best of alternating
    rounds of `--images` seeds, as img/s of wall time and per CPU-second of this process."""
    first = {}
    for batch in args.batches:
        t0 = time.perf_counter()
        generate(Gs, list(range(batch)), psi=args.psi, cutoff=cutoff, batch_size=batch)
        first[batch] = time.perf_counter() - t0
        log.info("  batch %d: first call %.1f s", batch, first[batch])
    rounds: dict[int, list[tuple[float, float]]] = {batch: [] for batch in args.batches}
    for rnd in range(args.rounds):
        for batch in args.batches if rnd % 2 == 0 else args.batches[::-1]:
            seeds = list(range(-(-args.images // batch) * batch))
            t0, c0 = time.perf_counter(), time.process_time()
            generate(Gs, seeds, psi=args.psi, cutoff=cutoff, batch_size=batch)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rounds[batch].append((len(seeds) / wall, len(seeds) / cpu))
            log.info("  round %d, batch %d: %.2f img/s (load %.1f)", rnd + 1, batch, rounds[batch][-1][0],
                     os.getloadavg()[0])
    rows = []
    for batch, measured in rounds.items():
        best = max(w for w, _ in measured)
        rows.append({"batch": batch, "first_call_s": first[batch], "trace_s": first[batch] - batch / best,
                     "img_per_sec": best, "img_per_cpu_sec": max(c for _, c in measured), "rounds": measured})
    return rows


def time_exports(Gs: Generator, cutoff: int, out_dir: Path, args: argparse.Namespace,
                 ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Each format exported on its own (its size and export time), then every file timed beside generate();
    and the formats that refused the model, with their reason."""
    module = ExportedGenerator(Gs)
    files: dict[str, dict[str, Any]] = {}
    exported: dict[str, dict[str, Any]] = {}
    refused = {}
    for fmt in args.formats:
        (out_dir / fmt).mkdir()
        t0 = time.perf_counter()
        try:
            made = export_files(module, ExportTask(formats=[fmt]), [fmt], out_dir / fmt)
        except SampleError as exc:
            refused[fmt] = str(exc)
            log.info("  %s refused: %s", fmt, exc)
            continue
        seconds = time.perf_counter() - t0
        for key, entry in made.items():
            files[key] = dict(entry, path=f"{fmt}/{entry['path']}")
            exported[key] = {"export_s": seconds, "export_format": fmt, "peak_rss_mb_after": peak_rss_mb(),
                             "megabytes": size_on_disk(out_dir / files[key]["path"]) / 1e6}
        log.info("  %s: exported in %.0f s (%s); peak memory so far %.1f GB", fmt, seconds, ", ".join(made),
                 peak_rss_mb() / 1e3)
    calls = runners(Gs, files, out_dir, args.export_batch, psi=args.psi, cutoff=cutoff)
    del calls["eager Gs (z)"]
    seeds = list(range(args.export_batch))
    calls[SAMPLE_PY] = lambda: generate(Gs, seeds, psi=args.psi, cutoff=cutoff, batch_size=len(seeds))
    speeds = measure(calls, argparse.Namespace(rounds=args.export_rounds, calls=args.export_calls,
                                               batch=args.export_batch))
    rows = [{"format": name, "batch": args.export_batch, "img_per_sec": speed,
             "vs_generate": speed / speeds[SAMPLE_PY], **exported.get(name.split(" (")[0], {})}
            for name, speed in speeds.items()]
    return rows, refused


def bench_config(name: str, args: argparse.Namespace) -> dict[str, Any]:
    kw = dict(CONFIGS[name], img_resolution=args.resolution)
    with tempfile.TemporaryDirectory(prefix="sg3-sampling-") as tmp:
        path = Path(tmp) / f"config-{name.lower()}-{args.resolution}.pkl"
        t0 = time.perf_counter()
        write_pickle(kw, path)
        log.info("config %s at %d²: wrote a %.0f MiB pickle in %.0f s", name, args.resolution,
                 path.stat().st_size / 2**20, time.perf_counter() - t0)
        t0 = time.perf_counter()
        snap = load_snapshot(path)
        load_s = time.perf_counter() - t0
        Gs = network(snap, "Gs")
        cutoff = snap.model.truncation_cutoff
        log.info("  opened in %.1f s: %s; sampling", load_s, type(snap.model).__name__)
        result = {"config": name, "kwargs": kw, "pickle_mib": path.stat().st_size / 2**20,
                  "load_snapshot_s": load_s, "truncation_cutoff": cutoff,
                  "conv_gflop_per_img": conv_gflop(snap.model, args.resolution),
                  "sampling": time_sampling(Gs, cutoff, args)}
        result["peak_rss_mb_after_sampling"] = peak_rss_mb()
        log.info("  peak memory so far %.1f GB", peak_rss_mb() / 1e3)
        if args.formats:
            log.info("  exporting %s", ", ".join(args.formats))
            export_dir = Path(tmp) / "export"
            export_dir.mkdir()
            result["export"], result["refused"] = time_exports(
                Gs, Gs.num_layers if cutoff is None else cutoff, export_dir, args)
            result["peak_rss_mb_after_export"] = peak_rss_mb()
    return result


def tables(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    head = ("config", "batch", "first call s", "trace ≈ s", "img/s (best)", "img/CPU-s", "conv GFLOP/s")
    body = [(r["config"], str(s["batch"]), f"{s['first_call_s']:.1f}", f"{s['trace_s']:.1f}",
             f"{s['img_per_sec']:.3g}", f"{s['img_per_cpu_sec']:.3g}",
             f"{s['img_per_sec'] * r['conv_gflop_per_img']:.0f}") for r in results for s in r["sampling"]]
    text = [f"sample.py's generate() of an imported stylegan3 pickle at {args.resolution}², ψ {args.psi}, "
            f"every layer truncated; {args.images} images per round, best of {args.rounds}; conv GFLOP/img: "
            + ", ".join(f"{r['config']} {r['conv_gflop_per_img']:.0f}" for r in results),
            aligned(head, body)]
    exports = [(r["config"], e) for r in results for e in r.get("export", [])]
    if exports:
        head = ("config", "format (signature)", "MB", "export s", "img/s (median)", "vs generate()")
        body = [(name, e["format"], f"{e['megabytes']:.1f}" if "megabytes" in e else "-",
                 f"{e['export_s']:.0f}" if "export_s" in e else "-", f"{e['img_per_sec']:.3g}",
                 f"{e['vs_generate']:.2f}×") for name, e in exports]
        text += [f"\nexported files (sample.py task=export), batch {args.export_batch}, median of "
                 f"{args.export_rounds} rounds of {args.export_calls} calls", aligned(head, body)]
    text += [f"{r['config']}: {fmt} refused: {why}"
             for r in results for fmt, why in r.get("refused", {}).items()]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # SavedModel and the converters log every step
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # and each batch size's trace is a "retracing"
    args = parse_args(argv)
    loads = [os.getloadavg()[0]]
    results = []
    for name in args.configs:
        results.append(bench_config(name, args))
        loads.append(os.getloadavg()[0])
    print()
    print(tables(results, args))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result = {"machine": {**machine_info(), "loadavg_range": [min(loads), max(loads)]}, "settings": settings,
              "results": results}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
