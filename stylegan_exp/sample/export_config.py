"""The typed config of `sample.py task=export` (registered with the other tasks in config.TASKS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ExportFormat(StrEnum):
    saved_model = "saved_model"
    tflite = "tflite"
    onnx = "onnx"


class TFLiteWeights(StrEnum):
    float32 = "float32"
    float16 = "float16"  # weights stored as float16, computed in float32


@dataclass
class ExportTask:
    """Gs as files that generate without this package (`formats`), described in export.json and checked
    against Gs on `verify_seeds` (empty: no check). ONNX needs opset ≥ 18 (the seed signature's bit ops)."""

    name: str = "export"
    formats: list[ExportFormat] = field(default_factory=lambda: [ExportFormat.saved_model,
                                                                 ExportFormat.tflite])
    tflite_weights: list[TFLiteWeights] = field(default_factory=lambda: list(TFLiteWeights))
    onnx_opset: int = 18
    verify_seeds: list[int] = field(default_factory=lambda: list(range(4)))
