"""stylegan2-ada-pytorch networks for tests, without torch: network pickles written here with the genuine
structure (the training loop's dict of `torch_utils.persistence` records whose state is a torch.nn.Module's
__dict__; tensors as `torch._utils._rebuild_tensor_v2`/`_rebuild_parameter` of storages pickled as
`torch.storage._load_from_bytes(<legacy torch.save stream>)`, or a torch.save zip with `archive/data/<key>`),
random weights under the original names and layouts, and an independent NumPy (NCHW) re-implementation of the
original forward pass (Generator = MappingNetwork + SynthesisNetwork, Discriminator), written from
`training/networks.py` and `torch_utils/ops` (conv2d_resample's generic path, upfirdn2d, bias_act)."""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np
from original_stylegan2 import upfirdn

SQRT2 = math.sqrt(2.0)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MODULE_SRC = "# training/networks.py of stylegan2-ada-pytorch: the source the original loader would exec\n"

# ---------------------------------------------------------------------------------------------------
# Stand-ins pickled under torch's, dnnlib's and torch_utils' global names.


def _named(obj, module: str, name: str):
    obj.__module__, obj.__name__, obj.__qualname__ = module, name, name
    return obj


def _stand_in(*_args):
    raise AssertionError("stand-ins are only pickled, never called")


_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _named(
        lambda *a: _stand_in(a), "torch._utils", "_rebuild_tensor_v2"
    ),
    ("torch._utils", "_rebuild_parameter"): _named(
        lambda *a: _stand_in(a), "torch._utils", "_rebuild_parameter"
    ),
    ("torch.storage", "_load_from_bytes"): _named(
        lambda *a: _stand_in(a), "torch.storage", "_load_from_bytes"
    ),
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _named(
        lambda *a: _stand_in(a), "torch_utils.persistence", "_reconstruct_persistent_obj"
    ),
    ("torch", "FloatStorage"): _named(type("FloatStorage", (), {}), "torch", "FloatStorage"),
    ("torch", "HalfStorage"): _named(type("HalfStorage", (), {}), "torch", "HalfStorage"),
    ("dnnlib.util", "EasyDict"): _named(type("EasyDict", (dict,), {}), "dnnlib.util", "EasyDict"),
}
STORAGE_TYPES = {
    np.dtype(np.float32): _GLOBALS[("torch", "FloatStorage")],
    np.dtype(np.float16): _GLOBALS[("torch", "HalfStorage")],
}


@contextlib.contextmanager
def fake_torch_modules():
    """torch, torch._utils, torch.storage, torch_utils.persistence and dnnlib.util in sys.modules (holding
    only the stand-ins) while pickling."""
    names = sorted({m for m, _ in _GLOBALS} | {"torch_utils", "dnnlib"})
    saved = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules[n] = types.ModuleType(n)
    for (module, name), obj in _GLOBALS.items():
        setattr(sys.modules[module], name, obj)
    try:
        yield
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


_KEYS = itertools.count(94000000000000)


class StorageRef:
    """A torch storage: its elements (1-D, float32 or float16) and a key like torch's."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.key = np.ascontiguousarray(data).ravel(), str(next(_KEYS))

    def record(self) -> tuple:
        return "storage", STORAGE_TYPES[self.data.dtype], self.key, "cpu", self.data.size

    def __reduce__(self):
        """As torch's TypedStorage.__reduce__: a legacy torch.save stream of the storage alone."""
        buf = io.BytesIO()
        for header in (
            LEGACY_MAGIC,
            1001,
            {
                "protocol_version": 1001,
                "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4},
            },
        ):
            pickle.dump(header, buf, protocol=2)
        _RecordPickler(buf).dump(self)
        pickle.dump([self.key], buf, protocol=2)
        buf.write(
            struct.pack("<q", self.data.size) + self.data.astype(self.data.dtype.newbyteorder("<")).tobytes()
        )
        return _GLOBALS[("torch.storage", "_load_from_bytes")], (buf.getvalue(),)


