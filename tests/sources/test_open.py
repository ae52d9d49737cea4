"""open_source(): schemes, paths, the registry and its errors."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from rfhunt.errors import SdrUnavailableError, SourceError
from sensors.sources import open as open_mod
from sensors.sources.base import IQBlock, IQSource
from sensors.sources.open import SOURCE_SCHEMES, open_source, register_scheme
from sensors.sources.recording import RecordingSource, write_sigmf
from sensors.sources.rtltcp import RtlTcpServer, RtlTcpSource


def test_file_paths_by_extension_and_file_scheme(tmp_path):
    meta, _ = write_sigmf(tmp_path / "a", np.zeros(10, np.complex64), sample_rate_hz=1e6,
                          center_freq_hz=1e8)
    for spec in (str(meta), str(tmp_path / "a.sigmf-data"), f"file:{meta}", str(tmp_path / "a")):
        with open_source(spec) as src:
            assert isinstance(src, RecordingSource) and src.total_samples == 10
    (tmp_path / "b.cfile").write_bytes(np.zeros(4, np.complex64).tobytes())
    with open_source(str(tmp_path / "b.cfile"), sample_rate_hz=1e6, center_freq_hz=9e8) as src:
        assert src.datatype == "cf32_le"
    with pytest.raises(SourceError, match="bad options for RecordingSource"):
        open_source(str(meta), gain=3)


def test_rtltcp_specs():
    class Gen(IQSource):
        def tune(self, f, r=None, g=None):
            self.center_freq_hz, self.sample_rate_hz = f, r or self.sample_rate_hz

        def read(self, n):
            return IQBlock(np.full(2 * n, 9, np.uint8), 0, 0, 0, 0, native="cu8")

    with RtlTcpServer(Gen()) as srv:
        port = srv.address[1]
        with open_source(f"rtltcp:127.0.0.1:{port}", settle_s=0.01) as src:
            assert isinstance(src, RtlTcpSource) and src.port == port
            src.tune(100e6, 1e6)
            assert np.all(src.read(10).samples == 9)
    for bad, msg in [("rtltcp:", "no host"), ("rtltcp:host:http", "not a TCP port"),
                     ("rtltcp:host:70000", "not a TCP port"), ("rtltcp:::1:5", "brackets"),
                     ("rtltcp:[::1", r"\[IPV6\]")]:
        with pytest.raises(SourceError, match=msg):
            open_source(bad)


def test_rtltcp_ipv6_spec_is_parsed(monkeypatch):
    seen = {}

    class Fake:
        def __init__(self, host, port, **kw):
            seen.update(host=host, port=port, **kw)

    monkeypatch.setattr("sensors.sources.rtltcp.RtlTcpSource", Fake)
    open_source("rtltcp:[::1]:7373", timeout_s=1.0)
    assert seen == {"host": "::1", "port": 7373, "timeout_s": 1.0}
    open_source("rtltcp:sdr.local")
    assert seen["host"] == "sdr.local" and seen["port"] == 1234


def test_rtlsdr_specs(monkeypatch):
    made = []

    class Fake:
        def __init__(self, device_index=0, *, serial=None, ppm=0, gain_db="auto",
                     bias_tee=False, check_realtime=True, settle_s=0.02):
            made.append((device_index, serial, ppm))

    monkeypatch.setattr("sensors.sources.rtlsdr_usb.RtlSdrSource", Fake)
    open_source("rtlsdr:1", ppm=3)
    open_source("rtlsdr:serial=00000001")
    open_source("rtlsdr")
    assert made == [(1, None, 3), (0, "00000001", 0), (0, None, 0)]
    with pytest.raises(SourceError, match="rtlsdr:INDEX"):
        open_source("rtlsdr:first")
    with pytest.raises(SourceError, match="bad options"):
        open_source("rtlsdr:0", colour="red")


def test_rtlsdr_without_driver_is_sdr_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtlsdr", None)
    with pytest.raises(SdrUnavailableError, match=r"rfhunt\[sdr\]"):
        open_source("rtlsdr:0")


def test_unknown_scheme_lists_the_known_ones(monkeypatch):
    monkeypatch.delitem(SOURCE_SCHEMES, "sim", raising=False)
    with pytest.raises(SourceError, match=r"unknown source 'sim'.*file, rtlsdr, rtltcp.*"
                                          r"sensors\.sim"):
        open_source("sim")
    with pytest.raises(SourceError, match=r"unknown source 'soapy:driver=x'"):
        open_source("soapy:driver=x")
    with pytest.raises(SourceError):
        open_source("")


def test_register_a_scheme(monkeypatch):
    monkeypatch.setattr(open_mod, "SOURCE_SCHEMES", dict(SOURCE_SCHEMES))
    got = {}

    def factory(rest, **options):
        got.update(rest=rest, **options)
        return types.SimpleNamespace(kind="sim")

    register_scheme("sim", factory)
    assert open_mod.open_source("sim:city.toml", seed=3).kind == "sim"
    assert got == {"rest": "city.toml", "seed": 3}
    assert open_mod.open_source("sim").kind == "sim" and got["rest"] == ""
