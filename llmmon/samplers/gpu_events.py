"""Critical XID events (``nvmlEventTypeXidCriticalError``), waited on in a thread of their own
with a bounded wait so that closing never hangs, and counted by GPU and XID code.

XID codes are a bounded label: the ones NVIDIA documents as critical for compute are kept,
any other is counted as ``other``.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import Counter
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# XIDs worth telling apart (NVIDIA's XID catalogue), by their meaning for an inference node:
# 13 graphics engine exception, 31 GPU memory page fault, 43 GPU stopped processing,
# 45 preemptive cleanup, 48 double-bit ECC error, 61/62 internal micro-controller error,
# 63/64 ECC page retirement or row remapping event, 68 video decoder exception,
# 74 NVLink error, 79 GPU has fallen off the bus, 92 high single-bit ECC rate,
# 94 contained ECC error, 95 uncontained ECC error, 119/120 GSP error, 140 unrecovered ECC.
KNOWN_XIDS = frozenset({13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 74, 79, 92, 94, 95, 119, 120,
                        140})
XID_LABELS = (*(str(x) for x in sorted(KNOWN_XIDS)), "other")
WAIT_MS = 500


def _address(handle: Any) -> int:
    """A device handle's identity: the pointer's address (or the handle, if an int)."""
    if isinstance(handle, int):
        return handle
    return int(ctypes.cast(handle, ctypes.c_void_p).value or 0)


def xid_label(code: int) -> str:
    return str(code) if code in KNOWN_XIDS else "other"


class XidWatcher:
    """Registers every GPU that supports it and counts their critical XID events."""

    def __init__(self, nvml: ModuleType) -> None:
        self._nv = nvml
        self._lock = threading.Lock()
        self._counts: Counter[tuple[int, str]] = Counter()  # (gpu index, xid) -> events
        self._stop = threading.Event()
        self._handles: dict[int, int] = {}  # a registered handle's address -> GPU index
        self._thread: threading.Thread | None = None
        self._set: Any = None
        self.watched: set[int] = set()  # GPU indexes registered for events

    def start(self, handles: dict[int, Any]) -> None:
        """Watch these GPUs (index -> handle); a GPU without XID events is left out."""
        nv = self._nv
        if self._thread is not None:
            return
        try:
            self._set = nv.nvmlEventSetCreate()
        except (AttributeError, nv.NVMLError) as exc:
            log.debug("no XID events: %s", type(exc).__name__)
            return
        self.watched, self._handles = set(), {}
        for index, handle in handles.items():
            try:
                nv.nvmlDeviceRegisterEvents(handle, nv.nvmlEventTypeXidCriticalError, self._set)
                self.watched.add(index)
                self._handles[_address(handle)] = index
            except nv.NVMLError as exc:
                log.debug("GPU %d has no XID events: %s", index, type(exc).__name__)
        if not self.watched:
            self._free()
            return
        self._stop = threading.Event()  # its own: a thread left from before keeps the old one
        self._thread = threading.Thread(target=self._run, args=(self._set, self._stop),
                                        name="llmmon-xid", daemon=True)
        self._thread.start()

    def _run(self, event_set: Any, stop: threading.Event) -> None:
        nv = self._nv
        while not stop.is_set():
            try:
                data = nv.nvmlEventSetWait(event_set, WAIT_MS)
            except nv.NVMLError_Timeout:
                continue
            except Exception as exc:  # a thread that died would leave the zeros claiming calm
                log.debug("XID wait failed: %s", type(exc).__name__)
                stop.wait(WAIT_MS / 1000)  # don't spin on a broken event set
                continue
            # The event names its GPU by handle: matched against the registered ones, with
            # no NVML call, since the GPU may be the one that just fell off the bus.
            index = self._handles.get(_address(data.device))
            if index is not None and data.eventType & nv.nvmlEventTypeXidCriticalError:
                with self._lock:
                    self._counts[(index, xid_label(int(data.eventData)))] += 1

    def counts(self) -> dict[tuple[int, str], int]:
        """Events by (GPU, XID label), every label of every watched GPU included, at 0 until
        its first event, so that increase() sees the first one."""
        with self._lock:
            counts = dict(self._counts)
        for index in self.watched:
            for label in XID_LABELS:
                counts.setdefault((index, label), 0)
        return counts

    def stop(self) -> None:
        """Stop waiting (within one bounded wait) and free the event set; counts are kept."""
        self.watched = set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * WAIT_MS / 1000 + 1)
            alive, self._thread = self._thread.is_alive(), None
            if alive:  # stuck inside NVML: freeing the set under it could crash the process
                log.warning("XID thread did not stop; its event set is left allocated")
                self._set = None
        self._free()

    def _free(self) -> None:
        if self._set is not None:
            try:
                self._nv.nvmlEventSetFree(self._set)
            except self._nv.NVMLError:
                pass  # NVML already shut down
            self._set = None
