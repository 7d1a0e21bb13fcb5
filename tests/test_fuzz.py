"""Property-based fuzzing of the Python API and the command line with hostile inputs (hypothesis).

The property, for every generated case: it ends either in success or in a ``vaelab.VaelabError``
-- never another exception, a hang or a crash -- and the input files are byte for byte unchanged
afterwards. On the command line: exit status 0 or 2, and on 2 a one-line error on stderr with no
``Traceback``. Inputs are hostile on purpose: 0- to 4-D arrays with zero-size dimensions, every
dtype (ints, uint8, float16/32/64, bool, complex, object, str), NaN/inf, 1e30 and 1e-30, empty and
one-row data; random and structurally corrupted .npy/.npz/.csv/.tsv/IDX/PNG files and saved-model
files; out-of-range, mistyped and unknown parameter values; random CLI argument lists.

Models are tiny (``epochs=1``, ``hidden=(4,)``, 1-2 latent dimensions) and the example counts
small, so the file runs in about a minute on two cores, with the same cases every run
(``derandomize=True``, no example database).

Running it longer, on new cases::

    VAELAB_FUZZ_EXAMPLES=1000 PYTHONPATH=src python -m pytest tests/test_fuzz.py -q
    VAELAB_FUZZ_EXAMPLES=1000 VAELAB_FUZZ_SEED=7 PYTHONPATH=src python -m pytest tests/test_fuzz.py -q

``VAELAB_FUZZ_EXAMPLES=N`` runs N examples in each in-process test and N/10 (at least the CI
count) in the subprocess CLI test; ``VAELAB_FUZZ_SEED=S`` replaces the fixed derandomised cases by
the random stream of seed S (still reproducible). Both go through the ``vaelab-fuzz`` hypothesis
profile registered below, which this file applies per test without loading it globally.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

import vaelab
from vaelab import PCA, VAE, Autoencoder, VaelabError

SRC = Path(__file__).resolve().parents[1] / "src"

# -- settings -----------------------------------------------------------------------------------
_ENV_EXAMPLES = os.environ.get("VAELAB_FUZZ_EXAMPLES")
_ENV_SEED = os.environ.get("VAELAB_FUZZ_SEED")

settings.register_profile(
    "vaelab-fuzz",
    derandomize=_ENV_SEED is None,  # the same cases on every CI run
    database=None,  # nothing written to .hypothesis/; failures are reproduced by derandomisation
    deadline=None,  # a first fit pays torch's warm-up; hangs are caught by _time_limit instead
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
_PROFILE = settings.get_profile("vaelab-fuzz")


def _fuzz(ci_examples: int, *, slow: bool = False):
    """Settings for one test: ``ci_examples`` by default, ``$VAELAB_FUZZ_EXAMPLES`` when set."""
    n = ci_examples
    if _ENV_EXAMPLES:
        n = max(ci_examples, int(_ENV_EXAMPLES) // (10 if slow else 1))

    def decorate(test):
        test = settings(_PROFILE, max_examples=n)(test)
        return hypothesis_seed(int(_ENV_SEED))(test) if _ENV_SEED is not None else test

    return decorate


# -- helpers ------------------------------------------------------------------------------------
class FuzzTimeout(Exception):
    """A case ran past its time limit: a hang, as far as this test is concerned."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise FuzzTimeout in the main thread after ``seconds`` (POSIX; a no-op elsewhere)."""
    if not hasattr(signal, "SIGALRM") or os.name != "posix":
        yield
        return

    def handler(signum, frame):
        raise FuzzTimeout(f"the case did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _expect_vaelab(fn, *args, **kwargs):
    """Call ``fn``; return its result, or the VaelabError it raised. Anything else propagates."""
    try:
        result = fn(*args, **kwargs)
    except VaelabError as exc:
        event(f"{getattr(fn, '__name__', fn)}: {type(exc).__name__}")
        return exc
    event(f"{getattr(fn, '__name__', fn)}: success")
    return result


def _ok(result) -> bool:
    return not isinstance(result, VaelabError)


def _fingerprint(obj) -> str:
    """A digest of a value's content, to prove an input was not modified."""
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        h = hashlib.sha256(f"{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
        return h.hexdigest()
    if isinstance(obj, np.ndarray):
        return "object:" + repr(obj.shape) + repr(obj.tolist())
    return repr(obj)


def _tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (and the set of directories), keyed by relative path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _tiny(model: str, **params):
    """A small, fast estimator; ``params`` override the defaults (any value, hostile included)."""
    if model == "pca":
        return PCA(**{"latent_dim": 1, **params})
    cls = VAE if model == "vae" else Autoencoder
    base = dict(latent_dim=2, hidden=(4,), channels=(2,), epochs=1, batch_size=8, random_state=0, device="cpu")
    known = cls().get_params()  # the parameter set grows; only pass what this version takes
    return cls(**{k: v for k, v in {**base, **params}.items() if k in known})


def _exercise(est, X) -> None:
    """Every post-fit method of a fitted estimator, each ending in success or a VaelabError."""
    Z = _expect_vaelab(est.transform, X)
    if _ok(Z):
        assert Z.shape == (len(Z), est.module_.latent_dim)
        _expect_vaelab(est.inverse_transform, Z)
    _expect_vaelab(est.reconstruct, X)
    if isinstance(est, (PCA, VAE)):
        kwargs = {"n_samples": 2} if isinstance(est, VAE) else {}
        _expect_vaelab(est.score_samples, X, **kwargs)
    S = _expect_vaelab(est.sample, 2, random_state=0)
    if _ok(S):
        assert S.shape == (2, *est.sample_shape_)


# -- strategies: arrays -------------------------------------------------------------------------
_SPECIAL_FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    255.0,
    256.0,
    math.nan,
    math.inf,
    -math.inf,
    1e30,
    -1e30,
    1e-30,
    5e-324,
    1e300,
    65504.0,
]
_DTYPES = ["int8", "int64", "uint8", "uint64", "float16", "float32", "float64", "bool", "complex128", "object", "str"]


def _elements(dtype: str):
    if dtype == "bool":
        return st.booleans()
    if dtype in ("int8", "int64", "uint8", "uint64"):
        info = np.iinfo(dtype)
        return st.one_of(st.integers(0, 3), st.integers(int(info.min), int(info.max)))
    if dtype.startswith("float"):
        return st.one_of(st.sampled_from(_SPECIAL_FLOATS), st.floats(0, 1), st.floats(allow_nan=True))
    if dtype == "complex128":
        return st.complex_numbers(max_magnitude=1e3)
    if dtype == "str":
        return st.sampled_from(["", "1", "a", "nan", "1e30"])
    return st.one_of(st.none(), st.floats(), st.integers(-3, 3), st.text(max_size=2), st.just([1]))


@st.composite
def hostile_arrays(draw, max_side: int = 4):
    """0- to 4-D arrays of any dtype, zero-size dimensions allowed, values including NaN/inf/1e30."""
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.integers(0, max_side)) for _ in range(ndim))
    dtype = draw(st.sampled_from(_DTYPES))
    n = math.prod(shape)
    values = draw(st.lists(_elements(dtype), min_size=n, max_size=n))
    with np.errstate(all="ignore"):
        if dtype == "object":
            arr = np.empty(n, dtype=object)
            arr[:] = values if n else []
        else:
            arr = np.array(values, dtype=dtype)
    return arr.reshape(shape)


