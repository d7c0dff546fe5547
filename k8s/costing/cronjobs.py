"""CronJobs, their Pods priced for the time they may run: their runs a month (their schedule) times
their Jobs' ``activeDeadlineSeconds``, an upper bound."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from costing.errors import CostError
from costing.pricing import HOURS_PER_MONTH, check_fits, node_room, pod_hour
from costing.rendering import Obj
from costing.requests import Requests, pod_requests
from costing.workloads import SCHEDULED

DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True)
class ScheduledWorkload:
    """A CronJob: its Pod, how often it runs and for how long at most."""

    name: str
    pod: Requests
    runs_a_month: float
    hours_a_run: float

    def month(self, prices: Mapping[str, Any]) -> float:
        """Dollars a month, each run taking its whole deadline: an upper bound. On EKS a run's share
        of a node (it fits in the room the packing leaves, or a node added for it); a Pod no node
        can hold is never scheduled, and stops the count (:func:`unschedulable`)."""
        if prices["billing"] == "nodes":
            check_fits(f"CronJob/{self.name}", self.pod, node_room(prices))
        return self.runs_a_month * self.hours_a_run * pod_hour(self.pod, prices)


def cron_field(text: str, span: int, what: str) -> int:
    """How many values of a cron schedule's minute or hour field match (``*``, ``*/n``, ``a,b``, ``n``)."""
    if text == "*":
        return span
    if text.startswith("*/") and text[2:].isdigit() and int(text[2:]) > 0:
        return math.ceil(span / int(text[2:]))
    values = text.split(",")
    if all(v.isdigit() and int(v) < span for v in values):
        return len(set(values))
    raise CostError(f"{what}: cannot count the runs of its schedule's field {text!r}")


def days_a_month(text: str, what: str) -> float:
    """Days a month of a schedule's day-of-month field: every day (``*``) or those listed (``1,15``)."""
    if text == "*":
        return DAYS_PER_MONTH
    values = text.split(",")
    if all(v.isdigit() and 1 <= int(v) <= 31 for v in values):
        return len(set(values))
    raise CostError(f"{what}: cannot count the runs of its schedule's field {text!r}")


def runs_a_month(schedule: str, what: str) -> float:
    """Runs a month of a schedule that runs every day (``M H * * *``) or on days of the month
    (``M H D * *``, a monthly run): minutes times hours times days."""
    fields = schedule.split()
    if len(fields) != 5 or fields[3:] != ["*", "*"]:
        raise CostError(
            f"{what}: schedule {schedule!r}: only daily (minute hour * * *) and monthly "
            "(minute hour day * *) schedules are priced here"
        )
    return cron_field(fields[0], 60, what) * cron_field(fields[1], 24, what) * days_a_month(fields[2], what)


def scheduled(objects: Sequence[Obj]) -> list[ScheduledWorkload]:
    """Every CronJob of a rendered overlay, with its Pod's requests and how long it may run a month."""
    found = []
    for o in objects:
        if o["kind"] not in SCHEDULED:
            continue
        what = f"{o['kind']}/{o['metadata']['name']}"
        job = o["spec"]["jobTemplate"]["spec"]
        if "activeDeadlineSeconds" not in job:
            raise CostError(
                f"{what}: its Jobs have no activeDeadlineSeconds, so how long they run is unbounded"
            )
        pod = pod_requests(job["template"]["spec"], what)
        found.append(
            ScheduledWorkload(
                o["metadata"]["name"],
                pod,
                runs_a_month(o["spec"]["schedule"], what),
                int(job["activeDeadlineSeconds"]) / 3600,
            )
        )
    return found


def scheduled_month(objects: Sequence[Obj], prices: Mapping[str, Any]) -> float:
    """Dollars a month of the CronJobs' Pods (:meth:`ScheduledWorkload.month`)."""
    return sum(w.month(prices) for w in scheduled(objects))
