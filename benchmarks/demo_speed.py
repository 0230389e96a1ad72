"""Seconds per kimg of the README's demo runs, as a user runs them: `train.py +experiment=<demo>` unchanged
(wandb off), then the ticks' `sec_per_kimg` from its metrics.jsonl — the first tick (which traces the steps)
apart from the rest, and per resolution for the growing StyleGAN demo.

    nice -n 19 .venv/bin/python benchmarks/demo_speed.py --experiment demo_stylegan2      # 13 min
    nice -n 19 .venv/bin/python benchmarks/demo_speed.py --experiment demo                # 15 min
    .venv/bin/python benchmarks/demo_speed.py --experiment tiny --out benchmarks/results/tiny.json  # smoke
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "benchmarks" / "published"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--experiment", default="demo_stylegan2", help="conf/experiment/<name>.yaml")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON results file (default benchmarks/published/demo_speed-<experiment>.json)")
    p.add_argument("overrides", nargs="*", help="further train.py overrides (none for the README's numbers)")
    return p.parse_args(argv)


def run_demo(experiment: str, overrides: list[str], outputs: Path) -> Path:
    """train.py as the README runs it, into `outputs`; returns the run directory."""
    args = [sys.executable, str(REPO / "train.py"), f"+experiment={experiment}", "logger=none",
            f"outputs_root={outputs}", *overrides]
    proc = subprocess.run(args, cwd=outputs, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"train.py failed:\n{proc.stderr[-3000:]}")
    (run_dir,) = [d for d in outputs.glob("*/*") if (d / "metrics.jsonl").is_file()]
    return run_dir


def summarize(ticks: list[dict[str, Any]]) -> dict[str, Any]:
    """sec/kimg of the first tick, and min–max of the later ticks overall and per resolution."""
    if not ticks:
        raise SystemExit("the run logged no tick: nothing to measure")
    later = ticks[1:]
    per_res: dict[int, list[float]] = {}
    for t in later:
        per_res.setdefault(int(t["resolution"]), []).append(t["sec_per_kimg"])
    return {"first_tick_sec_per_kimg": ticks[0]["sec_per_kimg"],
            "later_sec_per_kimg": [min(t["sec_per_kimg"] for t in later),
                                   max(t["sec_per_kimg"] for t in later)] if later else None,
            "later_by_resolution": {res: [min(v), max(v)] for res, v in sorted(per_res.items())},
            "final_kimg": ticks[-1]["kimg"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="demo-speed-") as tmp:
        run_dir = run_demo(args.experiment, args.overrides, Path(tmp))
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = ("tick", "kimg", "resolution", "lod", "sec_per_kimg")
    ticks = [{k: r[k] for k in keys} for r in rows if "tick" in r]
    print(f"{'tick':>4} {'kimg':>7} {'res':>4} {'lod':>5} {'sec/kimg':>9}")
    for t in ticks:
        print(f"{t['tick']:>4} {t['kimg']:>7.1f} {t['resolution']:>4} {t['lod']:>5.2f} "
              f"{t['sec_per_kimg']:>9.2f}")
    summary = summarize(ticks)
    print(json.dumps(summary))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    results = {"experiment": args.experiment, "overrides": args.overrides, "commit": commit,
               "machine": platform.processor() or platform.machine(), "summary": summary, "ticks": ticks}
    out = args.out or PUBLISHED / f"demo_speed-{args.experiment}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
