"""Precision: the one probe of native bf16, the training flags and the decoding dtype it gives."""

import pytest
import torch

from si_hf import precision
from si_hf.precision import cpu_has_native_bf16, decode_autocast, decode_dtype, precision_overrides


def test_native_precision_reads_the_cpu_flags():
    assert cpu_has_native_bf16("processor: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_native_bf16("flags : sse4_2 amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags : sse4_2 avx2 avx512f avx512bw\n")
    expected = cpu_has_native_bf16() or torch.cuda.is_available()  # this machine, whichever it is
    assert precision_overrides("native")["bf16"] == expected
    assert precision_overrides("auto")["bf16"] == torch.cuda.is_available()
    assert precision_overrides("fp32") == {"bf16": False, "fp16": False}
    assert decode_dtype("fp32") == "fp32" and decode_dtype("bf16") == "bf16"
    with pytest.raises(
        ValueError, match=r"decode_precision: 'auto' is not one of \['fp32', 'native', 'bf16'\]"
    ):
        decode_dtype("auto")
    with pytest.raises(ValueError, match=r"precision: 'fp16' is not one of"):
        precision_overrides("fp16")


@pytest.mark.parametrize(
    "gpu, gpu_bf16, cpu_bf16, expected",
    [
        (False, False, True, "bf16"),
        (False, False, False, "fp32"),
        (True, True, False, "bf16"),
        (True, False, True, "fp32"),  # a GPU without bf16 (V100, T4): autocast to bf16 would fail there
    ],
)
def test_native_precision_follows_the_hardware(monkeypatch, gpu, gpu_bf16, cpu_bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: gpu_bf16)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda *a: cpu_bf16)
    assert decode_dtype("native") == expected
    # training's precision: native follows the same probe (tf32 flags are set only on a real GPU run)
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        assert precision_overrides("native")["bf16"] == (expected == "bf16")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def test_decode_autocast_is_bf16_only_when_asked():
    x = torch.ones(2, 2)
    with decode_autocast(torch.device("cpu"), "bf16"):
        assert (x @ x).dtype == torch.bfloat16
    with decode_autocast(torch.device("cpu"), "fp32"):
        assert (x @ x).dtype == torch.float32
    with pytest.raises(ValueError, match="decode_dtype='fp16'"):
        decode_autocast(torch.device("cpu"), "fp16")
