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
