"""Refused input as Home Assistant shows it: one mapping, for actions and forms.

The checks (validation, json_input, endpoint_policy, names, message) raise an
InputError or a MessageError that carries a translation key and its
placeholders. An action turns one into a ServiceValidationError, a form into an
error next to the field it names; nothing else builds either from a refusal.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from homeassistant.exceptions import ServiceValidationError

from .const import DOMAIN
from .message import MessageError
from .validation import InputError


def service_validation_error(err: InputError | MessageError) -> ServiceValidationError:
    """Return what an action shows for a refusal: its message names the field."""
    placeholders = dict(err.placeholders)
    if isinstance(err, InputError):
        placeholders.setdefault("field", err.field)
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=err.key,
        translation_placeholders=placeholders or None,
    )


@contextmanager
def refused_as_service_error() -> Iterator[None]:
    """Raise a refusal inside as the ServiceValidationError an action shows."""
    try:
        yield
    except (InputError, MessageError) as err:
        raise service_validation_error(err) from err


@dataclass(slots=True)
class FormErrors:
    """A form's errors by field, and the placeholders their messages use.

    The frontend formats a form's errors with the form's description
    placeholders, so a form shows `{**its own, **placeholders}`.
    """

    errors: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """Return True when the form has an error."""
        return bool(self.errors)

    def add(self, field: str, key: str) -> None:
        """Put an error without placeholders on a field ("base": the whole form)."""
        self.errors[field] = key

    def refuse(self, err: InputError, fields: Container[str] | None = None) -> None:
        """Put a refusal on its field, or on the whole form if it has no such field."""
        on = err.field if fields is None or err.field in fields else "base"
        self.errors[on] = err.key
        self.placeholders.update(err.placeholders)

    @contextmanager
    def collect(self, fields: Container[str] | None = None) -> Iterator[None]:
        """Record a refusal raised inside, instead of raising it."""
        try:
            yield
        except InputError as err:
            self.refuse(err, fields)
