"""IQ sources behind one interface (:class:`sensors.sources.base.IQSource`)."""

from sensors.sources.base import IQBlock, IQSource, SourceStatus

__all__ = ["IQBlock", "IQSource", "SourceStatus"]
