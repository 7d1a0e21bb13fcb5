"""``vaelab explore`` apart from the page: finding runs, tables and larger latent spaces, the path
maths, and the command itself (its URL, Ctrl-C, a taken port, and a 28x28 conv decode's latency).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import vaelab
import vaelab.explore
from vaelab.data import load as load_data
from vaelab.explore import ExplorerServer
from vaelab.explore.session import find_runs, interpolate, path_ratio

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """PCA runs on digits (fitted in a blink): a comparison-like ``cmp/models/{PCA, VAE}`` and a ``cvae``.

    The names only stand for folders; every model here is a PCA.
    """
    root = tmp_path_factory.mktemp("explore-runs")
    pca = vaelab.PCA(latent_dim=2, preprocessing="scale", pixel_max=16.0).fit(load_data("digits").X_train)
    for folder in ("cmp/models/PCA", "cmp/models/VAE", "cvae"):
        pca.save(root / folder)
    return root


def test_runs_are_found_by_model_folder_comparison_and_models_dir(runs):
    assert list(find_runs([str(runs / "cmp")])) == ["PCA", "VAE"]
    assert list(find_runs([str(runs / "cmp" / "models")])) == ["PCA", "VAE"]
    assert list(find_runs([str(runs / "cvae"), str(runs / "cmp" / "models" / "VAE"), str(runs / "cvae")])) == [
        "cvae",
        "VAE",
        "cvae-2",
    ]
    with pytest.raises(vaelab.ConfigError, match="not a fitted model directory"):
        find_runs([str(runs / "nothing-here")])


def test_tables_and_larger_latent_spaces(tmp_path):
    """A 5-D PCA of a table: orthonormal map axes, N(0, I) prior moments, feature ranges, decodes."""
    X = np.random.default_rng(0).normal(size=(200, 7)).astype(np.float32) * np.arange(1, 8, dtype=np.float32)
    pca = vaelab.PCA(latent_dim=5).fit(X)
    explorer = vaelab.explore.Explorer({"pca": pca}, X[:50], None, data_name="table", is_image=False)
    state = explorer.state()
    model = state["models"][0]
    axes = np.asarray(model["pca_axes"])
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-9)
    np.testing.assert_allclose(model["prior_cov"], np.eye(5)) and np.testing.assert_allclose(model["prior_mean"], 0)
    assert state["data"]["kind"] == "table" and state["data"]["labels"] is None
    np.testing.assert_allclose(state["data"]["feature_max"], X[:50].max(0), rtol=1e-6)
    answer = explorer.decode({"model": "pca", "codes": [[0.5, 0, 0, 0, -1]]})
    np.testing.assert_allclose(answer["values"], pca.inverse_transform(np.array([[0.5, 0, 0, 0, -1]])), atol=1e-4)


def test_spherical_interpolation_keeps_the_norm_between_equal_norm_codes():
    z_a, z_b = np.array([3.0, 0.0, 0.0]), np.array([0.0, 0.0, 3.0])
    path = interpolate(z_a, z_b, np.linspace(0, 1, 9), "spherical")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0)
    np.testing.assert_allclose(path[[0, -1]], [z_a, z_b], atol=1e-12)
    line = interpolate(z_a, z_b, np.linspace(0, 1, 9), "linear")
    assert path_ratio(line) == pytest.approx(1.0) and path_ratio(np.ones((3, 2))) is None


# ---------------------------------------------------------------- the command: URL, Ctrl-C, latency


@pytest.mark.slow
def test_command_prints_its_url_and_stops_cleanly_on_ctrl_c(runs):
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "DISPLAY": ""}
    command = [sys.executable, "-m", "vaelab", "explore", str(runs / "cmp" / "models" / "VAE"), "--port", "0"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [child.stdout.readline() for _ in range(2)]  # no display: the URL only, no browser
        url = lines[1].split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), lines
        port = int(url.rsplit(":", 1)[1].strip("/"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/api/state")
        assert connection.getresponse().status == 200
        connection.close()
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode in (0, 130) and "Traceback" not in stderr, stderr
    assert "stopped" in stderr


def test_command_refuses_a_taken_port(runs, capsys):
    from vaelab.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status = main(["explore", str(runs / "cvae"), "--port", str(taken.getsockname()[1]), "--no-browser"])
    assert status == 2 and "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_decode_of_a_28x28_conv_model_answers_within_50_ms(tmp_path):
    """The issue's target, end to end over HTTP: a conv VAE (default channels) on 28x28 images."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(64, 1, 28, 28), dtype=np.uint8)
    vae = vaelab.VAE(
        latent_dim=16, architecture="conv", epochs=1, preprocessing="scale", random_state=0, validation_fraction=0
    ).fit(X)
    vae.save(tmp_path / "conv")
    explorer = vaelab.explore.Explorer(
        {"conv": vaelab.load(tmp_path / "conv")}, X[:20], None, data_name="random 28x28", is_image=True
    )
    server = ExplorerServer(explorer, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        times = []
        for _ in range(60):  # one keep-alive connection, as the page's fetches use
            body = json.dumps({"model": "conv", "codes": [rng.normal(size=16).tolist()]})
            start = time.perf_counter()
            connection.request("POST", "/api/decode", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            times.append(time.perf_counter() - start)
            assert response.status == 200 and len(answer["values"][0]) == 784
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    median, p95 = np.median(times[10:]) * 1e3, np.percentile(times[10:], 95) * 1e3  # after warm-up
    print(f"\nconv 28x28 decode round trip over HTTP: median {median:.1f} ms, p95 {p95:.1f} ms (50 requests)")
    assert median < 50, f"median {median:.1f} ms"


def test_a_dropped_connection_leaves_no_traceback_and_the_server_up(runs, capfd):
    server = ExplorerServer(vaelab.explore.build_explorer([str(runs / "cvae")]), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as raw:  # half a request, then gone
            raw.sendall(b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("GET", "/api/state")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err
