"""Numeric precision of training and of greedy decoding, and the one probe of native bf16.

- `precision` (training): `auto` is bf16 + tf32 on a GPU and fp32 on the CPU; `native` is bf16 where
  the hardware computes it (`native_bf16`), else fp32; `fp32` and `bf16` as named. The Trainer gets it as
  its `bf16` flag (`precision_overrides`).
- `decode_precision` (labels and evaluation): `fp32` runs the weights' own dtype with no autocast,
  `bf16` runs under bf16 autocast (`decode_autocast`), `native` is bf16 where the hardware computes it.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = ("auto", "native", "fp32", "bf16")
DECODE_PRECISIONS = ("fp32", "native", "bf16")
DECODE_DTYPES = ("fp32", "bf16")  # what a decode precision resolves to on this machine


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """The CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16 in /proc/cpuinfo's flags); without it
    bf16 autocast is emulated and slower than fp32."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def native_bf16() -> bool:
    """bf16 is computed in hardware here: a GPU that has bf16 or, without a GPU, a CPU with native bf16."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def check_precision(precision: str, key: str = "precision") -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"{key}: {precision!r} is not one of {list(PRECISIONS)}")
    return precision


def precision_overrides(precision: str) -> dict:
    """The TrainingArguments flags of `precision` on this machine (tf32 is switched on with bf16 on a GPU)."""
    mode = check_precision(precision)
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_available() else "fp32"
    elif mode == "native":
        mode = "bf16" if native_bf16() else "fp32"
    if mode == "bf16" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return {"bf16": mode == "bf16", "fp16": False}


def check_decode_precision(decode_precision: str) -> str:
    if decode_precision not in DECODE_PRECISIONS:
        raise ValueError(f"decode_precision: {decode_precision!r} is not one of {list(DECODE_PRECISIONS)}")
    return decode_precision


def decode_dtype(decode_precision: str) -> str:
    """The dtype greedy decoding runs in for `decode_precision` on this machine: "fp32" or "bf16"."""
    if check_decode_precision(decode_precision) == "native":
        return "bf16" if native_bf16() else "fp32"
    return decode_precision


def decode_autocast(device: torch.device, dtype: str):
    """The context greedy decoding runs under: bf16 autocast for "bf16", nothing for "fp32". Built only
    when on: torch.autocast refuses some device types (meta) even when disabled."""
    if dtype not in DECODE_DTYPES:
        raise ValueError(f"decode_dtype={dtype!r}: expected one of {DECODE_DTYPES}")
    return torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
