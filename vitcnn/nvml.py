"""What NVML (nvidia-ml-py, the `gpu` extra) says about one GPU: the settings that make one GPU name run at
different speeds (power limit, clocks, MIG, ECC, board) and the driver.

`device_info` is the only function that calls pynvml; everything that interprets its answers
(vitcnn/fingerprint.py) is tested on a CPU with its answers faked. Each query is asked on its own: a GPU that
does not support one (ECC on a consumer card, application clocks under MIG) gives None for that one only.
"""

from __future__ import annotations

from collections.abc import Callable


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ask(call: Callable, *args):
    """pynvml's answer, or None when this GPU or driver does not support the query."""
    import pynvml

    try:
        return call(*args)
    except pynvml.NVMLError:
        return None


def _handle(pynvml, uuid: str | None, pci_bus_id: str | None):
    """The NVML handle of the device torch uses: by UUID (a MIG slice has its own), else by PCI bus id."""
    for name in ([f"GPU-{uuid}", f"MIG-{uuid}", uuid] if uuid else []):
        handle = _ask(pynvml.nvmlDeviceGetHandleByUUID, name)
        if handle is not None:
            return handle
    return _ask(pynvml.nvmlDeviceGetHandleByPciBusId, pci_bus_id) if pci_bus_id else None


def _pair(pynvml, call: Callable, handle) -> dict | None:
    """SM and memory clocks of one clock query, in MHz; None when neither is known."""
    clocks = {"sm": _ask(call, handle, pynvml.NVML_CLOCK_SM), "mem": _ask(call, handle, pynvml.NVML_CLOCK_MEM)}
    return clocks if any(v is not None for v in clocks.values()) else None


def _mode(value) -> str | None:
    return None if value is None else ("on" if value else "off")


def device_info(uuid: str | None = None, pci_bus_id: str | None = None) -> dict:
    """NVML's answers for the GPU with this UUID (torch's `props.uuid`) or PCI bus id: `driver`, `board` (board
    part number), `mig` (None, "off", or the slice's name), `ecc`, `persistence` ("on"/"off"), `power_limit_w`
    and `default_power_limit_w`, `max_clocks_mhz` and `application_clocks_mhz` ({"sm", "mem"}); `error` says
    why NVML could not answer at all (not installed, no driver, device not found)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # ImportError, or NVMLError when there is no driver
        return {"error": f"NVML unavailable: {type(exc).__name__}: {exc}"}
    try:
        info: dict = {"driver": _text(_ask(pynvml.nvmlSystemGetDriverVersion) or "") or None}
        handle = _handle(pynvml, uuid, pci_bus_id)
        if handle is None:
            return {**info, "error": f"NVML has no device with UUID {uuid!r} or PCI bus id {pci_bus_id!r}"}
        gpu, mig = handle, None
        if _ask(pynvml.nvmlDeviceIsMigDeviceHandle, handle):
            gpu = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
            mig = _text(_ask(pynvml.nvmlDeviceGetName, handle) or "MIG slice")
        mig_mode = _ask(pynvml.nvmlDeviceGetMigMode, gpu)
        ecc = _ask(pynvml.nvmlDeviceGetEccMode, gpu)
        limit, default = (_ask(call, gpu) for call in (pynvml.nvmlDeviceGetEnforcedPowerLimit,
                                                       pynvml.nvmlDeviceGetPowerManagementDefaultLimit))
        info.update(
            board=_text(_ask(pynvml.nvmlDeviceGetBoardPartNumber, gpu) or "") or None,
            mig=mig or (None if mig_mode is None else _mode(mig_mode[0])),
            ecc=None if ecc is None else _mode(ecc[0]),
            persistence=_mode(_ask(pynvml.nvmlDeviceGetPersistenceMode, gpu)),
            power_limit_w=None if limit is None else round(limit / 1000),
            default_power_limit_w=None if default is None else round(default / 1000),
            max_clocks_mhz=_pair(pynvml, pynvml.nvmlDeviceGetMaxClockInfo, gpu),
            application_clocks_mhz=_pair(pynvml, pynvml.nvmlDeviceGetApplicationsClock, gpu),
        )
        return info
    finally:
        _ask(pynvml.nvmlShutdown)


# Why the GPU ran below its clock (NVML's clock-event reasons, formerly "throttle reasons"), by bit.
CLOCK_EVENTS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
                0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
                0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting"}


def clock_events(mask: int | None) -> list[str] | None:
    """The names of the reasons set in an NVML clock-event mask (unknown bits as hex)."""
    if mask is None:
        return None
    names = [name for bit, name in CLOCK_EVENTS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENTS)
    return names + ([hex(unknown)] if unknown else [])


class ClockReader:
    """The SM clock and the clock-event reasons of one GPU, read around every timed block (a block that ran while
    the GPU was power- or thermally capped says so). NVML stays open from the first read until close();
    a reader without NVML (not installed, no driver, device not found) answers None."""

    def __init__(self, uuid: str | None = None, pci_bus_id: str | None = None) -> None:
        self.pynvml = self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # ImportError, or NVMLError when there is no driver
            return
        self.pynvml, self.handle = pynvml, _handle(pynvml, uuid, pci_bus_id)

    def __call__(self) -> dict | None:
        if self.handle is None:
            return None
        pynvml = self.pynvml
        reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            getattr(pynvml, "nvmlDeviceGetCurrentClocksThrottleReasons")
        return {"sm_clock_mhz": _ask(pynvml.nvmlDeviceGetClockInfo, self.handle, pynvml.NVML_CLOCK_SM),
                "clock_events": clock_events(_ask(reasons, self.handle))}

    def close(self) -> None:
        if self.pynvml is not None:
            _ask(self.pynvml.nvmlShutdown)
            self.pynvml = self.handle = None
