"""Property tests: every reference op agrees with torch.nn.functional (max abs diff <= 1e-5)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import ops

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
TOL = 1e-5


def arrays(draw, shape):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.uniform(-3, 3, size=shape)


def tf_same(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" amounts, written independently of cnnlab's helper."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


@SETTINGS
@given(st.data())
def test_conv2d_matches_torch(data):
    c, f = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    h, w = data.draw(st.integers(3, 12)), data.draw(st.integers(3, 12))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    s, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    padding = data.draw(st.sampled_from(["valid", "same", 0, 1, 2]))
    if padding == "valid" and ((kh - 1) * d + 1 > h or (kw - 1) * d + 1 > w):
        padding = "same"
    x, k, b = arrays(data.draw, (c, h, w)), arrays(data.draw, (f, c, kh, kw)), arrays(data.draw, (f,))
    ours = ops.conv2d(x, k, bias=b, stride=s, padding=padding, dilation=d).output
    xt = torch.tensor(x)[None]
    if padding == "same":
        (t, bo), (le, r) = tf_same(h, kh, s, d), tf_same(w, kw, s, d)
        xt, pad = F.pad(xt, (le, r, t, bo)), 0
    else:
        pad = 0 if padding == "valid" else padding
    ref = F.conv2d(xt, torch.tensor(k), torch.tensor(b), stride=s, padding=pad, dilation=d)[0].numpy()
    if padding == "same":
        assert ours.shape[1:] == (math.ceil(h / s), math.ceil(w / s))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= TOL


@SETTINGS
@given(st.data())
def test_conv1d_matches_torch(data):
    c, f, n = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(4, 20))
    k, s, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    padding = data.draw(st.sampled_from(["valid", "same", 1]))
    if padding == "valid" and (k - 1) * d + 1 > n:
        padding = "same"
    x, w = arrays(data.draw, (c, n)), arrays(data.draw, (f, c, k))
    flip = data.draw(st.booleans())
    ours = ops.conv1d(x, w, stride=s, padding=padding, dilation=d, flip=flip).output
    xt = torch.tensor(x)[None]
    wt = torch.tensor(w).flip(-1) if flip else torch.tensor(w)
    if padding == "same":
        xt, pad = F.pad(xt, tf_same(n, k, s, d)), 0
    else:
        pad = 0 if padding == "valid" else padding
    ref = F.conv1d(xt, wt, stride=s, padding=pad, dilation=d)[0].numpy()
    assert np.abs(ours - ref).max() <= TOL


@SETTINGS
@given(st.data())
def test_pooling_matches_torch(data):
    c, h, w = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 12)), data.draw(st.integers(2, 12))
    k = data.draw(st.integers(1, 2))
    s = data.draw(st.integers(1, 3))
    padding = data.draw(st.sampled_from(["valid", "same"]))
    x = arrays(data.draw, (c, h, w))
    xt = torch.tensor(x)[None]
    if padding == "same":
        (t, b), (le, r) = tf_same(h, k, s), tf_same(w, k, s)
        ref_max = F.max_pool2d(F.pad(xt, (le, r, t, b), value=-math.inf), k, s)[0].numpy()
        sums = F.avg_pool2d(F.pad(xt, (le, r, t, b)), k, s, divisor_override=1)
        counts = F.avg_pool2d(F.pad(torch.ones_like(xt), (le, r, t, b)), k, s, divisor_override=1)
        ref_avg = (sums / counts)[0].numpy()
    else:
        ref_max = F.max_pool2d(xt, k, s)[0].numpy()
        ref_avg = F.avg_pool2d(xt, k, s)[0].numpy()
    assert np.abs(ops.maxpool(x, k, s, padding).output - ref_max).max() <= TOL
    assert np.abs(ops.avgpool(x, k, s, padding).output - ref_avg).max() <= TOL


@SETTINGS
@given(st.data())
def test_pool1d_matches_torch(data):
    n, k, s = data.draw(st.integers(2, 20)), data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    x = arrays(data.draw, (n,))
    xt = torch.tensor(x)[None, None]
    assert np.abs(ops.maxpool(x, k, s).output - F.max_pool1d(xt, k, s)[0, 0].numpy()).max() <= TOL
    assert np.abs(ops.avgpool(x, k, s).output - F.avg_pool1d(xt, k, s)[0, 0].numpy()).max() <= TOL


@SETTINGS
@given(st.data())
def test_global_pools_match_adaptive(data):
    x = arrays(data.draw, (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))))
    xt = torch.tensor(x)[None]
    assert np.abs(ops.global_avgpool(x).output - F.adaptive_avg_pool2d(xt, 1).flatten().numpy()).max() <= TOL
    assert np.abs(ops.global_maxpool(x).output - F.adaptive_max_pool2d(xt, 1).flatten().numpy()).max() <= TOL


@SETTINGS
@given(st.data())
def test_lrn_matches_torch(data):
    c = data.draw(st.integers(1, 8))
    x = arrays(data.draw, (c, data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))))
    size = data.draw(st.integers(1, 6))
    alpha = data.draw(st.floats(1e-4, 2.0))
    beta = data.draw(st.floats(0.1, 1.0))
    k = data.draw(st.floats(0.5, 3.0))
    ref = F.local_response_norm(torch.tensor(x)[None], size, alpha, beta, k)[0].numpy()
    assert np.abs(ops.lrn(x, size, alpha, beta, k).output - ref).max() <= TOL
