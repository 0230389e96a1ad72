"""sample.py task=explore without a browser: the app's images against sample.py's own files, bad requests,
start-up (the missing extra, a bad snapshot, host and port) — through Starlette's test client."""

from __future__ import annotations

import io
import logging
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config, run_task
from PIL import Image

from stylegan_exp.config import to_object
from stylegan_exp.sample.explore import serve
from stylegan_exp.sample.explore.app import make_app
from stylegan_exp.sample.tasks import open_snapshot
from stylegan_exp.sample.truncation import adopt_truncation

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402


def explore_config(snapshot: Path, *overrides: str):
    cfg = compose_config("sample", "task=explore", f"snapshot={snapshot}", *overrides)
    snap = open_snapshot(cfg.snapshot, cfg.outputs_root, cfg.name, cfg.full_network)
    return to_object(adopt_truncation(cfg, snap.model)), snap


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def explorer(request, random_snapshots):
    """(snapshot, test client) of the explorer on a random tiny 16² snapshot of each architecture."""
    snapshot = random_snapshots(request.param)
    cfg, snap = explore_config(snapshot, "batch_size=4")
    found = serve.explorer_of(cfg, snap)
    with TestClient(make_app(found, serve.settings(cfg, snap, found))) as client:
        yield snapshot, client


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize(("psi", "cutoff"), [(0.5, None), (0.7, 2), (1.0, None), (-0.4, 3)])
def test_a_face_is_the_png_sample_py_writes(explorer, tmp_path, psi, cutoff):
    snapshot, client = explorer
    cut = "null" if cutoff is None else str(cutoff)
    (path,) = run_task(snapshot, tmp_path, "seeds=[11]", f"truncation_psi={psi}", f"truncation_cutoff={cut}",
                       "batch_size=4")
    response = client.get("/api/face.png", params={"seed": 11, "psi": psi, "cutoff": cutoff or "none"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == path.read_bytes()


@pytest.mark.parametrize("lod", [0.0, 0.5])
def test_an_original_pickle_is_explored_as_sample_py_samples_it(tmp_path, lod):
    """A grayscale original StyleGAN pickle without noise or minibatch-stddev, and one saved growing."""
    from original_stylegan import MODELS, write_pkl

    pkl = tmp_path / "net.pkl"
    write_pkl(pkl, MODELS["res16_allfused_nonoise"], lod=lod)
    (path,) = run_task(pkl, tmp_path / "sample", "seeds=[2]", "truncation_psi=0.6")
    cfg, snap = explore_config(pkl)
    found = serve.explorer_of(cfg, snap)
    with TestClient(make_app(found, serve.settings(cfg, snap, found))) as client:
        response = client.get("/api/face.png", params={"seed": 2, "psi": 0.6})
        assert response.content == path.read_bytes() and decoded(response.content).shape == (16, 16)
        assert np.isfinite(float(response.headers["X-D-Score"]))


def test_the_style_mixing_grid_is_the_figure(explorer, tmp_path):
    snapshot, client = explorer
    response = client.get("/api/mix.png", params={"rows": "1,2", "columns": "3,4,5", "range": "middle",
                                                  "psi": 0.6, "cutoff": "none"})
    assert response.status_code == 200
    assert decoded(response.content).shape == (3 * 16, 4 * 16, 3)
    (figure,) = run_task(snapshot, tmp_path, "task=figures", "task.kinds=[style_mixing]",
                         "task.mixing_sources=[1,2]", "task.mixing_destinations=[3,4,5]",
                         "task.mixing_ranges=[middle]", "truncation_psi=0.6", "truncation_cutoff=null",
                         "batch_size=4")
    assert response.content == figure.read_bytes()


def test_the_interpolation_strip_runs_from_one_face_to_the_other(explorer):
    _, client = explorer
    strip = decoded(client.get("/api/interpolation.png", params={"start": 3, "stop": 9, "steps": 5}).content)
    assert strip.shape == (16, 5 * 16, 3)
    first, last = (decoded(client.get("/api/face.png", params={"seed": s}).content) for s in (3, 9))
    np.testing.assert_array_equal(strip[:, :16], first)
    assert np.abs(strip[:, -16:].astype(int) - last).max() <= 1  # w + (w' − w)·1 may round off w'
    assert not np.array_equal(strip[:, 32:48], first) and not np.array_equal(strip[:, 32:48], last)


def test_the_d_score_is_task_ranks_score_of_the_png(explorer, tmp_path):
    snapshot, client = explorer
    info = client.get("/api/info").json()
    assert info["has_d"] and info["resolution"] == 16 and set(info["ranges"]) == {"coarse", "middle", "fine"}
    response = client.get("/api/face.png", params={"seed": 4})
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "face.png").write_bytes(response.content)
    csv_path, _ = run_task(snapshot, tmp_path / "rank", "task=rank", f"task.folder={folder}")
    ranked = float(csv_path.read_text().splitlines()[1].split(",")[1])  # rank,score,path,rejected
    assert float(response.headers["X-D-Score"]) == pytest.approx(ranked, abs=1e-3)


@pytest.mark.parametrize(("path", "params", "named"), [
    ("/api/face.png", {}, "seed is missing"),
    ("/api/face.png", {"seed": "abc"}, "seed='abc' is not an integer"),
    ("/api/face.png", {"seed": -1}, "seed -1 is outside"),
    ("/api/face.png", {"seed": 1, "psi": "nan"}, "psi must be a finite number"),
    ("/api/face.png", {"seed": 1, "psi": "x"}, "psi='x' is not a number"),
    ("/api/face.png", {"seed": 1, "cutoff": -2}, "cutoff -2 is negative"),
    ("/api/face.png", {"seed": 1, "cutoff": "all"}, "cutoff='all' is not an integer"),
    ("/api/mix.png", {"range": "hair"}, "unknown mixing range 'hair'"),
    ("/api/mix.png", {"rows": "1,a"}, "rows='1,a' is not a comma-separated list"),
    ("/api/mix.png", {"rows": ",".join(map(str, range(10))), "columns": ",".join(map(str, range(10)))},
     "121 images asked for, more than task.max_images=64"),
    ("/api/interpolation.png", {"steps": 1}, "steps must be at least 2"),
])
def test_a_bad_parameter_is_400_with_one_line(explorer, path, params, named):
    _, client = explorer
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert named in response.text and response.text.count("\n") == 1


def test_the_page_and_its_script_are_served(explorer):
    _, client = explorer
    page = client.get("/")
    assert page.status_code == 200 and 'id="psi"' in page.text and "explore.js" in page.text
    assert "channel(" in client.get("/explore.js").text


def test_without_the_extra_the_task_is_one_line_before_the_snapshot_is_read(tmp_path, monkeypatch):
    real = serve.importlib.util.find_spec
    monkeypatch.setattr(serve.importlib.util, "find_spec",
                        lambda name: None if name == "uvicorn" else real(name))
    with pytest.raises(SystemExit) as stop:
        run_task(tmp_path / "no-such.npz", tmp_path / "run", "task=explore")
    assert str(stop.value) == ('error: task=explore needs the explore extra (uvicorn not installed): '
                               'pip install -e ".[explore]"')
    assert not (tmp_path / "run").exists()


def test_a_bad_snapshot_path_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as stop:
        run_task(tmp_path / "no-such.npz", tmp_path / "run", "task=explore")
    message = str(stop.value)
    assert message.startswith("error: ") and "no-such.npz" in message and "\n" not in message


def test_it_binds_loopback_prints_the_url_and_warns_off_loopback(random_snapshots, tmp_path, monkeypatch,
                                                                   caplog):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: served.append(sockets[0].getsockname()))
    caplog.set_level(logging.INFO, logger="stylegan_exp")
    snapshot = random_snapshots("stylegan")
    run_task(snapshot, tmp_path / "a", "task=explore", "task.port=0")
    host, port = served[0]
    assert host == "127.0.0.1" and f"explorer at http://127.0.0.1:{port}/" in caplog.text
    assert "not a loopback address" not in caplog.text
    run_task(snapshot, tmp_path / "b", "task=explore", "task.host=0.0.0.0", "task.port=0")
    assert served[1][0] == "0.0.0.0"
    assert "task.host=0.0.0.0 is not a loopback address" in caplog.text


