"""The simulated world: a city of emitters observed by simulated RTL-SDR sensor nodes."""