class _RecordPickler(pickle.Pickler):
    """torch.save's pickler: storages become persistent ids."""

    def __init__(self, f, protocol: int = 2) -> None:
        super().__init__(f, protocol=protocol)

    def persistent_id(self, obj):
        return obj.record() if isinstance(obj, StorageRef) else None


class Tensor:
    """A torch tensor or Parameter: pickled as `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    `layout` stores it as torch may: 'contiguous', 'transposed' (a 2-D tensor viewing its transpose's
    storage), 'offset' (behind 3 unrelated elements) or 'half' (a float16 storage; values must be exact), or
    as it must not: 'overrun' (strides past the end of its storage)."""

    def __init__(self, value: np.ndarray, parameter: bool = False, layout: str = "contiguous") -> None:
        self.value, self.parameter, self.layout = np.asarray(value, np.float32), parameter, layout

    def _tensor_args(self):
        v, hooks = self.value, OrderedDict()
        strides = [int(np.prod(v.shape[i + 1 :])) for i in range(v.ndim)]
        if self.layout == "transposed":
            return StorageRef(v.T), 0, tuple(v.shape), (1, v.shape[0]), False, hooks
        if self.layout == "overrun":  # a hostile layout reaching far past its storage
            return StorageRef(v), 0, tuple(v.shape), tuple(s * 1000 for s in strides), False, hooks
        if self.layout == "offset":
            return (
                StorageRef(np.concatenate([[7.0, 8.0, 9.0], v.ravel()]).astype(np.float32)),
                3,
                tuple(v.shape),
                tuple(strides),
                False,
                hooks,
            )
        data = v.astype(np.float16) if self.layout == "half" else v
        return StorageRef(data), 0, tuple(v.shape), tuple(strides), False, hooks

    def __reduce_ex__(self, protocol):
        rebuild = (_GLOBALS[("torch._utils", "_rebuild_tensor_v2")], self._tensor_args())
        if not self.parameter:
            return rebuild
        return _GLOBALS[("torch._utils", "_rebuild_parameter")], (
            Tensor(self.value, layout=self.layout),
            True,
            OrderedDict(),
        )


class Persistent:
    """A `torch_utils.persistence` object: `_reconstruct_persistent_obj(meta)`, as its decorator's
    __reduce__ returns."""

    def __init__(self, class_name: str, state: dict, module_src: str = MODULE_SRC) -> None:
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return _GLOBALS[("torch_utils.persistence", "_reconstruct_persistent_obj")], (self.meta,)


def module(
    class_name: str,
    init_kwargs: dict,
    params: dict | None = None,
    buffers: dict | None = None,
    children: dict | None = None,
    **attributes,
) -> Persistent:
    """A persistent torch.nn.Module as pickled: its __dict__ (torch's bookkeeping, parameters, buffers, child
    modules, the persistence decorator's init args/kwargs, its own attributes)."""
    easydict = _GLOBALS[("dnnlib.util", "EasyDict")]
    state = {
        "training": False,
        "_parameters": OrderedDict(params or {}),
        "_buffers": OrderedDict(buffers or {}),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(children or {}),
        "_init_args": (),
        "_init_kwargs": easydict(init_kwargs),
        **attributes,
    }
    return Persistent(class_name, state)


# ---------------------------------------------------------------------------------------------------
# Random weights with the original names and layouts.


def setup_filter(taps) -> np.ndarray:
    k = np.asarray(taps, np.float32)
    k = np.outer(k, k)
    return (k / k.sum()).astype(np.float32)