@pytest.mark.parametrize(("override", "line"), [
    ("task.mixing_range=hair",
     "error: task.mixing_range: unknown mixing range 'hair' (one of coarse, middle, fine)"),
    ("task.interpolation_seeds=[1]", "error: task.interpolation_seeds: two seeds are needed, got [1]"),
    ("task.seed=-3", "error: task.seed: seed -3 is outside [0, 4294967295]"),
    ("task.max_images=10", "error: task.max_images: 20 images asked for, more than task.max_images=10"),
    ("truncation_cutoff=-1", "error: truncation_psi/truncation_cutoff: cutoff -1 is negative"),
])
def test_a_bad_starting_value_is_one_line_at_start_up(random_snapshots, tmp_path, override, line):
    with pytest.raises(SystemExit) as stop:
        run_task(random_snapshots("stylegan"), tmp_path / "run", "task=explore", override)
    assert str(stop.value).startswith(line) and "\n" not in str(stop.value)
    assert not (tmp_path / "run").exists()


def test_a_taken_port_is_one_line(random_snapshots, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stop:
            run_task(random_snapshots("stylegan"), tmp_path / "run", "task=explore", f"task.port={port}")
    assert str(stop.value).startswith(f"error: cannot listen on task.host=127.0.0.1 task.port={port}: ")
    assert "task.port=0 picks a free port" in str(stop.value)


def test_loopback_hosts():
    assert all(map(serve.is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(serve.is_loopback, ["0.0.0.0", "192.168.1.5", "example.org"]))
