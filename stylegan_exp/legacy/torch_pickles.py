"""Reading PyTorch StyleGAN pickles (stylegan2-ada-pytorch, stylegan3) without torch and without running them.

Their networks are `torch_utils.persistence` objects: each pickles as `_reconstruct_persistent_obj(meta)` with
meta = {type, version, module_src, class_name, state}, and the original loader *executes* `module_src` to
rebuild the class. Here meta becomes a `TorchModule` (class name, init kwargs, parameters and buffers as NumPy
arrays, child modules); `module_src` stays text and is never run. Tensors are rebuilt from torch's storage
records: a network pickle (`pickle.dump` of the training loop's dict) holds each storage as
`torch.storage._load_from_bytes(<legacy torch.save stream>)`; a `torch.save` zip keeps them in
`<archive>/data/<key>`, named by persistent ids ('storage', <Float|Half|…>Storage, key, location, numel). The
dtype comes from the storage type, the layout from the tensor's offset, size and stride. Any other global
(os.system, builtins.eval, an unknown class) is refused in one line naming it, before anything runs.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stylegan_exp.download import DownloadError, fetch
from stylegan_exp.legacy.pickles import DEFAULT_CACHE_DIR, LegacyImportError, numpy_module

TORCH = "torch"  # the format's name, which importers name in their FORMAT
_MARKERS = (b"torch_utils.persistence", b"_reconstruct_persistent_obj")
_SNIFF_BYTES = 1 << 20
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy (non-zip) torch.save stream
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + _LEGACY_MAGIC.to_bytes(10, "little")  # that pickle's opening bytes
_DTYPES = {
    "FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class StorageType:
    """Stands in for `torch.<Type>Storage`: its element type."""

    name: str

    @property
    def itemsize(self) -> int:
        dtype = _DTYPES[self.name]
        return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize

    def decode(self, raw: bytes, numel: int, little_endian: bool = True) -> np.ndarray:
        """`numel` elements of this type from raw bytes (bfloat16 widened to float32)."""
        if len(raw) < numel * self.itemsize:
            raise ValueError(f"{self.name} of {numel} elements has only {len(raw)} bytes")
        dtype = _DTYPES[self.name]
        order = "<" if little_endian else ">"
        if dtype == "bfloat16":
            bits = np.frombuffer(raw, dtype=f"{order}u2", count=numel).astype(np.uint32) << 16
            return bits.view(np.float32)
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder(order), count=numel).astype(dtype)


class Storage:
    """One storage's elements; filled after the pickle that names it when the stream is legacy."""

    def __init__(self, kind: StorageType, numel: int) -> None:
        self.kind, self.numel = kind, int(numel)
        self.data: np.ndarray | None = None


@dataclass
class LazyTensor:
    """`torch._utils._rebuild_tensor_v2`'s arguments, resolved once the storage's bytes are read."""

    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError("a tensor's storage has no data")
        size, stride = tuple(int(s) for s in self.size), tuple(int(s) for s in self.stride)
        if len(size) != len(stride) or min(size + stride + (self.offset,), default=0) < 0:
            raise ValueError(f"bad tensor layout size={size} stride={stride} offset={self.offset}")
        last = self.offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if all(size) else -1
        if last >= len(data):
            raise ValueError(f"tensor of size {size} and stride {stride} at offset {self.offset} overruns "
                             f"its storage of {len(data)} elements")
        if not all(size):
            return np.zeros(size, data.dtype)
        view = np.lib.stride_tricks.as_strided(data[self.offset:], size, [s * data.itemsize for s in stride])
        return np.array(view)


@dataclass
class PersistentObject:
    """A `torch_utils.persistence` object as pickled: its class name and state; its source is not run."""

    class_name: str
    version: int
    state: dict[str, Any]


class _EasyDictStub(dict):
    """Stands in for `dnnlib.util.EasyDict` (a plain dict with attribute access)."""


def _rebuild_tensor(storage: Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_ignored: Any) -> LazyTensor:
    if not isinstance(storage, Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return LazyTensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: LazyTensor, *_ignored: Any) -> LazyTensor:
    return data