@st.composite
def plausible_arrays(draw):
    """Arrays a user would pass: small tables and images, sometimes with one bad value planted."""
    kind = draw(st.sampled_from(["unit_table", "table", "uint8_images", "grey_images", "bool_table", "int_table"]))
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "unit_table":
        X = rng.random((n, draw(st.integers(1, 4)))).astype(draw(st.sampled_from(["float16", "float32", "float64"])))
    elif kind == "table":
        X = rng.normal(scale=draw(st.sampled_from([1e-30, 1.0, 1e30])), size=(n, draw(st.integers(1, 4))))
    elif kind == "uint8_images":
        X = rng.integers(0, 256, (n, draw(st.sampled_from([1, 3])), 2, 2), dtype=np.uint8)
    elif kind == "grey_images":
        X = rng.random((n, 3, 3)).astype(np.float32)
    elif kind == "bool_table":
        X = rng.random((n, 3)) > 0.5
    else:
        X = rng.integers(-5, 300, (n, 3))
    if draw(st.sampled_from([False, False, True])) and X.dtype.kind == "f":
        X.flat[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf, 1e30]))
    if draw(st.sampled_from([False, False, False, False, True])):
        X = X[:0] if draw(st.booleans()) else X[:1]
    return X


_PY_OBJECTS = st.sampled_from(
    [
        None,
        3,
        1.5,
        "abc",
        b"xy",
        [[1, 2], [3]],
        [[]],
        [[1, "a"]],
        {"a": 1},
        [[1.0, 2.0], [3.0, 4.0]],
        [[[[[1.0]]]]],
        (),
        np.float64(1.0),
    ]
)
any_data = st.one_of(plausible_arrays(), hostile_arrays(), _PY_OBJECTS)


# -- strategies: parameters ---------------------------------------------------------------------
_COMMON_BAD = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    3,
    0.0,
    0.5,
    1.5,
    -0.5,
    1e30,
    -1e30,
    1e-30,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "abc",
    "1",
    "none",
    np.int64(2),
    np.float32(0.5),
    (),
    (4,),
    [4],
    b"x",
]
_PARAM_VALUES = {
    "latent_dim": [1, 2, 3, 16, np.int32(2), 2.0],
    "hidden": [(), (4,), (4, 4), (0,), (-1,), (2.5,), ("4",), [4], "4,4", (4, None), 4, None, (True,)],
    "likelihood": ["bernoulli", "continuous_bernoulli", "gaussian", "Gaussian", "poisson"],
    "beta": [1.0, 0.1, 1e6],
    "preprocessing": ["none", "scale", "standardize", "Scale", "minmax"],
    "pixel_max": [1.0, 16, 255.0, 1e-30],
    "binarize": ["none", "threshold", "static", "dynamic", "always"],
    "epochs": [1, 2],
    "batch_size": [1, 2, 8, 2**62],
    "lr": [1e-3, 10.0, 1e30],
    "validation_fraction": [0.0, 0.1, 0.5, 0.9, 0.99, 0.999999],
    "patience": [1, 2, 2**62],
    "grad_clip": [1.0, 1e-30],
    "device": ["auto", "cpu", "cpu:0", "cpu:1", "cuda", "cuda:0", "cuda:7", "mps", "meta", "xla", "bogus", "CPU", 0],
    "random_state": [None, 0, 1, 2**31, 2**32, -1, 1.5, "seed", "0"],  # and fresh RNG objects, below
    "verbose": [0, 1, 2],
    "architecture": ["auto", "mlp", "conv", "resnet"],
    "channels": [(), (2,), (2, 2), (0,), (-2,), 2, None],
    "objective": ["elbo", "iwae", "IWAE", "bogus"],
    "n_train_samples": [1, 2, 3],
    "kl_warmup": [0, 1, 2],
    "free_bits": [0.0, 0.5, 2.0],
}


_RNG_OBJECTS = st.one_of(st.builds(np.random.RandomState, st.just(0)), st.builds(np.random.default_rng, st.just(0)))


def _param_value(name: str):
    values = st.sampled_from(_PARAM_VALUES.get(name, []) + _COMMON_BAD)
    return st.one_of(values, _RNG_OBJECTS) if name == "random_state" else values


@st.composite
def hostile_params(draw, model: str):
    cls = {"pca": PCA, "ae": Autoencoder, "vae": VAE}[model]
    names = sorted(cls().get_params())
    chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    return {name: draw(_param_value(name)) for name in chosen}


