"""The outbox: every push is a job, kept and retried until it is delivered, refused or expires.

The first attempt goes out at once, without waiting for the disk. An action
waits for each device's first outcome, at most ACTION_DEADLINE, then writes the
jobs still queued to the hub's store before it returns. Later outcomes of
queued pushes are fired as `direct_push_delivery` events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, auto
from functools import partial
import time
from typing import Any, Final, cast
import uuid

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.json import json_bytes
from homeassistant.helpers.storage import Store
from orjson import Fragment

from .backend import Delivery, Device, Outcome, PushBackend
from .const import DOMAIN, EVENT_DELIVERY, LOGGER
from .health import Health
from .jobs import DeviceQueue, Job, Report, Sent, Status, retry_at
from .message import Message, message_to_dict
from .pacing import Turns

# One attempt's time limit: a service that accepts the connection and never
# answers cannot hold a push, nor the action, for longer.
ATTEMPT_TIMEOUT: Final = 5.0
# The action returns by then, whatever the push services do.
ACTION_DEADLINE: Final = 8.0
# On unload, attempts in flight get this long to finish before they are taken back.
CLOSE_GRACE: Final = 2.0
SAVE_DELAY: Final = 1.0
STORAGE_VERSION: Final = 1
# The reason a push waits while the hub is unloaded or Home Assistant stops.
HUB_CLOSED: Final = "hub_closed"


def signal_queue(entry_id: str) -> str:
    """Return the signal that the number of queued or dropped pushes changed."""
    return f"{DOMAIN}_{entry_id}_queue"


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(
        hass,
        STORAGE_VERSION,
        f"{DOMAIN}.{entry_id}.outbox",
        private=True,
        atomic_writes=True,
    )


class _State(Enum):
    RUNNING = auto()
    STOPPING = auto()
    """Home Assistant stops: no more attempts; jobs are written at the final write."""
    CLOSED = auto()
    """Unloaded: the reloaded hub's outbox has the jobs."""


@dataclass(slots=True)
class _Lane:
    """One device's queue and when it may be tried next."""

    device: Device
    queue: DeviceQueue = field(default_factory=DeviceQueue)
    not_before: float = 0.0
    service_asked: bool = False
    """not_before is the service's Retry-After: a new push does not wake the lane early."""
    reason: str | None = None
    task: asyncio.Task[None] | None = None
    timer: CALLBACK_TYPE | None = None


@dataclass(slots=True)
class _Call:
    """One send's pushes, in order, and their first outcomes as they come.

    One per call, not a future per push: a burst of calls keeps few objects
    alive, and few objects to collect is fewer of Python's collector pauses.
    """

    done: asyncio.Future[None]
    rows: list[Job | Report] = field(default_factory=list)
    """Each push's job, or its report when it was refused before being queued."""
    waiting: dict[str, Job] = field(default_factory=dict)
    """The jobs whose first outcome is still to come."""
    reports: dict[str, Report] = field(default_factory=dict)
    dropped: int = 0
    """Older pushes dropped from the devices' full queues to make room."""
    adding: bool = True

    def answer(self, job: Job, report: Report) -> None:
        """Note a job's first outcome; the call is done once every job has one."""
        self.waiting.pop(job.id, None)
        self.reports[job.id] = report
        if not self.waiting and not self.adding and not self.done.done():
            self.done.set_result(None)

    def sent(self) -> Sent:
        """Return the reports, in the order of the pushes."""
        return Sent(
            [
                row if isinstance(row, Report) else self.reports[row.id]
                for row in self.rows
            ],
            self.dropped,
        )


