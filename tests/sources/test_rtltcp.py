"""rtl_tcp client and server over real sockets on 127.0.0.1, and the drop detector."""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from rfhunt.errors import ProtocolError, SourceError
from sensors.sources.base import IQBlock, IQSource
from sensors.sources.ratecheck import RateMonitor
from sensors.sources.rtltcp import (
    CMD_SET_FREQ,
    CMD_SET_SAMPLE_RATE,
    E4000_GAINS_TENTH_DB,
    R820T_GAINS_TENTH_DB,
    RtlTcpServer,
    RtlTcpSource,
    default_settle_s,
    snap_gain_tenth_db,
)


class CounterGen(IQSource):
    """Deterministic cu8 generator: sample k is (I, Q) = (k mod 256, tag of the tuning).

    The tag is the centre frequency in whole MHz mod 256, so a test can tell which tuning
    any received sample was made at; ``k`` runs on across retunes.
    """

    realtime = False

    def __init__(self) -> None:
        super().__init__()
        self.k = 0
        self.tunes: list[tuple[float, float, float]] = []
        self.lock = threading.Lock()

    def tune(self, center_freq_hz, sample_rate_hz=None, gain_db=None):
        with self.lock:
            self.center_freq_hz = center_freq_hz
            self.sample_rate_hz = sample_rate_hz or self.sample_rate_hz
            self.gain_db = self.gain_db if gain_db is None else gain_db
            self.tunes.append((center_freq_hz, self.sample_rate_hz, self.gain_db))

    def read(self, n):
        tag = int(round(self.center_freq_hz / 1e6)) % 256
        out = np.empty(2 * n, np.uint8)
        out[0::2] = (self.k + np.arange(n)) % 256
        out[1::2] = tag
        self.k += n
        return IQBlock(out, self.center_freq_hz, self.sample_rate_hz, self.gain_db, 0.0,
                       native="cu8")


