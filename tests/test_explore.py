"""``vaelab explore``: the server's answers against the models' own methods, its refusals, and the page
in a real headless Chromium (Debian's, under Selenium; the browser tests fail, never skip, without it).

Set VAELAB_WRITE_SCREENSHOTS=1 to (re)write README's docs/explore-digits.png from the browser test;
the models are then trained longer, so the picture shows digits rather than blur.
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
from vaelab.data import load as load_data
from vaelab.explore import ExplorerServer, build_explorer
from vaelab.explore.server import MAX_BODY
from vaelab.explore.session import PATH_STEPS, find_runs, interpolate, path_ratio
from vaelab.metrics import path_length_ratio

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = os.environ.get("VAELAB_WRITE_SCREENSHOTS") == "1"
PIXEL_MAX = 16.0  # digits' full scale


# ---------------------------------------------------------------- models, server, HTTP


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A comparison-like folder of PCA, AE and VAE on digits, and a conditional VAE beside it."""
    root = tmp_path_factory.mktemp("explore-runs")
    X, y = (ds := load_data("digits")).X_train, ds.y_train
    epochs, hidden = (40, (128,)) if SCREENSHOTS else (4, (32,))
    small = dict(latent_dim=2, hidden=hidden, epochs=epochs, preprocessing="scale", pixel_max=PIXEL_MAX,
                 random_state=0, patience=None)
    vaelab.PCA(latent_dim=2, preprocessing="scale", pixel_max=PIXEL_MAX).fit(X).save(root / "cmp" / "models" / "PCA")
    vaelab.Autoencoder(**small).fit(X).save(root / "cmp" / "models" / "Autoencoder")
    vaelab.VAE(**small).fit(X).save(root / "cmp" / "models" / "VAE")
    vaelab.ConditionalVAE(**(small | {"epochs": 2})).fit(X, y).save(root / "cvae")
    return root


