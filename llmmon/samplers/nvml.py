"""Small helpers over pynvml for the GPU sampler: import it if present, share one call
between fields, tell a lost GPU from a missing sensor."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any


def import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    module: ModuleType = pynvml
    return module


def call(fn: Callable[..., Any], *args: Any, scale: float = 1.0) -> Callable[[], float]:
    return lambda: float(fn(*args)) * scale


def once(read: Callable[[], Any]) -> Callable[[], Any]:
    """One NVML call shared by several fields (utilisation gives gpu and memory)."""
    box: list[Any] = []

    def get() -> Any:
        if not box:
            box.append(read())
        return box[0]

    return get


def is_lost(nv: ModuleType, exc: Exception) -> bool:
    lost = tuple(getattr(nv, n) for n in ("NVMLError_GpuIsLost", "NVMLError_Unknown",
                                          "NVMLError_Uninitialized") if hasattr(nv, n))
    return isinstance(exc, lost)


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cuda_version(nv: ModuleType) -> str:
    try:
        version = int(nv.nvmlSystemGetCudaDriverVersion())
    except nv.NVMLError:
        return ""
    return f"{version // 1000}.{version % 1000 // 10}"
