"""Import time and peak memory of 1024² config-F pickles: stylegan2-ada TensorFlow and stylegan2-ada-pytorch.

Writes random-weight pickles of the genuine structure with the tests' writers (tests/original_stylegan2*.py:
G, D and Gs/G_ema at 1024², fmap_base 16384 / channel_base 32768, 8 mapping layers, conv_clamp 256), then
opens each with `stylegan_exp.models.load_snapshot` (read, rename, reshape, check against our networks'
shapes) in a fresh process, timed, with that process's peak RSS beside the peak of a process that only
imports the package (TensorFlow included). The median of `--repeats` fresh processes counts.

    .venv/bin/python benchmarks/import_pickles.py                 # both formats, 3 repeats
    .venv/bin/python benchmarks/import_pickles.py --repeats 1 --formats torch
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests")]

from train_speed import machine_info, write_results  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "published" / "import_pickles.json"
FORMATS = ("tf", "torch")
TF_F = dict(num_channels=3, label_size=0, latent_size=512, dlatent_size=512, mapping_layers=8,
            mapping_fmaps=512, mapping_lrmul=0.01, mbstd_group_size=4, mbstd_num_features=1, resolution=1024,
            fmap_base=16384, fmap_max=512, g_arch="skip", d_arch="resnet", conv_clamp=256)
TORCH_F = dict(z_dim=512, w_dim=512, num_layers=8, layer_features=512, lr_multiplier=0.01, img_channels=3,
               mbstd_group_size=4, mbstd_num_channels=1, channel_max=512, img_resolution=1024,
               channel_base=32768, g_arch="skip", d_arch="resnet", conv_clamp=256)
CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from stylegan_exp.models import load_snapshot
imported = time.perf_counter()
snap = None if sys.argv[1] == "-" else load_snapshot(sys.argv[1])
done = time.perf_counter()
print(json.dumps({"import_package_s": imported - t0, "load_snapshot_s": done - imported,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "weights_mb": 0 if snap is None else sum(a.nbytes for a in snap.weights.values()) / 2**20}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per format; the median counts")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be ≥ 1")
    return args


def write_pickle(fmt: str, path: Path) -> None:
    if fmt == "tf":
        from test_stylegan2_ada_tf import write_ada_pkl

        write_ada_pkl(path, TF_F)
    else:
        from original_stylegan2_torch import network_data, write_network_pkl

        data, _ = network_data(TORCH_F)
        write_network_pkl(path, data)


def child(source: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", CHILD, source], capture_output=True, text=True, cwd=REPO,
                          timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    baseline = [child("-") for _ in range(args.repeats)]
    base_rss = statistics.median(r["peak_rss_mb"] for r in baseline)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats:
            path = Path(tmp) / f"config-f-1024-{fmt}.pkl"
            started = time.perf_counter()
            write_pickle(fmt, path)
            size = path.stat().st_size / 2**20
            print(f"{fmt}: wrote {size:.0f} MiB in {time.perf_counter() - started:.0f} s")
            runs = [child(str(path)) for _ in range(args.repeats)]
            peak = statistics.median(r["peak_rss_mb"] for r in runs)
            rows.append({"format": fmt, "pickle_mib": size,
                         "load_snapshot_s": statistics.median(r["load_snapshot_s"] for r in runs),
                         "peak_rss_mb": peak, "peak_rss_over_package_mb": peak - base_rss,
                         "weights_mb": runs[0]["weights_mb"], "runs": runs})
    print(f"\n{'format':<8}{'pickle MiB':>12}{'import s':>10}{'peak RSS MB':>13}{'over package':>14}"
          f"{'weights MB':>12}")
    for r in rows:
        print(f"{r['format']:<8}{r['pickle_mib']:>12.0f}{r['load_snapshot_s']:>10.1f}{r['peak_rss_mb']:>13.0f}"
              f"{r['peak_rss_over_package_mb']:>14.0f}{r['weights_mb']:>12.0f}")
    print(f"(a process that only imports the package peaks at {base_rss:.0f} MB)")
    write_results(args.out, {"machine": machine_info(), "settings": {"repeats": args.repeats, "tf": TF_F,
                                                                     "torch": TORCH_F},
                             "package_only": {"peak_rss_mb": base_rss, "runs": baseline}, "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