def channels(kw: dict, res: int) -> int:
    return min(kw["channel_base"] // res, kw["channel_max"])


class Params:
    """One network's arrays by torch name (what the reference reads), made as the tensors that are
    pickled."""

    def __init__(self, rng: np.random.Generator, layouts: dict | None = None) -> None:
        self.rng, self.values, self.layouts = rng, {}, layouts or {}

    def normal(self, name: str, shape, std: float = 1.0, mean: float = 0.0) -> Tensor:
        value = (mean + self.rng.standard_normal(shape) * std).astype(np.float32)
        layout = next((lay for suffix, lay in self.layouts.items() if name.endswith(suffix)), "contiguous")
        if layout == "half":
            value = value.astype(np.float16).astype(np.float32)
        self.values[name] = value
        return Tensor(value, parameter=True, layout=layout)

    def buffer(self, name: str, value: np.ndarray) -> Tensor:
        self.values[name] = np.asarray(value, np.float32)
        return Tensor(value)


def _fc(
    p: Params,
    name: str,
    fin: int,
    fout: int,
    lrmul: float = 1.0,
    bias_mean: float = 0.0,
    activation: str = "linear",
) -> Persistent:
    return module(
        "FullyConnectedLayer",
        dict(
            in_features=fin,
            out_features=fout,
            activation=activation,
            lr_multiplier=lrmul,
            bias_init=bias_mean,
        ),
        {
            "weight": p.normal(f"{name}.weight", (fout, fin), 1 / lrmul),
            "bias": p.normal(f"{name}.bias", (fout,), 0.2 / lrmul, bias_mean),
        },
        activation=activation,
        weight_gain=np.float64(lrmul / np.sqrt(fin)),
        bias_gain=lrmul,
    )


def _synthesis_layer(
    p: Params, name: str, fin: int, fout: int, res: int, kw: dict, up: int = 1
) -> Persistent:
    return module(
        "SynthesisLayer",
        dict(
            in_channels=fin,
            out_channels=fout,
            w_dim=kw["w_dim"],
            resolution=res,
            up=up,
            conv_clamp=kw["conv_clamp"],
        ),
        {
            "weight": p.normal(f"{name}.weight", (fout, fin, 3, 3)),
            "noise_strength": p.normal(f"{name}.noise_strength", (), 0.3),
            "bias": p.normal(f"{name}.bias", (fout,), 0.2),
        },
        {
            "resample_filter": p.buffer(f"{name}.resample_filter", setup_filter([1, 3, 3, 1])),
            "noise_const": p.buffer(f"{name}.noise_const", p.rng.standard_normal((res, res))),
        },
        {"affine": _fc(p, f"{name}.affine", kw["w_dim"], fin, bias_mean=1.0)},
        resolution=res,
        up=up,
        use_noise=True,
        activation="lrelu",
        conv_clamp=kw["conv_clamp"],
        padding=1,
        act_gain=np.float64(SQRT2),
    )


def _torgb(p: Params, name: str, fin: int, kw: dict) -> Persistent:
    return module(
        "ToRGBLayer",
        dict(
            in_channels=fin, out_channels=kw["img_channels"], w_dim=kw["w_dim"], conv_clamp=kw["conv_clamp"]
        ),
        {
            "weight": p.normal(f"{name}.weight", (kw["img_channels"], fin, 1, 1)),
            "bias": p.normal(f"{name}.bias", (kw["img_channels"],), 0.2),
        },
        children={"affine": _fc(p, f"{name}.affine", kw["w_dim"], fin, bias_mean=1.0)},
        conv_clamp=kw["conv_clamp"],
        weight_gain=np.float64(1 / np.sqrt(fin)),
    )


def _conv(p: Params, name: str, fin: int, fout: int, k: int, bias: bool = True, **attrs) -> Persistent:
    params = {"weight": p.normal(f"{name}.weight", (fout, fin, k, k))}
    if bias:
        params["bias"] = p.normal(f"{name}.bias", (fout,), 0.2)
    return module(
        "Conv2dLayer",
        dict(in_channels=fin, out_channels=fout, kernel_size=k, bias=bias, **attrs),
        params,
        {"resample_filter": p.buffer(f"{name}.resample_filter", setup_filter([1, 3, 3, 1]))},
        weight_gain=np.float64(1 / np.sqrt(fin * k * k)),
        padding=k // 2,
        **attrs,
    )


def generator(kw: dict, rng: np.random.Generator, layouts: dict | None = None) -> tuple[Persistent, dict]:
    """(pickled Generator, its arrays by torch name)."""
    p, L = Params(rng, layouts), int(math.log2(kw["img_resolution"]))
    mapping_kwargs = dict(
        num_layers=kw["num_layers"], layer_features=kw["layer_features"], lr_multiplier=kw["lr_multiplier"]
    )
    synthesis_kwargs = dict(
        channel_base=kw["channel_base"],
        channel_max=kw["channel_max"],
        num_fp16_res=4,
        conv_clamp=kw["conv_clamp"],
        architecture=kw["g_arch"],
    )
    sizes = [kw["z_dim"]] + [kw["layer_features"]] * (kw["num_layers"] - 1) + [kw["w_dim"]]
    mapping = module(
        "MappingNetwork",
        dict(z_dim=kw["z_dim"], c_dim=0, w_dim=kw["w_dim"], num_ws=2 * L - 2, **mapping_kwargs),
        buffers={"w_avg": p.buffer("mapping.w_avg", rng.standard_normal(kw["w_dim"]) * 0.3)},
        children={
            f"fc{i}": _fc(
                p, f"mapping.fc{i}", sizes[i], sizes[i + 1], kw["lr_multiplier"], activation="lrelu"
            )
            for i in range(kw["num_layers"])
        },
    )
    blocks = {}
    for level in range(2, L + 1):
        res, name = 2**level, f"synthesis.b{2**level}"
        cout, children, params = channels(kw, res), {}, {}
        if level == 2:
            params["const"] = p.normal(f"{name}.const", (cout, 4, 4))
        else:
            cin = channels(kw, res // 2)
            children["conv0"] = _synthesis_layer(p, f"{name}.conv0", cin, cout, res, kw, up=2)
        children["conv1"] = _synthesis_layer(p, f"{name}.conv1", cout, cout, res, kw)
        if kw["g_arch"] == "skip" or level == L:
            children["torgb"] = _torgb(p, f"{name}.torgb", cout, kw)
        if level > 2 and kw["g_arch"] == "resnet":
            children["skip"] = _conv(p, f"{name}.skip", channels(kw, res // 2), cout, 1, bias=False, up=2)
        blocks[f"b{res}"] = module(
            "SynthesisBlock",
            dict(resolution=res, architecture=kw["g_arch"]),
            params,
            {"resample_filter": p.buffer(f"{name}.resample_filter", setup_filter([1, 3, 3, 1]))},
            children,
            architecture=kw["g_arch"],
            use_fp16=level > L - 4,
        )
    synthesis = module(
        "SynthesisNetwork",
        dict(
            w_dim=kw["w_dim"],
            img_resolution=kw["img_resolution"],
            img_channels=kw["img_channels"],
            **synthesis_kwargs,
        ),
        children=blocks,
    )
    G = module(
        "Generator",
        dict(
            z_dim=kw["z_dim"],
            c_dim=kw.get("c_dim", 0),
            w_dim=kw["w_dim"],
            img_resolution=kw["img_resolution"],
            img_channels=kw["img_channels"],
            mapping_kwargs=mapping_kwargs,
            synthesis_kwargs=synthesis_kwargs,
        ),
        children={"synthesis": synthesis, "mapping": mapping},
        z_dim=kw["z_dim"],
        c_dim=0,
    )
    return G, p.values


def discriminator(kw: dict, rng: np.random.Generator) -> tuple[Persistent, dict]:
    p, L, arch = Params(rng), int(math.log2(kw["img_resolution"])), kw["d_arch"]
    img = kw["img_channels"]
    blocks = {}
    for level in range(L, 2, -1):
        res, name = 2**level, f"b{2**level}"
        tmp, out, children = channels(kw, res), channels(kw, res // 2), {}
        if level == L or arch == "skip":
            children["fromrgb"] = _conv(
                p, f"{name}.fromrgb", img, tmp, 1, activation="lrelu", conv_clamp=kw["conv_clamp"]
            )
        children["conv0"] = _conv(
            p, f"{name}.conv0", tmp, tmp, 3, activation="lrelu", conv_clamp=kw["conv_clamp"]
        )
        children["conv1"] = _conv(
            p, f"{name}.conv1", tmp, out, 3, activation="lrelu", down=2, conv_clamp=kw["conv_clamp"]
        )
        if arch == "resnet":
            children["skip"] = _conv(p, f"{name}.skip", tmp, out, 1, bias=False, down=2)
        blocks[name] = module(
            "DiscriminatorBlock",
            dict(resolution=res, architecture=arch),
            None,
            {"resample_filter": p.buffer(f"{name}.resample_filter", setup_filter([1, 3, 3, 1]))},
            children,
            architecture=arch,
        )
    c4, mb = channels(kw, 4), kw["mbstd_num_channels"]
    children = {}
    if arch == "skip":
        children["fromrgb"] = _conv(p, "b4.fromrgb", img, c4, 1, activation="lrelu")
    children["mbstd"] = module(
        "MinibatchStdLayer",
        dict(group_size=kw["mbstd_group_size"], num_channels=mb),
        group_size=kw["mbstd_group_size"],
        num_channels=mb,
    )
    children["conv"] = _conv(p, "b4.conv", c4 + mb, c4, 3, activation="lrelu", conv_clamp=kw["conv_clamp"])
    children["fc"] = _fc(p, "b4.fc", c4 * 16, c4, activation="lrelu")
    children["out"] = _fc(p, "b4.out", c4, 1)
    blocks["b4"] = module(
        "DiscriminatorEpilogue", dict(in_channels=c4, cmap_dim=0, resolution=4), children=children
    )
    D = module(
        "Discriminator",
        dict(
            c_dim=kw.get("c_dim", 0),
            img_resolution=kw["img_resolution"],
            img_channels=img,
            architecture=arch,
            channel_base=kw["channel_base"],
            channel_max=kw["channel_max"],
            num_fp16_res=4,
            conv_clamp=kw["conv_clamp"],
            block_kwargs={},
            mapping_kwargs={},
            epilogue_kwargs=dict(mbstd_group_size=kw["mbstd_group_size"], mbstd_num_channels=mb),
        ),
        children=blocks,
    )
    return D, p.values


def network_data(kw: dict, seed: int = 0, layouts: dict | None = None, edit=None) -> tuple[dict, dict]:
    """The training loop's snapshot dict (G, D, G_ema, augment_pipe, training_set_kwargs) and the raw arrays
    of G_ema and D. `edit(data)` changes it before pickling."""
    rng = np.random.default_rng(seed)
    G, _ = generator(kw, rng, layouts)
    G_ema, g_values = generator(kw, rng, layouts)
    D, d_values = discriminator(kw, rng)
    augment = module(
        "AugmentPipe",
        dict(xflip=1, rotate90=1),
        buffers={"p": Tensor(np.zeros([])), "Hz_geom": Tensor(rng.standard_normal(12))},
    )
    return pickle_data(kw, G, D, G_ema, augment, edit), {"Gs": g_values, "D": d_values}


def pickle_data(kw: dict, G: Persistent, D: Persistent, G_ema: Persistent, augment_pipe, edit=None) -> dict:
    """The dict training_loop.py pickles (stylegan2-ada-pytorch and stylegan3 alike), after `edit`."""
    data = {
        "training_set_kwargs": {
            "class_name": "training.dataset.ImageFolderDataset",
            "path": "data.zip",
            "resolution": kw["img_resolution"],
            "use_labels": False,
        },
        "G": G,
        "D": D,
        "G_ema": G_ema,
        "augment_pipe": augment_pipe,
    }
    if edit:
        edit(data)
    return data


def module_source_edit(source: str):
    """An edit giving G, D and G_ema persistence records `source` as the code the original loader exec()s."""

    def edit(data):
        for key in ("G", "D", "G_ema"):
            data[key].meta["module_src"] = source

    return edit


def kwargs_edit(net: str, *path_value):
    """An edit setting a (nested) init kwarg of G and G_ema, or of D."""
    *path, value = path_value

    def edit(data):
        for key in ("G", "G_ema") if net == "G" else ("D",):
            kwargs = data[key].meta["state"]["_init_kwargs"]
            for part in path[:-1]:
                kwargs = kwargs[part]
            kwargs[path[-1]] = value

    return edit


def write_network_pkl(path, data: dict) -> None:
    """As the training loop's `pickle.dump(snapshot_data, f)` (storages as legacy torch.save streams)."""
    with fake_torch_modules(), open(path, "wb") as f:
        pickle.dump(data, f, protocol=3)


def write_torch_zip(path, data: dict) -> None:
    """As `torch.save(data, path)`: archive/data.pkl (protocol 2, storages as persistent ids),
    archive/data/<key> (raw little-endian elements), archive/version, archive/byteorder."""
    buf, storages = io.BytesIO(), {}

    class ZipPickler(_RecordPickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                storages[obj.key] = obj
                return obj.record()
            return None

    with fake_torch_modules():
        ZipPickler(buf).dump(data)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", buf.getvalue())
        archive.writestr("archive/byteorder", "little")
        for key, storage in storages.items():
            archive.writestr(
                f"archive/data/{key}", storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes()
            )
        archive.writestr("archive/version", "3\n")


def write_torch_legacy(path, data: dict) -> None:
    """As `torch.save(data, path, _use_new_zipfile_serialization=False)`: magic number, protocol, sys_info,
    the object (storages as persistent ids), the storage keys, then each storage (int64 count + elements)."""
    buf, storages = io.BytesIO(), {}

    class LegacyPickler(_RecordPickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                storages[obj.key] = obj
                return (*obj.record(), None)
            return None

    for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                         "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, buf, protocol=2)
    with fake_torch_modules():
        LegacyPickler(buf).dump(data)
    pickle.dump(sorted(storages), buf, protocol=2)
    for key in sorted(storages):
        values = storages[key].data
        buf.write(struct.pack("<q", values.size) + values.astype(values.dtype.newbyteorder("<")).tobytes())
    with open(path, "wb") as f:
        f.write(buf.getvalue())


# ---------------------------------------------------------------------------------------------------
# NumPy reference of the original forward pass (NCHW), from training/networks.py and torch_utils/ops.


def bias_act(x, b=None, act="linear", gain=None, clamp=None):
    """bias_act: x + b, activation, × gain (lrelu's default √2, linear's 1), clamp to ±clamp."""
    if b is not None:
        x = x + (b[None, :, None, None] if x.ndim == 4 else b[None, :])
    if act == "lrelu":
        x = np.where(x >= 0, x, 0.2 * x)
    x = x * (gain if gain is not None else (SQRT2 if act == "lrelu" else 1.0))
    return x if clamp is None else np.clip(x, -clamp, clamp)


def correlate(x, w):
    """conv2d (a correlation, no padding) of x [N, I, H, W] with w [O, I, kh, kw]."""
    kh, kwd = w.shape[2:]
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kwd + 1
    return sum(
        np.einsum("nihw,oi->nohw", x[:, :, a : a + oh, b : b + ow], w[:, :, a, b])
        for a in range(kh)
        for b in range(kwd)
    )


def conv2d_resample(x, w, f, up=1, down=1, padding=0, flip_weight=True):
    """conv2d_resample's generic reference path: upfirdn2d (up, padding, gain up²), conv2d (flipped for
    flip_weight=False: a true convolution), then upfirdn2d (down)."""
    fw = f.shape[0]
    p0 = p1 = padding
    if up > 1:
        p0, p1 = p0 + (fw + up - 1) // 2, p1 + (fw - up) // 2
    if down > 1:
        p0, p1 = p0 + (fw - down + 1) // 2, p1 + (fw - down) // 2
    if up > 1:
        x = upfirdn(x, f * up**2, up=up, pad0=p0, pad1=p1)
    else:
        x = np.pad(x, ((0, 0), (0, 0), (p0, p1), (p0, p1)))
    x = correlate(x, w if flip_weight else w[:, :, ::-1, ::-1])
    return upfirdn(x, f, down=down) if down > 1 else x


def fc(v, name, x, act="linear", lrmul=1.0):
    w, b = v[f"{name}.weight"], v[f"{name}.bias"]
    return bias_act(x @ (w * (lrmul / np.sqrt(w.shape[1]))).T, b * lrmul, act)


def modulated_conv2d(x, weight, styles, f, noise=None, up=1, padding=0, demodulate=True, flip_weight=True):
    """The fused form: one modulated (and demodulated) [O, I, k, k] weight per sample."""
    w = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        w = w / np.sqrt((w**2).sum(axis=(2, 3, 4)) + 1e-8)[:, :, None, None, None]
    x = np.concatenate(
        [
            conv2d_resample(x[n : n + 1], w[n], f, up=up, padding=padding, flip_weight=flip_weight)
            for n in range(len(x))
        ]
    )
    return x if noise is None else x + noise


def ref_generator(v, kw, z, psi, w=None):
    """Generator.forward(z, c=None, truncation_psi=psi, noise_mode='const'); `w`: the mapping's output when
    given (a conditional mapping's)."""
    f, L, clamp, arch = (
        setup_filter([1, 3, 3, 1]),
        int(math.log2(kw["img_resolution"])),
        kw["conv_clamp"],
        kw["g_arch"],
    )
    if w is None:
        w = z.astype(np.float64)
        w = w / np.sqrt((w**2).mean(axis=1, keepdims=True) + 1e-8)
        for i in range(kw["num_layers"]):
            w = fc(v, f"mapping.fc{i}", w, "lrelu", kw["lr_multiplier"])
    ws = np.repeat(w[:, None], 2 * L - 2, axis=1)
    ws = v["mapping.w_avg"] + (ws - v["mapping.w_avg"]) * psi

    def layer(name, x, w, up=1, gain=1.0):
        styles = fc(v, f"{name}.affine", w)
        noise = v[f"{name}.noise_const"] * v[f"{name}.noise_strength"]
        x = modulated_conv2d(x, v[f"{name}.weight"], styles, f, noise, up=up, padding=1, flip_weight=up == 1)
        return bias_act(x, v[f"{name}.bias"], "lrelu", SQRT2 * gain, None if clamp is None else clamp * gain)

    def torgb(name, x, w):
        styles = fc(v, f"{name}.affine", w) / np.sqrt(x.shape[1])
        return bias_act(
            modulated_conv2d(x, v[f"{name}.weight"], styles, f, demodulate=False),
            v[f"{name}.bias"],
            clamp=clamp,
        )

    x = img = None
    for level in range(2, L + 1):
        name, i = f"synthesis.b{2**level}", 2 * level - 5
        if level == 2:
            x = np.repeat(v[f"{name}.const"][None], len(z), axis=0)
            x = layer(f"{name}.conv1", x, ws[:, 0])
        elif arch == "resnet":
            y = conv2d_resample(x, v[f"{name}.skip.weight"] / np.sqrt(x.shape[1]), f, up=2, flip_weight=False)
            y = y * np.sqrt(0.5)
            x = layer(f"{name}.conv0", x, ws[:, i], up=2)
            x = y + layer(f"{name}.conv1", x, ws[:, i + 1], gain=np.sqrt(0.5))
        else:
            x = layer(f"{name}.conv0", x, ws[:, i], up=2)
            x = layer(f"{name}.conv1", x, ws[:, i + 1])
        if img is not None:
            img = upfirdn(img, f * 4, up=2, pad0=2, pad1=1)
        if arch == "skip" or level == L:
            t = torgb(f"{name}.torgb", x, ws[:, i + 2])
            img = t if img is None else img + t
    return img


def ref_discriminator(v, kw, img, cmap=None):
    """Discriminator.forward(img, c): the epilogue's output, projected on `cmap` [N, dim] when conditional."""
    f, L, clamp, arch = (
        setup_filter([1, 3, 3, 1]),
        int(math.log2(kw["img_resolution"])),
        kw["conv_clamp"],
        kw["d_arch"],
    )

    def conv(name, x, act="lrelu", down=1, gain=1.0, clamped=True):
        w = v[f"{name}.weight"] / np.sqrt(np.prod(v[f"{name}.weight"].shape[1:]))
        x = conv2d_resample(x, w, f, down=down, padding=w.shape[2] // 2)
        limit = clamp * gain if clamped and clamp is not None else None
        return bias_act(x, v.get(f"{name}.bias"), act, (SQRT2 if act == "lrelu" else 1.0) * gain, limit)

    x, img = None, img.astype(np.float64)
    for level in range(L, 2, -1):
        name = f"b{2**level}"
        if level == L or arch == "skip":
            y = conv(f"{name}.fromrgb", img)
            x = y if x is None else x + y
            img = upfirdn(img, f, down=2, pad0=1, pad1=1) if arch == "skip" else None
        if arch == "resnet":
            y = conv(f"{name}.skip", x, "linear", down=2, gain=np.sqrt(0.5), clamped=False)
            x = conv(f"{name}.conv0", x)
            x = y + conv(f"{name}.conv1", x, down=2, gain=np.sqrt(0.5))
        else:
            x = conv(f"{name}.conv1", conv(f"{name}.conv0", x), down=2)
    if arch == "skip":
        x = x + conv("b4.fromrgb", img, clamped=False)  # the epilogue's fromRGB has no conv_clamp
    G, F = min(kw["mbstd_group_size"], len(x)), kw["mbstd_num_channels"]
    n, c, h, w = x.shape
    y = x.reshape(G, -1, F, c // F, h, w)
    y = np.sqrt(((y - y.mean(axis=0)) ** 2).mean(axis=0) + 1e-8).mean(axis=(2, 3, 4))
    x = np.concatenate([x, np.tile(y.reshape(-1, F, 1, 1), (G, 1, h, w))], axis=1)
    x = conv("b4.conv", x)
    x = fc(v, "b4.fc", x.reshape(n, -1), "lrelu")
    out = fc(v, "b4.out", x)
    return out[:, 0] if cmap is None else (out * cmap).sum(axis=1) / np.sqrt(cmap.shape[1])


# ---------------------------------------------------------------------------------------------------
# Test models: two resolutions, every topology, with and without conv_clamp.

BASE = dict(
    z_dim=16,
    w_dim=12,
    num_layers=3,
    layer_features=10,
    lr_multiplier=0.01,
    img_channels=3,
    mbstd_group_size=4,
    mbstd_num_channels=2,
    channel_max=16,
)
MODELS = {
    "res32_Gskip_Dresnet_clamp": dict(
        BASE, img_resolution=32, channel_base=256, g_arch="skip", d_arch="resnet", conv_clamp=2.0
    ),
    "res64_Gresnet_Dorig_clamp": dict(
        BASE,
        img_resolution=64,
        channel_base=128,
        g_arch="resnet",
        d_arch="orig",
        conv_clamp=3.0,
        img_channels=1,
    ),
    "res32_Gorig_Dskip": dict(
        BASE, img_resolution=32, channel_base=256, g_arch="orig", d_arch="skip", conv_clamp=None
    ),
}
