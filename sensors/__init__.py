"""I/O of a sensor node: IQ sources, the simulated world, scan schedules, publishing."""
