"""The worked examples learners check by hand."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from cnnlab import ops
from cnnlab.errors import OpsInputError
from cnnlab.ops.parse import parse_array

SEQ = "1,2,3,4,5,6,7,8"


def test_conv1d_valid_same_flip():
    assert ops.conv1d(SEQ, "-1,0,1").output.tolist() == [2] * 6
    same = ops.conv1d(SEQ, "-1,0,1", padding="same")
    assert same.output.tolist() == [2] * 7 + [-7]
    assert same.padded_input.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 0]
    assert ops.conv1d(SEQ, "-1,0,1", padding="same", flip=True).output.tolist() == [-2] * 7 + [7]
    assert "cross-correlation" in same.convention and "ceil(in / stride)" in same.convention


def test_conv1d_trace_text():
    r = ops.conv1d(SEQ, "-1,0,1", padding="same")
    assert r.trace[0].text == "y[0] = 0×(-1) + 1×0 + 2×1 = 2"
    assert r.trace[-1].text == "y[7] = 7×(-1) + 8×0 + 0×1 = -7"
    assert r.trace[0].to_dict()["products"] == [0, 0, 2]


def test_conv_same_stride_2_tf_rule():
    # 5 wide, k=3, s=2: out = ceil(5/2) = 3, total pad (3-1)*2+3-5 = 2 -> 1 before, 1 after
    r = ops.conv1d("1,2,3,4,5", "1,1,1", stride=2, padding="same")
    assert r.output.tolist() == [3, 9, 9]
    # 6 wide, k=3, s=2: out 3, total pad 1 -> 0 before, 1 after (the extra zero at the end)
    r = ops.conv1d("1,2,3,4,5,6", "1,1,1", stride=2, padding="same")
    assert r.padded_input.tolist() == [1, 2, 3, 4, 5, 6, 0] and r.output.tolist() == [6, 12, 11]


def test_conv2d_channels_filters_bias():
    x = np.arange(18.0).reshape(2, 3, 3)
    k = np.ones((3, 2, 2, 2))
    r = ops.conv2d(x, k, bias="1,2,3")
    assert r.output.shape == (3, 2, 2)
    assert r.output[0, 0, 0] == (0 + 1 + 3 + 4) + (9 + 10 + 12 + 13) + 1
    assert r.output[2, 0, 0] == r.output[0, 0, 0] + 2
    assert "(bias)" in r.trace[0].text


def test_conv2d_explicit_asymmetric_padding_and_dilation():
    r = ops.conv2d("[[1,2,3],[4,5,6],[7,8,9]]", "[[1,0],[0,1]]", padding=(0, 1, 1, 0), dilation=2)
    assert r.padded_input.shape == (4, 4)
    assert r.output.shape == (2, 2)


def test_maxpool_example():
    r = ops.maxpool("[[1,2,3,-1],[4,5,6,-2],[7,8,9,-3],[10,0,0,3]]", 2, 2)
    assert r.output.tolist() == [[5, 6], [10, 9]]
    assert r.trace[2].text == "y[1, 0] = max(7, 8, 10, 0) = 10"


def test_pool_1d_and_same():
    assert ops.maxpool("1,5,2,4,3", 2).output.tolist() == [5, 4]
    assert ops.maxpool("1,5,2,4,3", 2, padding="same").output.tolist() == [5, 4, 3]
    assert ops.maxpool("-1,-5,-2", 2, padding="same").output.tolist() == [-1, -2]  # -inf padding
    r = ops.avgpool("[[1,2,3],[4,5,6],[7,8,9]]", 2, padding="same", exact=True)
    assert r.output.tolist() == [[3, Fraction(9, 2)], [Fraction(15, 2), 9]]
    assert r.trace[1].text == "y[0, 1] = (3 + 6) / 2 = 9/2"


def test_global_avgpool_exact():
    x = "[[[1,2,3],[4,5,6],[10,0,3]],[[1,1,1],[1,1,2],[0,0,0]]]"
    r = ops.global_avgpool(x, exact=True)
    assert r.output.tolist() == [Fraction(34, 9), Fraction(7, 9)]
    assert r.to_dict()["output"] == ["34/9", "7/9"]
    assert ops.global_avgpool(x).output.shape == (2,)
    assert ops.global_maxpool(x).output.tolist() == [10, 2]
    assert ops.global_avgpool("1/3,2/3", exact=True).output.tolist() == [Fraction(1, 2)]


def test_lrn_tf_maps_to_torch():
    tf = ops.lrn_tf("1,2,3,4", depth_radius=1, bias=1, alpha=1, beta=0.5)
    pt = ops.lrn("1,2,3,4", size=3, alpha=3, beta=0.5, k=1)
    np.testing.assert_allclose(tf.output, pt.output)
    np.testing.assert_allclose(tf.output[1], 2 / np.sqrt(1 + 1 + 4 + 9))
    assert "size=3, alpha=1×3=3" in tf.notes[0]


def test_large_input_vectorised_and_trace_capped():
    x = np.random.default_rng(0).normal(size=(3, 200, 200))
    r = ops.conv2d(x, np.ones((4, 3, 3, 3)), padding="same", trace_limit=10)
    assert r.output.shape == (4, 200, 200)
    assert len(r.trace) == 10 and r.trace_capped and r.trace_total == 160_000


@pytest.mark.parametrize("call,needle", [
    (lambda: ops.conv1d("[[1,2],[3]]", "1"), "ragged list"),
    (lambda: ops.conv1d("1,two,3", "1"), "'two' is not a number"),
    (lambda: ops.conv1d("1,2", "1,2,3"), "larger than the padded input"),
    (lambda: ops.conv1d("1,2,3", "1", stride=0), "--stride must be >= 1"),
    (lambda: ops.maxpool("1,2,3", 0), "--size must be >= 1"),
    (lambda: ops.conv2d(np.ones((3, 4, 4)), np.ones((2, 2, 3, 3))), "2 input channel(s) but --input has 3"),
    (lambda: ops.conv1d("1,2,3", "1", bias="1,2"), "--bias has 2 values for 1 filter"),
    (lambda: ops.conv1d("1,2,3", "1", padding="full"), "--padding must be valid, same"),
    (lambda: ops.conv2d("[[1,2],[3,4]]", "[[1]]", padding=(1, 1)), "top,bottom,left,right"),
    (lambda: ops.lrn("1,2", size=0), "--size must be a positive integer"),
    (lambda: ops.global_avgpool("[]"), "empty list"),
])
def test_bad_input(call, needle):
    with pytest.raises(OpsInputError) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value)


_SHAPES = array_shapes(min_dims=1, max_dims=3, max_side=5)


@settings(max_examples=150, deadline=None)
@given(arrays(np.int64, _SHAPES, elements=st.integers(-10**6, 10**6)) |
       arrays(np.float64, _SHAPES, elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_anything_numpy_prints_parses_back_to_itself(a):
    """NumPy's print format (rows without commas, wrapped lines) is read as the array it shows."""
    text = np.array2string(a, floatmode="unique", threshold=10**6)
    assert np.array_equal(parse_array(text), a.astype(np.float64))