def wait_for(pred, timeout=2.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def assert_counter(block: IQBlock, tag: int) -> None:
    i = block.samples[0::2].astype(np.int64)
    assert np.all(np.diff(i) % 256 == 1), "samples are not a gapless copy of the generator"
    assert np.all(block.samples[1::2] == tag)


# ------------------------------------------------------------------------------ the monitor


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_monitor_steady_stream_with_jitter_reports_nothing():
    clk, rng, rate = FakeClock(), np.random.default_rng(1), 250_000
    mon = RateMonitor(rate, clock=clk, wall_clock=lambda: 0.0)
    for _ in range(500):                       # 5 s of 10 ms blocks arriving up to 8 ms late
        clk.t += 0.01
        assert mon.update(2500, t=clk.t + rng.uniform(0, 0.008)) == 0


def test_monitor_finds_a_drop_and_a_slow_reader_is_not_one():
    clk, rate = FakeClock(), 1_000_000
    mon = RateMonitor(rate, window_s=0.5, clock=clk)
    t = clk.t
    lost = []
    for step in range(300):
        t += 0.01
        if step == 150:                        # a 40 ms hole in the stream
            t += 0.04
        if 60 <= step < 80:                    # reader stalls, then catches up: late, not lost
            lost.append(mon.update(10_000, t=t + (80 - step) * 0.01))
            continue
        lost.append(mon.update(10_000, t=t))
    reports = [n for n in lost if n]
    assert len(reports) == 1
    assert abs(reports[0] - 40_000) < 1000


def test_monitor_keeps_no_drop_totals_of_its_own():
    """The source's SourceStatus (IQSource._account) is the one drop counter."""
    mon = RateMonitor(1e6, clock=FakeClock())
    assert not hasattr(mon, "dropped_samples") and not hasattr(mon, "drop_events")


def test_monitor_tolerates_a_slow_crystal():
    clk, rate = FakeClock(), 2_400_000
    mon = RateMonitor(rate, clock=clk)
    for _ in range(6000):                      # 60 s at 100 ppm slow
        clk.t += 0.01
        assert mon.update(24_000 * (1 - 100e-6)) == 0


def test_monitor_rejects_bad_figures():
    with pytest.raises(SourceError):
        RateMonitor(0)
    with pytest.raises(SourceError):
        RateMonitor(1e6, window_s=0)


# -------------------------------------------------------------------------- client/server


@pytest.fixture
def gen():
    return CounterGen()


def test_header_and_tuning_commands_reach_the_generator(gen):
    with RtlTcpServer(gen) as srv, RtlTcpSource(*srv.address, settle_s=0.02) as src:
        assert src.tuner_type == 5 and src.tuner_name == "R820T"
        assert src.gain_count == len(R820T_GAINS_TENTH_DB)
        src.tune(433.92e6, 1.024e6, 20.0)
        assert src.gain_db == 19.7                       # snapped to the R820T table
        assert wait_for(lambda: gen.tunes[-1] == (433.92e6, 1.024e6, 19.7))
        src.set_bias_tee(True)
        src.set_agc(True)
        src.set_direct_sampling(2)
        src.set_ppm(-10)
        src.tune(100e6)
        assert wait_for(lambda: abs(gen.tunes[-1][0] - 100e6 / (1 - 10e-6)) < 1)
        assert srv.settings["bias_tee"] == 1 and srv.settings["agc"] == 1
        assert srv.settings["direct_sampling"] == 2 and srv.ppm == -10
        src.tune(100e6, gain_db="auto")
        assert np.isnan(src.gain_db) and srv.manual_gain is False
        block = src.read(1000)
        assert block.native == "cu8" and block.samples.dtype == np.uint8
        assert block.n_samples == 1000 and block.center_freq_hz == 100e6
        assert block.sample_rate_hz == 1.024e6


def test_samples_round_trip_bit_exactly(gen):
    with RtlTcpServer(gen, paced=False) as srv, \
            RtlTcpSource(*srv.address, settle_s=0.02, check_realtime=False) as src:
        src.tune(42e6, 2.4e6, 0.0)
        blocks = [src.read(n) for n in (1, 777, 65536, 100_000, 3)]
        whole = np.concatenate([b.samples for b in blocks])
        k0 = int(whole[0])
        n = whole.size // 2
        expect = np.empty(2 * n, np.uint8)
        expect[0::2] = (k0 + np.arange(n)) % 256
        expect[1::2] = 42
        assert np.array_equal(whole, expect)
        assert src.status.samples_read == n


def test_complex_generator_is_converted_to_cu8():
    class ToneGen(CounterGen):
        def read(self, n):
            x = np.full(n, 0.5 - 0.25j, np.complex64)
            return IQBlock(x, self.center_freq_hz, self.sample_rate_hz, 0.0, 0.0)

    with RtlTcpServer(ToneGen()) as srv, RtlTcpSource(*srv.address, settle_s=0.02) as src:
        src.tune(100e6, 1.2e6)
        b = src.read(500)
        assert np.all(b.samples[0::2] == 191) and np.all(b.samples[1::2] == 96)
        assert np.allclose(b.as_complex64(), 0.5 - 0.25j, atol=1 / 127.5)


def test_retune_discards_samples_in_flight(gen):
    with RtlTcpServer(gen) as srv, RtlTcpSource(*srv.address, settle_s=0.05) as src:
        src.tune(100e6, 1.024e6)
        src.read(50_000)
        time.sleep(0.2)                          # let old-tuning samples pile up in buffers
        src.tune(101e6)
        assert_counter(src.read(20_000), tag=101)
        src.tune(102e6, 250_000)
        assert_counter(src.read(5_000), tag=102)
    assert default_settle_s(2.4e6) == pytest.approx(0.109, abs=1e-3)
    assert default_settle_s(250e3) == pytest.approx(1.049, abs=1e-3)


def test_drop_detection_reports_the_shortfall(gen):
    """One 100 ms hole in a paced 250 kS/s stream is reported once, at about its size.

    The bounds hold on a loaded machine: load only delays samples, which can enlarge a
    report (so the upper side has more slack) but never stamps a block later than it arrived.
    """
    rate, drop, n = 250_000, 25_000, 12_500
    with RtlTcpServer(gen, drop_every_s=1.0, drop_samples=drop) as srv, \
            RtlTcpSource(*srv.address, settle_s=0.05, drop_window_s=0.5) as src:
        src.tune(100e6, rate)
        blocks, arrived = [], []
        for _ in range(int(1.75 * rate / n)):
            blocks.append(src.read(n))
            arrived.append(time.time())
    assert srv.samples_dropped >= drop
    # exactly one hole in what was received (the next is due at 2 s of stream), of `drop`
    steps = np.diff(np.concatenate([b.samples[0::2] for b in blocks]).astype(np.int64)) % 256
    assert list(steps[steps != 1]) == [(drop + 1) % 256]
    # Reported once; under load samples late just before the hole can make the monitor
    # report it in two steps, but the total stays the hole's size.
    reports = [b.dropped_samples for b in blocks if b.dropped_samples]
    assert 1 <= len(reports) <= 2, reports
    assert 0.8 * drop <= sum(reports) <= 1.6 * drop, reports
    assert src.status.dropped_samples == sum(reports)
    assert src.status.drop_events == len(reports)
    # t_utc follows the wall clock: no block ends after it arrived, none lags by a second
    for b, t in zip(blocks, arrived):
        end = b.t_utc + b.n_samples / rate
        assert end <= t + 0.005 and t - end < 1.0, (end, t)
    # ... and each report moves it on by the samples found lost
    for j in (k for k, b in enumerate(blocks) if b.dropped_samples):
        step = blocks[j].t_utc - blocks[j - 1].t_utc
        assert step == pytest.approx((n + blocks[j].dropped_samples) / rate, abs=1e-3)


def test_clean_paced_stream_reports_no_drops(gen):
    with RtlTcpServer(gen) as srv, RtlTcpSource(*srv.address, settle_s=0.02,
                                                drop_window_s=0.3) as src:
        src.tune(100e6, 1.024e6)
        for _ in range(20):
            b = src.read(51_200)
            assert b.dropped_samples == 0
        assert src.status.dropped_samples == 0


def _one_shot_server(payload: bytes, *, close: bool = True):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def run():
        conn, _ = lsock.accept()
        conn.sendall(payload)
        if close:
            conn.close()
        else:
            time.sleep(1.5)
            conn.close()
        lsock.close()

    threading.Thread(target=run, daemon=True).start()
    return lsock.getsockname()


def test_garbage_server_gives_protocol_error_naming_host_and_bytes():
    host, port = _one_shot_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(ProtocolError, match=rf"127\.0\.0\.1:{port}.*HTTP/1\.1 400"):
        RtlTcpSource(host, port)


def test_short_header_and_closed_peer_and_timeout():
    host, port = _one_shot_server(b"RTL0\x00\x00")
    with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{port}.*closed"):
        RtlTcpSource(host, port)
    header = struct.pack(">4sII", b"RTL0", 5, 29)
    host, port = _one_shot_server(header, close=False)
    src = RtlTcpSource(host, port, timeout_s=0.2, settle_s=0.01)
    src.tune(100e6, 1e6)
    with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{port}: no data for 0\.2 s"):
        src.read(10)
    src.close()
    src.close()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{dead_port}: cannot connect"):
        RtlTcpSource("127.0.0.1", dead_port, timeout_s=0.5)


def test_peer_closing_mid_stream_names_the_server(gen):
    srv = RtlTcpServer(gen).start()
    src = RtlTcpSource(*srv.address, settle_s=0.01, timeout_s=2.0)
    src.tune(100e6, 1e6)
    src.read(100)
    srv.stop()
    with pytest.raises(SourceError, match=rf"rtl_tcp 127\.0\.0\.1:{src.port}: .*closed"):
        for _ in range(100):
            src.read(100_000)
    src.close()


def test_read_before_tune_and_bad_tuning_are_refused(gen):
    with RtlTcpServer(gen) as srv, RtlTcpSource(*srv.address) as src:
        with pytest.raises(SourceError, match="before tune"):
            src.read(10)
        with pytest.raises(SourceError, match="not a rate"):
            src.tune(100e6, 5e6)
        with pytest.raises(SourceError, match="gain_db"):
            src.tune(100e6, 1e6, "loud")


def test_server_survives_garbage_and_serves_the_next_client(gen):
    rng = random.Random(7)
    with RtlTcpServer(gen) as srv:
        for _ in range(3):
            s = socket.create_connection(srv.address, timeout=2)
            assert s.recv(12)[:4] == b"RTL0"
            s.sendall(bytes(rng.randrange(256) for _ in range(4003)))
            s.close()
        s = socket.create_connection(srv.address, timeout=2)     # connect and vanish
        s.close()
        with RtlTcpSource(*srv.address, settle_s=0.02) as src:
            src.tune(77e6, 1e6)
            assert_counter(src.read(10_000), tag=77)
        assert wait_for(lambda: srv.clients_served == 5)


def test_server_serves_a_recording_generator(tmp_path):
    from sensors.sources.recording import RecordingSource, write_sigmf

    x = (np.arange(300_000) % 200).astype(np.uint8)
    meta, _ = write_sigmf(tmp_path / "rec", x, sample_rate_hz=1e6, center_freq_hz=98e6)
    rec = RecordingSource(meta, loop=True)
    with RtlTcpServer(rec, paced=False) as srv, \
            RtlTcpSource(*srv.address, settle_s=0.02, check_realtime=False) as src:
        src.tune(98e6, 1e6)
        b = src.read(1000)
        start = np.flatnonzero(x == b.samples[0])
        assert any(np.array_equal(np.resize(np.roll(x, -s), 2000), b.samples) for s in start)
        src.tune(99e6)          # the recording refuses, the server logs and carries on
        assert src.read(1000).n_samples == 1000


def test_serve_forever_runs_until_stopped(gen, monkeypatch):
    from sensors.sources import rtltcp

    srv_holder = {}

    class Capture(rtltcp.RtlTcpServer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            srv_holder["srv"] = self

    monkeypatch.setattr(rtltcp, "RtlTcpServer", Capture)
    t = threading.Thread(target=rtltcp.serve_forever, args=(gen, "127.0.0.1", 0))
    t.start()
    try:
        assert wait_for(lambda: "srv" in srv_holder)
        with RtlTcpSource(*srv_holder["srv"].address, settle_s=0.01) as src:
            src.tune(90e6, 1e6)
            assert_counter(src.read(1000), tag=90)
    finally:
        if "srv" in srv_holder:
            srv_holder["srv"].stop()
        t.join(2)
    assert not t.is_alive()


# ------------------------------------------------------------------------------- external

GR_CLIENT = textwrap.dedent("""
    import sys
    from gnuradio import gr, blocks
    import osmosdr
    port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    tb = gr.top_block()
    src = osmosdr.source(args="numchan=1 rtl_tcp=127.0.0.1:%d" % port)
    src.set_sample_rate(1.024e6)
    src.set_center_freq(123e6)
    src.set_gain_mode(False)
    src.set_gain(20)
    head = blocks.head(gr.sizeof_gr_complex, n)
    sink = blocks.file_sink(gr.sizeof_gr_complex, out)
    tb.connect(src, head, sink)
    tb.run()
""")


def _gr_osmosdr_python() -> str | None:
    py = "/usr/bin/python3"
    if not os.path.exists(py):
        return None
    r = subprocess.run([py, "-c", "import osmosdr; from gnuradio import gr, blocks"],
                       capture_output=True, timeout=60)
    return py if r.returncode == 0 else None


@pytest.mark.external
def test_independent_client_gr_osmosdr_reads_our_server(gen, tmp_path):
    """Debian's rtl-sdr tools (rtl_sdr, rtl_fm, rtl_power, rtl_tcp...) are not rtl_tcp
    clients; gr-osmosdr's ``rtl_tcp=`` source is, so it stands in as the independent client."""
    py = _gr_osmosdr_python() if sys.platform.startswith("linux") else None
    if py is None:
        pytest.skip("needs Debian's gr-osmosdr and gnuradio (apt-get install gr-osmosdr "
                    "gnuradio); rtl-sdr's own tools cannot act as rtl_tcp clients")
    script = tmp_path / "client.py"
    script.write_text(GR_CLIENT)
    out = tmp_path / "out.cf32"
    with RtlTcpServer(gen) as srv:
        r = subprocess.run([py, str(script), str(srv.address[1]), "200000", str(out)],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        assert any(abs(f - 123e6) < 1 and rate == 1.024e6 for f, rate, _ in gen.tunes)
        assert any(g == 19.7 for _, _, g in gen.tunes)
    x = np.fromfile(out, np.complex64)
    assert x.size == 200_000
    # gr-osmosdr maps u8 -> (u - 127.4) / 128; invert and find the counter after the retune
    u = np.rint(x.view(np.float32) * 128 + 127.4).astype(np.int64)
    i, q = u[0::2], u[1::2]
    tail = slice(x.size // 2, None)                 # long after the tuning commands
    assert np.all(q[tail] == 123)
    assert np.all(np.diff(i[tail]) % 256 == 1)


# ------------------------------------------------------------------- review regressions


def test_ppm_is_rounded_to_whole_ppm_and_sent(gen):
    with RtlTcpServer(gen) as srv:
        for ppm, whole in ((1.5, 2), (-2.6, -3), (0.4, 0), (7, 7)):
            with RtlTcpSource(*srv.address, settle_s=0.01, ppm=ppm) as src:
                assert src.ppm == whole
                src.tune(100e6, 1e6)
                assert wait_for(lambda w=whole: srv.ppm == w)
                src.set_ppm(-0.6)
                assert src.ppm == -1
                src.tune(100e6)
                assert wait_for(lambda: srv.ppm == -1)
                srv.ppm = 0


@pytest.mark.parametrize("ppm", [float("nan"), float("inf"), "ten"])
def test_non_finite_ppm_is_refused_naming_the_server(gen, ppm):
    with RtlTcpServer(gen) as srv:
        with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{srv.address[1]}: ppm .*{ppm}"):
            RtlTcpSource(*srv.address, ppm=ppm)
        with RtlTcpSource(*srv.address) as src, pytest.raises(SourceError, match=f"ppm .*{ppm}"):
            src.set_ppm(ppm)


def test_a_failure_after_connecting_closes_the_socket(gen, monkeypatch):
    from sensors.sources import rtltcp

    opened = []
    real_connect = socket.create_connection

    def connect(*a, **k):
        opened.append(real_connect(*a, **k))
        return opened[-1]

    def broken_set_ppm(self, ppm):
        raise RuntimeError("set_ppm broke")

    monkeypatch.setattr(rtltcp.socket, "create_connection", connect)
    monkeypatch.setattr(RtlTcpSource, "set_ppm", broken_set_ppm)
    with RtlTcpServer(gen) as srv, pytest.raises(RuntimeError, match="set_ppm broke"):
        RtlTcpSource(*srv.address, ppm=3)
    assert len(opened) == 1 and opened[0].fileno() == -1, "socket left open"


def test_server_survives_a_generator_bug_and_logs_the_client(gen, caplog):
    class BuggyGen(CounterGen):
        broken = True

        def read(self, n):
            if self.broken:
                self.broken = False
                raise ZeroDivisionError("generator bug")
            return super().read(n)

    buggy = BuggyGen()
    with RtlTcpServer(buggy) as srv:
        first = socket.create_connection(srv.address, timeout=2)
        peer = first.getsockname()
        assert first.recv(12)[:4] == b"RTL0"
        assert wait_for(lambda: not buggy.broken)
        assert wait_for(lambda: any("generator bug" in (r.exc_text or "") for r in caplog.records))
        first.close()
        bug = [r for r in caplog.records if r.exc_info and r.levelname == "ERROR"]
        assert len(bug) == 1 and str(peer) in bug[0].getMessage()
        with RtlTcpSource(*srv.address, settle_s=0.02) as src:   # still listening
            src.tune(77e6, 1e6)
            assert_counter(src.read(10_000), tag=77)
        assert srv._thread is not None and srv._thread.is_alive()


class CommandLog(RtlTcpServer):
    """A server that keeps every command it received."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.commands: list[tuple[int, int]] = []

    def _apply(self, cmd, param, peer):
        self.commands.append((cmd, param))
        return super()._apply(cmd, param, peer)


def test_tune_sends_the_sample_rate_only_when_it_changes(gen):
    hops = (935.2e6, 936.0e6, 937.4e6, 938.6e6)
    with CommandLog(gen) as srv, RtlTcpSource(*srv.address, settle_s=0.02) as src:
        for f in hops:
            src.tune(f, 2.4e6)
            assert_counter(src.read(2000), tag=round(f / 1e6) % 256)   # still settles
        src.tune(100e6, 1.2e6)
        src.tune(101e6)
        assert wait_for(lambda: sum(c == CMD_SET_FREQ for c, _ in srv.commands) == 6)
        rates = [p for c, p in srv.commands if c == CMD_SET_SAMPLE_RATE]
        assert rates == [2_400_000, 1_200_000]


@pytest.mark.parametrize("table", [R820T_GAINS_TENTH_DB, E4000_GAINS_TENTH_DB])
def test_client_and_server_snap_gains_alike(gen, table):
    assert snap_gain_tenth_db(200, R820T_GAINS_TENTH_DB) == 197
    assert snap_gain_tenth_db(-20, E4000_GAINS_TENTH_DB) == -10
    assert snap_gain_tenth_db(123, ()) == 123 and snap_gain_tenth_db(123, None) == 123
    tuner = 5 if table is R820T_GAINS_TENTH_DB else 1
    with RtlTcpServer(gen, tuner_type=tuner, gains_tenth_db=table) as srv, \
            RtlTcpSource(*srv.address, settle_s=0.01) as src:
        for gain_db in (-3.0, 0.0, 1.1, 20.0, 33.3, 60.0):
            src.tune(100e6, 1e6, gain_db)
            assert wait_for(lambda: srv.gain_db == src.gain_db), (gain_db, srv.gain_db)
