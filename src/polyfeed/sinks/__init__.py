"""Where streams go beyond the process: the recording job (:func:`polyfeed.sinks.record.record`, files
in polyfeed's recording format), and next NATS JetStream fan-out and Prometheus metrics.

On top of the streams: a sink composes :class:`polyfeed.stream.MarketStream` /
:class:`polyfeed.stream.UserStream` with a destination.
"""

from polyfeed.sinks.record import RecordSummary, record

__all__ = ["RecordSummary", "record"]
