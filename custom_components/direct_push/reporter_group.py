"""A reporter group: Home Assistant instances on one MQTT broker agree on one sender.

Pure logic without Home Assistant, so it is tested without a broker. The MQTT
side feeds it heartbeats and the time they arrived. Arrival times come from the
local monotonic clock: members' clocks may differ, and may jump, but the time
since a heartbeat arrived here does not.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import json
from typing import Final
import unicodedata

MAX_PAYLOAD: Final = 1024
MAX_TEXT: Final = 64
MAX_RANK: Final = 1000
# More members than a household runs; bounds what a stranger on the broker can add.
MAX_MEMBERS: Final = 64
MAX_KEYS: Final = 1000
_FIELDS: Final = ("instance_id", "name", "rank", "version")


def _clean_text(value: object) -> str | None:
    """Return value if it is a short printable string, else None."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        return None
    # Category C: control, format (bidi overrides), surrogates, unassigned;
    # none belongs in a name shown in a notification.
    if any(unicodedata.category(char).startswith("C") for char in value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a member says about itself every interval."""

    instance_id: str
    name: str
    rank: int
    version: str

    def to_payload(self) -> str:
        """Return the compact JSON a member publishes, retained."""
        return json.dumps(
            {field: getattr(self, field) for field in _FIELDS},
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_payload(cls, raw: str | bytes) -> Heartbeat | None:
        """Return the heartbeat in raw, or None for anything else.

        Anyone on the broker can publish under the prefix, so nothing is trusted.
        Unknown fields are ignored: a newer member may add some.
        """
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        if len(data) > MAX_PAYLOAD:
            return None
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None
        if not isinstance(parsed, dict):
            return None
        instance_id = _clean_text(parsed.get("instance_id"))
        name = _clean_text(parsed.get("name"))
        version = _clean_text(parsed.get("version"))
        rank = parsed.get("rank")
        # type() rather than isinstance: True is an int, and not a rank.
        if type(rank) is not int or not 0 <= rank <= MAX_RANK:
            return None
        if instance_id is None or name is None or version is None:
            return None
        return cls(instance_id, name, rank, version)


@dataclass(slots=True)
class _Member:
    heartbeat: Heartbeat
    arrived: float
    # Heard live, not only as a retained message replayed on subscribe: a
    # member that died days ago stays retained on the broker forever.
    heard_live: bool
    missing: bool = False
    left: bool = False


def _order(heartbeat: Heartbeat) -> tuple[int, str]:
    return heartbeat.rank, heartbeat.instance_id


class Group:
    """The members this instance hears, and who among them sends."""

    def __init__(
        self,
        me: Heartbeat,
        *,
        interval: float = 30,
        missing_after: float = 180,
        missed_beats: int = 3,
    ) -> None:
        """Track a group of which me is a member, heartbeats every interval seconds."""
        self.me = me
        self.interval = interval
        self.missing_after = missing_after
        # A member is gone once this long has passed without a heartbeat.
        self.timeout = interval * missed_beats
        self._members: dict[str, _Member] = {}

    def seen(self, heartbeat: Heartbeat, now: float, *, retained: bool = False) -> None:
        """Note a heartbeat that arrived at now.

        retained: the broker replayed it on (re)subscribing. It says the member
        was alive once, not that it is now, so for a member already known it
        changes nothing; an unknown one counts as alive until it fails to beat,
        so a starting instance knows the leader at once.
        """
        key = heartbeat.instance_id
        if key == self.me.instance_id:
            return  # our own heartbeat, echoed by the broker
        member = self._members.get(key)
        if member is not None:
            member.heartbeat = heartbeat
            if not retained:
                member.arrived = now
                member.heard_live = True
                member.left = False
            return
        self._members[key] = _Member(heartbeat, now, heard_live=not retained)
        if len(self._members) > MAX_MEMBERS:
            oldest = min(self._members.values(), key=lambda m: m.arrived)
            del self._members[oldest.heartbeat.instance_id]

    def cleared(self, instance_id: str, now: float) -> None:
        """Note a member that stopped cleanly: it leads no more, from now.

        It left on purpose, so the next in line takes over at once. A stop is
        still an absence: a member that stays away past missing_after is
        missing like any other (a restart within that time is not).
        """
        if (member := self._members.get(instance_id)) is not None:
            member.left = True
            # Its goodbye is its last sign of life, and a live one: an empty
            # message is never replayed as retained.
            member.arrived = now
            member.heard_live = True

    def alive(self, now: float) -> list[Heartbeat]:
        """Return the members alive at now, in line for sending: leader first."""
        members = [self.me]
        members.extend(
            member.heartbeat
            for member in self._members.values()
            if not member.left and now - member.arrived <= self.timeout
        )
        return sorted(members, key=_order)

    def members(self) -> list[Heartbeat]:
        """Return every other member ever heard, alive or not."""
        return [member.heartbeat for member in self._members.values()]

    def leader(self, now: float) -> Heartbeat:
        """Return who sends: the alive member of lowest rank, then lowest id.

        Every member computes this from the same heartbeats, so all agree once
        each has heard the others for a while.
        """
        return self.alive(now)[0]

    def is_leader(self, now: float) -> bool:
        """Return whether this instance sends."""
        return self.leader(now).instance_id == self.me.instance_id

    def missing_changes(self, now: float) -> list[tuple[Heartbeat, bool]]:
        """Return each change once: (member, True) gone missing, (member, False) back.

        Only a member heard live is reported missing, so one that died long ago
        is not reported again by every instance that starts.
        """
        changes: list[tuple[Heartbeat, bool]] = []
        for member in self._members.values():
            silent = now - member.arrived > self.missing_after
            if member.heard_live and silent != member.missing:
                member.missing = silent
                changes.append((member.heartbeat, silent))
        return changes


class Confirmations[T]:
    """Dedupe keys the leader confirmed, and events a follower holds back.

    A follower holds what it skipped; if no confirmation comes within the
    grace period, the event is due and whoever leads then sends it. For a
    leader's death to be covered, grace must exceed Group.timeout.
    """

    def __init__(self, *, window: float = 600, cap: int = MAX_KEYS) -> None:
        """Remember confirmations for window seconds, at most cap keys of each kind."""
        self.window = window
        self._cap = cap
        # Both in the order of their times (dicts keep insertion order), so the
        # oldest is first when one has to go.
        self._confirmed: dict[str, float] = {}
        self._held: dict[str, tuple[T, float]] = {}

    def confirm(self, key: str, now: float) -> None:
        """Note that key was sent (by us or another member) at now."""
        self._confirmed.pop(key, None)
        self._confirmed[key] = now
        self._held.pop(key, None)
        cap_oldest(self._confirmed, self._cap)

    def is_confirmed(self, key: str, now: float) -> bool:
        """Return whether key was sent within the window: then nobody sends it again."""
        sent = self._confirmed.get(key)
        return sent is not None and now - sent <= self.window

    def hold(self, key: str, payload: T, now: float) -> bool:
        """Keep a skipped event until its grace ends; False if already confirmed."""
        if self.is_confirmed(key, now):
            return False
        # A second hold of the same key keeps the first time: grace is not prolonged.
        self._held.setdefault(key, (payload, now))
        cap_oldest(self._held, self._cap)
        return True

    def due(self, now: float, grace: float) -> list[tuple[str, T]]:
        """Return, once, the held events whose grace ended without confirmation."""
        ended = [
            (key, payload)
            for key, (payload, held) in self._held.items()
            if now - held >= grace
        ]
        for key, _ in ended:
            del self._held[key]
        return ended

    def expire(self, now: float) -> None:
        """Forget confirmations older than the window."""
        for key in [
            k for k, sent in self._confirmed.items() if now - sent > self.window
        ]:
            del self._confirmed[key]

    @property
    def held(self) -> int:
        """Return how many events are held back, waiting for a confirmation."""
        return len(self._held)

    def __len__(self) -> int:
        """Return how many keys are remembered, confirmed or held."""
        return len(self._confirmed) + len(self._held)


def cap_oldest[V](items: dict[str, V], cap: int) -> None:
    """Drop the oldest entries (first inserted) until at most cap are left."""
    while len(items) > cap:
        del items[next(iter(items))]


def derive_key(tag: str | None, text: str, now: float, window: float) -> str:
    """Return the dedupe key of an event: the same on every member that sees it.

    now is WALL-CLOCK time (time.time()), not monotonic: members compare keys,
    and monotonic clocks start at each machine's boot. The time bucket lets the
    same text be sent again in a later window. Corner: members that see one
    event either side of a bucket boundary (or whose clocks differ across it)
    derive different keys, so a failover there may send it twice; the cost is
    a rare duplicate, never a lost event.
    """
    bucket = int(now // window)
    # JSON keeps the parts apart: no tag and an empty tag differ, and no
    # separator character inside a text can shift one part into another.
    material = json.dumps([tag, text, bucket], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]
