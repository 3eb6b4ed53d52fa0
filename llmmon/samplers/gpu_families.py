"""The GPU sampler's families."""

from __future__ import annotations

from llmmon.metrics.family import Family

_GPU = ("gpu", "uuid")
GPU_UP = Family("llmmon_gpu_up", "gauge", "1 if NVML answers for this GPU, 0 if it is lost.",
                ("gpu",), group="gpu")
GPU_INFO = Family("llmmon_gpu_info", "gauge", "Always 1; GPU identity in labels.",
                  (*_GPU, "name", "driver", "cuda"), group="gpu")
GPU_UTIL = Family("llmmon_gpu_utilization_ratio", "gauge",
                  "Share of the last sample period any kernel ran (0..1); one small kernel "
                  "reads 1. See llmmon_gpu_sm_active_ratio for saturation.", _GPU, group="gpu")
GPU_MEM_UTIL = Family("llmmon_gpu_memory_utilization_ratio", "gauge",
                      "Share of the last sample period device memory was read or written.",
                      _GPU, group="gpu")
GPU_MEM_USED = Family("llmmon_gpu_memory_used_bytes", "gauge", "Device memory in use.", _GPU,
                      group="gpu")
GPU_MEM_TOTAL = Family("llmmon_gpu_memory_total_bytes", "gauge", "Device memory.", _GPU,
                       group="gpu")
GPU_TEMP = Family("llmmon_gpu_temperature_celsius", "gauge", "GPU core temperature.", _GPU,
                  group="gpu")
GPU_POWER = Family("llmmon_gpu_power_watts", "gauge", "Power draw.", _GPU, group="gpu")
GPU_POWER_LIMIT = Family("llmmon_gpu_power_limit_watts", "gauge", "Enforced power limit.",
                         _GPU, group="gpu")

GPU_ENERGY = Family("llmmon_gpu_energy_joules_total", "counter",
                    "Energy used since the driver loaded.", _GPU, group="gpu")
GPU_CLOCK = Family("llmmon_gpu_clock_hertz", "gauge", "Current clock, by domain.",
                   _GPU + ("clock",), group="gpu")
GPU_FAN = Family("llmmon_gpu_fan_speed_ratio", "gauge", "Fan speed as a share of its maximum.",
                 _GPU, group="gpu")
GPU_THROTTLE = Family("llmmon_gpu_throttle_active", "gauge",
                      "1 while the clocks are held down for this reason.",
                      _GPU + ("reason",), group="gpu")
GPU_ECC = Family("llmmon_gpu_ecc_errors_total", "counter",
                 "Memory ECC errors since the driver loaded.", _GPU + ("type",), group="gpu")
GPU_PCIE_RX = Family("llmmon_gpu_pcie_rx_bytes_per_second", "gauge",
                     "PCIe receive throughput: over the sample interval with GPM, else over "
                     "NVML's last 20 ms window.", _GPU, group="gpu")
GPU_PCIE_TX = Family("llmmon_gpu_pcie_tx_bytes_per_second", "gauge",
                     "PCIe transmit throughput: over the sample interval with GPM, else over "
                     "NVML's last 20 ms window.", _GPU, group="gpu")
GPU_MIG = Family("llmmon_gpu_mig_mode_enabled", "gauge", "1 if MIG mode is on.", _GPU,
                 group="gpu")
GPU_PROC_MEM = Family("llmmon_gpu_process_memory_used_bytes", "gauge",
                      "Device memory used by each process on the GPU.",
                      _GPU + ("pid", "process"), group="gpu")


# --- GPU Performance Monitoring (Hopper and later); absent where unsupported -------------
_GPM = _GPU + ("gpu_instance",)  # "" for the whole GPU, the GPU instance id under MIG
_GPM_NOTE = " GPM, over the sample interval; gpu_instance is empty for the whole GPU."


def _gpm(name: str, help: str, labels: tuple[str, ...] = _GPM) -> Family:
    return Family(name, "gauge", help + _GPM_NOTE, labels, group="gpu")


GPU_SM_ACTIVE = _gpm("llmmon_gpu_sm_active_ratio",
                     "Share of SMs busy, averaged (0..1): how saturated the GPU is.")