def _reconstruct_persistent_obj(meta: dict[str, Any]) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("a torch_utils.persistence record that is not a class with a state")
    return PersistentObject(str(meta.get("class_name")), int(meta.get("version", 0)), dict(meta["state"]))


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it for bytes: latin-1 only."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_PYTHON2_MODULES = {"__builtin__": "builtins"}  # protocol-2 pickles name builtins as Python 2 did
_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("dnnlib.util", "EasyDict"): _EasyDictStub,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1,
    **{("torch", name): StorageType(name) for name in _DTYPES},
}


class TorchUnpickler(pickle.Unpickler):
    """Resolves only the globals a StyleGAN network pickle needs, to inert stand-ins; refuses the rest.

    `storage(kind, key, numel)` answers the persistent ids of torch.save streams."""

    def __init__(self, file: Any, storage: Callable[[StorageType, str, int], Storage] | None = None) -> None:
        super().__init__(file)
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        module = _PYTHON2_MODULES.get(module, module)
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _load_from_bytes
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if (resolved := numpy_module(module, name)) is not None:
            return super().find_class(resolved, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} (not part of a StyleGAN network "
                                     f"pickle; nothing was executed)")

    def persistent_load(self, pid: Any) -> Storage:
        if self._storage is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (torch < 1.0 pickles) are not supported")
        return self._storage(pid[1], str(pid[2]), int(pid[4]))


def _load_from_bytes(raw: bytes) -> Any:
    """`torch.storage._load_from_bytes`: a legacy (non-zip) torch.save stream, read with the same
    restrictions."""
    return _legacy_stream(io.BytesIO(raw))


def _legacy_stream(f: io.BufferedIOBase) -> Any:
    """magic, protocol, sys_info, the object (storages as persistent ids), the storage keys, then each
    storage's raw data (int64 element count + elements)."""
    if TorchUnpickler(f).load() != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a torch.save stream (bad magic number)")
    TorchUnpickler(f).load()  # protocol version
    sys_info = TorchUnpickler(f).load()
    little = not isinstance(sys_info, dict) or bool(sys_info.get("little_endian", True))
    storages: dict[str, Storage] = {}

    def storage(kind: StorageType, key: str, numel: int) -> Storage:
        return storages.setdefault(key, Storage(kind, numel))

    obj = TorchUnpickler(f, storage).load()
    for key in TorchUnpickler(f).load():
        found = storages.get(str(key))
        if found is None:
            raise pickle.UnpicklingError(f"storage {key} has data but no record")
        (numel,) = struct.unpack("<q" if little else ">q", f.read(8))
        found.data = found.kind.decode(f.read(numel * found.kind.itemsize), numel, little)
    return obj


def _zip_archive(path: Path) -> Any:
    """A torch.save zip: `<archive>/data.pkl` with storages in `<archive>/data/<key>`."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("data.pkl") and n.count("/") == 1), None)
        if pkl is None:
            raise pickle.UnpicklingError("a zip without <archive>/data.pkl")
        prefix = pkl[: -len("data.pkl")]
        order = "little"
        if prefix + "byteorder" in names:
            order = archive.read(prefix + "byteorder").decode().strip()
        storages: dict[str, Storage] = {}

        def storage(kind: StorageType, key: str, numel: int) -> Storage:
            if key not in storages:
                found = Storage(kind, numel)
                found.data = kind.decode(archive.read(f"{prefix}data/{key}"), numel, order == "little")
                storages[key] = found
            return storages[key]

        with archive.open(pkl) as f:
            return TorchUnpickler(f, storage).load()


@dataclass
class TorchModule:
    """A pickled torch.nn.Module: class name, init kwargs, own parameters and buffers, child modules."""

    class_name: str
    init_kwargs: dict[str, Any]
    tensors: dict[str, np.ndarray]
    children: dict[str, TorchModule] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: PersistentObject | Any, where: str) -> TorchModule:
        if not isinstance(obj, PersistentObject):
            raise TypeError(f"{where} is {type(obj).__name__}, not a persistent torch module")
        state = obj.state
        tensors = {}
        for group in ("_parameters", "_buffers"):
            for name, value in dict(state.get(group) or {}).items():
                if value is not None:
                    if not isinstance(value, LazyTensor):
                        raise TypeError(f"{where}.{name} is {type(value).__name__}, not a tensor")
                    tensors[name] = value.array()
        children = {name: cls.from_object(child, f"{where}.{name}")
                    for name, child in dict(state.get("_modules") or {}).items() if child is not None}
        return cls(obj.class_name, _plain(state.get("_init_kwargs") or {}), tensors, children)

    def all_variables(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by their torch names ('mapping.fc0.weight', 'synthesis.b4.const' …)."""
        found = dict(self.tensors)
        for key, child in self.children.items():
            found.update({f"{key}.{name}": value for name, value in child.all_variables().items()})
        return found


