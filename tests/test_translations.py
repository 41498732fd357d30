"""Every string reads as the frontend reads it, and every string the UI asks for exists.

The frontend parses strings as ICU MessageFormat with formatjs (tests/icu/render.mjs runs
it under node); where node is missing, the ICU tests skip and say so. Which placeholders
each string gets at run time is checked in every test by the check_strings fixture.
"""

from __future__ import annotations

from typing import Any

from homeassistant.data_entry_flow import section
import pytest
import voluptuous as vol
import yaml

from .frontend_strings import (
    ROOT,
    StringsCheck,
    as_python_format,
    icu_render,
    icu_unavailable,
    load_strings,
    placeholders,
)

SERVICES_FILE = ROOT / "custom_components/direct_push/services.yaml"
# Rendered by the backend with str.format only: ICU quoting would show as apostrophes.
BACKEND_RENDERED = ("exceptions.", "selector.import_note.", "selector.import_summary.")

requires_icu = pytest.mark.skipif(
    icu_unavailable() is not None, reason=icu_unavailable() or ""
)


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    """The frontend's reading of every string."""
    return icu_render(load_strings())


@requires_icu
def test_the_frontend_parses_every_string(rendered: dict[str, dict[str, Any]]) -> None:
    errors = {key: got["error"] for key, got in rendered.items() if "error" in got}
    assert errors == {}


@requires_icu
def test_placeholders_are_plain(rendered: dict[str, dict[str, Any]]) -> None:
    """No plural, select, number or tag syntax: the backend could not render it."""
    other = {key: got["other"] for key, got in rendered.items() if got.get("other")}
    assert other == {}


@requires_icu
def test_the_frontend_and_python_read_each_string_alike(
    rendered: dict[str, dict[str, Any]],
) -> None:
    """Same placeholders, same text: a quoted brace is the only escape, as '{'x'}'."""
    differ = {}
    for key, text in load_strings().items():
        names = placeholders(text)
        try:
            python = as_python_format(text).format_map({n: f"<{n}>" for n in names})
        except (KeyError, IndexError, ValueError) as err:
            python = f"str.format fails: {err!r}"
        got = rendered[key]
        if got.get("formatted") != python or set(got.get("arguments", ())) != names:
            differ[key] = (got.get("formatted"), python)
    assert differ == {}


def test_backend_rendered_strings_quote_nothing() -> None:
    quoted = [
        key
        for key, text in load_strings().items()
        if key.startswith(BACKEND_RENDERED) and as_python_format(text) != text
    ]
    assert quoted == []


@requires_icu
@pytest.mark.parametrize(
    ("text", "error"),
    [
        # The action's description as it was: the frontend showed "Translation error".
        ("a list of {action, title, url}.", "INVALID_ARGUMENT_TYPE"),
        ('Paste it: {"endpoint": …}.', "MALFORMED_ARGUMENT"),
        ("an unclosed {name", "EXPECT_ARGUMENT_CLOSING_BRACE"),
    ],
)
def test_the_check_catches_what_the_frontend_refuses(text: str, error: str) -> None:
    assert icu_render({"text": text})["text"] == {"error": error}


@requires_icu
def test_the_check_catches_a_quoted_placeholder() -> None:
    """'{name}' is a literal in ICU: the placeholder would never be filled in."""
    text = "The device '{name}' is gone."
    assert (
        icu_render({"text": text})["text"]["formatted"] == "The device {name} is gone."
    )
    assert as_python_format(text).format(name="<name>") != "The device {name} is gone."


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(SERVICES_FILE.read_text(encoding="utf-8"))
    # An action without fields is a bare key in services.yaml.
    return {name: spec or {} for name, spec in services.items()}


def test_every_action_and_field_has_its_strings() -> None:
    strings = load_strings()
    missing = []
    for service, spec in _services().items():
        keys = [f"services.{service}.name", f"services.{service}.description"]
        for field in spec.get("fields", {}):
            keys += [
                f"services.{service}.fields.{field}.name",
                f"services.{service}.fields.{field}.description",
            ]
        missing += [key for key in keys if key not in strings]
    assert missing == []


def test_every_selector_option_has_its_string() -> None:
    strings = load_strings()
    missing = [
        f"selector.{selector['translation_key']}.options.{option}"
        for spec in _services().values()
        for field in spec.get("fields", {}).values()
        if (selector := field.get("selector", {}).get("select"))
        and "translation_key" in selector
        for option in selector["options"]
        if f"selector.{selector['translation_key']}.options.{option}" not in strings
    ]
    assert missing == []


def test_alerts_need_a_message_and_the_ui_says_so() -> None:
    """The UI marks message required: alerts, the default push type, need one."""
    assert _services()["send"]["fields"]["message"]["required"] is True


def test_the_strings_check_reports_what_the_ui_would_show_broken() -> None:
    """The check every test runs: missing strings and placeholders, sections too."""
    check = StringsCheck("direct_push")
    check.strings = {
        "config.step.pick.title": "Hello {name}",
        "config.step.pick.data.a": "A",
        "config.step.pick.sections.extra.name": "Extra",
        "config.error.bad": "Cannot read {file}",
    }
    schema = vol.Schema(
        {
            vol.Required("a"): str,
            vol.Required("extra"): section(vol.Schema({vol.Optional("b"): str})),
        }
    )
    check.flow_result(
        "config",
        {
            "type": "form",
            "step_id": "pick",
            "data_schema": schema,
            "errors": {"base": "bad"},
            "description_placeholders": {"name": "x"},
        },
    )
    check.flow_result("config", {"type": "abort", "reason": "gone"})
    assert check.problems == [
        "config.error.bad uses ['file'], not given (given: ['name'])",
        "no string config.step.pick.sections.extra.data.b",
        "no string config.abort.gone",
    ]
