"""Direct Push's strings as Home Assistant shows them.

The frontend renders most strings with formatjs's ICU MessageFormat (tests/icu/render.mjs
runs that very library); the backend renders exception messages and the import summary
with Python's str.format. test_translations proves that both read every string alike, so
the placeholders Python finds here are the ones the frontend asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
from pathlib import Path
import shutil
import string
import subprocess
from typing import Any

from homeassistant.data_entry_flow import section

ROOT = Path(__file__).resolve().parent.parent
STRINGS_FILE = ROOT / "custom_components/direct_push/translations/en.json"
ICU_DIR = Path(__file__).resolve().parent / "icu"

# ICU quotes a literal brace as '{' and '}'; Python doubles it.
_ICU_TO_PYTHON = {"'{'": "{{", "'}'": "}}"}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return {"config.step.user.title": text, ...} for a nested strings file."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_strings() -> dict[str, str]:
    """Return every string of translations/en.json by its dotted key."""
    return flatten(json.loads(STRINGS_FILE.read_text(encoding="utf-8")))


def as_python_format(text: str) -> str:
    """Return the string in str.format syntax: ICU-quoted braces become doubled."""
    for icu, python in _ICU_TO_PYTHON.items():
        text = text.replace(icu, python)
    return text


def placeholders(text: str) -> set[str]:
    """Return the placeholder names a string uses."""
    return {
        name
        for _, name, _, _ in string.Formatter().parse(as_python_format(text))
        if name is not None
    }


def icu_unavailable() -> str | None:
    """Return why the formatjs check cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed: the ICU check runs formatjs under node"
    if not (ICU_DIR / "node_modules/intl-messageformat").is_dir():
        return "tests/icu has no node_modules: run scripts/setup (it runs npm ci there)"
    return None


def icu_render(strings: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Parse and format each string with formatjs, as the frontend's localize() does."""
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(  # noqa: S603 -- node and our own script
        [node, str(ICU_DIR / "render.mjs")],
        input=json.dumps(dict(strings)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return result


class StringsCheck:
    """Collects each shown string that is missing or lacks a placeholder it uses.

    Like HA core's own check_translations test fixture: every form, menu, abort, error,
    repair issue and exception of Direct Push that a test produces must have its string,
    and must be given every placeholder that string uses.
    """

    def __init__(self, domain: str) -> None:
        """Load the strings."""
        self.domain = domain
        self.strings = load_strings()
        self.problems: list[str] = []
        # issue_id -> (translation_key, placeholders), for repair flows.
        self._issues: dict[str, tuple[str, Mapping[str, Any]]] = {}

    def need(
        self,
        key: str,
        given: Mapping[str, Any] | None,
        *,
        required: bool = True,
    ) -> None:
        """Check one string: it exists (when required) and gets its placeholders."""
        text = self.strings.get(key)
        if text is None:
            if required:
                self.problems.append(f"no string {key}")
            return
        if missing := placeholders(text) - set(given or {}):
            self.problems.append(
                f"{key} uses {sorted(missing)}, not given (given: {sorted(given or {})})"
            )

    def issue(
        self,
        domain: str,
        issue_id: str,
        translation_key: str,
        placeholders_given: Mapping[str, Any] | None,
    ) -> None:
        """Check a repair issue's title and description."""
        if domain != self.domain:
            return
        self._issues[issue_id] = (translation_key, placeholders_given or {})
        self.need(f"issues.{translation_key}.title", placeholders_given)
        self.need(
            f"issues.{translation_key}.description", placeholders_given, required=False
        )

    def exception(self, key: str, placeholders_given: Mapping[str, Any] | None) -> None:
        """Check an exception's message."""
        self.need(f"exceptions.{key}.message", placeholders_given)

    def flow_result(
        self,
        prefix: str,
        result: Mapping[str, Any],
        inherited: Mapping[str, Any] | None = None,
    ) -> None:
        """Check what one step of a flow shows.

        A repair flow's strings also get its issue's placeholders (inherited): the
        frontend merges them in.
        """
        given = {**(inherited or {}), **(result.get("description_placeholders") or {})}
        kind = str(result["type"])
        if kind == "abort":
            self.need(f"{prefix}.abort.{result['reason']}", given)
            return
        if kind not in ("form", "menu"):
            return
        step = f"{prefix}.step.{result['step_id']}"
        self.need(f"{step}.title", given, required=False)
        self.need(f"{step}.description", given, required=False)
        for error in (result.get("errors") or {}).values():
            self.need(f"{prefix}.error.{error}", given)
        for option in result.get("menu_options") or ():
            self.need(f"{step}.menu_options.{option}", given)
        if kind == "form" and (schema := result.get("data_schema")) is not None:
            self._fields(step, schema.schema, given)

    def _fields(
        self, prefix: str, fields: Mapping[Any, Any], given: Mapping[str, Any]
    ) -> None:
        """Check the label (and any description) of each field, sections included."""
        for field, value in fields.items():
            if isinstance(value, section):
                self.need(f"{prefix}.sections.{field}.name", given)
                self._fields(f"{prefix}.sections.{field}", value.schema.schema, given)
                continue
            self.need(f"{prefix}.data.{field}", given)
            self.need(f"{prefix}.data_description.{field}", given, required=False)

    def repair(self, issue_id: str, result: Mapping[str, Any]) -> None:
        """Check what one step of the repair flow of an issue shows."""
        if (issue := self._issues.get(issue_id)) is None:
            self.problems.append(
                f"a repair flow for {issue_id}, which was never raised"
            )
            return
        key, inherited = issue
        self.flow_result(f"issues.{key}.fix_flow", result, inherited)