def _plain(value: Any) -> Any:
    """EasyDicts and OrderedDicts as plain dicts, recursively (init kwargs are small)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


@dataclass
class TorchSnapshot:
    """G, D and G_ema (as Gs) of a PyTorch network pickle; an architecture's importer says what they are."""

    source: str
    G: TorchModule
    D: TorchModule
    Gs: TorchModule

    @property
    def keys(self) -> tuple[str, ...]:
        """What importers are keyed on, most specific first: G_ema's class, its synthesis network's and the
        synthesis network's first child's ('Generator/SynthesisNetwork/SynthesisBlock' for
        stylegan2-ada-pytorch), then G_ema's class alone."""
        synthesis = self.Gs.children.get("synthesis")
        if synthesis is None or not synthesis.children:
            return (self.Gs.class_name,)
        first = next(iter(synthesis.children.values()))
        return f"{self.Gs.class_name}/{synthesis.class_name}/{first.class_name}", self.Gs.class_name


def _local(source: str | Path, cache_dir: str | Path | None) -> Path:
    """A local path, or an http(s) URL's cached download."""
    text = str(source)
    if re.match(r"^https?://", text):
        return fetch(text, Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR)
    return Path(text).expanduser()


def opens(source: str | Path, cache_dir: str | Path | None = None) -> bool:
    """Whether a snapshot source is a PyTorch pickle: a torch.save zip, or a pickle that names
    torch_utils.persistence in its first MiB. A URL is downloaded (once, into `cache_dir`) to tell."""
    url = re.match(r"^https?://", str(source)) is not None
    if not url and not str(source).endswith((".pkl", ".pt", ".pth")):
        return False
    try:
        path = _local(source, cache_dir)
    except DownloadError:
        return False  # the TF1 reader reports the download's failure
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    return head.startswith(b"PK\x03\x04") or any(marker in head for marker in _MARKERS)


def read_objects(path: str | Path) -> Any:
    """The unpickled content of a PyTorch pickle, persistence objects as `PersistentObject`s."""
    path = Path(path)
    with open(path, "rb") as f:
        zipped = f.read(4) == b"PK\x03\x04"
    if zipped:
        return _zip_archive(path)
    with open(path, "rb") as f:
        legacy = f.read(len(_LEGACY_HEAD)) == _LEGACY_HEAD
        f.seek(0)
        return _legacy_stream(f) if legacy else TorchUnpickler(f).load()


def read_snapshot(source: str | Path, cache_dir: str | Path | None = None) -> TorchSnapshot:
    """G, D and G_ema of a PyTorch network pickle at a local path or an http(s) URL (cached download)."""
    try:
        path = _local(source, cache_dir)
    except DownloadError as exc:
        raise LegacyImportError(f"cannot download {source}: {exc}") from exc
    if not path.is_file():
        raise LegacyImportError(f"PyTorch pickle not found: {source}")
    try:
        data = read_objects(path)
    except OSError as exc:
        raise LegacyImportError(f"cannot read {source}: {exc}") from exc
    except Exception as exc:  # any unpickling failure means: not a StyleGAN network pickle we can read
        raise LegacyImportError(f"{source} is not a readable PyTorch StyleGAN pickle ({type(exc).__name__}: "
                                f"{exc})") from exc
    if not isinstance(data, dict) or not all(k in data for k in ("G_ema", "D")):
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise LegacyImportError(f"{source} is not a StyleGAN network pickle (no G_ema and D; found {keys})")
    try:
        nets = {key: TorchModule.from_object(data.get(key, data["G_ema"]), key)
                for key in ("G", "D", "G_ema")}
    except (TypeError, ValueError) as exc:
        raise LegacyImportError(f"{source} is not a StyleGAN network pickle ({exc})") from exc
    return TorchSnapshot(str(source), nets["G"], nets["D"], nets["G_ema"])
