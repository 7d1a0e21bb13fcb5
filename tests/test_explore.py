"""``vaelab explore``: the server's answers against the models' own methods, its refusals, and the page
in a real headless Chromium (Debian's, under Selenium; the browser tests fail, never skip, without it).
The command itself (URL, Ctrl-C, latency) is tested in test_explore_command.py.

Set VAELAB_WRITE_SCREENSHOTS=1 to (re)write README's docs/explore-digits.png from the browser test;
the models are then trained longer, so the picture shows digits rather than blur.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

import vaelab
from vaelab.data import load as load_data
from vaelab.explore import ExplorerServer, build_explorer
from vaelab.explore.server import MAX_BODY
from vaelab.explore.session import PATH_STEPS
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
    small = dict(
        latent_dim=2,
        hidden=hidden,
        epochs=epochs,
        preprocessing="scale",
        pixel_max=PIXEL_MAX,
        random_state=0,
        patience=None,
    )
    vaelab.PCA(latent_dim=2, preprocessing="scale", pixel_max=PIXEL_MAX).fit(X).save(root / "cmp" / "models" / "PCA")
    vaelab.Autoencoder(**small).fit(X).save(root / "cmp" / "models" / "Autoencoder")
    vaelab.VAE(**small).fit(X).save(root / "cmp" / "models" / "VAE")
    vaelab.ConditionalVAE(**(small | ({} if SCREENSHOTS else {"epochs": 2}))).fit(X, y).save(root / "cvae")
    if not SCREENSHOTS:  # README's picture shows the four 2-D models only
        vaelab.PCA(latent_dim=5, preprocessing="scale", pixel_max=PIXEL_MAX).fit(X).save(root / "pca5")
    return root


@pytest.fixture(scope="module")
def served(runs):
    """An explorer of all the models on digits' test split, served in this process on a free port."""
    explorer = build_explorer([str(p) for p in (runs / "cmp", runs / "cvae", runs / "pca5") if p.exists()], "digits")
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


def test_decode_answers_the_models_inverse_transform(served):
    explorer = served.explorer
    for name, model in explorer.models.items():
        codes = np.random.default_rng(0).normal(size=(2, model.latent_dim)).tolist()
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
    ],
)
def test_malformed_requests_get_400_and_the_server_stays_up(served, path, body, message):
    status, answer = _post(served, path, body)
    assert status == 400 and message in answer["error"], answer
    status, answer = _post(served, "/api/decode", {"model": "VAE", "codes": [[0.0, 0.0]]})
    assert status == 200 and len(answer["values"][0]) == 64


@pytest.mark.parametrize("length", [str(MAX_BODY + 1), "-5", "many", None])
def test_oversized_or_unsized_bodies_get_400_before_they_are_read(served, length):
    # Only the headers are sent: the server must answer from Content-Length alone (sending the
    # body too would race the server's close of the connection against the client's writes).
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.putrequest("POST", "/api/decode")
    connection.putheader("Content-Type", "application/json")
    if length is not None:
        connection.putheader("Content-Length", length)
    connection.endheaders()
    response = connection.getresponse()
    status, answer = response.status, json.loads(response.read())
    connection.close()
    assert status == 400 and "Content-Length of at most" in answer["error"], answer
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
    status, _ = _post(
        served,
        "/api/decode",
        {"model": "VAE", "codes": [[0.0, 0.0]]},
        Origin=f"http://localhost:{served.port}",
        Host=f"localhost:{served.port}",
    )
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


# ---------------------------------------------------------------- in a real browser


def _chromium(profile: Path):
    from test_report import _start_chromium  # the report test's start-up: same flags, same failure message

    driver, problem = _start_chromium(profile)
    if driver is None:
        pytest.fail(problem, pytrace=False)
    return driver


@pytest.fixture(scope="module")
def page(served, tmp_path_factory):
    """Chromium showing the explorer, once its first decodes and paths have arrived."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium(tmp_path_factory.mktemp("chromium-profile"))
    driver.get(served.url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    yield driver
    driver.quit()


_PIXELS = (
    """const c = arguments[0]; return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);"""
)


def _pixels(driver, element) -> np.ndarray:
    """The canvas's red channel at its native size, (H, W) — the page draws grey levels."""
    rgba = np.asarray(driver.execute_script(_PIXELS, element), dtype=np.int16)
    return rgba.reshape(int(element.get_attribute("height")), int(element.get_attribute("width")), 4)[..., 0]


