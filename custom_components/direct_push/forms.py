"""Form pieces shared by the config flow, the import steps and the repairs."""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    FileSelector,
    FileSelectorConfig,
    TextSelector,
    TextSelectorConfig,
)

from .const import CONF_CERTIFICATE_FILE, CONF_KEY_FILE
from .import_files import read_text
from .safe_file import MAX_CERTIFICATE_FILE, MAX_KEY_FILE

MULTILINE: Final = TextSelector(TextSelectorConfig(multiline=True))
KEY_FILE_TYPES: Final = ".p8,.pem,.txt"
CERTIFICATE_FILE_TYPES: Final = ".pem"
# Bytes an upload field takes: HA's file upload takes up to 100 MB.
UPLOAD_LIMITS: Final = {
    CONF_KEY_FILE: MAX_KEY_FILE,
    CONF_CERTIFICATE_FILE: MAX_CERTIFICATE_FILE,
}


def file_selector(accept: str) -> FileSelector:
    """Return an upload field for files of the given types."""
    return FileSelector(FileSelectorConfig(accept=accept))


def read_upload(
    hass: HomeAssistant, file_id: str, *, limit: int, label: str = "upload"
) -> str:
    """Read an uploaded file. Runs in the executor; the upload is consumed.

    Raises ValueError: an unknown file id, InputError (larger than `limit`
    bytes; `label` names the file) or TextEncodingError (not text in UTF-8, or
    UTF-8/16/32 with a byte order mark).
    """
    with process_uploaded_file(hass, file_id) as path:
        return read_text(path, limit=limit, label=label)


async def async_take_upload(
    hass: HomeAssistant, user_input: dict[str, Any], text_key: str, file_key: str
) -> bool:
    """Move an uploaded file's text into the text field; False if unreadable.

    The upload is consumed on reading, so after an error the form shows its text
    instead of a file id that no longer exists.
    """
    if not (file_id := user_input.pop(file_key, None)):
        return True
    try:
        user_input[text_key] = await hass.async_add_executor_job(
            partial(read_upload, hass, file_id, limit=UPLOAD_LIMITS[file_key])
        )
    except (OSError, ValueError):  # ValueError: unknown file id, or not text
        return False
    return True
