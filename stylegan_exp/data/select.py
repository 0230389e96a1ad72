"""Stage 1, select: pick Danbooru posts by rating, tags, score and size, and find their files.

Metadata is JSON lines (one post per line: id, rating, tags [{name}] or tag_string, file_ext,
image_width, image_height, score; numbers may be strings as in the Danbooru2017+ dumps), given as a
file or a folder of files. Each selected post's tags go into the manifest, and every later stage
carries them to what it makes from the post, for a labelled pack (pack.labels=tags). Files are
looked up as ``SRC/{variant}/{id % 1000:04d}/{id}.{ext}`` (the 512px variant is always .jpg).
Without metadata, SRC is a plain folder or list file and every existing image is selected. The
manifest's kept outputs are absolute paths, the next stage's input.
CLI: ``python -m stylegan_exp.data.select SRC DST --metadata META [--ratings s] …``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from stylegan_exp.data.dataset_format import DatasetError, file_sha256
from stylegan_exp.data.labels import FolderTags, check_files, read_sidecar
from stylegan_exp.data.manifest import Outcome, StageError, StageResult, resolve_inputs, run_stage, stage_cli
from stylegan_exp.data.prepare_config import RunOptions, SelectConfig
from stylegan_exp.data.settings import stage_settings

VARIANTS = ("original", "512px")


def read_metadata(path: str | os.PathLike) -> dict[str, dict]:
    """Posts by id (as a string) from a JSON-lines file or every *.json* file of a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and ".json" in p.name)
    elif path.is_file():
        files = [path]
    else:
        raise StageError(f"metadata {path} does not exist")
    posts = {}
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                post = json.loads(line)
                posts[str(int(post["id"]))] = post
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise StageError(f"{file}:{number} is not a post with an id ({exc})") from exc
    return posts


def post_path(root: Path, post: dict, variant: str) -> Path:
    post_id = int(post["id"])
    ext = "jpg" if variant == "512px" else str(post.get("file_ext", "jpg")).lstrip(".")
    return root / variant / f"{post_id % 1000:04d}" / f"{post_id}.{ext}"


def post_tags(post: dict) -> list[str] | None:
    """A post's tag names: `tags` as [{name}, …] or names, else the space-separated `tag_string`; None
    when it has neither (unknown, not "no tags")."""
    if "tags" in post:
        return [t["name"] if isinstance(t, dict) else str(t) for t in post["tags"]]
    if "tag_string" in post:
        return str(post["tag_string"]).split()
    return None


def judge(post: dict, cfg: SelectConfig) -> str | None:
    """Why a post is not wanted, or None."""
    try:
        tags = set(post_tags(post) or ())
        score = int(post.get("score", 0))
        width, height = int(post.get("image_width", 0)), int(post.get("image_height", 0))
    except (KeyError, TypeError, ValueError):
        return "bad-metadata"
    if cfg.ratings and post.get("rating") not in cfg.ratings:
        return "rating"
    if any(tag not in tags for tag in cfg.required_tags):
        return "missing-tag"
    if any(tag in tags for tag in cfg.forbidden_tags):
        return "forbidden-tag"
    if cfg.min_score is not None and score < cfg.min_score:
        return "low-score"
    if min(width, height) < cfg.min_size:
        return "too-small"
    return None


def run(
    src: str | os.PathLike, dst: str | os.PathLike, cfg: SelectConfig, options: RunOptions
) -> StageResult:
    """Select posts (or all files of a folder / list) into DST's manifest."""
    options = dataclasses.replace(options, workers=1)  # Metadata checks are cheap; no pool needed.
    # A folder selected without a sidecar keeps the settings it was made with before sidecars existed.
    settings = stage_settings("select", cfg, src, [] if cfg.label_file else ["label_file"])

    if not cfg.metadata:
        items = resolve_inputs(src)
        found = _sidecar(cfg.label_file, [key for key, _ in items], src) if cfg.label_file else None
        if found is not None:
            settings["select.label_file_sha256"] = file_sha256(cfg.label_file)

        def keep_existing(key: str, path: Path) -> list[Outcome]:
            tags = {} if found is None or key not in found.tags else {"tags": found.tags[key]}
            return [Outcome(str(path.resolve()), True, "selected", extra=tags)]

        return run_stage("select", items, dst, keep_existing, options, settings=settings)
    if cfg.label_file:
        raise StageError("select.label_file is for a folder without metadata; posts bring their own tags")
    if cfg.variant not in VARIANTS:
        raise StageError(f"select variant must be one of {', '.join(VARIANTS)}, got {cfg.variant!r}")
    root = Path(src)
    if not root.is_dir():
        raise StageError(f"image root {root} does not exist")
    posts = read_metadata(cfg.metadata)
    items = sorted((key, post_path(root, post, cfg.variant)) for key, post in posts.items())

    def check(key: str, path: Path) -> list[Outcome]:
        reason = judge(posts[key], cfg)
        if reason is not None:
            return [Outcome(None, False, reason)]
        if not path.is_file():
            return [Outcome(None, False, "missing-file", extra={"path": str(path)})]
        tags = post_tags(posts[key])
        return [Outcome(str(path.resolve()), True, "selected", extra={} if tags is None else {"tags": tags})]

    return run_stage("select", items, dst, check, options, settings=settings)


def _sidecar(label_file: str, keys: list[str], src: str | os.PathLike) -> FolderTags:
    try:
        found = read_sidecar(Path(label_file))
        check_files(found, set(keys), Path(src))
    except (DatasetError, OSError) as exc:
        raise StageError(f"select.label_file: {exc}") from exc
    return found


def main(argv: list[str] | None = None) -> int:
    return stage_cli("select", SelectConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
