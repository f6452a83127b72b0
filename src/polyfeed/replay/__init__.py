"""Recordings driven back through the live session code (:class:`Replay`, :func:`replay`), at their
recorded pace (:func:`replay_paced`), served over the venue's protocol with its REST calls
(:mod:`polyfeed.replay.serve`) and exported to Parquet (:mod:`polyfeed.replay.export`, the
``parquet`` extra).

Above the stream layer, beside the local exchange: it reads the format of :mod:`polyfeed.record` and
drives :mod:`polyfeed.session`; nothing below imports it.
"""

from polyfeed.replay.paced import replay_paced
from polyfeed.replay.replay import Replay, replay

__all__ = ["Replay", "replay", "replay_paced"]
