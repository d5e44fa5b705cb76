"""NVML's answers as vitcnn reads them, with pynvml replaced by a fake module (no GPU needed)."""

from __future__ import annotations

import sys
import types

import pytest

from vitcnn import nvml


class FakeError(Exception):
    pass


def _lookup(handles: dict, uuid: str):
    if uuid not in handles:
        raise FakeError(f"Not Found: {uuid}")
    return handles[uuid]


def _fake_pynvml(mig_handle: bool = False, unsupported: tuple[str, ...] = (), init_fails: bool = False):
    """A pynvml stand-in: one H100 (or a MIG slice of one); the functions named in `unsupported` raise."""
    m = types.ModuleType("pynvml")
    m.NVMLError, m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM = FakeError, 1, 2
    calls = []

    def answer(name, value):
        def call(*args):
            calls.append(name)
            if name in unsupported:
                raise FakeError(name)
            return value(*args) if callable(value) else value
        return call

    def init():
        if init_fails:
            raise FakeError("Driver Not Loaded")

    m.nvmlInit, m.nvmlShutdown = init, answer("nvmlShutdown", None)
    table = {
        "nvmlSystemGetDriverVersion": b"580.159.03",
        "nvmlDeviceGetHandleByUUID": lambda uuid: _lookup({"MIG-abc": "mig"} if mig_handle else {"GPU-abc": "gpu"}, uuid),
        "nvmlDeviceGetHandleByPciBusId": "gpu",
        "nvmlDeviceIsMigDeviceHandle": lambda h: h == "mig",
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle": "gpu",
        "nvmlDeviceGetName": lambda h: "NVIDIA H100 80GB HBM3 MIG 1g.10gb" if h == "mig" else "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetMigMode": lambda h: [1 if mig_handle else 0, 0],
        "nvmlDeviceGetEccMode": [1, 1],
        "nvmlDeviceGetPersistenceMode": 0,
        "nvmlDeviceGetEnforcedPowerLimit": 400_000,
        "nvmlDeviceGetPowerManagementDefaultLimit": 700_000,
        "nvmlDeviceGetBoardPartNumber": "692-2G520-0200-000",
        "nvmlDeviceGetMaxClockInfo": lambda h, kind: {1: 1980, 2: 2619}[kind],
        "nvmlDeviceGetApplicationsClock": lambda h, kind: {1: 1755, 2: 2619}[kind],
    }
    for name, value in table.items():
        setattr(m, name, answer(name, value))
    m.calls = calls
    return m


def _install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return module


def test_whole_gpu(monkeypatch):
    _install(monkeypatch, _fake_pynvml())
    assert nvml.device_info("abc") == {
        "driver": "580.159.03", "board": "692-2G520-0200-000", "mig": "off", "ecc": "on", "persistence": "off",
        "power_limit_w": 400, "default_power_limit_w": 700, "max_clocks_mhz": {"sm": 1980, "mem": 2619},
        "application_clocks_mhz": {"sm": 1755, "mem": 2619},
    }


def test_mig_slice_is_named_and_the_parent_answers(monkeypatch):
    _install(monkeypatch, _fake_pynvml(mig_handle=True))
    info = nvml.device_info("abc")
    assert info["mig"] == "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    assert info["ecc"] == "on" and info["default_power_limit_w"] == 700


def test_unsupported_queries_are_none_one_by_one(monkeypatch):
    fake = _install(monkeypatch, _fake_pynvml(unsupported=("nvmlDeviceGetEccMode", "nvmlDeviceGetApplicationsClock")))
    info = nvml.device_info("abc")
    assert info["ecc"] is None and info["application_clocks_mhz"] is None
    assert info["max_clocks_mhz"] == {"sm": 1980, "mem": 2619}
    assert fake.calls[-1] == "nvmlShutdown"


def test_found_by_pci_bus_id_when_the_uuid_is_unknown(monkeypatch):
    _install(monkeypatch, _fake_pynvml())
    assert nvml.device_info("zzz", "00000000:17:00.0")["board"] == "692-2G520-0200-000"


@pytest.mark.parametrize("kwargs,expected", [({}, "no device"), ({"init_fails": True}, "NVML unavailable")])
def test_no_answer_says_why(monkeypatch, kwargs, expected):
    _install(monkeypatch, _fake_pynvml(**kwargs))
    info = nvml.device_info(None, None) if not kwargs else nvml.device_info("abc")
    assert expected in info["error"]


def test_without_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert nvml.device_info("abc")["error"].startswith("NVML unavailable: ModuleNotFoundError")


def test_clock_events_are_named_by_bit():
    assert nvml.clock_events(None) is None
    assert nvml.clock_events(0) == []
    assert nvml.clock_events(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert nvml.clock_events(0x1 | 0x10000) == ["gpu_idle", "0x10000"]


def test_the_clock_reader_asks_the_sm_clock_and_the_clock_events_until_closed(monkeypatch):
    fake = _fake_pynvml()
    fake.nvmlDeviceGetClockInfo = lambda handle, kind: {1: 1410, 2: 2619}[kind]
    fake.nvmlDeviceGetCurrentClocksEventReasons = lambda handle: 0x4
    _install(monkeypatch, fake)
    reader = nvml.ClockReader("abc")
    assert reader() == {"sm_clock_mhz": 1410, "clock_events": ["sw_power_cap"]}
    reader.close()
    assert reader() is None and fake.calls[-1] == "nvmlShutdown"


def test_a_clock_reader_without_nvml_answers_none(monkeypatch):
    _install(monkeypatch, _fake_pynvml(init_fails=True))
    assert nvml.ClockReader("abc")() is None