def _expected_pixels(values: np.ndarray) -> np.ndarray:
    return np.clip(values.reshape(8, 8) / PIXEL_MAX, 0, 1) * 255


def _settled(driver, css: str, previous: str | None = None):
    """The element once its decode has arrived (and its code differs from ``previous``)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        e = d.find_element(By.CSS_SELECTOR, css)
        code = e.get_attribute("data-code")
        return e if e.get_attribute("data-busy") == "0" and code and code != previous else False

    return WebDriverWait(driver, 20).until(ready)


@pytest.mark.slow
def test_pointer_decodes_live_and_equals_inverse_transform(page, served):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    explorer = served.explorer
    vae_map = page.find_element(By.CSS_SELECTOR, 'canvas.map[data-model="VAE"]')
    extent = page.execute_script("return window.vaelabExplorer.models.find((m) => m.name === 'VAE').extent")
    seen, previous = [], None
    for dx, dy in [(-70, 45), (80, -60)]:  # CSS px from the map's centre
        ActionChains(page).move_to_element_with_offset(vae_map, dx, dy).perform()
        decoded = _settled(page, 'canvas.decoded[data-model="VAE"]', previous)
        previous = decoded.get_attribute("data-code")
        code = json.loads(previous)
        # The code is the pointer's place on the map (a 2-D latent: the map's axes are z0, z1).
        np.testing.assert_allclose(
            code, [dx / 150 * extent, -dy / 150 * extent], atol=1.01 * 2 * extent / 300
        )  # a CSS pixel
        for name, model in explorer.models.items():  # every model decodes that same latent point
            view = _settled(page, f'canvas.decoded[data-model="{name}"]')
            if model.latent_dim == 2:
                assert json.loads(view.get_attribute("data-code")) == code
            else:  # 5-D: the pointer moves in the plane of the codes' principal directions through 0
                expected = np.asarray(code) @ model.pca_axes
                np.testing.assert_allclose(json.loads(view.get_attribute("data-code")), expected, atol=1e-9)
                code5 = json.loads(view.get_attribute("data-code"))
            Z = np.asarray([code if model.latent_dim == 2 else code5], dtype=np.float32)
            est = model.estimator
            values = est.inverse_transform(Z) if model.classes is None else est.inverse_transform(Z, model.classes[0])
            assert np.abs(_pixels(page, view) - _expected_pixels(values)).max() <= 1, name
        seen.append(_pixels(page, decoded))
    assert np.abs(seen[0] - seen[1]).max() > 20  # the decoded image changed with the pointer
    # The class selector: the conditional model decodes the same point as another class.
    from selenium.webdriver.support.ui import Select, WebDriverWait

    Select(page.find_element(By.ID, "label")).select_by_value("5")
    css = 'canvas.decoded[data-model="cvae"][data-label="5"][data-busy="0"]'
    view = WebDriverWait(page, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))[0]
    values = explorer.models["cvae"].estimator.inverse_transform(np.asarray([code], dtype=np.float32), 5)
    assert np.abs(_pixels(page, view) - _expected_pixels(values)).max() <= 1
    severe = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe


@pytest.mark.slow
def test_interpolation_slider_ends_show_the_two_reconstructions(page, served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    explorer, a, b = served.explorer, 7, 21
    page.execute_script(
        """for (const [id, v] of [["a", arguments[0]], ["b", arguments[1]]]) {
        const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event("change")); }""",
        a,
        b,
    )
    frames = f'canvas.interp-frame[data-ready="1"][data-ends="{a},{b}"]'
    WebDriverWait(page, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, frames)) == len(explorer.models))
    slider = page.find_element(By.ID, "t")
    for key, row in [(Keys.END, b), (Keys.HOME, a)]:  # the keyboard drags the slider to its ends
        slider.send_keys(key)
        for name, model in explorer.models.items():
            frame = page.find_element(By.CSS_SELECTOR, f'canvas.interp-frame[data-model="{name}"]')
            assert frame.get_attribute("data-t") == ("0" if row == a else str(PATH_STEPS))
            est, x = model.estimator, explorer.X[[row]]
            recon = est.reconstruct(x) if model.classes is None else est.reconstruct(x, explorer.y[[row]])
            if model.classes is None:  # a conditional model decodes with the chosen class, not the example's
                assert np.abs(_pixels(page, frame) - _expected_pixels(recon)).max() <= 1, name
    ratio = page.find_element(By.CSS_SELECTOR, '.interp-row[data-model="VAE"] .caption').text
    assert ratio.startswith("path-length ratio ")
    if SCREENSHOTS:
        _write_screenshot(page)


@pytest.mark.slow
def test_traversal_and_samples_in_the_page(page, served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    explorer = served.explorer
    Select(page.find_element(By.ID, "traverse-model")).select_by_value("VAE")
    before = _settled(page, "#traverse-view").get_attribute("data-code")
    page.find_element(By.CSS_SELECTOR, '#traverse-sliders input[data-dim="1"]').send_keys(Keys.END)
    view = _settled(page, "#traverse-view", before)
    code, centre = json.loads(view.get_attribute("data-code")), json.loads(before)
    assert code[0] == centre[0] and code[1] > centre[1]  # only the dragged dimension moved
    vae = explorer.models["VAE"].estimator
    expected = _expected_pixels(vae.inverse_transform(np.asarray([code], dtype=np.float32)))
    assert np.abs(_pixels(page, view) - expected).max() <= 1
    page.find_element(By.ID, "seed").clear()
    page.find_element(By.ID, "seed").send_keys("3")
    page.find_element(By.ID, "sample-prior").click()
    WebDriverWait(page, 20).until(lambda d: "seed 3" in d.find_element(By.ID, "sample-caption").text)
    first = page.find_element(By.CSS_SELECTOR, '#samples .panel[data-model="VAE"] canvas')
    expected = _expected_pixels(vae.sample(16, random_state=3, sampler="prior")[0])
    assert np.abs(_pixels(page, first) - expected).max() <= 1


@pytest.mark.slow
def test_two_chosen_dimensions_with_the_others_held_at_example_a(page, served):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    model = served.explorer.models["pca5"]
    settings = {"projection": "dims", "dim-i": "3", "dim-j": "0", "hold": "a", "a": "9"}
    page.execute_script(
        """for (const [id, v] of Object.entries(arguments[0])) {
        const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event("change")); }""",
        settings,
    )
    before = page.find_element(By.CSS_SELECTOR, 'canvas.decoded[data-model="pca5"]').get_attribute("data-code")
    ActionChains(page).move_to_element_with_offset(
        page.find_element(By.CSS_SELECTOR, 'canvas.map[data-model="pca5"]'), 25, 35
    ).perform()
    view = _settled(page, 'canvas.decoded[data-model="pca5"]', before)
    u, v = page.execute_script("return [window.vaelabExplorer.u, window.vaelabExplorer.v]")
    expected = model.codes[9].copy()
    expected[3], expected[0] = u, v
    code = json.loads(view.get_attribute("data-code"))
    np.testing.assert_allclose(code, expected, atol=1e-5)  # the page holds codes rounded to 5 decimals
    values = model.estimator.inverse_transform(np.asarray([code], dtype=np.float32))
    assert np.abs(_pixels(page, view) - _expected_pixels(values)).max() <= 1


def _write_screenshot(page) -> None:
    """README's picture: the maps with the pointer on them, a path, and GMM samples."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page.find_element(By.ID, "sample-gmm").click()
    WebDriverWait(page, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#samples canvas"))
    slider = page.find_element(By.ID, "t")
    page.execute_script("arguments[0].value = 24; arguments[0].dispatchEvent(new Event('input'))", slider)
    vae_map = page.find_element(By.CSS_SELECTOR, 'canvas.map[data-model="VAE"]')
    ActionChains(page).move_to_element_with_offset(vae_map, 30, -25).perform()
    _settled(page, 'canvas.decoded[data-model="PCA"]')
    page.execute_script("window.scrollTo(0, 0)")
    page.save_screenshot(str(ROOT / "docs" / "explore-digits.png"))
