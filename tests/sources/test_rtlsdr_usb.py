"""RtlSdrSource: driver-loading failures, a fake pyrtlsdr, and a real dongle when asked for."""

from __future__ import annotations

import builtins
import os
import sys
import types

import numpy as np
import pytest

from rfhunt.errors import SdrUnavailableError, SourceError
from sensors.sources.rtlsdr_usb import RtlSdrSource


def _failing_import(exc: Exception):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "rtlsdr" or name.startswith("rtlsdr."):
            raise exc
        return real(name, *args, **kwargs)

    return fake


@pytest.mark.parametrize("exc", [
    AttributeError("/usr/lib/x86_64-linux-gnu/librtlsdr.so.0: undefined symbol: "
                   "rtlsdr_set_dithering"),
    ImportError("No module named 'rtlsdr'"),
    OSError("librtlsdr.so.0: cannot open shared object file"),
])
def test_any_import_failure_becomes_sdr_unavailable_with_the_hint(monkeypatch, exc):
    monkeypatch.setattr(builtins, "__import__", _failing_import(exc))
    with pytest.raises(SdrUnavailableError) as info:
        RtlSdrSource(0)
    msg = str(info.value)
    assert "pip install 'rfhunt[sdr]'" in msg
    assert type(exc).__name__ in msg and str(exc) in msg


def test_module_missing_from_sys_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtlsdr", None)         # import raises ImportError
    with pytest.raises(SdrUnavailableError, match=r"rfhunt\[sdr\]"):
        RtlSdrSource()


class FakeRtlSdr:
    """Stands in for pyrtlsdr's RtlSdr: records settings, serves a byte counter."""

    instances: list["FakeRtlSdr"] = []
    present = {0: "00000001"}

    def __init__(self, device_index=0, serial_number=None):
        if serial_number is not None:
            index = [i for i, s in self.present.items() if s == serial_number]
            if not index:
                raise OSError(f"Device with serial {serial_number} not found")
            device_index = index[0]
        if device_index not in self.present:
            raise OSError("Error code -1: Could not open SDR (device index = %d)" % device_index)
        self.device_index = device_index
        self.calls: list[tuple[str, object]] = []
        self.reads: list[int] = []
        self.counter = 0
        self.closed = False
        self._gain: object = 0.0
        FakeRtlSdr.instances.append(self)

    def __setattr__(self, name, value):
        if name in ("sample_rate", "center_freq", "freq_correction"):
            self.calls.append((name, value))
        object.__setattr__(self, name, value)

    @property
    def gain(self):
        return self._gain

    @gain.setter
    def gain(self, value):
        self.calls.append(("gain", value))
        # snap like librtlsdr does on an R820T
        self._gain = value if value == "auto" else min((0.0, 19.7, 29.7, 49.6),
                                                       key=lambda g: abs(g - value))

    def set_bias_tee(self, on):
        self.calls.append(("bias_tee", on))

    def read_bytes(self, n):
        if n % 512:
            raise OSError("LIBUSB_ERROR_OVERFLOW")
        self.reads.append(n)
        out = (self.counter + np.arange(n)) % 256
        self.counter += n
        import ctypes

        buf = (ctypes.c_ubyte * n)()
        ctypes.memmove(buf, out.astype(np.uint8).tobytes(), n)
        return buf

    def close(self):
        self.closed = True


@pytest.fixture
def fake_rtlsdr(monkeypatch):
    mod = types.ModuleType("rtlsdr")
    mod.RtlSdr = FakeRtlSdr
    FakeRtlSdr.instances = []
    monkeypatch.setitem(sys.modules, "rtlsdr", mod)
    return FakeRtlSdr


def test_fake_driver_tuning_and_cu8_delivery(fake_rtlsdr):
    with RtlSdrSource(0, ppm=12, gain_db=20.0, bias_tee=True, settle_s=0.001) as src:
        sdr = fake_rtlsdr.instances[0]
        assert ("freq_correction", 12) in sdr.calls and ("bias_tee", True) in sdr.calls
        src.tune(935.2e6, 2.4e6)
        assert ("sample_rate", 2.4e6) in sdr.calls and ("center_freq", 935.2e6) in sdr.calls
        assert ("gain", 20.0) in sdr.calls and src.gain_db == 19.7
        settled = sdr.counter
        b = src.read(1000)
        assert b.native == "cu8" and b.samples.dtype == np.uint8 and b.n_samples == 1000
        assert b.center_freq_hz == 935.2e6 and b.sample_rate_hz == 2.4e6 and b.gain_db == 19.7
        start = 2 * int(0.001 * 2.4e6)                      # settle bytes thrown away
        assert np.array_equal(b.samples, (start + np.arange(2000)) % 256)
        b2 = src.read(333)                                  # continues seamlessly
        assert np.array_equal(b2.samples, (start + 2000 + np.arange(666)) % 256)
        assert all(n % 512 == 0 for n in sdr.reads) and settled >= start
        b.samples[0] = 1                                    # blocks own their memory
        src.tune(100e6, gain_db="auto")
        assert np.isnan(src.gain_db) and sdr.calls[-1] == ("gain", "auto")
        with pytest.raises(SourceError, match="gain_db"):
            src.tune(100e6, gain_db="max")
    assert sdr.closed


