"""Direct Push's reference client: what an app does, in a few hundred lines of Python.

Run it as `python -m direct_push_client --help`. See the README's "For app
authors" section for the API it speaks.
"""

from .client import ApiError, Device, DirectPushClient, Receiver, new_endpoint
from .webpush import Keys, PushError, check_vapid, decrypt

__all__ = [
    "ApiError",
    "Device",
    "DirectPushClient",
    "Keys",
    "PushError",
    "Receiver",
    "check_vapid",
    "decrypt",
    "new_endpoint",
]