GPU_SM_OCCUPANCY = _gpm("llmmon_gpu_sm_occupancy_ratio",
                        "Resident warps as a share of the SMs' maximum (0..1).")
GPU_TENSOR_ACTIVE = _gpm("llmmon_gpu_tensor_active_ratio",
                         "Share of SM cycles any tensor core was busy (0..1).")
GPU_DRAM_ACTIVE = _gpm("llmmon_gpu_dram_bandwidth_utilization_ratio",
                       "Device memory bandwidth used, as a share of its peak (0..1).")
GPU_NVLINK_RX = Family("llmmon_gpu_nvlink_rx_bytes_per_second", "gauge",
                       "NVLink receive throughput, all links (GPM, over the sample interval).",
                       _GPU, group="gpu")
GPU_NVLINK_TX = Family("llmmon_gpu_nvlink_tx_bytes_per_second", "gauge",
                       "NVLink transmit throughput, all links (GPM, over the sample interval).",
                       _GPU, group="gpu")

# --- health ------------------------------------------------------------------------------
GPU_XID = Family("llmmon_gpu_xid_errors_total", "counter",
                 "Critical XID events since llmmon started, by XID code (codes outside the "
                 "known set as `other`).", _GPU + ("xid",), group="gpu")
GPU_VIOLATION = Family("llmmon_gpu_violation_seconds_total", "counter",
                       "Time the clocks were held below their target by this policy (power, "
                       "thermal, ...), since the driver loaded.", _GPU + ("policy",),
                       group="gpu")
GPU_RETIRED_PAGES = Family("llmmon_gpu_retired_pages", "gauge",
                           "Memory pages retired, by cause (pre-Ampere; later GPUs remap rows).",
                           _GPU + ("cause",), group="gpu")
GPU_REMAPPED_ROWS = Family("llmmon_gpu_remapped_rows", "gauge",
                           "Memory rows remapped, by the error that caused it.",
                           _GPU + ("type",), group="gpu")
GPU_REMAP_PENDING = Family("llmmon_gpu_row_remap_pending", "gauge",
                           "1 when a row remapping waits for a GPU reset.", _GPU, group="gpu")
GPU_REMAP_FAILED = Family("llmmon_gpu_row_remap_failed", "gauge",
                          "1 when a row remapping failed: the GPU needs service.", _GPU,
                          group="gpu")
GPU_PROC_SM = Family("llmmon_gpu_process_sm_utilization_ratio", "gauge",
                     "Share of the last sample period each process had a kernel running on the "
                     "GPU's SMs.", _GPU + ("pid", "process"), group="gpu")

# --- what NVML costs llmmon ---------------------------------------------------------------
NVML_CALLS = Family("llmmon_gpu_nvml_calls_total", "counter",
                    "NVML calls made by the GPU sampler, by function.", ("function",),
                    group="gpu")
NVML_SECONDS = Family("llmmon_gpu_nvml_call_seconds_total", "counter",
                      "Time spent in NVML calls by the GPU sampler, by function.",
                      ("function",), group="gpu")

FAMILIES: tuple[Family, ...] = (
    GPU_UP, GPU_INFO, GPU_UTIL, GPU_MEM_UTIL, GPU_MEM_USED, GPU_MEM_TOTAL, GPU_TEMP, GPU_POWER,
    GPU_POWER_LIMIT, GPU_ENERGY, GPU_CLOCK, GPU_FAN, GPU_THROTTLE, GPU_ECC, GPU_PCIE_RX,
    GPU_PCIE_TX, GPU_MIG, GPU_PROC_MEM, GPU_SM_ACTIVE, GPU_SM_OCCUPANCY, GPU_TENSOR_ACTIVE,
    GPU_DRAM_ACTIVE, GPU_NVLINK_RX, GPU_NVLINK_TX, GPU_XID, GPU_VIOLATION, GPU_RETIRED_PAGES,
    GPU_REMAPPED_ROWS, GPU_REMAP_PENDING, GPU_REMAP_FAILED, GPU_PROC_SM, NVML_CALLS,
    NVML_SECONDS,
)
