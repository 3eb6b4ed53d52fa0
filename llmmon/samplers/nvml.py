"""Small helpers over pynvml for the GPU sampler: import it if present, time each call, share
one call between fields, tell a GPU that is gone from a field that failed."""

from __future__ import annotations

import threading
import time
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


class TimedNVML:
    """pynvml with the count and the time of every ``nvml*`` call kept by function name, so
    the cost of a tick is known per call (``llmmon_gpu_nvml_call_seconds_total``)."""

    def __init__(self, nvml: ModuleType) -> None:
        self._nv = nvml
        self._wrapped: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self.costs: dict[str, tuple[int, float]] = {}  # function -> (calls, seconds)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._nv, name)
        if not name.startswith("nvml") or not callable(attr):
            return attr  # constants, structures' classes, NVMLError classes
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = self._timed(name, attr)
        return wrapped

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent = time.perf_counter() - start
                with self._lock:
                    calls, seconds = self.costs.get(name, (0, 0.0))
                    self.costs[name] = (calls + 1, seconds + spent)

        return timed


def once(read: Callable[[], Any]) -> Callable[[], Any]:
    """One NVML call shared by several fields (utilisation gives gpu and memory); an error is
    kept too, so a failing call is made once."""
    box: list[tuple[bool, Any]] = []

    def get() -> Any:
        if not box:
            try:
                box.append((True, read()))
            except Exception as exc:
                box.append((False, exc))
        ok, value = box[0]
        if not ok:
            raise value
        return value

    return get


def _errors(nv: Any, *names: str) -> tuple[type[Exception], ...]:
    return tuple(getattr(nv, n) for n in names if hasattr(nv, n))


def gpu_gone(nv: Any, exc: Exception) -> bool:
    """An error that means every call on this GPU will fail: it is down, not one field."""
    return isinstance(exc, _errors(nv, "NVMLError_GpuIsLost", "NVMLError_Uninitialized"))


def gpu_unreachable(nv: Any, exc: Exception) -> bool:
    """For the tick's first calls on a GPU (its handle and UUID): Unknown there also means
    the GPU does not answer, where on a single field it only drops that field."""
    return gpu_gone(nv, exc) or isinstance(exc, _errors(nv, "NVMLError_Unknown"))


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cuda_version(nv: Any) -> str:
    try:
        version = int(nv.nvmlSystemGetCudaDriverVersion())
    except nv.NVMLError:
        return ""
    return f"{version // 1000}.{version % 1000 // 10}"
