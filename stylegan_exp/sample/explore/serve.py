"""`sample.py task=explore`: the explorer served on `task.host:task.port` until Ctrl-C."""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import logging
import socket
from pathlib import Path
from typing import Any

from stylegan_exp.config import ExploreTask, SampleConfig
from stylegan_exp.sample.explore.images import Explorer, RequestError, Truncation
from stylegan_exp.sample.generate import SampleError
from stylegan_exp.sample.truncation import describe_truncation
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)

NEEDS = ("starlette", "uvicorn")  # the `explore` extra


def check_installed() -> None:
    """One line naming the extra when its packages are missing (checked before the snapshot is opened)."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise SampleError(f'task=explore needs the explore extra ({", ".join(missing)} not installed): '
                          'pip install -e ".[explore]"')


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one line, and port 0 a free one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SampleError(f"cannot listen on task.host={host} task.port={port}: {exc.strerror} "
                          "(task.port=0 picks a free port)") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def settings(cfg: SampleConfig, snap: Snapshot, explorer: Explorer) -> dict[str, Any]:
    """The page's starting values and the snapshot's facts (/api/info)."""
    task: ExploreTask = cfg.task
    return {"snapshot": str(snap.path), "arch": snap.model.ARCH, "resolution": snap.resolution,
            "kimg": snap.kimg, "psi": cfg.truncation_psi, "cutoff": cfg.truncation_cutoff,
            "num_layers": explorer.Gs.num_layers, "ranges": {k: list(v) for k, v in explorer.ranges.items()},
            "has_d": explorer.D is not None, "seed": task.seed, "mixing_rows": list(task.mixing_rows),
            "mixing_columns": list(task.mixing_columns), "mixing_range": task.mixing_range,
            "interpolation_seeds": list(task.interpolation_seeds),
            "interpolation_steps": task.interpolation_steps, "batch_size": cfg.batch_size,
            "max_images": task.max_images,
            "size": "×".join(map(str, explorer.Gs.aspect.size(snap.resolution)))}


def explorer_of(cfg: SampleConfig, snap: Snapshot) -> Explorer:
    """The run's explorer, every starting value of the page checked (one line naming the task key) and its
    generator (and D) traced by the first face before the URL is shown."""
    task: ExploreTask = cfg.task
    explorer = Explorer(snap, cfg.batch_size, task.max_images)
    checks = {"truncation_psi/truncation_cutoff": lambda: explorer.check_truncation(
                  Truncation(cfg.truncation_psi, cfg.truncation_cutoff)),
              "seed": lambda: explorer.check_seeds([task.seed]),
              "mixing_rows": lambda: explorer.check_seeds(task.mixing_rows),
              "mixing_columns": lambda: explorer.check_seeds(task.mixing_columns),
              "mixing_range": lambda: explorer.check_range(task.mixing_range),
              "max_images": lambda: explorer.check_count(
                  (len(task.mixing_rows) + 1) * (len(task.mixing_columns) + 1)),
              "interpolation_seeds": lambda: explorer.check_pair(task.interpolation_seeds),
              "interpolation_steps": lambda: explorer.check_steps(task.interpolation_steps)}
    for key, check in checks.items():
        try:
            check()
        except RequestError as exc:
            where = key if "/" in key else f"task.{key}"
            raise SampleError(f"{where}: {exc}") from None
    trunc = Truncation(cfg.truncation_psi, cfg.truncation_cutoff)
    explorer.score(explorer.face(task.seed, trunc))
    return explorer


def explore(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """Serve the explorer until Ctrl-C; it writes nothing (the page's "save PNG" downloads)."""
    task: ExploreTask = cfg.task
    check_installed()
    import uvicorn

    from stylegan_exp.sample.explore.app import make_app

    explorer = explorer_of(cfg, snap)
    sock = bind(task.host, task.port)
    app = make_app(explorer, settings(cfg, snap, explorer))
    log.info("faces with %s", describe_truncation(cfg.truncation_psi, cfg.truncation_cutoff, snap.model,
                                                  explorer.Gs.num_layers))
    if not is_loopback(task.host):
        log.warning("task.host=%s is not a loopback address: anyone who reaches this machine on port %d can "
                    "use the explorer (it has no login)", task.host, sock.getsockname()[1])
    log.info("explorer at %s (Ctrl-C stops it)", url_of(sock))
    with sock, contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it stopped on
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
    log.info("explorer stopped")
    return []
