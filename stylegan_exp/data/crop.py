"""Stage 2, crop: square anime-face crops found by lbpcascade_animeface (OpenCV, CPU only), or crops at
`crop.aspect` (e.g. 1:2 portraits: the face's square grown downwards over the shoulders).

Detection follows the cascade's reference recipe (grayscale, equalizeHist, scaleFactor 1.1,
minNeighbors 5) on the upright image (EXIF orientation applied, transparency composited). The
minimum face size is a promise: no kept face is smaller (the seed used 256 px), also when the whole
image is; an image whose faces are all smaller is `face-too-small`, one without any `no-face`. One
worker process per core, each with OpenCV's own threads off so workers do not oversubscribe cores.
CLI: ``python -m stylegan_exp.data.crop SRC DST [--cascade PATH] [--min-face-size 256] …``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import sys
import urllib.request
from functools import partial
from pathlib import Path

import numpy as np

from stylegan_exp.aspect import Aspect, AspectError, parse_aspect
from stylegan_exp.atomic import write_atomic
from stylegan_exp.data.images import encode_image, load_image
from stylegan_exp.data.manifest import (
    Outcome,
    StageError,
    StageResult,
    input_tags,
    output_name,
    resolve_inputs,
    run_stage,
    stage_cli,
)
from stylegan_exp.data.prepare_config import CropConfig, RunOptions
from stylegan_exp.data.settings import stage_settings

CASCADE_URL = (
    "https://raw.githubusercontent.com/nagadomi/lbpcascade_animeface/master/lbpcascade_animeface.xml"
)
CASCADE_SHA256 = "9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30"
CACHE_DIR = Path(os.environ.get("STYLEGAN_EXP_CACHE", Path.home() / ".cache" / "stylegan_exp"))

_DETECTORS: dict[str, object] = {}
_CASCADE_WINDOW = 24  # lbpcascade_animeface's own (smallest) window.


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cascade_file(path: str | None = None, *, url: str = CASCADE_URL, cache_dir: Path | None = None) -> Path:
    """A local cascade as given, or the public one downloaded once, checked against its sha256 and
    cached (a corrupted or tampered download is refused, never cached)."""
    if path:
        local = Path(path)
        if not local.is_file():
            raise StageError(f"crop.cascade: file {local} does not exist")
        return local
    cached = (cache_dir or CACHE_DIR) / "lbpcascade_animeface.xml"
    if cached.is_file() and _sha256(cached.read_bytes()) == CASCADE_SHA256:
        return cached
    offline = "download it on a machine with access and give crop.cascade=PATH (the CLI: --cascade PATH)"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StageError(f"cannot download the face cascade from {url} ({reason}); {offline}") from exc
    if _sha256(data) != CASCADE_SHA256:
        raise StageError(f"the face cascade from {url} does not match sha256 {CASCADE_SHA256} (a proxy's "
                         f"page?); {offline}")
    try:
        write_atomic(cached, data)
    except OSError as exc:
        raise StageError(f"cannot cache the face cascade in {cached.parent} ({exc.strerror}); set "
                         "STYLEGAN_EXP_CACHE to a writable folder or give crop.cascade=PATH") from exc
    return cached


def detector(cascade: str):
    """The OpenCV cascade classifier in `cascade`, loaded once per process."""
    import cv2

    if cascade not in _DETECTORS:
        cv2.setNumThreads(0)  # One process per core already; OpenCV threads would oversubscribe.
        classifier = cv2.CascadeClassifier(cascade)
        if classifier.empty():
            raise StageError(f"cascade file {cascade} is not a valid OpenCV cascade")
        _DETECTORS[cascade] = classifier
    return _DETECTORS[cascade]


def _detect(
    gray: np.ndarray, cascade: str, cfg: CropConfig, min_size: int
) -> list[tuple[int, int, int, int]]:
    import cv2

    if min(gray.shape) < min_size:
        return []  # OpenCV would still try the cascade's own window size on a smaller image.
    boxes = detector(cascade).detectMultiScale(
        cv2.equalizeHist(gray), scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
        minSize=(min_size, min_size)
    )
    return [tuple(int(v) for v in box) for box in boxes if min(box[2], box[3]) >= min_size]


def detect_faces(rgb: np.ndarray, cascade: str, cfg: CropConfig) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) at least min_face_size on each side, largest first."""
    import cv2

    boxes = _detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cascade, cfg, cfg.min_face_size)
    return sorted(boxes, key=lambda b: (-b[2] * b[3], b[1], b[0]))


