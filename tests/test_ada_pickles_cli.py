"""stylegan2-ada pickles (TensorFlow and PyTorch) through the entry points, with real Hydra composition at
16²: `sample.py snapshot=<pkl>`, `transfer.source=<pkl>` and `python -m stylegan_exp.convert`; images checked
against the NumPy references of the original forward passes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose_config
from original_stylegan2 import BASE as TF_BASE
from original_stylegan2 import ref_g_main
from original_stylegan2_torch import BASE as TORCH_BASE
from original_stylegan2_torch import network_data, ref_generator, write_network_pkl
from PIL import Image
from test_stylegan2_ada_tf import write_ada_pkl

from stylegan_exp import convert
from stylegan_exp.config import to_object
from stylegan_exp.grid import to_uint8
from stylegan_exp.models import load_snapshot
from stylegan_exp.models.stylegan2.config import StyleGAN2Config
from stylegan_exp.run import start_sampling
from stylegan_exp.sample.generate import seed_latents

TF_KW = dict(TF_BASE, resolution=16, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
             mapping_layers=2, mapping_fmaps=16, mbstd_num_features=1, g_arch="skip", d_arch="resnet",
             conv_clamp=2.0)
TORCH_KW = dict(TORCH_BASE, img_resolution=16, channel_base=128, z_dim=16, w_dim=16, num_layers=2,
                layer_features=16, mbstd_num_channels=1, g_arch="skip", d_arch="resnet", conv_clamp=2.0)


def write_pickle(fmt: str, path):
    """A 16² pickle of the format and its Gs reference: z [N, 16], ψ → NHWC images."""
    if fmt == "tf":
        raw = write_ada_pkl(path, TF_KW)
        return lambda z, psi: ref_g_main(raw["Gs"], TF_KW, z, psi).transpose(0, 2, 3, 1)
    data, raw = network_data(TORCH_KW)
    write_network_pkl(path, data)
    return lambda z, psi: ref_generator(raw["Gs"], TORCH_KW, z, psi).transpose(0, 2, 3, 1)


@pytest.mark.parametrize("fmt", ["tf", "torch"])
def test_sample_py_and_convert_open_an_ada_pickle(tmp_path, fmt):
    ref = write_pickle(fmt, tmp_path / "net.pkl")
    paths = start_sampling(compose_config("sample", f"snapshot={tmp_path / 'net.pkl'}", "seeds=[1,2]",
                                          "truncation_psi=0.5"), str(tmp_path / "samples"))
    assert [p.name for p in paths] == ["example-1.png", "example-2.png"]
    expected = to_uint8(ref(seed_latents([1, 2], 16), 0.5))
    for path, image in zip(paths, expected, strict=True):
        assert np.abs(np.asarray(Image.open(path)).astype(int) - image).max() <= 1  # uint8 rounding

    assert convert.main([str(tmp_path / "net.pkl"), str(tmp_path / "net.npz")]) == 0
    converted, imported = load_snapshot(tmp_path / "net.npz"), load_snapshot(tmp_path / "net.pkl")
    assert isinstance(converted.model, StyleGAN2Config) and converted.model.conv_clamp == 2.0
    # Unless told, sample.py truncates as the original's own default: G_main ψ 0.5, generate.py ψ 1.
    assert converted.model.truncation_psi == (0.5 if fmt == "tf" else 1.0)
    assert all(np.array_equal(converted.weights[k], imported.weights[k]) for k in imported.weights)


def test_convert_names_a_refused_setting_in_one_line(tmp_path, capsys):
    data, _ = network_data(TORCH_KW, edit=lambda d: d["G_ema"].meta["state"]["_init_kwargs"].update(c_dim=7))
    write_network_pkl(tmp_path / "cond.pkl", data)
    assert convert.main([str(tmp_path / "cond.pkl"), str(tmp_path / "out.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert "G_ema is conditional (c_dim=7)" in err and "\n" not in err
    assert not (tmp_path / "out.npz").exists()


def _transfer_config(tmp_path):
    return to_object(compose_config(
        "train", "+experiment=tiny", f"outputs_root={tmp_path / 'outputs'}", "logger=none",
        f"dataset.path={tmp_path / 'synthetic-16'}", "transfer=snapshot",
        f"transfer.source={tmp_path / 'source.pkl'}", "transfer.resume_kimg=5.8", "schedule.total_kimg=6"))


@pytest.mark.parametrize("fmt", ["tf", "torch"])
def test_transfer_source_may_be_an_ada_pickle(tmp_path, fmt):
    """transfer.source=<pkl> without a model override: the run adopts the pickle's architecture and starts
    from its weights."""
    from stylegan_exp.nets.weights import weights_of
    from stylegan_exp.train.loop import Trainer

    write_pickle(fmt, tmp_path / "source.pkl")
    trainer = Trainer(_transfer_config(tmp_path), tmp_path / "run")
    assert isinstance(trainer.cfg.model, StyleGAN2Config) and trainer.cfg.model.conv_clamp == 2.0
    source = load_snapshot(tmp_path / "source.pkl")
    for key, net in (("Gs", trainer.Gs), ("D", trainer.D)):
        ours = weights_of(net)
        assert all(np.array_equal(ours[k], v) for k, v in source.subset(key).items()), key


@pytest.mark.slow
def test_a_run_from_a_pytorch_pickle_draws_its_images(tmp_path):
    """The first fakes grid (at resume_kimg) is the PyTorch pickle's G_ema output on the grid latents."""
    from stylegan_exp.grid import make_grid
    from stylegan_exp.train.loop import Trainer

    ref = write_pickle("torch", tmp_path / "source.pkl")
    cfg = _transfer_config(tmp_path)
    Trainer(cfg, tmp_path / "run").run()
    grid_z = np.random.RandomState(cfg.grid.seed).randn(cfg.grid.width * cfg.grid.height, 16)
    expected = make_grid(to_uint8(ref(grid_z, 1.0)), cfg.grid.width)
    first = np.asarray(Image.open(tmp_path / "run" / "fakes000005.png"))
    assert np.abs(first.astype(int) - expected.astype(int)).max() <= 1
