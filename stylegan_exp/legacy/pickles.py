"""Reading original TF1 `dnnlib.tflib.Network` pickles without TensorFlow 1 or the original code.

The pickle holds a tuple (G, D, Gs) of `Network` objects. Unpickling maps that class to a stub that keeps the
pickled state (name, static_kwargs, components, variables), so nothing of the original code runs; any other
class is refused. http(s) sources are downloaded once into a cache.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stylegan_exp.download import DownloadError, fetch
from stylegan_exp.snapshot import SnapshotError

DEFAULT_CACHE_DIR = Path("~/.cache/stylegan_exp")
TF1 = "tf1"  # the format's name, which importers name in their FORMAT
OLDEST_GENERATOR = "G_style"  # the Gs build function of pickles too old to record it


class LegacyImportError(SnapshotError):
    """An original `.pkl` that cannot be read or does not map onto this package's networks."""


class _NetworkStub:
    """Stands in for `dnnlib.tflib.network.Network`: keeps the pickled state, runs nothing."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


class _EasyDictStub(dict):
    """Stands in for `dnnlib.util.EasyDict` (a plain dict with attribute access)."""


_NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer", "frombuffer"}


def numpy_module(module: str, name: str) -> str | None:
    """The module to resolve a pickled NumPy array/scalar/dtype global from (numpy.core is numpy._core in
    NumPy 2), or None when the global is not one of those."""
    if module.split(".")[0] != "numpy" or name not in _NUMPY_NAMES:
        return None
    if module.startswith("numpy.core") and int(np.__version__.split(".")[0]) >= 2:
        return "numpy._core" + module[len("numpy.core"):]
    return module


class LegacyUnpickler(pickle.Unpickler):
    """Resolves only the classes an original snapshot needs; anything else is not a StyleGAN pickle."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "dnnlib.tflib.network" and name == "Network":
            return _NetworkStub
        if module == "dnnlib.util" and name == "EasyDict":
            return _EasyDictStub
        if module == "collections" and name == "OrderedDict":
            return super().find_class(module, name)
        if (resolved := numpy_module(module, name)) is not None:
            return super().find_class(resolved, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name}")


@dataclass
class LegacyNetwork:
    """The pickled state of one original `Network`."""

    name: str
    static_kwargs: dict[str, Any]
    variables: dict[str, np.ndarray]
    components: dict[str, LegacyNetwork] = field(default_factory=dict)
    version: int = 3
    build_func_name: str = ""

    @classmethod
    def from_stub(cls, stub: _NetworkStub) -> LegacyNetwork:
        state = stub.state
        components = {}
        for key, comp in dict(state.get("components") or {}).items():
            if not isinstance(comp, _NetworkStub):
                raise TypeError(f"component {key!r} is not a Network")
            components[key] = cls.from_stub(comp)
        return cls(
            name=str(state["name"]),
            static_kwargs=dict(state.get("static_kwargs") or {}),
            variables={str(k): np.asarray(v) for k, v in state["variables"]},
            components=components,
            version=int(state.get("version", 0)),
            build_func_name=str(state.get("build_func_name", "")),
        )

    def all_variables(self) -> dict[str, np.ndarray]:
        """Own variables plus every component's, prefixed by the component key ('mapping/Dense0/weight')."""
        found = dict(self.variables)
        for key, comp in self.components.items():
            found.update({f"{key}/{name}": value for name, value in comp.all_variables().items()})
        return found

    def all_kwargs(self) -> dict[str, Any]:
        """Static kwargs of this network and its components (what each build function received)."""
        merged = dict(self.static_kwargs)
        for comp in self.components.values():
            merged.update(comp.all_kwargs())
        return merged


@dataclass
class LegacySnapshot:
    """G, D and Gs of an original snapshot, as pickled; an architecture's importer says what they are."""

    source: str
    G: LegacyNetwork
    D: LegacyNetwork
    Gs: LegacyNetwork

    @property
    def generator(self) -> str:
        """The pickled Gs build function (`G_style`, `G_main` …)."""
        return self.Gs.build_func_name or OLDEST_GENERATOR

    @property
    def generators(self) -> tuple[str, ...]:
        """What importers are keyed on, most specific first: the Gs build function with its synthesis
        network's (stylegan2-ada's `G_main/G_synthesis`), then the Gs build function alone."""
        synthesis = self.Gs.components.get("synthesis")
        if synthesis is None or not synthesis.build_func_name:
            return (self.generator,)
        return f"{self.generator}/{synthesis.build_func_name}", self.generator


def opens(source: str | Path, cache_dir: str | Path | None = None) -> bool:
    """Whether a snapshot source is an original pickle (a `.pkl` path or an http(s) URL); `cache_dir` is
    not needed to tell."""
    text = str(source)
    return text.endswith(".pkl") or re.match(r"^https?://", text) is not None


def read_snapshot(source: str | Path, cache_dir: str | Path | None = None) -> LegacySnapshot:
    """An original (G, D, Gs) pickle from a local path or an http(s) URL (cached download)."""
    return LegacySnapshot(str(source), *read_networks(source, cache_dir))


def read_networks(path_or_url: str | Path, cache_dir: str | Path | None = None
                  ) -> tuple[LegacyNetwork, LegacyNetwork, LegacyNetwork]:
    """(G, D, Gs) of an original pickle at a local path or an http(s) URL (cached download)."""
    source = str(path_or_url)
    if re.match(r"^https?://", source):
        try:
            path = fetch(source, Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR)
        except DownloadError as exc:
            raise LegacyImportError(f"cannot download {source}: {exc}") from exc
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise LegacyImportError(f"StyleGAN pickle not found: {source}")
    try:
        with open(path, "rb") as f:
            data = LegacyUnpickler(f).load()
    except OSError as exc:
        raise LegacyImportError(f"cannot read {source}: {exc}") from exc
    except Exception as exc:  # any unpickling failure means: not an original snapshot
        raise LegacyImportError(f"{source} is not a StyleGAN pickle ({type(exc).__name__}: {exc})") from exc
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, _NetworkStub) for n in data)):
        raise LegacyImportError(f"{source} is not a StyleGAN pickle (no (G, D, Gs) tuple of Networks)")
    try:
        G, D, Gs = (LegacyNetwork.from_stub(n) for n in data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LegacyImportError(f"{source} is not a StyleGAN pickle (bad Network state: {exc})") from exc
    return G, D, Gs
