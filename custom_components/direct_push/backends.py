"""The kinds of push backend a hub can use, by device subentry type.

The hub, the actions, the notify entities, the repairs and diagnostics look a
device's kind up here and never branch on it. A new backend is one module with
its PushBackendDescription, and one line here.
"""

from __future__ import annotations

from typing import Final

from .apns import APNS
from .backend import PushBackendDescription
from .webpush import WEB_PUSH

BACKENDS: Final[dict[str, PushBackendDescription]] = {
    description.kind: description for description in (APNS, WEB_PUSH)
}