def _fixed_data(kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    return {
        "unit_table": rng.random((12, 3)).astype(np.float32),
        "signed_table": rng.normal(size=(12, 3)),
        "uint8_images": rng.integers(0, 256, (10, 1, 3, 3), dtype=np.uint8),
        "bool_table": rng.random((12, 3)) > 0.5,
        "two_rows": rng.random((2, 3)).astype(np.float32),
    }[kind]


# -- 1. estimators ------------------------------------------------------------------------------
@pytest.mark.slow
@_fuzz(120)
@given(
    X=any_data,
    model=st.sampled_from(["pca", "ae", "vae"]),
    likelihood=st.sampled_from(["bernoulli", "continuous_bernoulli", "gaussian"]),
    preprocessing=st.sampled_from(["none", "scale", "standardize"]),
    read_only=st.booleans(),
)
def test_fit_on_hostile_data_succeeds_or_raises_vaelab_error(X, model, likelihood, preprocessing, read_only):
    if read_only and isinstance(X, np.ndarray):
        X.flags.writeable = False  # as a memory-mapped file would be
    before = _fingerprint(X)
    params = {"preprocessing": preprocessing}
    if model != "pca":
        params["likelihood"] = likelihood
    est = _tiny(model, **params)
    params_before = repr(est.get_params())
    with _time_limit(60):
        fitted = _expect_vaelab(est.fit, X)
        assert _fingerprint(X) == before, "fit modified its input"
        assert repr(est.get_params()) == params_before, "fit changed the estimator's parameters"
        if _ok(fitted):
            assert fitted is est
            _exercise(est, X)
            assert _fingerprint(X) == before, "a post-fit method modified its input"


@_fuzz(80)
@given(
    model=st.sampled_from(["pca", "ae", "vae"]),
    data=st.data(),
    kind=st.sampled_from(["unit_table", "signed_table", "uint8_images", "bool_table", "two_rows"]),
)
def test_hostile_parameters_succeed_or_raise_vaelab_error(model, data, kind):
    params = data.draw(hostile_params(model), label="params")
    X = _fixed_data(kind)
    before = _fingerprint(X)
    est = _tiny(model, **params)
    params_before = repr(est.get_params())
    with _time_limit(60):
        fitted = _expect_vaelab(est.fit, X)
        assert repr(est.get_params()) == params_before, "fit changed the estimator's parameters"
        if _ok(fitted):
            _exercise(est, X)
    assert _fingerprint(X) == before


_FITTED: dict = {}


def _fitted(name: str):
    """Tiny fitted models shared by the post-fit tests (fitted once per process)."""
    if name not in _FITTED:
        if name == "vae_images":
            _FITTED[name] = _tiny("vae", preprocessing="scale").fit(_fixed_data("uint8_images"))
        else:
            _FITTED[name] = _tiny(name).fit(_fixed_data("unit_table"))
    return _FITTED[name]


_N_SAMPLES = st.sampled_from([-1, 0, 1, 3, 2.0, 1.5, "2", None, True, np.int32(3), math.nan])
_RANDOM_STATES = st.one_of(st.sampled_from(_PARAM_VALUES["random_state"] + [True, -0.0]), _RNG_OBJECTS)


@st.composite
def matched_arrays(draw, shapes):
    """Arrays whose sample shape fits a fitted model (or its latent space), with hostile dtypes/values."""
    n = draw(st.sampled_from([2, 1, 3, 0, 5]))
    shape = draw(st.sampled_from(shapes))
    usual = st.sampled_from(["float32", "float64", "uint8", "float16", "bool", "int64"])
    dtype = draw(st.one_of(usual, st.sampled_from(_DTYPES)))
    size = n * math.prod(shape)
    plain = st.sampled_from([0.0, 1.0, 0.5, 0.25]) if dtype.startswith("float") else _elements(dtype)
    values = draw(st.lists(st.one_of(plain, plain, plain, _elements(dtype)), min_size=size, max_size=size))
    with np.errstate(all="ignore"):
        if dtype == "object":
            arr = np.empty(size, dtype=object)
            arr[:] = values if size else []
        else:
            arr = np.array(values, dtype=dtype)
    return arr.reshape((n, *shape))


@pytest.mark.slow
@_fuzz(120)
@given(
    name=st.sampled_from(["pca", "ae", "vae", "vae_images", "unfitted"]),
    method=st.sampled_from(["transform", "inverse_transform", "reconstruct", "score_samples", "score", "sample"]),
    n_samples=_N_SAMPLES,
    random_state=_RANDOM_STATES,
    pass_extra=st.booleans(),
    data=st.data(),
)
def test_fitted_methods_on_hostile_inputs(name, method, n_samples, random_state, pass_extra, data):
    est = _tiny("vae") if name == "unfitted" else _fitted(name)
    if name == "vae_images":
        shapes = [(1, 3, 3), (9,), (3, 3), (2,), (1, 2, 2)]
    else:
        shapes = [(3,), (1,), (2,), (1, 3), (1, 1, 3)]
    X = data.draw(st.one_of(matched_arrays(shapes), matched_arrays(shapes), any_data), label="X")
    before = _fingerprint(X)
    fn = getattr(est, method, None)
    if fn is None:  # the autoencoder has no likelihood: no score_samples or score
        return
    with _time_limit(60):
        if method == "sample":
            result = (
                _expect_vaelab(fn, n_samples, random_state=random_state)
                if pass_extra
                else _expect_vaelab(fn, n_samples)
            )
        elif method in ("score_samples", "score") and isinstance(est, VAE) and pass_extra:
            result = _expect_vaelab(fn, X, n_samples=n_samples)
        else:
            result = _expect_vaelab(fn, X)
    if name == "unfitted":
        assert isinstance(result, vaelab.NotFittedError)
    assert _fingerprint(X) == before


# -- 2. data files ------------------------------------------------------------------------------
def _mostly(good: list, bad: list):
    """A strategy that draws from ``good`` about three times in four and from ``bad`` otherwise."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good), st.sampled_from(bad))


def _rarely(data: st.DataObject, label: str) -> bool:
    """True about one time in five (hypothesis favours the first values of a sampled_from)."""
    return data.draw(st.sampled_from([False, False, False, False, True]), label=label)


def _corrupt(data: st.DataObject, raw: bytes) -> bytes:
    """The bytes unchanged about half the time, else truncated, flipped, extended or replaced."""
    how = data.draw(
        st.sampled_from(["keep", "keep", "keep", "truncate", "flip", "append", "random"]), label="corruption"
    )
    if how == "truncate" and raw:
        return raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]
    if how == "flip" and raw:
        i = data.draw(st.integers(0, len(raw) - 1), label="at")
        return raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255), label="xor")]) + raw[i + 1 :]
    if how == "append":
        return raw + data.draw(st.binary(min_size=1, max_size=16), label="tail")
    if how == "random":
        return data.draw(st.binary(max_size=64), label="bytes")
    return raw


def _npy_bytes(data) -> bytes:
    if _rarely(data, "crafted header"):
        descr = data.draw(
            st.sampled_from(
                [
                    "'<f4'",
                    "'>f8'",
                    "'|u1'",
                    "'<i8'",
                    "'|b1'",
                    "'<c16'",
                    "'|O'",
                    "'<U3'",
                    "'|V4'",
                    "[('a', '<f4')]",
                    "'<M8[s]'",
                    "'<f2'",
                    "'zz'",
                    "3",
                ]
            )
        )
        dims = data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 2**31, 2**62, 2**63 - 1, -1]), max_size=4))
        shape = "(" + "".join(f"{d}, " for d in dims) + ")"
        order = data.draw(st.sampled_from(["False", "True", "None"]))
        header = f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
        header = header.ljust(118) + "\n"
        raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
        return raw + data.draw(st.binary(max_size=48), label="payload")
    buf = io.BytesIO()
    np.save(buf, data.draw(st.one_of(plausible_arrays(), hostile_arrays()), label="array"), allow_pickle=True)
    return _corrupt(data, buf.getvalue())


def _npz_bytes(data) -> bytes:
    keys = data.draw(
        _mostly([["X"], ["X", "y"], ["arr_0", "labels"]], [[], ["x", "data"], ["y"], ["X", "y", "labels"]]),
        label="keys",
    )
    arrays = {k: data.draw(st.one_of(plausible_arrays(), hostile_arrays()), label=k) for k in keys}
    buf = io.BytesIO()
    (np.savez_compressed if data.draw(st.booleans()) else np.savez)(buf, **arrays)
    return _corrupt(data, buf.getvalue())


_CELLS = [
    "1",
    "0",
    "-1",
    "0.5",
    "1e39",
    "-1e39",
    "1e30",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "",
    " ",
    "a",
    "label",
    '"1,2"',
    '"',
    " 3 ",
    "1e-45",
    "\ufeff1",
    "x,y",
    "0x10",
    "1_000",
    "\u00e9",
]


def _table_bytes(data, delimiter: str) -> bytes:
    n_cols = data.draw(st.integers(1, 4), label="columns")
    cell = _mostly(["1", "0", "0.5", "-1", "2.5"], _CELLS)
    ragged = _rarely(data, "ragged")
    rows = data.draw(st.lists(st.lists(cell, min_size=n_cols, max_size=n_cols + ragged), max_size=6), label="rows")
    if data.draw(st.booleans(), label="header"):
        rows.insert(
            0, data.draw(st.lists(st.sampled_from(["a", "b", "label", "y", "1", ""]), min_size=n_cols, max_size=n_cols))
        )
    sep = data.draw(st.sampled_from([delimiter, delimiter, ",", "\t", ";"]), label="separator")
    text = "\n".join(sep.join(r) for r in rows) + data.draw(st.sampled_from(["", "\n", "\n\n \n"]))
    raw = (("\ufeff" if data.draw(st.booleans(), label="bom") else "") + text).encode()
    if _rarely(data, "latin1"):
        raw += b"\xff\xfe\x80"
    return raw


_IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x0A, 0xFF]
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx_bytes(data) -> bytes:
    code = data.draw(_mostly(list(_IDX_DTYPES), _IDX_CODES), label="code")
    min_dims = 0 if _rarely(data, "no dims") else 1
    dims = data.draw(
        st.lists(_mostly([1, 2, 3, 4], [0, 2**31, 2**32 - 1]), min_size=min_dims, max_size=4), label="dims"
    )
    head = struct.pack(">HBB", 0, code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    n = math.prod(dims) if dims else 0
    itemsize = np.dtype(_IDX_DTYPES.get(code, "u1")).itemsize
    if n * itemsize <= 512 and not _rarely(data, "random payload"):
        payload = np.array(
            data.draw(st.lists(st.sampled_from([0.0, 1.0, 255.0, math.nan, math.inf, 1e30]), min_size=n, max_size=n))
        )
        with np.errstate(all="ignore"):
            payload = payload.astype(_IDX_DTYPES.get(code, ">u1")).tobytes()
    else:
        payload = data.draw(st.binary(max_size=64), label="payload")
    return _corrupt(data, head + payload)


def _image_bytes(data, mode: str, size: tuple[int, int]) -> bytes:
    from PIL import Image

    if _rarely(data, "odd image"):
        mode = data.draw(st.sampled_from(["L", "RGB", "1", "P", "RGBA", "LA", "I;16", "I", "F", "CMYK"]), label="mode")
        size = (data.draw(st.integers(1, 4), label="w"), data.draw(st.integers(1, 4), label="h"))
    fmt = data.draw(st.sampled_from(["PNG", "PNG", "JPEG"]), label="format")
    buf = io.BytesIO()
    try:
        Image.new(mode, size, color=data.draw(st.integers(0, 255), label="colour")).save(buf, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode the format cannot store: write some PNG instead
        buf = io.BytesIO()
        Image.new("L", size).save(buf, format="PNG")
    return _corrupt(data, buf.getvalue())


def _write_source(data, root: Path) -> tuple[Path, dict]:
    """Write one hostile data source under ``root``; return its path and the load() options."""
    kinds = ["npy", "npz", "csv", "tsv", "idx", "idx.gz", "images", "images", "fashion", "bytes"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    options = {}
    if kind == "npy":
        path = root / "data.npy"
        path.write_bytes(_npy_bytes(data))
    elif kind == "npz":
        path = root / "data.npz"
        path.write_bytes(_npz_bytes(data))
        options["key"] = data.draw(_mostly([None], ["X", "y", "arr_0", "missing"]), label="key")
    elif kind in ("csv", "tsv"):
        path = root / f"data.{kind}"
        path.write_bytes(_table_bytes(data, "," if kind == "csv" else "\t"))
        options["header"] = data.draw(_mostly([None], [True, False, "yes", 1]), label="header")
    elif kind in ("idx", "idx.gz"):
        path = root / ("train-images-idx3-ubyte" + (".gz" if kind == "idx.gz" else ""))
        raw = _idx_bytes(data)
        if kind == "idx.gz":
            raw = _corrupt(data, gzip.compress(raw))
        path.write_bytes(raw)
        if _rarely(data, "labels file"):
            (root / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(data))
    elif kind == "images":
        path = root / "images"
        path.mkdir()
        mode = data.draw(st.sampled_from(["L", "RGB", "P", "1"]), label="mode")
        size = (data.draw(st.integers(1, 4), label="w"), data.draw(st.integers(1, 4), label="h"))
        for i in range(data.draw(_mostly([2, 3], [0, 1]), label="n images")):
            suffix = data.draw(_mostly([".png", ".jpg"], [".JPEG", ".txt", ".gif"]), label="suffix")
            (path / f"im{i}{suffix}").write_bytes(_image_bytes(data, mode, size))
        options["image_size"] = data.draw(
            _mostly([None, (2, 2)], [(0, 2), (2,), "ab", (1.5, 2), (True, 2)]), label="image_size"
        )
    elif kind == "fashion":
        path = Path("fashion-mnist")
        folder = root / "fashion"
        folder.mkdir()
        for stem in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ):
            if not _rarely(data, "missing"):
                gz = data.draw(st.booleans(), label="gz")
                raw = _idx_bytes(data)
                (folder / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
        options["data_dir"] = str(folder)
    else:
        suffixes = [".npy", ".npz", ".csv", ".tsv", "-ubyte", "-ubyte.gz", ".idx", ".png", ".txt", ""]
        suffix = data.draw(st.sampled_from(suffixes), label="suffix")
        path = root / f"blob{suffix}"
        path.write_bytes(data.draw(st.binary(max_size=64), label="bytes"))
    if _rarely(data, "stray options") and _rarely(data, "really"):
        options["label_column"] = data.draw(
            st.sampled_from([0, -1, 5, "label", "y", "a", "0", 1.5]), label="label_column"
        )
    return path, options


@pytest.mark.slow
@_fuzz(150)
@given(data=st.data())
def test_loading_hostile_files_succeeds_or_raises_vaelab_error(data):
    from vaelab.data import load

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source, options = _write_source(data, root)
        before = _tree_digest(root)
        with _time_limit(60):
            dataset = _expect_vaelab(load, source if source.is_absolute() else str(source), **options)
            if _ok(dataset):
                X = dataset.X_train
                assert X.ndim in (2, 4) and len(X) > 0 and X.dtype.kind in "biuf"
                assert X.dtype.kind != "f" or np.isfinite(X).all()
                model = data.draw(st.sampled_from(["pca", "vae"]), label="model")
                est = _tiny(
                    model, preprocessing="standardize", **({} if model == "pca" else {"likelihood": "gaussian"})
                )
                if _ok(_expect_vaelab(est.fit, X)):
                    _expect_vaelab(est.transform, X)
            del dataset
        assert _tree_digest(root) == before, "loading or fitting modified the input files"


# -- 3. saved models ----------------------------------------------------------------------------
_MODEL_TEMPLATES: dict = {}


def _template(name: str) -> Path:
    """A saved copy of a tiny fitted model, written once per process (removed at exit)."""
    if "dir" not in _MODEL_TEMPLATES:
        _MODEL_TEMPLATES["dir"] = tempfile.TemporaryDirectory(prefix="vaelab-fuzz-models-")
    if name not in _MODEL_TEMPLATES:
        path = Path(_MODEL_TEMPLATES["dir"].name) / name
        _fitted(name).save(path)
        _MODEL_TEMPLATES[name] = path
    return _MODEL_TEMPLATES[name]


_JSON_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    3,
    1.5,
    -1.5,
    1e308,
    2**50,
    2**64,
    "",
    "x",
    "none",
    "gaussian",
    "scale",
    "standardize",
    "VAE",
    "PCA",
    [],
    [0],
    [-1],
    [3],
    [2**50],
    [1.5],
    ["a"],
    [1, 3],
    {},
    {"a": 1},
    math.nan,
    math.inf,
]


def _json_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, prefix + (i,))


def _mutate_json(data, doc):
    """Replace, delete or add one node anywhere in a JSON document."""
    path = data.draw(st.sampled_from(list(_json_paths(doc))), label="json path")
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]), label="json op")
    value = data.draw(st.sampled_from(_JSON_VALUES), label="json value")
    if not path:
        return value if op == "replace" else doc
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if op == "delete":
        del parent[path[-1]]
    elif op == "add" and isinstance(parent, dict):
        parent["unexpected_field"] = value
    elif op == "add" and isinstance(parent, list):
        parent.append(value)
    else:
        parent[path[-1]] = value
    return doc


def _mutate_weights(data, raw: bytes) -> bytes:
    how = data.draw(st.sampled_from(["header", "tensors", "bytes"]), label="weights mutation")
    if how == "header":
        n = int.from_bytes(raw[:8], "little")
        header = _mutate_json(data, json.loads(raw[8 : 8 + n]))
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        return struct.pack("<Q", len(text)) + text + raw[8 + n :]
    if how == "tensors":
        from safetensors.torch import load, save

        state = load(raw)
        name = data.draw(st.sampled_from(sorted(state)), label="tensor")
        change = data.draw(st.sampled_from(["shape", "dtype", "nan", "drop", "extra"]), label="tensor change")
        if change == "shape":
            state[name] = torch.zeros(data.draw(st.lists(st.integers(0, 3), max_size=3), label="shape"))
        elif change == "dtype":
            dtypes = [torch.float16, torch.float64, torch.bfloat16, torch.int64, torch.bool, torch.uint8]
            dtype = data.draw(st.sampled_from(dtypes), label="dtype")
            state[name] = state[name].to(dtype)
        elif change == "nan":
            bad = [math.nan, math.inf, 1e30] if state[name].is_floating_point() else [-1, 2**62]  # e.g. a count
            state[name] = torch.full_like(state[name], data.draw(st.sampled_from(bad)))
        elif change == "drop":
            del state[name]
        else:
            state["unexpected.weight"] = torch.zeros(2)
        return save(state)
    return _corrupt(data, raw)


@pytest.mark.slow
@_fuzz(120)
@given(name=st.sampled_from(["pca", "ae", "vae", "vae_images"]), data=st.data())
def test_loading_corrupted_models_succeeds_or_raises_vaelab_error(name, data):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(_template(name), run)
        target = data.draw(
            st.sampled_from(["config", "config", "weights", "weights", "missing", "directory"]), label="target"
        )
        config, weights = run / "config.json", run / "weights.safetensors"
        if target == "config":
            if _rarely(data, "raw bytes"):
                config.write_bytes(_corrupt(data, config.read_bytes()))
            else:
                config.write_text(json.dumps(_mutate_json(data, json.loads(config.read_text()))))
        elif target == "weights":
            weights.write_bytes(_mutate_weights(data, weights.read_bytes()))
        else:
            victim = data.draw(st.sampled_from([config, weights]), label="file")
            victim.unlink()
            if target == "directory":
                victim.mkdir()
        before = _tree_digest(run)
        with _time_limit(60):
            est = _expect_vaelab(vaelab.load, run)
            if _ok(est):
                X = _fixed_data("uint8_images" if name == "vae_images" else "unit_table")
                _exercise(est, X)
        assert _tree_digest(run) == before, "loading a model modified its files"


# -- 4. command line ----------------------------------------------------------------------------
_TEXT_VALUES = [
    "-1",
    "0",
    "1",
    "2",
    "3",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "1e30",
    "1e-30",
    "none",
    "None",
    "abc",
    "",
    "4,4",
    ",",
    "0,4",
    "-4",
    "true",
    "0x10",
    " 2",
    "4,,4",
]
_FLAG_VALUES = {
    "--likelihood": ["bernoulli", "continuous_bernoulli", "gaussian", "poisson"],
    "--preprocessing": ["none", "scale", "standardize", "minmax"],
    "--binarize": ["none", "threshold", "static", "dynamic", "always"],
    "--device": ["auto", "cpu", "cuda", "meta", "mps", "bogus"],
    "--hidden": ["4", "", "4,4", "0", "-4", "a"],
    "--epochs": ["1", "2", "0", "-1", "1.5"],
    "--latent-dim": ["1", "2", "0", "-1", "100"],
    "--random-state": ["0", "1", "-1", "4294967296", "none", "x"],
    "--architecture": ["auto", "mlp", "conv", "resnet"],
    "--channels": ["2", "", "2,2", "0"],
    "--objective": ["elbo", "iwae", "bogus"],
}
_PARAM_FLAGS = [
    "--latent-dim",
    "--hidden",
    "--likelihood",
    "--beta",
    "--preprocessing",
    "--pixel-max",
    "--binarize",
    "--epochs",
    "--batch-size",
    "--lr",
    "--validation-fraction",
    "--patience",
    "--grad-clip",
    "--device",
    "--random-state",
    "--architecture",
    "--channels",
    "--objective",
    "--n-train-samples",
    "--kl-warmup",
    "--free-bits",
    "--bogus-flag",
]
# Small networks for every training command; flags this version lacks are left out.
_TRAINING = ["--epochs", "1", "--hidden", "4", "--batch-size", "64"] + (
    ["--channels", "2"] if "channels" in VAE().get_params() else []
)


@st.composite
def _param_flags(draw):
    flags = draw(st.lists(st.sampled_from(_PARAM_FLAGS), max_size=3, unique=True))
    argv = []
    for flag in flags:
        argv += [flag, draw(_mostly(_FLAG_VALUES.get(flag, _TEXT_VALUES), _TEXT_VALUES))]
    return argv


_GOOD_DATA = ["inputs/table.npy", "inputs/images.npy", "inputs/table.csv", "inputs/data.npz", "inputs/pngs12", "digits"]
_BAD_DATA = [
    "inputs/onerow.npy",
    "inputs/nan.npy",
    "inputs/junk.csv",
    "inputs/pngs",
    "inputs/empty.npy",
    "inputs/blob.bin",
    "inputs/nothing",
    "inputs/missing.npy",
    "fashion-mnist",
    "",
]
_GOOD_RUNS = ["runs/pca", "runs/ae", "runs/vae", "runs/vae_images", "runs/vae_flat"]
_BAD_RUNS = ["runs/broken", "runs/missing", "inputs/table.npy", "out/empty", ""]
_GOOD_OUTS = ["out/new", "out/empty", "out/deep/er/codes.npy"]
_BAD_COMPARISONS = [
    "out/compare_no_models",
    "out/compare_no_data",
    "out/compare_garbage",
    "out/compare_models_gone",
    "out/compare_wrong_types",
]
_BAD_OUTS = ["out/model", "out/file.txt", "out/file.txt/sub", ""]


@st.composite
def cli_argvs(draw):
    """An argument list for one vaelab command: mostly well-formed, some values hostile."""
    command = draw(
        st.sampled_from(["fit", "fit", "encode", "sample", "evaluate", "compare", "sweep", "report", "junk"])
    )
    data = ["--data", draw(_mostly(_GOOD_DATA, _BAD_DATA))]
    if data[1] == "fashion-mnist":  # never the real 70,000 images: the data dir holds corrupted files
        data += ["--data-dir", draw(st.sampled_from(["inputs/fashion", "inputs/nothing", "inputs/missing"]))]
    if data[1] == "inputs/table.csv" and draw(st.booleans()):
        data += ["--label-column", "label"]
    if draw(_mostly([False], [True])):
        data += [
            draw(st.sampled_from(["--key", "--label-column", "--data-dir"])),
            draw(st.sampled_from(["X", "y", "label", "0", "-1", "9", ""])),
        ]
    out = ["--out", draw(_mostly(_GOOD_OUTS, _BAD_OUTS))]
    run = draw(_mostly(_GOOD_RUNS, _BAD_RUNS))
    hostile_params = _param_flags() if draw(st.booleans()) else st.just([])
    if command == "fit":
        model = draw(_mostly(["pca", "ae", "vae"], ["gan"]))
        argv = ["fit", "--model", model, *out, *data, *([] if model == "pca" else _TRAINING)]
        argv += draw(st.lists(_mostly(["--quiet"], ["--resume", "--overwrite"]), max_size=2, unique=True))
        argv += draw(hostile_params)
    elif command == "encode":
        argv = ["encode", run, *data, *out, "--split", draw(_mostly(["train", "test"], ["val"]))]
    elif command == "sample":
        argv = [
            "sample",
            run,
            "-n",
            draw(_mostly(["1", "3"], ["0", "-1", "1.5", "x"])),
            "--random-state",
            draw(_mostly(["0", "7"], ["-1", "4294967296", "x"])),
            *out,
        ]
    elif command == "evaluate":
        argv = [
            "evaluate",
            run,
            *data,
            "--iw-samples",
            draw(_mostly(["5", "1"], ["0", "-1", "x"])),
            "--seed",
            draw(_mostly(["0", "3"], ["-1", "4294967296", "x"])),
        ]
        if draw(st.booleans()):
            argv += [
                "--json",
                draw(_mostly(["out/m.json", "out/new/m.json"], ["out/file.txt/m.json", "out/empty", ""])),
            ]
    elif command == "compare":
        argv = [
            "compare",
            *data,
            *_TRAINING,
            "--iw-samples",
            "3",
            "--no-report",
            "--out",
            draw(_mostly(["out/cmp", "out/empty"], ["out/file.txt", "out/model", ""])),
        ]
        argv += draw(st.lists(st.sampled_from(["--quiet"]), unique=True))
        argv += draw(hostile_params)
    elif command == "sweep":
        argv = [
            "sweep",
            *data,
            *_TRAINING,
            "--iw-samples",
            "3",
            "--beta",
            draw(_mostly(["1", "0.5,2"], ["", "0", "-1", "nan", "inf", "a,1", "1,1"])),
            "--out",
            draw(_mostly(["out/sweep", "out/empty"], ["out/file.txt", ""])),
        ]
        argv += draw(st.lists(st.sampled_from(["--quiet"]), unique=True))
        argv += draw(hostile_params)
    elif command == "report":  # a valid comparison makes it draw every figure (about a second)
        argv = ["report", draw(_mostly(["out/compare"], [*_BAD_COMPARISONS, "runs/vae", "out/empty", "runs/missing"]))]
    else:
        tokens = [
            "fit",
            "encode",
            "sample",
            "--help",
            "--version",
            "-n",
            "--out",
            "--data",
            "digits",
            "bogus",
            "",
            "--",
            "-",
        ]
        argv = draw(st.lists(st.sampled_from(tokens), max_size=4))
    if argv and draw(_mostly([False], [True])) and draw(st.booleans()):  # a missing value or a dangling flag
        del argv[draw(st.integers(0, len(argv) - 1))]
    return argv


class _Workspace:
    """The fixed inputs of the CLI tests: data files and fitted runs, hashed once to catch writes."""

    def __init__(self, root: Path):
        from vaelab.cli import main

        self.root = root
        inputs = root / "inputs"
        inputs.mkdir()
        rng = np.random.default_rng(0)
        table = rng.random((24, 3)).astype(np.float32)
        np.save(inputs / "table.npy", table)
        np.save(inputs / "images.npy", rng.integers(0, 256, (12, 1, 3, 3), dtype=np.uint8))
        np.save(inputs / "onerow.npy", table[:1])
        nan = table.copy()
        nan[3, 1] = np.nan
        np.save(inputs / "nan.npy", nan)
        (inputs / "table.csv").write_text(
            "a,b,label\n" + "".join(f"{r[0]},{r[1]},{i % 2}\n" for i, r in enumerate(table))
        )
        (inputs / "junk.csv").write_bytes(b'1,2\n3,"x\n\xff\xfe,\n')
        np.savez(inputs / "data.npz", X=table, y=np.arange(24) % 3)
        (inputs / "empty.npy").write_bytes(b"")
        (inputs / "blob.bin").write_bytes(bytes(range(64)))
        (inputs / "nothing").mkdir()
        pngs = inputs / "pngs"
        pngs.mkdir()
        from PIL import Image

        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (3, 3), dtype=np.uint8), mode="L").save(pngs / f"{i}.png")
        (inputs / "pngs12").mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), mode="RGB").save(
                inputs / "pngs12" / f"{i:02}.png"
            )
        fashion = inputs / "fashion"
        fashion.mkdir()
        for stem in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ):
            (fashion / stem).write_bytes(struct.pack(">HBBI", 0, 8, 1, 3) + b"\x01\x02\x03")
        runs = root / "runs"
        quiet = io.StringIO()
        with _chdir(root), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            for model in ("pca", "ae", "vae"):
                training = [] if model == "pca" else ["--epochs", "1", "--hidden", "4"]
                assert (
                    main(
                        [
                            "fit",
                            "--model",
                            model,
                            "--data",
                            "inputs/table.npy",
                            *training,
                            "--quiet",
                            "--out",
                            f"runs/{model}",
                        ]
                    )
                    == 0
                )
            assert (
                main(
                    [
                        "fit",
                        "--model",
                        "vae",
                        "--data",
                        "inputs/images.npy",
                        "--epochs",
                        "1",
                        "--hidden",
                        "4",
                        "--quiet",
                        "--out",
                        "runs/vae_images",
                    ]
                )
                == 0
            )
            assert (
                main(
                    [
                        "compare",
                        "--data",
                        "inputs/table.npy",
                        "--epochs",
                        "1",
                        "--hidden",
                        "4",
                        "--iw-samples",
                        "3",
                        "--quiet",
                        "--no-report",
                        "--out",
                        "compare",
                    ]
                )
                == 0
            )
        # A legitimate but degenerate model: a decoder that ignores the code (posterior collapse).
        flat = vaelab.load(runs / "vae")
        with torch.no_grad():
            for name, weights in flat.module_.named_parameters():
                if name.startswith("decoder"):
                    weights.zero_()
        flat.save(runs / "vae_flat")
        (runs / "broken").mkdir()
        (runs / "broken" / "config.json").write_text('{"format": "vaelab-model", "class": "VAE"')
        self.compare = root / "compare"
        self.digest = _tree_digest(inputs), _tree_digest(runs)

    def example_dir(self, tmp: Path) -> None:
        """Per-example outputs: fresh copies of everything a command may legitimately write to."""
        (tmp / "inputs").symlink_to(self.root / "inputs")
        (tmp / "runs").symlink_to(self.root / "runs")
        out = tmp / "out"
        out.mkdir()
        (out / "empty").mkdir()
        shutil.copytree(self.root / "runs" / "vae", out / "model")
        (out / "file.txt").write_text("not a directory\n")
        shutil.copytree(self.compare, out / "compare")
        doc = json.loads((self.compare / "metrics.json").read_text())
        bad = {
            "no_models": {k: v for k, v in doc.items() if k != "models"},
            "no_data": {k: v for k, v in doc.items() if k != "data"},
            "wrong_types": {**doc, "models": ["PCA"], "data": "digits", "settings": None, "table": {}},
        }
        for name in ("no_models", "no_data", "garbage", "models_gone", "wrong_types"):
            folder = out / f"compare_{name}"
            shutil.copytree(self.compare, folder)
            if name == "garbage":
                (folder / "metrics.json").write_bytes(b'{"format": "vaelab-comparison", \xff')
            elif name == "models_gone":
                shutil.rmtree(folder / "models")
            else:
                (folder / "metrics.json").write_text(json.dumps(bad[name]))

    def __repr__(self) -> str:
        return f"<CLI workspace in {self.root}>"

    def check_unchanged(self) -> None:
        now = _tree_digest(self.root / "inputs"), _tree_digest(self.root / "runs")
        assert now == self.digest, "a command modified its input files or runs"


@pytest.fixture(scope="module")
def workspace():
    with tempfile.TemporaryDirectory(prefix="vaelab-fuzz-cli-") as tmp:
        yield _Workspace(Path(tmp))


_ERROR_LINE = re.compile(r"^vaelab(?: [\w-]+)*: error: \S")
_PROGRESS = re.compile(r"\d+/\d+ \[|\?it/s|it/s\]|s/it\]")


def _check_cli_outcome(rc, stderr: str, argv, *, strict: bool) -> None:
    """Exit 0 or 2; on 2 the last stderr line is the error, in one line, and there is no traceback.

    ``strict`` (subprocesses): on status 2 nothing else may be on stderr besides argparse's usage
    block and progress bars -- no warnings, no second line of the message.
    """
    shown = f"argv={argv!r}\nrc={rc!r}\nstderr:\n{stderr}"
    assert rc in (0, 2), "exit status is neither 0 nor 2\n" + shown
    assert "Traceback" not in stderr, shown
    if rc != 2:
        return
    lines = [s for s in re.split(r"[\r\n]", stderr) if s.strip() and not _PROGRESS.search(s)]
    assert lines and _ERROR_LINE.match(lines[-1]), "the last stderr line is not `vaelab ...: error: ...`\n" + shown
    if strict:
        usage = stderr.lstrip().startswith("usage:")
        others = [s for s in lines[:-1] if not (usage and (s.startswith("usage:") or s.startswith(" ")))]
        assert not others, "stderr holds more than the one-line error\n" + shown


@pytest.mark.slow
@_fuzz(40)
@given(argv=cli_argvs())
def test_cli_in_process_exits_0_or_2_with_one_line_errors(workspace, argv):
    from vaelab.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        workspace.example_dir(Path(tmp))
        err = io.StringIO()
        with _chdir(tmp), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), _time_limit(120):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse: --help, --version and usage errors
                rc = 0 if exc.code is None else exc.code
    event(f"{argv[0] if argv else '(none)'}: exit {rc}")
    _check_cli_outcome(rc, err.getvalue(), argv, strict=False)
    workspace.check_unchanged()


@pytest.mark.slow
@_fuzz(6, slow=True)
@given(argv=cli_argvs())
def test_cli_subprocess_exits_0_or_2_without_traceback(workspace, argv):
    env = {k: v for k, v in os.environ.items() if k != "VAELAB_DATA_DIR"}
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        workspace.example_dir(Path(tmp))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "vaelab", *argv], cwd=tmp, env=env, capture_output=True, text=True, timeout=120
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"vaelab {argv!r} did not finish within 120 s (a hang)")
    event(f"{argv[0] if argv else '(none)'}: exit {proc.returncode}")
    assert proc.returncode >= 0, f"vaelab {argv!r} was killed by signal {-proc.returncode} (a crash)\n{proc.stderr}"
    _check_cli_outcome(proc.returncode, proc.stderr, argv, strict=True)
    workspace.check_unchanged()
