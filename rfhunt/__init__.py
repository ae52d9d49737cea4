"""rfhunt: radio detection of fake GSM base stations, black radio and GOIP gateways.

The package is split the way a sensor network is:

* :mod:`dsp` -- pure signal processing (numpy arrays in, arrays and dataclasses out);
* :mod:`sensors` -- the I/O of a sensor node: IQ sources, the simulated world, scans, publishing;
* :mod:`collector` -- the database, association, judgement and localization;
* :mod:`mapping` -- maps rendered from the collector's store.

This package holds what all of them share: the error tree, the wire records and the CLI.
"""

__version__ = "0.1.0"