@pytest.fixture(scope="module")
def served(runs):
    """An explorer of all four models on digits' test split, served in this process on a free port."""
    explorer = build_explorer([str(runs / "cmp"), str(runs / "cvae")], "digits")
    server = ExplorerServer(explorer, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _request(server, method: str, path: str, body=None, headers: dict | None = None):
    """(status, parsed JSON or text) of one request; ``body`` a dict (sent as JSON) or raw bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = {"Content-Type": "application/json"} if data is not None else {}
    connection.request(method, path, body=data, headers=sent | (headers or {}))
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    is_json = response.getheader("Content-Type", "").startswith("application/json")
    return response.status, (json.loads(text) if is_json else text)


def _post(server, path: str, body, **headers):
    return _request(server, "POST", path, body, headers)


def test_runs_are_found_by_model_folder_comparison_and_models_dir(runs):
    assert list(find_runs([str(runs / "cmp")])) == ["Autoencoder", "PCA", "VAE"]
    assert list(find_runs([str(runs / "cmp" / "models")])) == ["Autoencoder", "PCA", "VAE"]
    assert list(find_runs([str(runs / "cvae"), str(runs / "cmp" / "models" / "VAE"), str(runs / "cvae")])) == [
        "cvae", "VAE", "cvae-2"]
    with pytest.raises(vaelab.ConfigError, match="not a fitted model directory"):
        find_runs([str(runs / "nothing-here")])


def test_decode_answers_the_models_inverse_transform(served):
    explorer = served.explorer
    codes = [[0.3, -1.2], [2.0, 0.5]]
    for name, model in explorer.models.items():
        label = 7 if model.classes else None
        status, answer = _post(served, "/api/decode", {"model": name, "codes": codes, "label": label})
        assert status == 200, answer
        Z = np.asarray(codes, dtype=np.float32)
        expected = model.estimator.inverse_transform(Z) if label is None else model.estimator.inverse_transform(Z, 7)
        np.testing.assert_allclose(answer["values"], expected.reshape(2, -1), atol=1e-5)


def test_interpolation_ends_are_reconstructions_and_ratio_is_the_metrics(served):
    explorer = served.explorer
    vae = explorer.models["VAE"].estimator
    a, b = 3, 11
    status, path = _post(served, "/api/interpolate", {"model": "VAE", "a": a, "b": b, "mode": "linear"})
    assert status == 200, path
    values = np.asarray(path["values"])  # (PATH_STEPS + 1, 64)
    assert values.shape == (PATH_STEPS + 1, 64)
    recon = vae.reconstruct(explorer.X[[a, b]]).reshape(2, -1)
    np.testing.assert_allclose(values[[0, -1]], recon, atol=1e-4)
    np.testing.assert_array_equal(path["ends"], explorer.X[[a, b]].reshape(2, -1))
    # The same definition as vaelab.metrics, which works in model space (raw / 16: the same ratio).
    model_space = explorer.X[[a, b]].reshape(2, -1).astype(np.float32) / PIXEL_MAX
    expected = float(path_length_ratio(vae.module_, model_space[:1], model_space[1:], n_steps=PATH_STEPS)[0])
    assert path["ratio"] == pytest.approx(expected, rel=1e-4)
    status, arc = _post(served, "/api/interpolate", {"model": "VAE", "a": a, "b": b, "mode": "spherical"})
    assert status == 200 and arc["ratio"] >= 1 - 1e-9
    np.testing.assert_allclose(np.asarray(arc["values"])[[0, -1]], recon, atol=1e-4)


def test_spherical_interpolation_keeps_the_norm_between_equal_norm_codes():
    z_a, z_b = np.array([3.0, 0.0, 0.0]), np.array([0.0, 0.0, 3.0])
    path = interpolate(z_a, z_b, np.linspace(0, 1, 9), "spherical")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0)
    np.testing.assert_allclose(path[[0, -1]], [z_a, z_b], atol=1e-12)
    line = interpolate(z_a, z_b, np.linspace(0, 1, 9), "linear")
    assert path_ratio(line) == pytest.approx(1.0) and path_ratio(np.ones((3, 2))) is None


def test_samples_are_the_estimators_with_the_seed_shown(served):
    explorer = served.explorer
    for sampler in ("prior", "gmm"):
        status, answer = _post(served, "/api/samples", {"model": "VAE", "sampler": sampler, "seed": 5, "n": 6})
        assert status == 200 and answer["seed"] == 5 and answer["sampler"] == sampler
        expected = explorer.models["VAE"].estimator.sample(6, random_state=5, sampler=sampler)
        np.testing.assert_allclose(answer["values"], expected.reshape(6, -1), atol=1e-5)
    status, answer = _post(served, "/api/samples", {"model": "cvae", "seed": 1, "n": 4, "label": 3})
    expected = explorer.models["cvae"].estimator.sample(4, y=3, random_state=1)
    np.testing.assert_allclose(answer["values"], expected.reshape(4, -1), atol=1e-5)


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/api/decode", {"model": "VAE", "codes": [[0.0, 0.0, 0.0]]}, "list of 2 numbers, got 3"),
        ("/api/decode", {"model": "VAE", "codes": [[1e5, 0.0]]}, "within"),
        ("/api/decode", {"model": "VAE", "codes": [["1", 0.0]]}, "must be numbers"),
        ("/api/decode", {"model": "VAE", "codes": [[True, 0.0]]}, "must be numbers"),
        ("/api/decode", {"model": "VAE", "codes": [[0.0, 0.0]] * 257}, "1 to 256"),
        ("/api/decode", {"model": "VAE", "codes": []}, "1 to 256"),
        ("/api/decode", {"model": "GAN", "codes": [[0.0, 0.0]]}, "unknown model 'GAN'"),
        ("/api/decode", {"codes": [[0.0, 0.0]]}, "unknown model None"),
        ("/api/decode", {"model": "VAE", "codes": [[0.0, 0.0]], "label": 3}, "not conditional"),
        ("/api/decode", {"model": "cvae", "codes": [[0.0, 0.0]], "label": 12}, "not a class"),
        ("/api/interpolate", {"model": "VAE", "a": 0, "b": 100000}, "b must be an integer in"),
        ("/api/interpolate", {"model": "VAE", "a": 0, "b": 1, "mode": "cubic"}, "mode must be"),
        ("/api/samples", {"model": "VAE", "sampler": "flow"}, "sampler must be"),
        ("/api/samples", {"model": "VAE", "n": 10**6}, "n must be an integer in"),
        ("/api/decode", b'{"model": "VAE", "codes": [[NaN, 0]]}', "NaN is not a number"),
        ("/api/decode", b'{"model": "VAE", "codes": [[1e999, 0]]}', "finite"),
        ("/api/decode", b'{"model": "VAE", "codes": [[' + b"9" * 5000 + b", 0]]}", "not valid JSON"),
        ("/api/decode", b'{"model": "VAE", "codes": [[0, 0]]', "not valid JSON"),
        ("/api/decode", b"[" * 100000, "not valid JSON"),
        ("/api/decode", b"[1, 2]", "must be a JSON object"),
        ("/api/decode", b"\xff\xfe", "not valid JSON"),
        ("/api/decode", b" " * (MAX_BODY + 1), "Content-Length of at most"),
    ],
)
def test_malformed_requests_get_400_and_the_server_stays_up(served, path, body, message):
    status, answer = _post(served, path, body)
    assert status == 400 and message in answer["error"], answer
    status, answer = _post(served, "/api/decode", {"model": "VAE", "codes": [[0.0, 0.0]]})
    assert status == 200 and len(answer["values"][0]) == 64


def test_requests_without_json_content_type_get_400(served):
    status, answer = _post(served, "/api/decode", b"{}", **{"Content-Type": "text/plain"})
    assert status == 400 and "application/json" in answer["error"]
    assert _request(served, "GET", "/no/such/page")[0] == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another local server's page
        {"Host": "evil.example"},  # DNS rebinding: a foreign name resolving to 127.0.0.1
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_other_origins_get_403(served, headers):
    body = {"model": "VAE", "codes": [[0.0, 0.0]]}
    assert _post(served, "/api/decode", body, **headers)[0] == 403
    assert _request(served, "GET", "/api/state", headers=headers)[0] == 403


def test_own_origin_is_served_with_a_strict_content_policy(served):
    status, _ = _post(served, "/api/decode", {"model": "VAE", "codes": [[0.0, 0.0]]},
                      Origin=f"http://localhost:{served.port}", Host=f"localhost:{served.port}")
    assert status == 200
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    connection.request("GET", "/")
    response = connection.getresponse()
    page = response.read().decode()
    assert response.status == 200 and "default-src 'self'" in response.getheader("Content-Security-Policy")
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere: works offline


def _non_loopback_address() -> str | None:
    """This machine's address on its default route, or None (no network at all)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # UDP: no packet is sent
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_server_binds_only_to_loopback(served):
    assert served.server_address[0] == "127.0.0.1"
    address = _non_loopback_address()
    if address is not None:  # the same port on another interface of this machine is closed
        with pytest.raises(OSError):
            socket.create_connection((address, served.port), timeout=2).close()
