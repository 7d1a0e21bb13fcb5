"""glibc malloc thresholds: set once by vaelab, unless the user chose otherwise."""

import os
import platform
import subprocess
import sys

import pytest

SRC = os.path.join(os.path.dirname(__file__), "..", "src")


def _applied(**env) -> str:
    code = "from vaelab.allocator import retain_freed_memory as r; print(r(), r())"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**environ, "PYTHONPATH": SRC, **env},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_thresholds_are_set_once_on_glibc():
    assert _applied() == "True True"  # the second call is the cached first


@pytest.mark.slow
def test_the_users_malloc_settings_win():
    assert _applied(MALLOC_TRIM_THRESHOLD_="0") == "False False"
    assert _applied(VAELAB_KEEP_MALLOC="1") == "False False"


def test_the_library_never_retunes_the_allocator_by_itself(monkeypatch, digits):
    import vaelab.allocator
    from vaelab import VAE
    from vaelab.metrics import evaluate

    def refuse():
        raise AssertionError("library code changed process-wide malloc settings")

    monkeypatch.setattr(vaelab.allocator, "retain_freed_memory", refuse)
    model = VAE(epochs=1, random_state=0).fit(digits[0][:200])
    evaluate(model.module_, digits[1][:50], n_iw_samples=4, n_pairs=4, n_lipschitz=4)
