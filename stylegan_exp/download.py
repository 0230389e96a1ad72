"""The one downloader: a URL fetched once into a cache folder, with a progress bar, atomically, checked.

`checksum` is "<algorithm>:<hex digest>" with any hashlib algorithm ("sha256:…", or "md5:…" where the
publisher only gives an MD5, as keras does). A download that does not match is refused and never
cached; a cached file that no longer matches (bit rot, a bad copy) is downloaded again. Without a
checksum the cached file is trusted and the download's sha256 is logged, so that it can be pinned.
http(s):// and file:// URLs are read alike.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

from stylegan_exp.atomic import atomic_open
from stylegan_exp.progress import progress_bar

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class DownloadError(OSError):
    """A file that cannot be had: unreachable, refused, or not matching its checksum; one line."""


def parse_checksum(checksum: str) -> tuple[str, str]:
    """"sha256:<hex>" → ("sha256", "<hex>"); a malformed value or an unknown algorithm is a DownloadError."""
    algorithm, _, digest = checksum.partition(":")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    if algorithm not in hashlib.algorithms_available or not re.fullmatch(r"[0-9a-f]+", digest):
        raise DownloadError(f"checksum {checksum!r} is not '<hashlib algorithm>:<hex digest>' "
                            f"(e.g. 'sha256:…' or 'md5:…')")
    if len(digest) != 2 * hashlib.new(algorithm).digest_size:
        raise DownloadError(f"checksum {checksum!r} has {len(digest)} hex digits; {algorithm} has "
                            f"{2 * hashlib.new(algorithm).digest_size}")
    return algorithm, digest


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_path(url: str, cache_dir: Path) -> Path:
    """Where `url` is cached: its file name, prefixed by a hash of the URL so that names never collide."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]) or "download"
    return Path(cache_dir).expanduser() / f"{hashlib.sha1(url.encode()).hexdigest()[:10]}_{name}"


def fetch(url: str, cache_dir: Path, checksum: str | None = None) -> Path:
    """The cached file of `url`, downloaded first if it is missing or no longer matches `checksum`."""
    expected = parse_checksum(checksum) if checksum else None
    target = cache_path(url, cache_dir)
    if target.is_file() and (expected is None or file_digest(target, expected[0]) == expected[1]):
        return target
    if target.is_file():
        log.warning("%s does not match %s any more: downloading it again", target, checksum)
    digests = {"sha256": hashlib.sha256()}
    if expected is not None:
        digests.setdefault(expected[0], hashlib.new(expected[0]))
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_open(target) as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress_bar(total=total, unit="B", unit_scale=True, desc=target.name.split("_", 1)[1],
                              leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    for d in digests.values():
                        d.update(chunk)
                    bar.update(len(chunk))
            if expected is not None and digests[expected[0]].hexdigest() != expected[1]:
                raise DownloadError(f"the download does not match {checksum} "
                                    f"(got {expected[0]}:{digests[expected[0]].hexdigest()})")
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
        raise DownloadError(" ".join(str(reason).split()) or type(exc).__name__) from exc
    sha256 = digests["sha256"].hexdigest()
    if expected is None:
        log.warning("downloaded %s (sha256:%s, not checked: no checksum pinned)", url, sha256)
    else:
        log.info("downloaded %s (sha256:%s)", url, sha256)
    return target
