"""Pure signal processing: numpy arrays in, numpy arrays and dataclasses out.

No sockets, files, clocks or logging set-up live here. Functions are vectorized over
channels, bursts and blocks.
"""
