"""The rtl_tcp wire protocol: a client (:class:`RtlTcpSource`) and a server (:class:`RtlTcpServer`).

Protocol (as osmocom rtl-sdr's ``rtl_tcp``): on connection the server sends a 12-byte header —
``b"RTL0"``, tuner type (u32 big-endian), number of tuner gains (u32 BE) — and then streams
interleaved unsigned 8-bit I/Q forever. The client sends 5-byte commands: one command byte
and a u32 BE parameter. There are no sequence numbers and no acknowledgements, so

* after a retune the client cannot tell which bytes are already at the new tuning: it
  discards everything that arrives during a *settle* time (default: the longer of 50 ms and
  two 256 KiB rtl_tcp buffers at the new rate — 109 ms at 2.4 MS/s, 1.05 s at 250 kS/s);
* lost samples (the server drops buffers when its queue overflows) are found by comparing
  the samples received with the wall clock (:class:`sensors.sources.ratecheck.RateMonitor`).

The server serves any object with ``tune(center_freq_hz, sample_rate_hz, gain_db)`` and
``read(n) -> IQBlock`` (any IQSource: the simulated world, a recording) to any rtl_tcp client.
"""

from __future__ import annotations

import logging
import math
import select
import socket
import struct
import threading
import time

import numpy as np

from rfhunt.errors import ProtocolError, RfhuntError, SourceError
from sensors.sources.base import IQBlock, IQSource, complex_to_cu8
from sensors.sources.ratecheck import RateMonitor
from sensors.sources.rtlsdr_usb import whole_ppm

log = logging.getLogger(__name__)

MAGIC = b"RTL0"
HEADER = struct.Struct(">4sII")
COMMAND = struct.Struct(">BI")

CMD_SET_FREQ = 0x01
CMD_SET_SAMPLE_RATE = 0x02
CMD_SET_GAIN_MODE = 0x03          # 0 = automatic (tuner AGC), 1 = manual
CMD_SET_GAIN = 0x04               # tenths of a dB
CMD_SET_FREQ_CORRECTION = 0x05    # ppm (signed, two's complement)
CMD_SET_IF_GAIN = 0x06            # stage << 16 | gain (tenths of dB)
CMD_SET_TEST_MODE = 0x07
CMD_SET_AGC_MODE = 0x08           # RTL2832 digital AGC
CMD_SET_DIRECT_SAMPLING = 0x09
CMD_SET_OFFSET_TUNING = 0x0A
CMD_SET_RTL_XTAL = 0x0B
CMD_SET_TUNER_XTAL = 0x0C
CMD_SET_GAIN_BY_INDEX = 0x0D
CMD_SET_BIAS_TEE = 0x0E

TUNER_NAMES = {0: "unknown", 1: "E4000", 2: "FC0012", 3: "FC0013", 4: "FC2580", 5: "R820T",
               6: "R828D"}
R820T_GAINS_TENTH_DB = (0, 9, 14, 27, 37, 77, 87, 125, 144, 157, 166, 197, 207, 229, 254, 280,
                        297, 328, 338, 364, 372, 386, 402, 421, 434, 439, 445, 480, 496)
E4000_GAINS_TENTH_DB = (-10, 15, 40, 65, 90, 115, 140, 165, 190, 215, 240, 290, 340, 420)
TUNER_GAINS_TENTH_DB = {1: E4000_GAINS_TENTH_DB, 5: R820T_GAINS_TENTH_DB,
                        6: R820T_GAINS_TENTH_DB}

#: Size of one rtl_tcp / librtlsdr async buffer (16 × 32 × 512 bytes).
RTL_TCP_BUFFER_BYTES = 262_144


def valid_sample_rate(sample_rate_hz: float) -> bool:
    """Rates the RTL2832U accepts (librtlsdr: 225–300 kHz and 900 kHz–3.2 MHz)."""
    return 225_000 < sample_rate_hz <= 300_000 or 900_000 < sample_rate_hz <= 3_200_000


