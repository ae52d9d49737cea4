"""An IQ source that captures from the simulated world, as a sensor's RTL-SDR would.

Its clock is simulated: reading ``n`` samples advances it by ``n / sample_rate_hz``,
retuning costs the settling time of a real tuner, and :meth:`SimulatedSource.idle`
jumps ahead instead of sleeping. Samples come out as cu8, quantized like the dongle's ADC.
"""

from __future__ import annotations

import numpy as np

from rfhunt.errors import SourceError
from sensors.sim.world import World, _seed
from sensors.sources.base import IQBlock, IQSource, complex_to_cu8
from sensors.sources.open import register_scheme
from sensors.sources.rtltcp import R820T_GAINS_TENTH_DB, snap_gain_tenth_db

SETTLE_S = 0.005


class SimulatedSource(IQSource):
    """Capture IQ at one sensor of a :class:`World`.

    Parameters
    ----------
    world : World
    sensor_id : str
    t_s : float
        Starting point of the simulated clock, seconds since the scenario start.
    seed : int
        Seed of the receiver noise.
    """

    realtime = False

    def __init__(self, world: World, sensor_id: str, *, t_s: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.world = world
        self.sensor = world.scenario.sensor(sensor_id)
        self.t_s = float(t_s)
        self.rng = np.random.default_rng([seed, _seed(sensor_id)])  # reproducible across processes
        self.sample_rate_hz = 2.4e6
        self.gain_db = 30.0

    @property
    def t_utc(self) -> float:
        return self.world.scenario.start_utc + self.t_s

    def tune(self, center_freq_hz: float, sample_rate_hz: float | None = None,
             gain_db: float | None = None) -> None:
        if not 24e6 <= center_freq_hz <= 1766e6:
            raise SourceError(f"simulated RTL-SDR cannot tune to {center_freq_hz / 1e6:.3f} MHz "
                              "(R820T range 24-1766 MHz)")
        if sample_rate_hz is not None:
            if not (225_001 <= sample_rate_hz <= 300_000 or 900_001 <= sample_rate_hz <= 3_200_000):
                raise SourceError(f"RTL-SDR sample rate {sample_rate_hz:.0f} S/s is outside "
                                  "225-300 kS/s and 0.9-3.2 MS/s")
            self.sample_rate_hz = float(sample_rate_hz)
        if gain_db is not None:
            # the tuner only has discrete gains: take the nearest, like librtlsdr
            self.gain_db = snap_gain_tenth_db(round(gain_db * 10), R820T_GAINS_TENTH_DB) / 10
        self.center_freq_hz = float(center_freq_hz)
        self.t_s += SETTLE_S

    def read(self, n_samples: int) -> IQBlock:
        if self.status.state == "closed":
            raise SourceError(f"simulated source of sensor {self.sensor.id!r} is closed")
        if n_samples <= 0:
            raise SourceError(f"cannot read {n_samples} samples")
        if self.center_freq_hz <= 0:
            raise SourceError("simulated source read before tune()")
        x = self.world.capture(self.sensor, self.t_s, self.center_freq_hz, self.sample_rate_hz,
                               n_samples, self.gain_db, self.rng)
        block = IQBlock(complex_to_cu8(x), self.center_freq_hz, self.sample_rate_hz, self.gain_db,
                        self.t_utc, 0, "cu8")
        self.t_s += n_samples / self.sample_rate_hz
        self._account(n_samples, 0)
        return block

    def idle(self, seconds: float) -> None:
        """Let simulated time pass (a scheduler's pause between scans)."""
        self.t_s += max(0.0, seconds)

    def position(self) -> tuple[float, float]:
        """(lat, lon) of this sensor at the current simulated time."""
        return self.world.sensor_position(self.sensor, self.t_s)


def open_simulated(rest: str, **options) -> SimulatedSource:
    """``sim:SENSOR_ID[@scenario.toml]``: a sensor of a scenario (default: the built-in city)."""
    from sensors.sim.scenario import load_scenario

    sensor_id, _, scenario = rest.partition("@")
    if not sensor_id:
        raise SourceError("source 'sim:' needs a sensor id: sim:SENSOR_ID[@scenario.toml]")
    return SimulatedSource(World(load_scenario(scenario or None)), sensor_id, **options)


register_scheme("sim", open_simulated)
