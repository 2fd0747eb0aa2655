"""System metrics sampled while runs are open: CPU, memory and, through NVML, GPUs.

One daemon thread per process samples every ``interval_s`` seconds and hands each
sample to every open run as ``system/*`` metrics. A run that ends before the first
tick gets one sample at its end. GPUs are read through NVML (``pip install
'loopml[gpu]'``) when a driver is present; without one, GPU metrics are skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psutil

__all__ = ["SystemSampler", "sample_system"]

Sink = Callable[[dict[str, float]], None]


class _Nvml:
    """NVML handles, opened once; empty when no NVIDIA driver or library is present."""

    def __init__(self) -> None:
        self.module: Any = None
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
            self.module = pynvml
        except Exception:
            self.handles = []

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for index, handle in enumerate(self.handles):
            utilization = self.module.nvmlDeviceGetUtilizationRates(handle)
            memory = self.module.nvmlDeviceGetMemoryInfo(handle)
            values[f"system/gpu{index}_utilization_percent"] = float(utilization.gpu)
            values[f"system/gpu{index}_memory_used_mb"] = memory.used / 2**20
            values[f"system/gpu{index}_memory_percent"] = 100.0 * memory.used / memory.total
        return values


_nvml: _Nvml | None = None
_nvml_lock = threading.Lock()


def sample_system() -> dict[str, float]:
    """One sample of CPU, memory and GPU figures, keyed ``system/<name>``."""
    global _nvml
    with _nvml_lock:
        if _nvml is None:
            _nvml = _Nvml()
    memory = psutil.virtual_memory()
    values = {
        "system/cpu_percent": float(psutil.cpu_percent(interval=None)),
        "system/memory_used_mb": memory.used / 2**20,
        "system/memory_percent": float(memory.percent),
        "system/process_rss_mb": psutil.Process().memory_info().rss / 2**20,
    }
    values.update(_nvml.sample())
    return values


class SystemSampler:
    """Samples the system on an interval for every registered sink (an open run)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def register(self, run_id: str, sink: Sink) -> None:
        with self._lock:
            self._sinks[run_id] = sink
            if self._thread is None:
                psutil.cpu_percent(interval=None)  # primes the CPU counter
                self._thread = threading.Thread(
                    target=self._loop, name="loopml-system-metrics", daemon=True
                )
                self._thread.start()

    def unregister(self, run_id: str) -> None:
        with self._lock:
            self._sinks.pop(run_id, None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._wake.wait(self.interval_s)
                sinks = list(self._sinks.values())
            if not sinks:
                continue
            values = sample_system()
            for sink in sinks:
                sink(values)
