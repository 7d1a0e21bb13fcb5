"""The report layer: figures as PNGs, one self-contained HTML page, and that page in a real browser.

The browser tests drive Debian's Chromium through Selenium and chromedriver. They fail (never skip)
when those are missing, so a CI image without them cannot pass by accident.
"""

import ast
import base64
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_wine

from vaelab import PCA, VAE, Autoencoder, ConfigError, DataError
from vaelab.report import figures, write_report
from vaelab.report.html import FIGURE_DPI

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = (
    "install the browser test's requirements: `apt-get install chromium chromium-driver` and `pip install selenium`"
)
WIDTH_PX = round(figures.FIGURE_WIDTH * FIGURE_DPI)  # every figure has the same width
COLUMNS = [("model", "Model"), ("mse", "Reconstruction MSE"), ("ll", "Log-likelihood (nats)"), ("kind", "Kind")] + [
    (f"extra{i}", f"A long header number {i}")
    for i in range(8)  # wide: the page must not scroll sideways
]
IMAGE_FIGURES = ("latent_map", "reconstructions", "samples", "interpolations", "traversals")


# ---------------------------------------------------------------- data, models and reports


@pytest.fixture(scope="module")
def digits_labelled():
    """Digits scaled to [0, 1] with labels: 1500 training and 297 test images of 1 x 8 x 8."""
    data = load_digits()
    X, y = (data.data / 16.0).astype(np.float32), data.target
    order = np.random.default_rng(0).permutation(len(X))
    return X[order[:1500]], X[order[1500:]], y[order[1500:]]


@pytest.fixture(scope="module")
def digit_models(digits_labelled):
    X_train, _, _ = digits_labelled
    small = {"latent_dim": 2, "hidden": (32,), "epochs": 4, "random_state": 0}
    return {
        "PCA": PCA(latent_dim=2, random_state=0).fit(X_train),
        "Autoencoder": Autoencoder(**small).fit(X_train),
        "VAE": VAE(**small).fit(X_train),
    }


def _table(models, X_test):
    rows = []
    for name, model in models.items():
        mse = float(np.mean((model.reconstruct(X_test).reshape(len(X_test), -1) - X_test) ** 2))
        # Any numbers will do for the page; K = 10 keeps the VAE's importance sampling cheap.
        score_options = {"n_samples": 10} if isinstance(model, VAE) else {}
        ll = None if isinstance(model, Autoencoder) else model.score(X_test, **score_options)
        row = {"model": name, "mse": mse, "ll": ll, "kind": "none" if ll is None else "exact or ELBO"}
        rows.append(row | {f"extra{i}": 12345.678 * 10**i for i in range(8)})
    return rows


@pytest.fixture(scope="module")
def digits_report(digits_labelled, digit_models, tmp_path_factory):
    _, X_test, y_test = digits_labelled
    sweep = [{"beta": b, "rate": r, "distortion": d} for b, r, d in [(0.5, 9.0, 24.0), (1, 6.0, 26.0), (4, 2.0, 33.0)]]
    return write_report(
        tmp_path_factory.mktemp("digits-report"),
        title="Digits <8x8> & friends",
        models=digit_models,
        X_test=X_test,
        y_test=y_test,
        sample_shape=(1, 8, 8),
        table=_table(digit_models, X_test),
        columns=COLUMNS,
        notes=["Log-likelihoods in nats per image; <PCA> is exact, the VAE's an ELBO."],
        sweep=sweep,
    )


@pytest.fixture(scope="module")
def wine():
    """Wine, standardised with training statistics: 13 features, 3 classes; 128 train, 50 test."""
    data = load_wine()
    order = np.random.default_rng(0).permutation(len(data.data))
    X, y = data.data[order].astype(np.float32), data.target[order]
    mean, std = X[:128].mean(0), X[:128].std(0)
    return (X[:128] - mean) / std, (X[128:] - mean) / std, y[128:], list(data.feature_names)