class Outbox:
    """One hub's pushes, per device in order, from first attempt to final outcome."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        backends: Mapping[str, PushBackend],
        devices: Mapping[str, Device],
        health: Health,
        *,
        on_attempt: Callable[[Device, Delivery], None],
        is_inactive: Callable[[str], bool],
    ) -> None:
        """Use async_load before sending."""
        self._hass = hass
        self._entry_id = entry_id
        self._backends = backends
        # The hub's own mapping: a device the hub updates is sent to as it is now.
        self._devices = devices
        self._health = health
        self._on_attempt = on_attempt
        self._is_inactive = is_inactive
        self._store = _store(hass, entry_id)
        self._lanes: dict[str, _Lane] = {}
        # The call waiting for each job's first outcome.
        self._waiters: dict[str, _Call] = {}
        self.turns = Turns()
        """The loop time this hub's sends share; callers pace their own work with it too."""
        # Backends whose credentials were refused, with the reason: their
        # jobs wait for the reauthentication, which reloads the hub.
        self._held: dict[str, str] = {}
        self._state = _State.RUNNING
        self._change_pending = False
        # The write taking place, and the one that waits for it (see async_save).
        self._write: asyncio.Task[None] | None = None
        self._next_write: asyncio.Task[None] | None = None
        self.queued = 0
        """Pushes kept for a later attempt."""
        self.dropped = 0
        """Pushes dropped from a full queue, ever."""

    def queued_for(self, device_id: str) -> int:
        """Return the number of pushes waiting for one device."""
        lane = self._lanes.get(device_id)
        return len(lane.queue) if lane else 0

    async def async_load(self) -> None:
        """Restore the jobs and records a previous run kept, and resume sending."""
        devices = self._devices
        data = await self._store.async_load() or {}
        self.dropped = data.get("dropped", 0)
        self._health.async_load(data.get("devices", {}), devices)
        now = time.time()
        for raw in data.get("jobs", []):
            job = Job.from_dict(raw)
            device = devices.get(job.device_id)
            if device is None or self._is_inactive(job.device_id):
                reason = "device_removed" if device is None else "device_inactive"
                self._fire(job, Status.FAILED, reason)
                self._async_save_later()
                continue
            self._lane(device).queue.add(job)
            self.queued += 1
        for device_id, at in data.get("retry_after", {}).items():
            if (lane := self._lanes.get(device_id)) and at > now:
                lane.not_before, lane.service_asked = at, True
        for lane in self._lanes.values():
            self._start(lane)
        self._async_changed()

    def _lane(self, device: Device) -> _Lane:
        if (lane := self._lanes.get(device.device_id)) is None:
            lane = self._lanes[device.device_id] = _Lane(device)
        return lane

    # Sending.

    async def async_send(self, items: Iterable[tuple[Device, Message]]) -> Sent:
        """Queue a message per device; return once each has a first outcome.

        The first attempts start at once, a few milliseconds of the loop per
        turn (pacing.Turns), however many devices and calls there are. After
        ACTION_DEADLINE a push still being tried counts as queued. Pushes left
        queued are on disk when this returns.
        """
        if self._state is _State.CLOSED:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_loaded"
            )
        call = _Call(self._hass.loop.create_future())
        await self.turns.run(
            partial(self._add, call, device, message) for device, message in items
        )
        call.adding = False
        if call.waiting:
            await asyncio.wait([call.done], timeout=ACTION_DEADLINE)
        # Calls of a burst reach their deadline together: they answer in turns.
        sent = await self.turns.call(partial(self._answer, call))
        if any(report.status is Status.QUEUED for report in sent.reports):
            await self.async_save()
        return sent

    @callback
    def _answer(self, call: _Call) -> Sent:
        """Report what each push did so far; one still in flight counts as queued."""
        for job in list(call.waiting.values()):
            # Its outcome comes as an event.
            self._report_queued(self._lanes[job.device_id], job, "in_progress", None)
        return call.sent()

    @callback
    def _add(self, call: _Call, device: Device, message: Message) -> None:
        """Queue one push and start its lane if it may send now."""
        if self._is_inactive(device.device_id):
            call.rows.append(Report(device, Status.FAILED, "device_inactive"))
            return
        now = time.time()
        # A private device's message has its id already: the mailbox keeps it by it.
        # The devices of a fan-out share one message: each attempt adds its job's id.
        job = Job(
            id=message.message_id or str(uuid.uuid4()),
            device_id=device.device_id,
            device_name=device.name,
            message=message,
            created=now,
            expires=now + message.ttl,
        )
        lane = self._lane(device)
        call.rows.append(job)
        call.waiting[job.id] = job
        self._waiters[job.id] = call
        for old, status in lane.queue.add(job):
            call.dropped += status is Status.DROPPED
            self._settle(lane, old, status)
        if job.id not in call.waiting:
            return
        if self._state is not _State.RUNNING:
            # Stopping, or unloaded while this call waited for its turn.
            self._report_queued(lane, job, HUB_CLOSED, None)
            self._async_save_later()
        elif lane.task is None:
            if lane.device.kind in self._held:
                self._report_queued(lane, job, self._held[lane.device.kind], None)
            elif lane.service_asked:
                self._report_queued(lane, job, lane.reason, lane.not_before)
            else:
                # A new push is worth a try now, whatever our own backoff said.
                lane.not_before = 0.0
                self._start(lane)

    @callback
    def _start(self, lane: _Lane) -> None:
        """Run the lane's sender (never while it runs: its timer is set only once it stops)."""
        if lane.timer is not None:
            lane.timer()
            lane.timer = None
        task = self._hass.async_create_background_task(
            self._async_run(lane), f"{DOMAIN} pushes to {lane.device.name}"
        )
        # An eager task that parks at once is done already.
        if not task.done():
            lane.task = task

    async def _async_run(self, lane: _Lane) -> None:
        """Send the lane's jobs in order until it is empty or must wait."""
        try:
            while self._state is _State.RUNNING and (job := self._next(lane)):
                delivery = await self._async_attempt(lane, job)
                lane.queue.sending = None
                self._apply(lane, job, delivery)
        finally:
            lane.queue.sending = None
            lane.task = None

    @callback
    def _next(self, lane: _Lane) -> Job | None:
        """Return the job to send now; otherwise set a timer and report the wait."""
        now = time.time()
        for expired in lane.queue.take_expired(now):
            self._settle(lane, expired, Status.EXPIRED, expired.reason)
        if (head := lane.queue.head) is None:
            return None
        held = lane.device.kind in self._held
        if not held and now >= lane.not_before:
            lane.queue.sending = head
            return head
        wakes = [job.deadline for job in lane.queue]
        if not held:
            wakes.append(lane.not_before)
        lane.timer = async_call_later(
            self._hass,
            max(0.0, min(wakes) - now),
            HassJob(
                partial(self._wake, lane),
                f"{DOMAIN} retry {lane.device.name}",
                cancel_on_shutdown=True,
            ),
        )
        reason = self._held.get(lane.device.kind, lane.reason)
        next_attempt = None if held else lane.not_before
        for job in lane.queue:
            if not job.reported:
                self._report_queued(lane, job, reason, next_attempt)
        return None

    @callback
    def _wake(self, lane: _Lane, _: Any) -> None:
        lane.timer = None
        self._start(lane)

    async def _async_attempt(self, lane: _Lane, job: Job) -> Delivery:
        """Send once, within ATTEMPT_TIMEOUT; an unexpected error fails only this push."""
        device = self._devices.get(lane.device.device_id, lane.device)
        job.attempts += 1
        job.stored = None
        message = replace(job.message, message_id=job.id, ttl=job.ttl_left(time.time()))
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                return await self._backends[device.kind].async_send(device, message)
        except TimeoutError:
            return Delivery(Outcome.UNREACHABLE, "timeout", retryable=True)
        except Exception:  # noqa: BLE001 (one device's bug must not touch the others)
            LOGGER.exception("Unexpected error sending a push to %s", device.name)
            return Delivery(Outcome.FAILED, "internal_error")

    @callback
    def _apply(self, lane: _Lane, job: Job, delivery: Delivery) -> None:
        """Act on an attempt: settle the job, or hold it for a later attempt."""
        now = time.time()
        self._on_attempt(lane.device, delivery)
        self._health.async_record(lane.device, delivery, now)
        job.reason = delivery.reason
        job.stored = None
        if delivery.outcome is Outcome.AUTH_FAILED:
            # Every device of this backend waits for new credentials.
            self._held[lane.device.kind] = delivery.reason or "auth_failed"
            return
        if delivery.ok:
            settled = [(job, Status.DELIVERED)]
        elif delivery.outcome is Outcome.DEVICE_GONE:
            # The device's other pushes cannot reach it either.
            settled = [(other, Status.FAILED) for other in lane.queue]
        elif not delivery.retryable and delivery.outcome is not Outcome.CLOCK_WRONG:
            # (A clock set right makes the next scheduled token good: keep trying.)
            settled = [(job, Status.FAILED)]
        elif (at := retry_at(job, delivery, now)) is None:
            settled = [(job, Status.EXPIRED)]
        else:
            settled = []
            lane.not_before = at
            lane.service_asked = delivery.retry_after is not None
            lane.reason = delivery.reason
            if job.saved:
                self._async_save_later()
        for done, status in settled:
            lane.queue.remove(done)
            self._settle(
                lane, done, status, delivery.reason, truncated=delivery.truncated
            )

    # Outcomes.

    @callback
    def _report_queued(
        self, lane: _Lane, job: Job, reason: str | None, next_attempt: float | None
    ) -> None:
        """Tell the caller the push is kept; from now on its outcome is an event."""
        job.reported = True
        self.queued += 1
        self._waiters.pop(job.id).answer(
            job, Report(lane.device, Status.QUEUED, reason, job.id, next_attempt)
        )
        self._async_changed()

    @callback
    def _settle(
        self,
        lane: _Lane,
        job: Job,
        status: Status,
        reason: str | None = None,
        *,
        truncated: bool = False,
    ) -> None:
        """End a job taken out of its queue: answer its caller, or fire the event."""
        if status is Status.DROPPED:
            self.dropped += 1
            LOGGER.warning(
                "%s pushes wait for %s, the most Direct Push keeps for a device: "
                "dropped the oldest of the least important",
                lane.queue.limit,
                lane.device.name,
            )
        if (call := self._waiters.pop(job.id, None)) is not None:
            # The caller knows only delivered, queued, failed and expired.
            if status is Status.DROPPED:
                status, reason = Status.FAILED, "queue_full"
            elif status is Status.REPLACED:
                status, reason = Status.FAILED, "replaced"
            call.answer(
                job, Report(lane.device, status, reason, job.id, truncated=truncated)
            )
        if job.reported:
            self.queued -= 1
            self._fire(job, status, reason)
        if job.saved:
            self._async_save_later()
        if job.reported or status is Status.DROPPED:
            self._async_changed()

    @callback
    def _fire(self, job: Job, status: Status, reason: str | None) -> None:
        self._hass.bus.async_fire(
            EVENT_DELIVERY,
            {
                "entry_id": self._entry_id,
                "device": job.device_name,
                "device_id": job.device_id,
                "message_id": job.id,
                "tag": job.tag,
                "outcome": status.value,
                "reason": reason,
                "attempts": job.attempts,
            },
        )

    @callback
    def _async_changed(self) -> None:
        """Update the sensors once, however many jobs changed in this turn of the loop."""
        if not self._change_pending:
            self._change_pending = True
            self._hass.loop.call_soon(self._async_dispatch_change)

    @callback
    def _async_dispatch_change(self) -> None:
        self._change_pending = False
        async_dispatcher_send(self._hass, signal_queue(self._entry_id))

    # Persistence.

    def _data(self) -> dict[str, Any]:
        jobs = []
        messages: _Messages = {}
        for lane in self._lanes.values():
            for job in lane.queue:
                job.saved = True
                jobs.append(_stored(job, messages))
        return {
            "jobs": jobs,
            "devices": self._health.as_dict(),
            "dropped": self.dropped,
            "retry_after": {
                device_id: lane.not_before
                for device_id, lane in self._lanes.items()
                if lane.service_asked
            },
        }

    async def async_save(self) -> None:
        """Write the jobs now (while Home Assistant stops: at its final write).

        Calls that ask at the same time share one write: a thousand calls that
        return together write the jobs once, not a thousand times.
        """
        if self._state is _State.RUNNING:
            if self._next_write is None:
                self._next_write = self._hass.async_create_task(
                    self._async_write(), f"{DOMAIN} outbox write", eager_start=False
                )
            await asyncio.shield(self._next_write)
        elif self._state is _State.STOPPING:
            self._async_save_later()

    async def _async_write(self) -> None:
        """Write the jobs as they are once the write before this one is done."""
        if (previous := self._write) is not None:
            # Its snapshot was taken before our callers' jobs were queued.
            await asyncio.wait([previous])
        self._write, self._next_write = self._next_write, None
        try:
            # New jobs are turned into JSON in turns first: thousands of them
            # queued at once do not hold the loop in the write itself.
            messages: _Messages = {}
            await self.turns.run(
                partial(_stored, job, messages)
                for lane in list(self._lanes.values())
                for job in lane.queue
                if job.stored is None
            )
            await self._store.async_save(self._data())
        finally:
            if self._write is asyncio.current_task():
                self._write = None

    @callback
    def _async_save_later(self) -> None:
        # Written at the final write at the latest: a push in flight at shutdown is kept.
        self._store.async_delay_save(self._data, SAVE_DELAY)

    # Unload and shutdown.

    async def async_close(self) -> None:
        """Unload: let attempts in flight finish or take them back, then save."""
        stopping = self._state is _State.STOPPING
        self._state = _State.CLOSED
        await self._async_halt(CLOSE_GRACE)
        if stopping:
            self._async_save_later()
        else:
            await self._store.async_save(self._data())

    async def async_stop(self) -> None:
        """Home Assistant stops: keep every job for the next start."""
        self._state = _State.STOPPING
        # Home Assistant cancelled the attempts in flight already.
        await self._async_halt(0)
        self._async_save_later()

    async def _async_halt(self, grace: float) -> None:
        """Stop every lane; report the pushes that wait as queued."""
        # Pushes of calls still waiting for their turn join their lanes first.
        await self.turns.async_flush()
        tasks = []
        for lane in self._lanes.values():
            if lane.timer is not None:
                lane.timer()
                lane.timer = None
            if lane.task is not None:
                tasks.append(lane.task)
        if tasks and grace:
            await asyncio.wait(tasks, timeout=grace)
        if late := [task for task in tasks if not task.done()]:
            for task in late:
                task.cancel()
            await asyncio.wait(late)
        for lane in self._lanes.values():
            for job in lane.queue:
                if not job.reported:
                    self._report_queued(lane, job, HUB_CLOSED, None)


# The stored form of each message, by id(): a fan-out's jobs share their message.
# The message itself is kept with it, so that its id is not taken by another.
type _Messages = dict[int, tuple[Message, Fragment]]


def _stored(job: Job, messages: _Messages) -> Fragment:
    """Return a job as stored, in JSON, made once while its attempts and reason stay.

    A queued job is in every write until it is sent. Made once, a write of
    thousands of jobs costs the event loop little and leaves no objects behind
    for Python's collector to go through.
    """
    if job.stored is None:
        known = messages.get(id(job.message))
        if known is None or known[0] is not job.message:
            known = messages[id(job.message)] = (
                job.message,
                Fragment(json_bytes(message_to_dict(job.message))),
            )
        job.stored = Fragment(json_bytes(job.as_dict(known[1])))
    return cast(Fragment, job.stored)


async def async_remove_outbox(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a removed hub's kept pushes and its devices' repairs."""
    store = _store(hass, entry_id)
    data = await store.async_load() or {}
    # Loading records for no devices deletes their repairs.
    Health(hass, entry_id, 0).async_load(data.get("devices", {}), {})
    await store.async_remove()
