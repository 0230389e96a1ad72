"""stylegan2-ada-pytorch network pickles read without torch and without running pickled code: pickles built
here with the genuine structure (tests/original_stylegan2_torch.py), checked against the independent NumPy
reference of the original forward pass; payloads that would run code are refused with nothing executed."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import tensorflow as tf
from original_stylegan2_torch import (
    MODELS,
    kwargs_edit,
    module,
    module_source_edit,
    network_data,
    ref_discriminator,
    ref_generator,
    write_network_pkl,
    write_torch_legacy,
    write_torch_zip,
)

from stylegan_exp.legacy.pickles import LegacyImportError
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.models.stylegan2.config import StyleGAN2Config

# Tensors stored as torch may store them: a transposed view, behind an offset, in a float16 storage.
LAYOUTS = {"fc0.weight": "transposed", "conv1.bias": "offset", "b4.const": "half", "torgb.weight": "half"}


def d_images(kw: dict) -> np.ndarray:
    res = kw["img_resolution"]
    images = np.random.default_rng(2).standard_normal((8, kw["img_channels"], res, res))
    contrast, brightness = np.geomspace(0.1, 10, 8), np.linspace(-3, 3, 8)
    return (images * contrast[:, None, None, None] + brightness[:, None, None, None]).astype(np.float32)


def compare(snap, raw: dict, kw: dict) -> str:
    """Our Gs (ψ 0.5 and 1, const noise) and D against the NumPy reference of the PyTorch networks."""
    Gs, D = network(snap, "Gs"), network(snap, "D")
    z = np.random.default_rng(1).standard_normal((4, kw["z_dim"])).astype(np.float32)
    report = []
    for psi in (0.5, 1.0):
        ours = Gs(tf.constant(z), psi=psi, cutoff=None, randomize_noise=False).numpy()
        ref = ref_generator(raw["Gs"], kw, z, psi).transpose(0, 2, 3, 1)
        assert np.abs(ref).max() > 0.5
        diff = np.abs(ours - ref).max()
        assert diff < 1e-3, (psi, diff)
        report.append(f"G ψ={psi} {diff:.1e}")
    images = d_images(kw)
    d_ref = ref_discriminator(raw["D"], kw, images)
    assert d_ref.std() > 0.01
    d_diff = np.abs(D(tf.constant(images.transpose(0, 2, 3, 1))).numpy() - d_ref).max()
    assert d_diff < 1e-3, d_diff
    return f"{', '.join(report)}, D {d_diff:.1e} (scores' std {d_ref.std():.2f})"


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_pytorch_pickle_matches_original(tmp_path, name):
    kw = MODELS[name]
    data, raw = network_data(kw, layouts=LAYOUTS)
    write_network_pkl(tmp_path / "network-snapshot-000100.pkl", data)
    snap = load_snapshot(tmp_path / "network-snapshot-000100.pkl")
    model = snap.model
    assert isinstance(model, StyleGAN2Config) and model.conv_clamp == kw["conv_clamp"]
    assert (model.g_architecture, model.d_architecture) == (kw["g_arch"], kw["d_arch"])
    assert (snap.resolution, snap.num_channels, model.fmap_base) == (
        kw["img_resolution"],
        kw["img_channels"],
        kw["channel_base"] // 2,
    )
    assert not np.array_equal(snap.subset("G")["w_avg"], snap.subset("Gs")["w_avg"])  # G_ema is Gs
    print(f"{name}: {compare(snap, raw, kw)}")


def test_torch_save_zip_and_legacy_files_read_the_same_weights(tmp_path):
    kw = MODELS["res32_Gskip_Dresnet_clamp"]
    data, raw = network_data(kw, layouts=LAYOUTS)
    write_network_pkl(tmp_path / "net.pkl", data)
    write_torch_zip(tmp_path / "net.pt", data)
    write_torch_legacy(tmp_path / "legacy.pth", data)
    a = load_snapshot(tmp_path / "net.pkl")
    for other in ("net.pt", "legacy.pth"):
        b = load_snapshot(tmp_path / other)
        assert a.weights.keys() == b.weights.keys()
        assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights), other
    compare(a, raw, kw)


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    data, _ = network_data(MODELS["res32_Gorig_Dskip"], layouts={"b8.conv0.weight": "overrun"})
    write_network_pkl(tmp_path / "net.pkl", data)
    with pytest.raises(LegacyImportError, match=r"overruns its storage of 2304 elements"):
        load_snapshot(tmp_path / "net.pkl")


def _plant(path_key: str, payload):
    """An edit putting `payload` into G_ema's state (met mid-stream, after G and before D's tensors)."""
    return lambda data: data["G_ema"].meta["state"].__setitem__(path_key, payload)


class _System:
    def __init__(self, target) -> None:
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


class _Eval:
    def __init__(self, target) -> None:
        self.target = target

    def __reduce__(self):
        return eval, (f"open({str(self.target)!r}, 'w')",)


@pytest.mark.parametrize("fmt", ["pkl", "zip"])
@pytest.mark.parametrize(
    ("payload", "named"), [(_System, f"{os.system.__module__}.system"), (_Eval, "builtins.eval")]
)
def test_payloads_that_would_run_code_are_refused_with_nothing_executed(tmp_path, fmt, payload, named):
    target = tmp_path / "pwned"
    data, _ = network_data(MODELS["res32_Gorig_Dskip"], edit=_plant("hook", payload(target)))
    path = tmp_path / f"evil.{'pkl' if fmt == 'pkl' else 'pt'}"
    (write_network_pkl if fmt == "pkl" else write_torch_zip)(path, data)
    with pytest.raises(LegacyImportError) as info:
        load_snapshot(path)
    message = str(info.value)
    assert f"refused global {named}" in message and "\n" not in message, message
    assert not target.exists()


def test_embedded_module_source_is_never_executed(tmp_path):
    """The persistence records carry source the original loader exec()s: reading the pickle must not."""
    target = tmp_path / "pwned"
    source = f"import pathlib\npathlib.Path({str(target)!r}).write_text('ran')\n"

    data, raw = network_data(MODELS["res32_Gorig_Dskip"], edit=module_source_edit(source))
    write_network_pkl(tmp_path / "net.pkl", data)
    assert isinstance(load_snapshot(tmp_path / "net.pkl").model, StyleGAN2Config)
    assert not target.exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (kwargs_edit("G", "c_dim", 10), "G_ema is conditional (c_dim=10)"),
        (kwargs_edit("D", "c_dim", 10), "D is conditional (c_dim=10)"),
        (
            kwargs_edit("G", "synthesis_kwargs", "architecture", "fancy"),
            "unsupported G_ema setting architecture='fancy'",
        ),
        (
            kwargs_edit("G", "mapping_kwargs", "activation", "relu"),
            "unsupported G_ema mapping_kwargs kwargs activation=",
        ),
        (
            kwargs_edit("D", "epilogue_kwargs", "mbstd_group_size", None),
            "unsupported D setting mbstd_group_size=None",
        ),
        (kwargs_edit("D", "conv_clamp", 256), "G_ema and D differ in conv_clamp"),
        (kwargs_edit("D", "block_kwargs", "dropout", 0.5), "unsupported D block_kwargs kwargs dropout=0.5"),
        (
            kwargs_edit("D", "architecture", "skip"),
            "unsupported D setting architecture='skip' with conv_clamp=2.0",
        ),
        (lambda data: data.pop("D"), "is not a StyleGAN network pickle (no G_ema and D"),
        (
            lambda data: data.__setitem__(
                "G_ema",
                module(
                    "Generator",
                    {},
                    children={
                        "synthesis": module(
                            "SynthesisNetwork", {}, children={"input": module("PatchEmbedding", {})}
                        )
                    },
                ),
            ),
            "Gs is Generator/SynthesisNetwork/PatchEmbedding, which this version cannot import",
        ),
    ],
)
def test_unsupported_pytorch_pickles_are_refused_in_one_line(tmp_path, edit, message):
    data, _ = network_data(MODELS["res32_Gskip_Dresnet_clamp"], edit=edit)
    write_network_pkl(tmp_path / "bad.pkl", data)
    with pytest.raises(Exception) as info:
        load_snapshot(tmp_path / "bad.pkl")
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_plain_pickle_of_something_else_is_not_taken_for_a_network(tmp_path):
    with open(tmp_path / "other.pkl", "wb") as f:
        pickle.dump({"weights": [1, 2, 3]}, f)
    with pytest.raises(LegacyImportError, match="is not a StyleGAN pickle"):
        load_snapshot(tmp_path / "other.pkl")


def test_a_pytorch_pickle_opens_from_a_url_downloaded_once(tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "site").mkdir()
    data, _ = network_data(MODELS["res32_Gorig_Dskip"])
    write_network_pkl(tmp_path / "site" / "network-snapshot.pkl", data)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/network-snapshot.pkl"
        snap = load_snapshot(url, cache_dir=tmp_path / "cache")
    finally:
        server.shutdown()
    assert isinstance(snap.model, StyleGAN2Config) and snap.resolution == 32
    assert len(list((tmp_path / "cache").iterdir())) == 1
