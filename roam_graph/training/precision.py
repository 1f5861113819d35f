"""Numeric precision of training steps (``training.precision``): autocast for the model's
matrix products, fp32 for what needs the range (the Sinkhorn solve and the losses, which cast
their inputs to fp32 themselves), a gradient scaler only where fp16 needs one.

- ``fp32``: no autocast (the default on a CPU, where bf16 matmuls are rarely faster);
- ``bf16``: autocast to bfloat16; it has fp32's exponent range, so no gradient scaler;
- ``fp16``: autocast to float16 with a ``GradScaler`` (CUDA only: torch 2.2 has no fp16
  autocast on the CPU);
- ``auto``: bf16 on a CUDA device that supports it, fp16 on an older one, fp32 on a CPU.
Evaluation always runs in fp32: lower precision makes ties among candidate scores, and ranks
with ties are worse (docs/training.md). The CUDA paths have not been run on a GPU here.
"""

from __future__ import annotations

import contextlib

import torch

from roam_graph.data.errors import DataError

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of ``name`` on ``device`` (``float32``: no autocast)."""
    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name == "fp16" and device.type != "cuda":
        raise DataError(f"precision fp16 needs a CUDA device (training on {device}); use bf16 "
                        f"or fp32")
    return _DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast of the forward pass to ``dtype``; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off inside an autocast region (the Sinkhorn solve, the losses)."""
    return torch.autocast(device_type=device.type, enabled=False)


def gradient_scaler(dtype: torch.dtype) -> torch.cuda.amp.GradScaler | None:
    """A ``GradScaler`` for fp16 (its small range underflows gradients), else None."""
    return torch.cuda.amp.GradScaler() if dtype == torch.float16 else None
