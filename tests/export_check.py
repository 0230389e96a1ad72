"""Run by test_export.py in a fresh Python process: open every exported file with the export's own
generate.py (never stylegan_exp) and measure its outputs against Gs's reference outputs.

    python tests/export_check.py EXPORT_DIR REFERENCE.npz   → one JSON line on stdout
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np


def load_reader(export_dir: Path):
    spec = importlib.util.spec_from_file_location("generate", export_dir / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def off_boundary(ref_float: np.ndarray, mismatch: np.ndarray, tolerance: float) -> int:
    """Mismatched uint8 pixels that a float error ≤ `tolerance` cannot explain: their reference value lies
    farther than tolerance · 127.5 from a rounding boundary (k + 0.5)."""
    scaled = (ref_float.astype(np.float64) + 1.0) * 127.5
    distance = np.abs(scaled - np.floor(scaled) - 0.5)
    inside = (scaled > -0.5) & (scaled < 255.5)  # clipped pixels cannot flip
    return int(np.sum(mismatch & inside & (distance > tolerance * 127.5)))


def main(export_dir: Path, reference: Path) -> dict:
    reader = load_reader(export_dir)
    meta = json.loads((export_dir / "export.json").read_text())
    ref = np.load(reference)
    seeds, z = ref["seeds"], ref["z"]
    results = []
    for key, entry in meta["files"].items():
        exported = reader.Exported(export_dir / entry["path"])
        for case, (psi, cutoff) in enumerate(ref["cases"]):
            ref_float, ref_uint8 = ref[f"float_{case}"], ref[f"uint8_{case}"]
            scalars = {"truncation_psi": np.array(psi, np.float32),
                       "truncation_cutoff": np.array(int(cutoff), np.int32)}
            for signature in exported.signatures:
                given = z if signature == "z" else seeds
                out = exported.run(signature, {signature: given, **scalars})
                mismatch = out["images"] != ref_uint8
                results.append({
                    "file": key, "signature": signature, "psi": float(psi), "cutoff": int(cutoff),
                    "images_shape": list(out["images"].shape), "images_dtype": str(out["images"].dtype),
                    "max_abs_float_error": float(np.abs(out["images_float"] - ref_float).max()),
                    "max_uint8_error": int(np.abs(out["images"].astype(int) - ref_uint8).max()),
                    "uint8_mismatches": int(mismatch.sum()),
                    "uint8_mismatches_beyond_1e-4": off_boundary(ref_float, mismatch, 1e-4),
                })
    return {"results": results, "imported_stylegan_exp": "stylegan_exp" in sys.modules}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
