"""How close the memory plan's estimate (stylegan_exp.memory_plan) is to the peak memory a training step
really takes, on this machine's CPU: each case trains a few iterations in a fresh process (gpu_speed.measure:
the process's peak RSS above what it held before building the networks) and is compared with the estimate
for the same networks, batch and precision.

    python benchmarks/plan_accuracy.py      # prints a table, writes benchmarks/published/plan_accuracy.json
    python benchmarks/plan_accuracy.py --measured benchmarks/published/plan_accuracy.json   # re-estimate only
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

PACKAGE = importlib.import_module("stylegan_exp")  # quiets TensorFlow's start-up log before its import

from gpu_speed import run_child  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from stylegan_exp.config import Precision, to_object  # noqa: E402
from stylegan_exp.gpu_plan import element_bytes  # noqa: E402
from stylegan_exp.memory_plan import GIB, activation_bytes, peak_bytes, weight_bytes  # noqa: E402
from stylegan_exp.network_cost import network_costs  # noqa: E402
from stylegan_exp.schemas import register_configs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "published" / "plan_accuracy.json"
# (model, resolution, batch, precision): the default networks (512 feature maps at the top).
CASES = [("stylegan", 32, 8, "float32"), ("stylegan", 32, 32, "float32"), ("stylegan", 64, 16, "float32"),
         ("stylegan", 64, 16, "mixed_bfloat16"), ("stylegan2", 32, 8, "float32"),
         ("stylegan2", 64, 8, "float32")]


def estimate(arch: str, resolution: int, batch: int, precision: str) -> dict[str, float]:
    """The plan's estimate and its parts (GB)."""
    register_configs()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = to_object(compose("train", overrides=[f"model={arch}", f"model.precision={precision}"]))
    cost = network_costs(cfg.model, resolution, 3, [resolution])[resolution]
    size = element_bytes(Precision(precision), 0)
    return {"estimate_gb": peak_bytes(cost, batch, 1, size) / GIB, "weights_gb": weight_bytes(cost, 1) / GIB,
            "activations_gb": activation_bytes(cost, batch, size) / GIB}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--measured", type=Path, help="reuse the measurements of this earlier JSON")
    args = ap.parse_args(argv)
    earlier = {}
    if args.measured:
        earlier = {(r["model"], r["resolution"], r["batch"], r["precision"]): r["measured_gb"]
                   for r in json.loads(args.measured.read_text())["rows"]}
    rows = []
    print(f"{'model':<10} {'res':>5} {'batch':>5} {'precision':<15} {'estimate GB':>11} {'measured GB':>11} "
          f"{'error':>7}")
    for arch, res, batch, precision in CASES:
        key = (arch, res, batch, precision)
        if key in earlier:
            measured = {"peak_gb": earlier[key]}
        else:
            measured = run_child({"arch": arch, "resolution": res, "batch": batch, "precision": precision,
                                  "xla": False, "devices": 1, "steps": args.steps, "warmup": 1,
                                  "overrides": []}, timeout=3600)
        if "error" in measured:
            print(f"{arch} {res}² failed: {measured['error']}")
            continue
        parts = estimate(arch, res, batch, precision)
        est = parts["estimate_gb"]
        row = {"model": arch, "resolution": res, "batch": batch, "precision": precision, **parts,
               "measured_gb": measured["peak_gb"], "error": est / measured["peak_gb"] - 1}
        rows.append(row)
        print(f"{arch:<10} {res:>4}² {batch:>5} {precision:<15} {est:>11.2f} {row['measured_gb']:>11.2f} "
              f"{row['error']:>+7.0%}", flush=True)
    errors = [abs(r["error"]) for r in rows]
    if errors:
        print(f"mean |error| {sum(errors) / len(errors):.0%}, max {max(errors):.0%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                    "machine": platform.node(), "processor": platform.processor(),
                                    "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
