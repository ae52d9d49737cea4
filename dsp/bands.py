"""Radio bands rfhunt watches, and the GSM channel numbering (3GPP TS 45.005 clause 2).

ARFCN conversion is vectorized: pass an int array, get a float array back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rfhunt.errors import DspError

GSM_CHANNEL_HZ = 200e3
FM_RASTER_HZ = 100e3
GSM900_DUPLEX_HZ = 45e6
DCS1800_DUPLEX_HZ = 95e6


def _as_int_array(arfcn: np.ndarray | int) -> np.ndarray:
    a = np.asarray(arfcn)
    if not np.issubdtype(a.dtype, np.integer):
        raise DspError(f"ARFCN must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def arfcn_to_uplink_hz(arfcn: np.ndarray | int) -> np.ndarray:
    """Uplink carrier frequency of GSM900 (P/E/R-GSM) and DCS1800 ARFCNs, Hz.

    Raises
    ------
    DspError
        For an ARFCN that belongs to neither band.
    """
    a = _as_int_array(arfcn)
    f = np.full(a.shape, np.nan)
    gsm = (a >= 0) & (a <= 124)
    egsm = (a >= 955) & (a <= 1023)
    dcs = (a >= 512) & (a <= 885)
    f[gsm] = 890e6 + 200e3 * a[gsm]
    f[egsm] = 890e6 + 200e3 * (a[egsm] - 1024)
    f[dcs] = 1710.2e6 + 200e3 * (a[dcs] - 512)
    if np.isnan(f).any():
        bad = a[np.isnan(f)].ravel()[0]
        raise DspError(f"ARFCN {bad} is not a GSM900 or DCS1800 channel")
    return f


def arfcn_to_downlink_hz(arfcn: np.ndarray | int) -> np.ndarray:
    """Downlink (BTS transmit) frequency of GSM900 and DCS1800 ARFCNs, Hz."""
    a = _as_int_array(arfcn)
    up = arfcn_to_uplink_hz(a)
    return np.where((a >= 512) & (a <= 885), up + DCS1800_DUPLEX_HZ, up + GSM900_DUPLEX_HZ)


def _snap(freq_hz: np.ndarray, first_hz: float) -> tuple[np.ndarray, np.ndarray]:
    k = np.rint((np.asarray(freq_hz, dtype=float) - first_hz) / GSM_CHANNEL_HZ)
    return k.astype(np.int64), first_hz + k * GSM_CHANNEL_HZ


def downlink_hz_to_arfcn(freq_hz: np.ndarray | float) -> np.ndarray:
    """Nearest GSM900 / DCS1800 downlink ARFCN of a frequency; -1 where none lies within 100 kHz."""
    return _hz_to_arfcn(np.asarray(freq_hz, dtype=float), downlink=True)


def uplink_hz_to_arfcn(freq_hz: np.ndarray | float) -> np.ndarray:
    """Nearest GSM900 / DCS1800 uplink ARFCN of a frequency; -1 where none lies within 100 kHz."""
    return _hz_to_arfcn(np.asarray(freq_hz, dtype=float), downlink=False)


def _hz_to_arfcn(f: np.ndarray, downlink: bool) -> np.ndarray:
    g = f - (GSM900_DUPLEX_HZ if downlink else 0.0)
    d = f - (DCS1800_DUPLEX_HZ if downlink else 0.0)
    out = np.full(f.shape, -1, dtype=np.int64)
    k = np.rint((g - 890e6) / GSM_CHANNEL_HZ).astype(np.int64)
    ok = (np.abs(g - (890e6 + k * GSM_CHANNEL_HZ)) <= 100e3) & (k >= -49) & (k <= 124)
    out[ok] = np.where(k[ok] < 0, k[ok] + 1024, k[ok])
    kd = np.rint((d - 1710.2e6) / GSM_CHANNEL_HZ).astype(np.int64) + 512
    okd = (np.abs(d - (1710.2e6 + (kd - 512) * GSM_CHANNEL_HZ)) <= 100e3) & (kd >= 512) & (kd <= 885)
    out[okd & ~ok] = kd[okd & ~ok]
    return out


@dataclass(frozen=True)
class Band:
    """A band a sensor sweeps.

    Attributes
    ----------
    name : str
    kind : str
        Detection kind reported for carriers in this band (see ``rfhunt.records.KINDS``).
    low_hz, high_hz : float
        Centre frequencies of the first and last channel, Hz.
    channel_hz : float
        Channel raster, Hz.
    bandwidth_hz : float
        Bandwidth the power of one carrier is integrated over, Hz.
    bursty : bool
        True for TDMA uplinks: power is measured while bursts are on air.
    """

    name: str
    kind: str
    low_hz: float
    high_hz: float
    channel_hz: float
    bandwidth_hz: float
    bursty: bool = False

    def channel_freqs_hz(self) -> np.ndarray:
        n = int(round((self.high_hz - self.low_hz) / self.channel_hz)) + 1
        return self.low_hz + self.channel_hz * np.arange(n)

    def channel_numbers(self, freq_hz: np.ndarray) -> np.ndarray | None:
        """ARFCNs of carriers at ``freq_hz`` (GSM bands), None for FM."""
        if self.kind == "gsm_downlink":
            return downlink_hz_to_arfcn(freq_hz)
        if self.kind == "gsm_uplink":
            return uplink_hz_to_arfcn(freq_hz)
        return None


BANDS: dict[str, Band] = {
    # E-GSM 975..1023 and P-GSM 0..124 downlink: 925.2 ... 959.8 MHz
    "gsm900-dl": Band("gsm900-dl", "gsm_downlink", 925.2e6, 959.8e6, GSM_CHANNEL_HZ, 180e3),
    "gsm900-ul": Band("gsm900-ul", "gsm_uplink", 880.2e6, 914.8e6, GSM_CHANNEL_HZ, 180e3, bursty=True),
    "dcs1800-dl": Band("dcs1800-dl", "gsm_downlink", 1805.2e6, 1879.8e6, GSM_CHANNEL_HZ, 180e3),
    "dcs1800-ul": Band("dcs1800-ul", "gsm_uplink", 1710.2e6, 1784.8e6, GSM_CHANNEL_HZ, 180e3, bursty=True),
    "fm": Band("fm", "fm", 87.5e6, 108.0e6, FM_RASTER_HZ, 200e3),
}


def band(name: str) -> Band:
    """Look up a band by name; DspError lists the known names."""
    try:
        return BANDS[name]
    except KeyError:
        raise DspError(f"unknown band {name!r}; known bands: {', '.join(BANDS)}") from None


def downlink_channels_in_span(center_freq_hz: float, sample_rate_hz: float, *, margin_hz: float = 100e3
                              ) -> np.ndarray:
    """GSM900 and DCS1800 downlink channel centres (Hz) a capture holds whole.

    A channel counts when its centre lies at least ``margin_hz`` inside the capture's
    ``sample_rate_hz`` span (half a channel, so its 200 kHz fit).
    """
    half = sample_rate_hz / 2 - margin_hz
    chans = np.concatenate([BANDS["gsm900-dl"].channel_freqs_hz(), BANDS["dcs1800-dl"].channel_freqs_hz()])
    return chans[np.abs(chans - center_freq_hz) <= half + 1e-6]


def uplink_channels_in_span(center_freq_hz: float, sample_rate_hz: float, *, margin_hz: float = 100e3
                            ) -> np.ndarray:
    """GSM900 and DCS1800 uplink channel centres (Hz) a capture holds whole (see
    :func:`downlink_channels_in_span`)."""
    half = sample_rate_hz / 2 - margin_hz
    chans = np.concatenate([BANDS["gsm900-ul"].channel_freqs_hz(), BANDS["dcs1800-ul"].channel_freqs_hz()])
    return chans[np.abs(chans - center_freq_hz) <= half + 1e-6]