def test_fake_driver_ppm_zero_is_not_sent(fake_rtlsdr):
    # librtlsdr answers "unchanged" (-2) to setting the ppm it already has, pyrtlsdr raises.
    with RtlSdrSource(0):
        assert not any(c[0] == "freq_correction" for c in fake_rtlsdr.instances[0].calls)


def test_fake_driver_missing_dongle_names_the_device(fake_rtlsdr):
    with pytest.raises(SdrUnavailableError, match="RTL-SDR device 3: no dongle"):
        RtlSdrSource(3)
    with pytest.raises(SdrUnavailableError, match="RTL-SDR serial 99: no dongle"):
        RtlSdrSource(serial="99")
    with RtlSdrSource(serial="00000001") as src:
        assert src.serial == "00000001"


def test_fake_driver_read_errors_and_read_before_tune(fake_rtlsdr):
    src = RtlSdrSource(0, settle_s=0)
    with pytest.raises(SourceError, match="before tune"):
        src.read(10)
    src.tune(100e6, 1e6)

    def broken(n):
        raise OSError("LIBUSB_ERROR_NO_DEVICE")

    src._sdr.read_bytes = broken
    with pytest.raises(SourceError, match="RTL-SDR device 0: read failed.*NO_DEVICE"):
        src.read(10)
    src.close()
    src.close()


@pytest.mark.hardware
@pytest.mark.skipif(os.environ.get("RFHUNT_HARDWARE") != "1",
                    reason="needs an RTL-SDR dongle on USB: set RFHUNT_HARDWARE=1")
def test_real_dongle_reads_cu8():
    with RtlSdrSource(0, gain_db=20.0) as src:
        src.tune(100e6, 2.4e6)
        blocks = [src.read(240_000) for _ in range(10)]
        assert all(b.native == "cu8" and b.n_samples == 240_000 for b in blocks)
        x = blocks[-1].as_complex64()
        assert 0 < np.mean(np.abs(x)) < 1
        assert src.status.samples_read == 2_400_000


# ------------------------------------------------------------------- review regressions


@pytest.mark.parametrize("ppm, sent", [(1.6, 2), (-2.5, -2), (3.5, 4), (0.4, None), (-7, -7)])
def test_fake_driver_ppm_is_rounded_not_truncated(fake_rtlsdr, ppm, sent):
    with RtlSdrSource(0, ppm=ppm) as src:
        calls = [v for k, v in fake_rtlsdr.instances[0].calls if k == "freq_correction"]
        assert calls == ([] if sent is None else [sent])
        assert src.ppm == (sent or 0) and isinstance(src.ppm, int)


@pytest.mark.parametrize("ppm", [float("nan"), float("-inf"), "ten"])
def test_fake_driver_non_finite_ppm_is_refused_before_opening(fake_rtlsdr, ppm):
    with pytest.raises(SourceError, match=rf"RTL-SDR device 0: ppm .*{ppm}"):
        RtlSdrSource(0, ppm=ppm)
    assert fake_rtlsdr.instances == []


class PacketRtlSdr(FakeRtlSdr):
    """Hands out views of one preallocated driver buffer, so only rfhunt's copies allocate."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        import ctypes

        self._buf = (ctypes.c_ubyte * (1 << 22))()
        np.frombuffer(self._buf, np.uint8)[:] = np.arange(1 << 22) % 256

    def read_bytes(self, n):
        if n % 512:
            raise OSError("LIBUSB_ERROR_OVERFLOW")
        n = min(n, 1 << 16)                      # the driver returns at most 64 KiB per call
        start = self.counter % 256
        self.counter += n
        return memoryview(self._buf)[start:start + n]


def test_usb_read_copies_each_block_once(monkeypatch):
    import tracemalloc

    mod = types.ModuleType("rtlsdr")
    mod.RtlSdr = PacketRtlSdr
    monkeypatch.setitem(sys.modules, "rtlsdr", mod)
    n = 500_000                                  # 1 MB of cu8, not a multiple of 512
    with RtlSdrSource(0, settle_s=0, check_realtime=False) as src:
        src.tune(100e6, 2.4e6)
        src.read(333)                            # leave part of a packet over
        tracemalloc.start()
        try:
            b = src.read(n)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert np.array_equal(b.samples, (666 + np.arange(2 * n)) % 256)
        assert b.samples.flags.owndata and b.samples.flags.writeable
        assert peak < 2 * n + 64_000, f"{peak} bytes allocated to read {2 * n}"