def snap_gain_tenth_db(tenth_db: int, table: tuple[int, ...] | None) -> int:
    """The tuner gain librtlsdr selects for a request: the nearest entry of ``table``.

    Parameters
    ----------
    tenth_db : int
        Requested gain in tenths of a dB (as command 0x04 carries it).
    table : tuple of int or None
        The tuner's gains in tenths of a dB; empty or None (unknown tuner): no snapping.

    Returns
    -------
    int
        The gain in tenths of a dB; on a tie the entry listed first wins.
    """
    if not table:
        return int(tenth_db)
    return min(table, key=lambda g: abs(g - tenth_db))


def default_settle_s(sample_rate_hz: float) -> float:
    """Time to discard after a retune: max(50 ms, two rtl_tcp buffers at this rate)."""
    return max(0.05, 2 * (RTL_TCP_BUFFER_BYTES // 2) / sample_rate_hz)


# --------------------------------------------------------------------------------- client


class RtlTcpSource(IQSource):
    """An rtl_tcp server (a remote dongle, or :class:`RtlTcpServer`) as an IQ source.

    Blocks are ``IQBlock(native="cu8")``. ``tune()`` must be called before ``read()``: the
    server's start-up tuning is not announced by the protocol. ``gain_db="auto"`` selects the
    tuner AGC; the block's ``gain_db`` is then NaN (unknown). Manual gains are snapped to the
    tuner's gain table when the tuner type is known (R820T/R828D, E4000), as librtlsdr does.

    Parameters
    ----------
    host, port : str, int
        The server.
    timeout_s : float
        Connect timeout, and the longest wait for data before :class:`SourceError`.
    check_realtime : bool
        Detect lost samples by wall-clock accounting (see :mod:`sensors.sources.ratecheck`).
    settle_s : float or None
        Seconds of stream discarded after each retune; None: :func:`default_settle_s`.
    ppm : float
        Frequency correction sent on connection (command 0x05) if non-zero, rounded to
        whole ppm (see :meth:`set_ppm`).
    drop_window_s : float
        Sliding window of the drop detector; drops are reported about this long after.
    """

    def __init__(self, host: str, port: int = 1234, *, timeout_s: float = 5.0,
                 check_realtime: bool = True, settle_s: float | None = None,
                 ppm: float = 0, drop_window_s: float = 2.0) -> None:
        super().__init__()
        self.host = host
        self.port = int(port)
        self._where = f"rtl_tcp {host}:{self.port}"
        ppm_whole = whole_ppm(ppm, self._where)
        self.timeout_s = float(timeout_s)
        self.check_realtime = bool(check_realtime)
        self.settle_s = settle_s
        self.drop_window_s = float(drop_window_s)
        self.ppm = 0
        self._tuned = False
        self._sent_rate_hz: int | None = None   # the last SET_SAMPLE_RATE sent
        self._monitor: RateMonitor | None = None
        try:
            self._sock = socket.create_connection((host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise SourceError(f"{self._where}: cannot connect ({exc})") from None
        try:
            self._handshake(ppm_whole)
        except BaseException:
            self._sock.close()
            raise

    def _handshake(self, ppm: int) -> None:
        """Read the server's header and send the start-up settings (socket open)."""
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = self._recv_exact(HEADER.size, what="header")
        magic, tuner, n_gains = HEADER.unpack(raw)
        if magic != MAGIC or tuner > 255 or n_gains > 1000:
            raise ProtocolError(f"{self._where}: not an rtl_tcp server: header {raw!r} "
                                f"(expected b'RTL0' + tuner type + gain count)")
        self.tuner_type = tuner
        self.tuner_name = TUNER_NAMES.get(tuner, f"type {tuner}")
        self.gain_count = n_gains
        self.status.state = "connected"
        if ppm:
            self.set_ppm(ppm)

    # -- commands ------------------------------------------------------------------------

    def send_command(self, cmd: int, param: int) -> None:
        """Send one raw 5-byte command (param as u32; negative values as two's complement)."""
        try:
            self._sock.sendall(COMMAND.pack(cmd, param & 0xFFFFFFFF))
        except OSError as exc:
            raise SourceError(f"{self._where}: connection lost sending command "
                              f"0x{cmd:02x} ({exc})") from None

    def set_ppm(self, ppm: float) -> None:
        """Frequency correction of the dongle's crystal (takes effect on the next tune).

        Parameters
        ----------
        ppm : float
            Correction in ppm. librtlsdr (and so rtl_tcp) corrects in whole ppm, so the value
            is rounded to the nearest integer (halves to even); :attr:`ppm` holds what was sent.

        Raises
        ------
        SourceError
            If ``ppm`` is not a finite number.
        """
        whole = whole_ppm(ppm, self._where)
        self.send_command(CMD_SET_FREQ_CORRECTION, whole)
        self.ppm = whole

    def set_agc(self, on: bool) -> None:
        """RTL2832U digital AGC (not the tuner gain)."""
        self.send_command(CMD_SET_AGC_MODE, int(bool(on)))

    def set_direct_sampling(self, mode: int) -> None:
        """0 off, 1 I branch, 2 Q branch (HF reception on modified dongles)."""
        if mode not in (0, 1, 2):
            raise SourceError(f"{self._where}: direct sampling mode must be 0, 1 or 2, got {mode}")
        self.send_command(CMD_SET_DIRECT_SAMPLING, mode)

    def set_offset_tuning(self, on: bool) -> None:
        self.send_command(CMD_SET_OFFSET_TUNING, int(bool(on)))

    def set_bias_tee(self, on: bool) -> None:
        self.send_command(CMD_SET_BIAS_TEE, int(bool(on)))

    def tune(self, center_freq_hz: float, sample_rate_hz: float | None = None,
             gain_db: float | str | None = None) -> None:
        """Retune, then discard ``settle_s`` of stream.

        SET_SAMPLE_RATE is sent only when the rate differs from the last one sent (each rate
        command restarts the dongle's stream); the frequency is always sent, and every tune
        settles, since the protocol cannot tell which bytes are at the new tuning.
        """
        rate = self.sample_rate_hz if sample_rate_hz is None else float(sample_rate_hz)
        if not rate > 0:
            raise SourceError(f"{self._where}: no sample rate: pass sample_rate_hz to tune()")
        if not 0 < center_freq_hz < 2**32:
            raise SourceError(f"{self._where}: center_freq_hz={center_freq_hz} is outside "
                              f"what rtl_tcp can carry (1 Hz .. 4.29 GHz)")
        if not valid_sample_rate(rate):
            raise SourceError(f"{self._where}: sample_rate_hz={rate} is not a rate an RTL2832U "
                              f"accepts (225-300 kHz or 900 kHz-3.2 MHz)")
        rate_cmd = int(round(rate))
        if rate_cmd != self._sent_rate_hz:      # each rate command restarts the stream
            self.send_command(CMD_SET_SAMPLE_RATE, rate_cmd)
            self._sent_rate_hz = rate_cmd
        self.send_command(CMD_SET_FREQ, int(round(center_freq_hz)))
        if gain_db is not None:
            if isinstance(gain_db, str):
                if gain_db != "auto":
                    raise SourceError(f"{self._where}: gain_db must be a number or 'auto', "
                                      f"got {gain_db!r}")
                self.send_command(CMD_SET_GAIN_MODE, 0)
                self.gain_db = math.nan
            else:
                tenths = int(round(float(gain_db) * 10))
                self.send_command(CMD_SET_GAIN_MODE, 1)
                self.send_command(CMD_SET_GAIN, tenths)
                table = TUNER_GAINS_TENTH_DB.get(self.tuner_type)
                self.gain_db = snap_gain_tenth_db(tenths, table) / 10.0
        self.center_freq_hz = float(center_freq_hz)
        self.sample_rate_hz = rate
        settle = default_settle_s(rate) if self.settle_s is None else float(self.settle_s)
        self._discard_for(settle)
        self._tuned = True
        if self._monitor is None:
            self._monitor = RateMonitor(rate, window_s=self.drop_window_s)
        else:
            self._monitor.reset(rate)

    # -- reading -------------------------------------------------------------------------

    def _recv_exact(self, n_bytes: int, what: str = "samples") -> bytearray:
        buf = bytearray(n_bytes)
        view = memoryview(buf)
        got = 0
        while got < n_bytes:
            try:
                k = self._sock.recv_into(view[got:], n_bytes - got)
            except socket.timeout:
                raise SourceError(f"{self._where}: no data for {self.timeout_s} s while "
                                  f"reading {what}") from None
            except OSError as exc:
                raise SourceError(f"{self._where}: connection lost reading {what} "
                                  f"({exc})") from None
            if k == 0:
                self.status.state = "disconnected"
                raise SourceError(f"{self._where}: server closed the connection "
                                  f"({got} of {n_bytes} bytes of {what} received)")
            got += k
        return buf

    def _discard_for(self, seconds: float) -> None:
        """Throw away everything arriving in the next ``seconds``, keeping I/Q alignment."""
        deadline = time.monotonic() + seconds
        scratch = bytearray(1 << 16)
        discarded = 0
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._sock.settimeout(min(left, self.timeout_s))
                try:
                    k = self._sock.recv_into(scratch)
                except socket.timeout:
                    continue
                if k == 0:
                    self.status.state = "disconnected"
                    raise SourceError(f"{self._where}: server closed the connection "
                                      f"while settling after a retune")
                discarded += k
        except OSError as exc:
            raise SourceError(f"{self._where}: connection lost while settling ({exc})") from None
        finally:
            self._sock.settimeout(self.timeout_s)
        if discarded % 2:
            self._recv_exact(1, what="alignment byte")

    def read(self, n_samples: int) -> IQBlock:
        if not self._tuned:
            raise SourceError(f"{self._where}: read() before tune(): rtl_tcp does not tell "
                              f"the client the server's tuning")
        if n_samples <= 0:
            raise SourceError(f"{self._where}: n_samples must be > 0, got {n_samples}")
        mon = self._monitor
        assert mon is not None
        first = mon.received_samples
        raw = self._recv_exact(2 * n_samples)
        dropped = 0
        if self.check_realtime:
            dropped = mon.update(n_samples)
        t_utc = mon.sample_time_utc(first)
        self._account(n_samples, dropped)
        return IQBlock(np.frombuffer(raw, dtype=np.uint8), self.center_freq_hz,
                       self.sample_rate_hz, self.gain_db, t_utc, dropped, native="cu8")

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            super().close()


# --------------------------------------------------------------------------------- server


class RtlTcpServer:
    """Serve a generator as an rtl_tcp server (one client at a time, in a background thread).

    Parameters
    ----------
    generator : object
        ``tune(center_freq_hz, sample_rate_hz, gain_db)`` and ``read(n) -> IQBlock``.
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`address`).
    paced : bool
        Stream at the sample rate, like a dongle; otherwise as fast as the socket takes it.
        A paced server more than ``max_lag_s`` behind (a client that does not read) skips
        the excess, as a dongle's overflowing buffer queue would.
    tuner_type, gains_tenth_db :
        What the header announces and how manual gains are snapped.
    drop_every_s, drop_samples :
        Drop ``drop_samples`` samples every ``drop_every_s`` seconds of stream (tests of
        drop detection); the generator still produces them.
    ppm :
        A frequency-correction command of ``p`` ppm retunes the generator to
        ``f / (1 + p·1e-6)``: where a dongle with a perfect crystal would actually tune.
    """

    def __init__(self, generator: object, host: str = "127.0.0.1", port: int = 0, *,
                 paced: bool = True, tuner_type: int = 5,
                 gains_tenth_db: tuple[int, ...] = R820T_GAINS_TENTH_DB,
                 drop_every_s: float | None = None, drop_samples: int = 0,
                 chunk_s: float = 0.01, max_lag_s: float = 1.0) -> None:
        self.generator = generator
        self.paced = bool(paced)
        self.tuner_type = int(tuner_type)
        self.gains_tenth_db = tuple(int(g) for g in gains_tenth_db)
        self.drop_every_s = drop_every_s
        self.drop_samples = int(drop_samples)
        self.chunk_s = float(chunk_s)
        self.max_lag_s = float(max_lag_s)
        f = float(getattr(generator, "center_freq_hz", 0.0) or 0.0)
        r = float(getattr(generator, "sample_rate_hz", 0.0) or 0.0)
        g = getattr(generator, "gain_db", 0.0)
        self.center_freq_hz = f if f > 0 else 100e6
        self.sample_rate_hz = r if r > 0 else 2.048e6
        self.gain_db = float(g) if isinstance(g, (int, float)) and not math.isnan(g) else 0.0
        self.ppm = 0
        self.manual_gain = True
        #: Settings of commands that do not retune (AGC, direct sampling, bias tee, ...).
        self.settings: dict[str, int] = {}
        self.clients_served = 0
        self.samples_sent = 0
        self.samples_dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                       socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
        except OSError as exc:
            self._listener.close()
            raise SourceError(f"rtl_tcp server: cannot listen on {host}:{port} ({exc})") from None
        self._listener.listen(1)
        self._listener.settimeout(0.1)
        self._retune_generator()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> "RtlTcpServer":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rtl_tcp-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._listener.close()

    def __enter__(self) -> "RtlTcpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (from elsewhere) or Ctrl-C."""
        try:
            self._run()
        except KeyboardInterrupt:
            pass
        finally:
            self._stop.set()
            self._listener.close()

    # -- internals -----------------------------------------------------------------------

    def _retune_generator(self) -> bool:
        lo = self.center_freq_hz / (1 + self.ppm * 1e-6)
        try:
            self.generator.tune(lo, self.sample_rate_hz, self.gain_db)
        except RfhuntError as exc:
            log.warning("rtl_tcp server: generator refused tuning %.0f Hz, %.0f S/s, %.1f dB: %s",
                        lo, self.sample_rate_hz, self.gain_db, exc)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.clients_served += 1
            log.info("rtl_tcp server: client %s connected", peer)
            try:
                self._serve_client(conn, peer)
            except (OSError, RfhuntError) as exc:
                log.warning("rtl_tcp server: client %s: %s", peer, exc)
            except Exception:   # a broken generator must not end the server
                log.exception("rtl_tcp server: client %s: unexpected error; dropping the "
                              "client", peer)
            finally:
                conn.close()
                log.info("rtl_tcp server: client %s gone; listening again", peer)

    def _serve_client(self, conn: socket.socket, peer: object) -> None:
        conn.setblocking(False)
        self._send_all(conn, HEADER.pack(MAGIC, self.tuner_type, len(self.gains_tenth_db)),
                       peer)
        self._cmd_buf = bytearray()
        self._unknown_cmds = 0
        self._reset_schedule()
        while not self._stop.is_set():
            if not self._poll_commands(conn, peer, 0.0):
                return
            if self.paced:
                due = (time.monotonic() - self._t_start) * self.sample_rate_hz
                behind = due - self._stream_pos
                if behind > self.max_lag_s * self.sample_rate_hz:
                    skip = int(behind - 0.1 * self.sample_rate_hz)
                    log.warning("rtl_tcp server: client %s too slow, dropping %d samples",
                                peer, skip)
                    self._skip(skip)
                    self.samples_dropped += skip
                    continue
                if behind < self.chunk_s * self.sample_rate_hz:
                    wait = (self._stream_pos + self.chunk_s * self.sample_rate_hz - due) \
                        / self.sample_rate_hz
                    if not self._poll_commands(conn, peer, max(wait, 0.0)):
                        return
                    continue
            n = max(1, int(self.chunk_s * self.sample_rate_hz)) if self.paced else 65536
            if self.drop_every_s and self.drop_samples > 0:
                next_drop = self._next_drop_s * self.sample_rate_hz
                if self._stream_pos >= next_drop:
                    self._skip(self.drop_samples)
                    self.samples_dropped += self.drop_samples
                    self._next_drop_s += self.drop_every_s
                    continue
                n = max(1, min(n, int(math.ceil(next_drop - self._stream_pos))))
            data = self._generate(n)
            if data is None:
                return
            self._stream_pos += n
            if not self._send_all(conn, data, peer):
                return
            self.samples_sent += n

    def _reset_schedule(self) -> None:
        self._t_start = time.monotonic()
        self._stream_pos = 0
        self._next_drop_s = self.drop_every_s or 0.0

    def _generate(self, n: int) -> bytes | None:
        try:
            block = self.generator.read(n)
        except RfhuntError as exc:
            log.warning("rtl_tcp server: generator cannot deliver: %s", exc)
            return None
        if block.native == "cu8":
            return np.asarray(block.samples, dtype=np.uint8).tobytes()
        return complex_to_cu8(block.samples).tobytes()

    def _skip(self, n: int) -> None:
        step = max(1, int(self.sample_rate_hz * 0.1))
        left = n
        while left > 0:
            k = min(step, left)
            try:
                self.generator.read(k)
            except RfhuntError as exc:
                log.warning("rtl_tcp server: generator cannot deliver: %s", exc)
                break
            left -= k
        self._stream_pos += n

    def _send_all(self, conn: socket.socket, data: bytes, peer: object) -> bool:
        view = memoryview(data)
        while view and not self._stop.is_set():
            readable, writable, _ = select.select([conn], [conn], [], 0.1)
            if readable and not self._read_commands(conn, peer):
                return False
            if writable:
                try:
                    k = conn.send(view)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    log.info("rtl_tcp server: client %s: send failed (%s)", peer, exc)
                    return False
                view = view[k:]
        return not view

    def _poll_commands(self, conn: socket.socket, peer: object, timeout: float) -> bool:
        readable, _, _ = select.select([conn], [], [], timeout)
        if readable:
            return self._read_commands(conn, peer)
        return True

    def _read_commands(self, conn: socket.socket, peer: object) -> bool:
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return True
        except OSError as exc:
            log.info("rtl_tcp server: client %s: %s", peer, exc)
            return False
        if not data:
            return False
        self._cmd_buf += data
        retune = False
        while len(self._cmd_buf) >= COMMAND.size:
            cmd, param = COMMAND.unpack_from(self._cmd_buf)
            del self._cmd_buf[:COMMAND.size]
            retune |= self._apply(cmd, param, peer)
        if retune:
            self._retune_generator()
            self._reset_schedule()
        return True

    def _apply(self, cmd: int, param: int, peer: object) -> bool:
        """Apply one command; True when the generator must be retuned."""
        if cmd == CMD_SET_FREQ:
            if param == 0:
                log.warning("rtl_tcp server: client %s asked for 0 Hz; ignored", peer)
                return False
            self.center_freq_hz = float(param)
            return True
        if cmd == CMD_SET_SAMPLE_RATE:
            if not valid_sample_rate(param):
                log.warning("rtl_tcp server: client %s asked for invalid rate %d S/s; ignored",
                            peer, param)
                return False
            self.sample_rate_hz = float(param)
            return True
        if cmd == CMD_SET_GAIN_MODE:
            self.manual_gain = bool(param)
            self.settings["gain_mode"] = param
            return False
        if cmd in (CMD_SET_GAIN, CMD_SET_GAIN_BY_INDEX):
            if cmd == CMD_SET_GAIN_BY_INDEX:
                if param >= len(self.gains_tenth_db):
                    log.warning("rtl_tcp server: client %s: gain index %d out of range", peer,
                                param)
                    return False
                tenths = self.gains_tenth_db[param]
            else:
                tenths = snap_gain_tenth_db(param - 2**32 if param >= 2**31 else param,
                                            self.gains_tenth_db)
            self.gain_db = tenths / 10.0
            return True
        if cmd == CMD_SET_FREQ_CORRECTION:
            ppm = param - 2**32 if param >= 2**31 else param
            if abs(ppm) > 1000:
                log.warning("rtl_tcp server: client %s: ppm %d out of range; ignored", peer, ppm)
                return False
            self.ppm = ppm
            return True
        names = {CMD_SET_IF_GAIN: "if_gain", CMD_SET_TEST_MODE: "test_mode",
                 CMD_SET_AGC_MODE: "agc", CMD_SET_DIRECT_SAMPLING: "direct_sampling",
                 CMD_SET_OFFSET_TUNING: "offset_tuning", CMD_SET_RTL_XTAL: "rtl_xtal",
                 CMD_SET_TUNER_XTAL: "tuner_xtal", CMD_SET_BIAS_TEE: "bias_tee"}
        if cmd in names:
            self.settings[names[cmd]] = param
            return False
        self._unknown_cmds += 1
        if self._unknown_cmds <= 3:
            log.warning("rtl_tcp server: client %s sent unknown command 0x%02x; ignored%s", peer,
                        cmd, " (further ones are not logged)" if self._unknown_cmds == 3 else "")
        return False


def serve_forever(generator: object, host: str = "127.0.0.1", port: int = 1234,
                  **options: object) -> None:
    """Run an :class:`RtlTcpServer` in the foreground until interrupted (for a CLI)."""
    server = RtlTcpServer(generator, host, port, **options)  # type: ignore[arg-type]
    host, port = server.address
    log.info("rtl_tcp server listening on %s:%d", host, port)
    server.serve_forever()