@settings(max_examples=100, deadline=None)
@given(arrays(np.int64, array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=5),
              elements=st.integers(-10**6, 10**6)))
def test_a_numpy_printout_without_its_outer_brackets_parses_as_its_rows(a):
    """The book prints its answer's matrix rows one per line, outer brackets left off (the learner's audit)."""
    text = np.array2string(a, threshold=10**6).strip()[1:-1]
    assert text.startswith("[") and not text.startswith("[[[" if a.ndim == 3 else "[[")
    assert np.array_equal(parse_array(text), a.astype(np.float64))


@pytest.mark.parametrize("text, expected", [
    ("[1 2 3 -1]\n[4 5 6 -2]\n[7 8 9 -3]", [[1, 2, 3, -1], [4, 5, 6, -2], [7, 8, 9, -3]]),
    ("(1,2,3,4,5,6,7,8)", [1, 2, 3, 4, 5, 6, 7, 8]),        # the exercises' sequences are tuples
    ("1 2 3", [1, 2, 3]),
    ("[[1 2 3 -1]\n [4 5 6 -2]]", [[1, 2, 3, -1], [4, 5, 6, -2]]),
    ("((1, 2), (3, 4))", [[1, 2], [3, 4]]),
])
def test_the_books_number_formats(text, expected):
    assert parse_array(text).tolist() == expected


def test_a_summarised_numpy_printout_says_how_to_get_the_whole_array():
    text = np.array2string(np.arange(2000))
    with pytest.raises(OpsInputError, match="summarised NumPy printout"):
        parse_array(text)


def test_one_lrn_default_everywhere_alexnets_constants():
    """ops.lrn, ops.lrn_tf, a spec's lrn layer and the zoo's paper LRN compute the same thing by default."""
    import torch

    from cnnlab.layers.lrn import paper_lrn
    from cnnlab.spec import build, parse_spec

    x = np.arange(1, 8, dtype=np.float64).reshape(7, 1, 1) * 10
    # AlexNet §3.3: b = a / (k + α Σ a²)^β over n = 5 channels, k = 2, α = 1e-4, β = 0.75 (no division by n)
    by_hand = np.array([x[c, 0, 0] / (2 + 1e-4 * sum(x[j, 0, 0] ** 2 for j in range(max(0, c - 2), min(7, c + 3))))
                        ** 0.75 for c in range(7)])
    t = torch.tensor(x, dtype=torch.float64).unsqueeze(0)
    spec = parse_spec({"input": [7, 1, 1], "layers": ["lrn"]})
    outputs = [ops.lrn(x).output, ops.lrn_tf(x).output, build(spec).double()(t)[0].detach().numpy(),
               paper_lrn().double()(t)[0].numpy()]
    for out in outputs:
        assert np.allclose(np.asarray(out, dtype=np.float64).ravel(), by_hand, rtol=1e-12)
