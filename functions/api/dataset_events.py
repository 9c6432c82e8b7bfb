"""Waiting on dataset work (tagging requests) for Kashf's ``wait=true``.

Like ``job_events``: the API subscribes once to ``shenava.dataset.work.done`` (plain NATS) and wakes
the requests waiting on that run (``waiters.Waiters``).
"""

from __future__ import annotations

from events.models import DatasetWorkDone
from events.subjects import DATASET_DONE
from functions.api.waiters import BusWaiters


class NatsDatasetEvents(BusWaiters):
    """``wait(run_id, finished, timeout_s)`` wakes on each ``dataset.work.done`` of the run."""

    def __init__(self) -> None:
        super().__init__(DATASET_DONE, lambda e: e.run_id if isinstance(e, DatasetWorkDone) else None)