def _wine_report(wine, out_dir):
    X_train, X_test, y_test, names = wine
    small = {"hidden": (16,), "likelihood": "gaussian", "epochs": 5, "random_state": 0}
    models = {
        "PCA": PCA(latent_dim=2).fit(X_train),
        "Autoencoder": Autoencoder(latent_dim=2, **small).fit(X_train),
        "VAE (3-D)": VAE(latent_dim=3, **small).fit(X_train),
    }
    return write_report(
        out_dir,
        title="Wine",
        models=models,
        X_test=X_test,
        y_test=y_test,
        sample_shape=None,
        table=_table(models, X_test),
        columns=COLUMNS,
        feature_names=names,
    )


@pytest.fixture(scope="module")
def wine_report(wine, tmp_path_factory):
    return _wine_report(wine, tmp_path_factory.mktemp("wine-report"))


class _Page(HTMLParser):
    """Collects the <img> attributes, table rows and <script> tags of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.body_rows, self.scripts, self._in_tbody = [], 0, 0, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.body_rows += 1
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False


# ---------------------------------------------------------------- files and HTML


def test_every_figure_is_a_png_of_the_expected_size(digits_report, digit_models):
    pngs = sorted((digits_report.parent / "figures").glob("*.png"))
    expected = {"samples_comparison.png", "rate_distortion.png"}
    for slug in ("pca", "autoencoder", "vae"):
        expected |= {f"{slug}_{kind}.png" for kind in IMAGE_FIGURES}
    expected |= {"autoencoder_training.png", "vae_training.png"}  # PCA is fitted in closed form
    assert {p.name for p in pngs} == expected
    for path in pngs:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode in ("RGB", "RGBA")
            assert image.width == WIDTH_PX and 150 <= image.height <= 3000, (path.name, image.size)


def test_html_embeds_exactly_the_written_pngs(digits_report):
    page = _Page(digits_report.read_text(encoding="utf-8"))
    files = {p.read_bytes() for p in (digits_report.parent / "figures").glob("*.png")}
    embedded = []
    for attrs in page.images:
        prefix = "data:image/png;base64,"
        assert attrs["src"].startswith(prefix) and attrs["alt"]
        data = base64.b64decode(attrs["src"][len(prefix) :], validate=True)
        assert (int(attrs["width"]), int(attrs["height"])) == struct.unpack(">II", data[16:24])
        embedded.append(data)
    assert len(embedded) == len(files) and set(embedded) == files


def test_html_is_self_contained_and_escaped(digits_report, digit_models):
    text = digits_report.read_text(encoding="utf-8")
    page = _Page(text)
    assert page.body_rows == len(digit_models)
    assert page.scripts == 0 and "http://" not in text and "https://" not in text
    assert "Content-Security-Policy" in text
    assert "<title>Digits &lt;8x8&gt; &amp; friends</title>" in text
    assert "&lt;PCA&gt; is exact" in text and "<PCA>" not in text
    for header in ("Model", "Reconstruction MSE", "Log-likelihood (nats)"):
        assert f">{header}</th>" in text
    assert "\u2014" in text  # the autoencoder's missing log-likelihood shows as a dash


def test_tabular_report_has_feature_figures_and_no_image_grids(wine_report):
    names = {p.name for p in (wine_report.parent / "figures").glob("*.png")}
    assert {"pca_latent_map.png", "vae-3-d_feature_errors.png", "vae-3-d_feature_histograms.png"} <= names
    assert not any(kind in name for name in names for kind in ("reconstructions", "samples", "traversals"))
    assert _Page(wine_report.read_text(encoding="utf-8")).body_rows == 3


@pytest.mark.slow
def test_same_inputs_give_the_same_page(wine, wine_report, tmp_path):
    again = _wine_report(wine, tmp_path)
    assert again.read_bytes() == wine_report.read_bytes()


def test_write_report_rejects_bad_inputs(digits_labelled, digit_models, tmp_path):
    _, X_test, y_test = digits_labelled
    args = {
        "title": "t",
        "models": digit_models,
        "X_test": X_test,
        "y_test": y_test,
        "sample_shape": (1, 8, 8),
        "table": [],
        "columns": COLUMNS,
    }
    with pytest.raises(DataError, match="X_test has 63 features, but model 'PCA' was fitted with 64"):
        write_report(tmp_path, **{**args, "X_test": X_test[:, :63]})
    with pytest.raises(DataError, match=r"sample_shape \(1, 8, 9\) holds 72 values"):
        write_report(tmp_path, **{**args, "sample_shape": (1, 8, 9)})
    with pytest.raises(DataError, match="y_test must have shape"):
        write_report(tmp_path, **{**args, "y_test": y_test[:5]})
    with pytest.raises(DataError, match="sweep entry 0"):
        write_report(tmp_path, **{**args, "sweep": [{"beta": 1.0, "rate": 2.0}]})
    with pytest.raises(ConfigError, match="non-empty dict"):
        write_report(tmp_path, **{**args, "models": {}})
    assert not (tmp_path / "report.html").exists()


# ---------------------------------------------------------------- single figures


def test_latent_map_title_says_how_codes_were_drawn(digits_labelled):
    X_train, X_test, y_test = digits_labelled
    one = figures.latent_map(PCA(latent_dim=1).fit(X_train), X_test, y_test)
    three = figures.latent_map(PCA(latent_dim=3).fit(X_train), X_test, y_test, name="PCA-3")
    assert "1-D codes" in one.axes[0].get_title()
    title = three.axes[0].get_title()
    assert title.startswith("PCA-3:") and "3-D codes PROJECTED to 2-D by PCA" in title


def test_training_curves_show_kl_only_where_there_is_one(digit_models):
    assert len(figures.training_curves(digit_models["Autoencoder"]).axes) == 1
    assert len(figures.training_curves(digit_models["VAE"]).axes) == 2
    with pytest.raises(DataError, match="no history_"):
        figures.training_curves(digit_models["PCA"])


def test_report_code_never_uses_pyplot_or_prints():
    import vaelab.report

    for path in Path(vaelab.report.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [getattr(node, "module", None) or ""] + [alias.name for alias in node.names]
                assert not any("pyplot" in m for m in modules), f"{path.name}:{node.lineno} imports pyplot"
            if isinstance(node, ast.Call):
                called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                assert called not in ("print", "show"), f"{path.name}:{node.lineno} calls {called}"


# ---------------------------------------------------------------- in a real browser


def _start_chromium(profile: Path):
    """Headless Debian Chromium under Selenium, or the reason it cannot start (with the install command)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, f"selenium is not installed; {INSTALL}"
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        return None, f"{' and '.join(missing)} not found; {INSTALL}"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1400",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options), None
    except Exception as exc:  # any start-up failure: say what to install, keep the cause
        return None, f"headless Chromium did not start ({type(exc).__name__}: {exc}); {INSTALL}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A started driver, or the reason there is none; the tests then FAIL with it (never skip)."""
    driver, problem = _start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver if driver is not None else problem
    if driver is not None:
        driver.quit()


def _check_in_browser(driver, report: Path, n_models: int, screenshot: Path) -> None:
    if isinstance(driver, str):
        pytest.fail(driver, pytrace=False)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop messages from before this page
    driver.get(report.resolve().as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == len(list((report.parent / "figures").glob("*.png")))
    for image in images:
        alt = image.get_attribute("alt")
        assert image.get_property("complete") and image.get_property("naturalWidth") == WIDTH_PX, alt
        assert image.size["width"] > 0 and image.size["height"] > 0
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.comparison tbody tr")) == n_models
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
    assert driver.save_screenshot(str(screenshot))
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.width > 0


@pytest.mark.slow
def test_digits_report_renders_in_chromium(browser, digits_report, digit_models, tmp_path):
    _check_in_browser(browser, digits_report, len(digit_models), tmp_path / "digits-report.png")
    # The whole page, for a person to look at: Chromium draws beyond the viewport on request.
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    options = {"format": "png", "captureBeyondViewport": True, "clip": clip}
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", options)
    (tmp_path / "digits-report-full.png").write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.slow
def test_tabular_report_renders_in_chromium(browser, wine_report, tmp_path):
    _check_in_browser(browser, wine_report, 3, tmp_path / "wine-report.png")
