"""The explorer's answer time: from a request (a slider moved to a new ψ) to the whole PNG received, p50 and
p95, for one face and for the style-mixing grid, with the server's memory — `sample.py task=explore` run as a
user runs it, on a random-weights snapshot of a model preset, one server per resolution and batch size.

The page keeps one request in flight per image, so requests here go one after another; each asks for a ψ
not asked before (the server traces once for every ψ: ψ is a tensor). batch_size 16 is sample.py's default,
which the explorer keeps so its PNGs equal sample.py's; batch_size 1 answers faster (equal to sample.py
batch_size=1's).

    .venv/bin/python benchmarks/explore_latency.py                          # model=small at 64² and 256²
    .venv/bin/python benchmarks/explore_latency.py --resolutions 64 --requests 10 --batch 16   # smoke run
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

importlib.import_module("stylegan_exp")  # quiets TensorFlow's log before TF's import

import numpy as np  # noqa: E402
from train_speed import aligned, child_env, load_model, machine_info, write_results  # noqa: E402

from stylegan_exp.models import build_discriminator, build_generator, save_snapshot  # noqa: E402
from stylegan_exp.resolution import log2_int  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "explore_latency.json"
URL_LINE = re.compile(r"explorer at (http://\S+/)")
log = logging.getLogger("explore_latency")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="small", help="the `model` preset (conf/model/<name>.yaml)")
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    p.add_argument("--batch", type=int, nargs="+", default=[16, 1], help="the servers' batch_size")
    p.add_argument("--requests", type=int, default=40, help="face requests per server (mixing: a quarter)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = p.parse_args(argv)
    for res in args.resolutions:
        log2_int(res, "--resolutions")
    if args.requests < 4 or min(args.batch) < 1:
        p.error("--requests must be ≥ 4 and --batch ≥ 1")
    return args


def random_snapshot(model_name: str, res: int, folder: Path) -> Path:
    model = load_model(model_name)
    G = build_generator(model, res)
    return save_snapshot(folder / f"network-snapshot-{model_name}-{res}.npz",
                         {"G": G, "D": build_discriminator(model, res), "Gs": G}, model=model, resolution=res,
                         num_channels=3, kimg=0.0)


def memory_mb(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of a process, MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    mb = {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}
    return {"rss_mb": mb["VmRSS"], "peak_rss_mb": mb["VmHWM"]}


def timed_get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - start


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def serve(snapshot: Path, batch: int, workdir: Path) -> tuple[subprocess.Popen, str, float]:
    """`sample.py task=explore` on the snapshot, its URL, and the seconds until it printed it."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(REPO / "sample.py"), "task=explore", f"snapshot={snapshot}",
                             "task.port=0", f"batch_size={batch}", f"outputs_root={workdir / 'outputs'}"],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=child_env(REPO))
    printed = []
    for line in proc.stdout:
        printed.append(line)
        found = URL_LINE.search(line)
        if found:
            return proc, found.group(1), time.perf_counter() - start
    raise SystemExit("sample.py task=explore printed no URL:\n" + "".join(printed))


def measure(snapshot: Path, res: int, batch: int, requests: int, workdir: Path) -> dict[str, Any]:
    proc, url, startup = serve(snapshot, batch, workdir)
    try:
        psis = np.round(np.linspace(0.2, 1.0, requests), 3)
        face = [timed_get(f"{url}api/face.png?seed=5&psi={psi}") for psi in psis]
        mix = [timed_get(f"{url}api/mix.png?psi={psi}") for psi in psis[: max(2, requests // 4)]]
        memory = memory_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    return {"resolution": res, "batch_size": batch, "startup_s": startup, "face": percentiles(face),
            "mixing_3x4": percentiles(mix), **memory}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for res in args.resolutions:
            snapshot = random_snapshot(args.model, res, workdir)
            for batch in args.batch:
                log.info("model=%s at %d², batch_size=%d …", args.model, res, batch)
                runs.append(measure(snapshot, res, batch, args.requests, workdir))
    head = ("res", "batch", "start-up s", "face p50 ms", "face p95 ms", "mixing 3×4 p50 ms", "p95 ms",
            "RSS MB", "peak RSS MB")
    body = [(f"{r['resolution']}²", str(r["batch_size"]), f"{r['startup_s']:.1f}",
             *(f"{r[k][q]:.0f}" for k in ("face", "mixing_3x4") for q in ("p50_ms", "p95_ms")),
             f"{r['rss_mb']:.0f}", f"{r['peak_rss_mb']:.0f}") for r in runs]
    print(aligned(head, body))
    write_results(args.out, {"machine": machine_info(), "model": args.model, "requests": args.requests,
                             "runs": runs})


if __name__ == "__main__":
    main()