def smaller_face(rgb: np.ndarray, cascade: str, cfg: CropConfig) -> int | None:
    """The side of the largest face found on a copy whose longer side is at most small_face_scan px
    (in the image's pixels), or None: tells an image with only small faces from one without any."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, cfg.small_face_scan / max(gray.shape))
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    boxes = _detect(gray, cascade, cfg, _CASCADE_WINDOW)
    return round(max(max(b[2], b[3]) for b in boxes) / scale) if boxes else None


def square_box(
    box: tuple[int, int, int, int], margin: float, width: int, height: int
) -> tuple[int, int, int]:
    """(x, y, side) of the square around a box widened by `margin` per side, shifted (and if need be
    shrunk) to lie inside the image rather than padded with invented pixels."""
    x, y, w, h = box
    side = min(round(max(w, h) * (1 + 2 * margin)), width, height)
    cx, cy = x + w / 2, y + h / 2
    left = int(min(max(round(cx - side / 2), 0), width - side))
    top = int(min(max(round(cy - side / 2), 0), height - side))
    return left, top, side


def aspect_box(
    box: tuple[int, int, int, int], margin: float, width: int, height: int, aspect: Aspect
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the `aspect` rectangle around a face box: its margin-widened square (side s) grown to
    s·aspect (a portrait below the face, so the face sits in its top square; a landscape to both sides),
    shrunk if the image is too small for it and shifted to lie inside the image, never padded."""
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    unit = max(1, min(side, width // aspect.width, height // aspect.height))
    out_w, out_h = unit * aspect.width, unit * aspect.height
    cx, cy = x + w / 2, y + h / 2
    left = int(min(max(round(cx - out_w / 2), 0), width - out_w))
    top = int(min(max(round(cy - unit / 2), 0), height - out_h))  # the face in the top unit square
    return left, top, out_w, out_h


def crop_file(key: str, path: Path, cascade: str, cfg: CropConfig) -> list[Outcome]:
    rgb = load_image(path, channels=3, background=tuple(cfg.background), max_pixels=cfg.max_pixels)
    boxes = detect_faces(rgb, cascade, cfg)
    if not boxes:
        side = smaller_face(rgb, cascade, cfg)
        if side is not None:
            return [Outcome(None, False, "face-too-small", extra={"face": side})]
        return [Outcome(None, False, "no-face")]
    outcomes = []
    aspect = parse_aspect(cfg.aspect, "crop.aspect")
    for i, box in enumerate(boxes):
        if not aspect.square:
            x, y, w, h = aspect_box(box, cfg.margin, rgb.shape[1], rgb.shape[0], aspect)
            data = encode_image(np.ascontiguousarray(rgb[y : y + h, x : x + w]), cfg.image_format)
            outcomes.append(Outcome(output_name(key, cfg.image_format, f"_face{i}"), True, "face", data,
                                    {"box": [x, y, w, h]}))
            continue
        x, y, side = square_box(box, cfg.margin, rgb.shape[1], rgb.shape[0])
        data = encode_image(np.ascontiguousarray(rgb[y : y + side, x : x + side]), cfg.image_format)
        outcomes.append(Outcome(output_name(key, cfg.image_format, f"_face{i}"), True, "face", data,
                                {"box": [x, y, side]}))
    return outcomes


def run(src: str | os.PathLike, dst: str | os.PathLike, cfg: CropConfig, options: RunOptions) -> StageResult:
    """Crop every face of SRC's images into DST (one file per face; images without one are dropped)."""
    try:
        square = parse_aspect(cfg.aspect, "crop.aspect").square
    except AspectError as exc:
        raise StageError(str(exc)) from None
    cascade = str(cascade_file(cfg.cascade))
    detector(cascade)  # Fail on a bad cascade now, not in every worker.
    items = resolve_inputs(src)
    # The cascade by its content: the downloaded one and the same file given as a path make the same crops.
    made_by = dataclasses.replace(cfg, cascade=f"sha256:{_sha256(Path(cascade).read_bytes())}")
    settings = stage_settings("crop", made_by, src, ["aspect"] if square else [])  # squares: as before
    work = partial(crop_file, cascade=cascade, cfg=cfg)
    return run_stage("crop", items, dst, work, options, settings=settings, tags=input_tags(src))


def main(argv: list[str] | None = None) -> int:
    return stage_cli("crop", CropConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
