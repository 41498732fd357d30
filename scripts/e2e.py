"""Walk every screen Direct Push adds, in headless Chromium, on the demo of scripts/develop.

scripts/e2e runs this: it starts the demo in a fresh folder on a free port with
DEMO_SETUP=ui, completes onboarding, then goes through Direct Push as a user would,
checking every screen for "Translation error" and raw translation keys and saving a
screenshot of each into .e2e-screenshots/ (a failing screen as FAILED-<step>.png). Pushes
must arrive at the local servers of scripts/dev_servers.py, named by the hub's device
names. At the end, Home Assistant's log must hold no ERROR line.

    python scripts/e2e.py [--attach URL --demo FOLDER --output FILE]
--attach walks a demo that is already running (DEMO_SETUP=ui, not yet onboarded).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
import contextlib
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from playwright.sync_api import Locator, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / ".e2e-screenshots"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
USER, PASSWORD = "demo", "demo"
DOORBELL_BLUEPRINT = "Direct Push \u2013 Doorbell"  # the blueprint's name (an en dash)
# Each screen's text, shadow roots included: the frontend renders into them.
PAGE_TEXT = """() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) out.push(node.textContent);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return out.join(" ");
}"""
# Direct Push and the libraries it logs through (manifest.json's loggers).
OUR_LOGGERS = re.compile(r"\[(custom_components\.direct_push|aioapns|pywebpush)")
BROKEN_TEXT = re.compile(
    r"Translation error|Translation Error|component\.direct_push\.|\[%key:"
)


class Demo:
    """scripts/develop in a subprocess; its output (push lines included) collected."""

    def __init__(self, folder: Path, port: int) -> None:
        """Start the demo."""
        self.folder, self.port = folder, port
        self.lines: list[str] = []
        env = {**os.environ, "DEMO_CONFIG": str(folder), "DEMO_PORT": str(port)}
        env["DEMO_SETUP"] = "ui"
        self._log = (SHOTS / "develop.log").open("w", encoding="utf-8")
        self.process = subprocess.Popen(  # noqa: S603 -- our own script
            [ROOT / "scripts/develop"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._log.write(line)
            self._log.flush()

    def stop(self) -> None:
        """Stop Home Assistant as Ctrl-C does; the servers stop with it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Walk:
    """The browser session and its checks."""

    def __init__(self, page: Page, base: str, output: Callable[[], list[str]]) -> None:
        """Keep the page; output returns the demo's output lines so far."""
        self.page, self.base, self.output = page, base, output
        self.count = 0
        self.step = "start"

    @contextlib.contextmanager
    def screen(self, step: str) -> Iterator[None]:
        """Name the current step: a failure saves FAILED-<step>.png."""
        self.step = step
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.page.screenshot(path=SHOTS / f"FAILED-{step}.png")
            raise

    def check(self, name: str) -> None:
        """Screenshot the screen and fail on broken strings."""
        self.page.wait_for_timeout(400)  # let late strings render
        self.count += 1
        self.page.screenshot(path=SHOTS / f"{self.count:02d}-{name}.png")
        text = self.page.evaluate(PAGE_TEXT)
        if match := BROKEN_TEXT.search(text):
            around = text[max(match.start() - 120, 0) : match.end() + 120]
            raise AssertionError(f"{name}: broken string: …{' '.join(around.split())}…")

    def wait_output(self, pattern: str, after: int = 0, timeout: float = 30) -> str:
        """Wait for a line of the demo's output (from line index after) to match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output()[after:]:
                if regex.search(line):
                    return line
            time.sleep(0.2)
        raise AssertionError(f"no output line matched {pattern!r} in {timeout} s")

    def goto(self, path: str) -> None:
        """Open a page of the frontend."""
        self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("networkidle")

    def button(self, name: str | re.Pattern[str]) -> Locator:
        """Return the visible button with this name."""
        return self.page.get_by_role("button", name=name).locator("visible=true").first

    def dialog(self) -> Locator:
        """Return the open dialog."""
        return self.page.locator("ha-dialog[open]").last


def onboard(walk: Walk) -> None:
    """Home Assistant's onboarding, as a new user does it."""
    page = walk.page
    walk.goto("/")
    walk.check("onboarding-welcome")
    walk.button("Create my smart home").click()
    for field, value in (
        ("name", "Demo"),
        ("username", USER),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ):
        page.locator(f"input[name={field}]").fill(value)
    walk.check("onboarding-user")
    walk.button("Create account").click()
    for step in ("location", "country", "analytics", "done"):
        page.wait_for_timeout(1500)
        walk.check(f"onboarding-{step}")
        walk.button(re.compile("^(Next|Finish)$")).click()
    page.wait_for_url(re.compile(r"/home|/lovelace"), timeout=30_000)


def log_in(walk: Walk) -> None:
    """Log in as the demo user (for --attach after onboarding)."""
    walk.goto("/")
    walk.page.locator("input[name=username]").fill(USER)
    walk.page.locator("input[name=password]").fill(PASSWORD)
    walk.button("Log in").click()
    walk.page.wait_for_url(re.compile(r"/home|/lovelace"), timeout=30_000)


def open_add_integration(walk: Walk) -> Locator:
    """Settings → Devices & services → Add integration → Direct Push; return the dialog."""
    walk.goto("/config/integrations/dashboard")
    walk.button("Add integration").click()
    walk.page.get_by_placeholder("Search for a brand name").fill("Direct Push")
    walk.page.get_by_text("Direct Push", exact=True).locator(
        "visible=true"
    ).first.click()
    dialog = walk.dialog()
    expect(dialog.get_by_text("Connect to Apple's push service")).to_be_visible()
    return dialog


def close_dialog(walk: Walk) -> None:
    """Close the open flow dialog."""
    walk.dialog().get_by_role("button", name=re.compile("Close|Dismiss")).first.click()
    walk.page.wait_for_timeout(500)


def add_integration_menu(walk: Walk) -> None:
    """The menu, and the form behind each of its options."""
    open_add_integration(walk)
    walk.check("add-integration-menu")
    close_dialog(walk)
    for option, title in (
        ("Signing key (.p8)", "Signing key"),
        ("Push certificate (.pem)", "Push certificate"),
        (re.compile("^Web Push only"), "Web Push only"),
        (
            "Upload the files of an apple_push folder",
            "Upload the files of an apple_push folder",
        ),
        ("Import an existing apple_push folder", "Import an apple_push folder"),
    ):
        dialog = open_add_integration(walk)
        dialog.get_by_text(option).first.click()
        expect(dialog.get_by_text(title, exact=True)).to_be_visible()
        walk.check(f"add-integration-{title.lower().replace(' ', '-')}")
        close_dialog(walk)


def import_folder(walk: Walk) -> None:
    """Import the apple_push folder that scripts/dev_servers.py writes: the hub is made."""
    dialog = open_add_integration(walk)
    dialog.get_by_text("Import an existing apple_push folder").click()
    dialog.locator("input[name=folder]").fill("dev/apple_push")
    dialog.get_by_role("button", name="Submit").click()
    expect(dialog.get_by_text("Check the import", exact=True)).to_be_visible()
    expect(dialog.get_by_text("Alice's iPhone")).to_be_visible()
    walk.check("import-summary")
    dialog.get_by_role("button", name="Submit").click()
    # The flow's end: name the new devices and give them areas.
    expect(dialog.get_by_text("Name and assign", exact=True)).to_be_visible()
    expect(dialog.locator("input").nth(3)).to_have_value("Old iPad")
    walk.check("import-done")
    dialog.get_by_role("button", name=re.compile("finish", re.IGNORECASE)).click()


def open_hub(walk: Walk) -> None:
    """Open the integration page once it shows the hub.

    Opened again after a change to the hub, the page may show "No entries"
    until it is loaded afresh.
    """
    for _ in range(3):
        walk.goto("/config/integrations/integration/direct_push")
        try:
            expect(walk.button("Configure")).to_be_visible(timeout=10_000)
        except AssertionError:
            walk.page.reload()
        else:
            return
    expect(walk.button("Configure")).to_be_visible()


def hub_page(walk: Walk) -> None:
    """The integration page, the hub's devices, and one device's page."""
    open_hub(walk)
    expect(walk.page.get_by_text("Old iPad").first).to_be_visible()
    walk.check("hub")
    walk.page.get_by_text("Alice's iPhone").nth(1).click()
    walk.page.wait_for_url(re.compile("/config/devices/device/"))
    expect(walk.page.get_by_text("Device info").first).to_be_visible()
    walk.check("device")
    device_url = walk.page.url
    walk.page.get_by_role("link", name="Direct Push").first.click()  # "Connected via"
    walk.page.wait_for_url(
        lambda url: url != device_url and "/config/devices/device/" in url
    )
    expect(walk.page.get_by_text("Connected devices").first).to_be_visible()
    walk.check("hub-device")


def fill(form: Locator, values: dict[str, str]) -> None:
    """Type into a flow form's fields by their keys."""
    for key, value in values.items():
        form.locator(f"input[name={key}], textarea[name={key}]").first.fill(value)


def add_device(walk: Walk, kind: str, title: str, values: dict[str, str]) -> None:
    """Add a device with the hub's button for its kind; values fill the form."""
    open_hub(walk)
    walk.button(f"Add {kind}").click()
    dialog = walk.dialog()
    expect(dialog.get_by_text(title).first).to_be_visible()
    shot = f"add-{kind.lower().replace(' ', '-')}"
    walk.check(shot)
    fill(dialog, values)
    dialog.get_by_role("button", name="Submit").click()
    expect(
        dialog.get_by_text(f"Created configuration for {values['name']}")
    ).to_be_visible()
    walk.check(f"{shot}-done")
    dialog.get_by_role("button", name="Finish").click()
    expect(walk.page.get_by_text(values["name"]).first).to_be_visible()


def add_apple_device(walk: Walk) -> None:
    """Add Apple device on the hub: a new phone by its token."""
    add_device(
        walk,
        "Apple device",
        "Add an Apple device",
        {"name": "Carol's iPhone", "token": "c3" * 32},
    )


def add_webpush_device(walk: Walk) -> None:
    """Add Web Push device on the hub, pasting the subscription dev_servers.py printed."""
    output = walk.output()
    at = output.index(walk.wait_output("Add Web Push device, and paste"))
    add_device(
        walk,
        "Web Push device",
        "Add a Web Push device",
        {"name": "Tablet", "subscription": output[at + 1]},
    )


def options(walk: Walk) -> None:
    """The hub's options: message defaults, and the reporter group, which needs MQTT."""
    open_hub(walk)
    walk.button("Configure").click()
    dialog = walk.dialog()
    expect(dialog.get_by_text("Default sound").first).to_be_visible()
    walk.check("options")
    dialog.get_by_text("Reporter group (several Home Assistants)").click()
    group = dialog.locator("input[name=group]")
    expect(group).to_be_visible()
    walk.check("options-reporter-group")
    # The demo has no MQTT: the form says what is missing, and keeps nothing.
    group.fill("home")
    dialog.get_by_role("button", name="Submit").click()
    expect(dialog.get_by_text("set it up first").first).to_be_visible()
    walk.check("options-reporter-needs-mqtt")
    dialog.get_by_text(
        "Reporter group (several Home Assistants)"
    ).click()  # collapsed again
    group.fill("")
    dialog.get_by_role("button", name="Submit").click()
    expect(dialog).to_be_hidden()


def send_message(walk: Walk, text: str, *, screenshots: bool = False) -> int:
    """Developer tools → Actions → Direct Push: Send, performed with this message.

    Return the index of the first line of the demo's output after it.
    """
    page = walk.page
    walk.goto("/developer-tools/action")
    described = page.get_by_text("Sends a push notification").first
    # The tool keeps the last action chosen; a fresh one asks for it.
    described.or_(page.get_by_text("Action", exact=True).last).wait_for()
    if not described.is_visible():
        page.get_by_text("Action", exact=True).last.click()
        page.get_by_placeholder("Search", exact=True).locator("visible=true").fill(
            "direct_push.send"
        )
        page.get_by_text("direct_push.send").first.click()
    expect(described).to_be_visible()
    if screenshots:
        walk.check("action-send")
        page.get_by_text("Actions", exact=True).last.scroll_into_view_if_needed()
        walk.check("action-send-fields")
    page.locator("textarea").first.fill(text)
    after = len(walk.output())
    walk.button("Perform action").click()
    response = page.get_by_text("deliveries").first
    expect(response).to_be_visible()
    if screenshots:
        response.scroll_into_view_if_needed()
        walk.check("action-send-response")
    return after


def perform_send(walk: Walk) -> None:
    """The action, performed in Developer tools; each device's push arrives."""
    text = "Hello from the browser test"
    after = send_message(walk, text, screenshots=True)
    walk.wait_output(rf"APNs → Alice's iPhone: .*\"body\": \"{text}\"", after)
    walk.wait_output(rf"APNs → Carol's iPhone: .*\"body\": \"{text}\"", after)
    walk.wait_output(rf"Web Push → Tablet \(.*\): .*\"message\": \"{text}\"", after)
    walk.wait_output(r"APNs refused → Old iPad: 410 Unregistered", after)


# The text inputs of the page, shadow roots included, each with its value.
FIND_INPUT = """(value) => {
  const walk = (node) => {
    if ((node.tagName === "INPUT" || node.tagName === "TEXTAREA") && node.value === value)
      return node;
    for (const child of [node.shadowRoot, ...node.children].filter(Boolean)) {
      const found = walk(child);
      if (found) return found;
    }
    return null;
  };
  return walk(document.documentElement);
}"""


def replace_text(page: Page, old: str, new: str) -> None:
    """Type new into the text field that holds old (the field has no usable name).

    Blueprint inputs render again after each change: retry until the new text stays
    and the old is gone.
    """
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        field = page.evaluate_handle(FIND_INPUT, old).as_element()
        if field is None:
            if page.evaluate_handle(FIND_INPUT, new).as_element() is not None:
                return
        else:
            with contextlib.suppress(Exception):  # replaced while typing: try again
                field.fill(new)
        page.wait_for_timeout(500)
    raise AssertionError(f"could not replace {old!r} with {new!r}")


def pick_entity(walk: Walk, picker: Locator, search: str, kind: str) -> None:
    """Choose an entity in an entity picker: search, then its row (named by kind)."""
    picker.click()
    walk.page.get_by_placeholder("Search", exact=True).locator("visible=true").fill(
        search
    )
    walk.page.locator("ha-combo-box-item").filter(has_text=kind).first.click()


def press_doorbell(walk: Walk) -> None:
    """Press the demo's doorbell in its more-info dialog."""
    walk.goto("/config/entities")
    walk.page.get_by_placeholder("Search").locator("visible=true").first.fill(
        "input_button.doorbell"
    )
    walk.page.get_by_text("Doorbell", exact=True).locator("visible=true").first.click()
    walk.button("Press").click()


def blueprint_automation(walk: Walk) -> None:
    """A new automation from the doorbell blueprint, saved and triggered by a ring."""
    page = walk.page
    walk.goto("/config/blueprint/dashboard")
    expect(page.get_by_text(DOORBELL_BLUEPRINT).first).to_be_visible()
    walk.check("blueprints")
    page.get_by_text(DOORBELL_BLUEPRINT).first.click()
    page.wait_for_url(re.compile("/config/automation/edit/new"))
    # Doorbell buttons: the third entity picker of the blueprint's inputs.
    pick_entity(
        walk,
        page.locator("ha-selector-entity").nth(2),
        "input_button.doorbell",
        "Input button",
    )
    replace_text(page, "Someone is at the door", "Ring from the browser test")
    walk.check("blueprint-automation")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Traces").first).to_be_visible()
    after = len(walk.output())
    press_doorbell(walk)
    walk.check("doorbell-pressed")
    walk.wait_output(r"APNs → Alice's iPhone: .*Ring from the browser test", after)
    walk.wait_output(r"Web Push → Tablet \(.*\): .*Ring from the browser test", after)


def repair(walk: Walk) -> None:
    """The repair raised for the inactive Old iPad, fixed with a new token."""
    page = walk.page
    walk.goto("/config/repairs")
    issue = page.get_by_text("Old iPad no longer receives pushes").first
    expect(issue).to_be_visible()
    walk.check("repairs")
    issue.click()
    dialog = walk.dialog()
    expect(dialog.get_by_text("Reconnect the device").first).to_be_visible()
    walk.check("repair-fix-flow")
    fill(dialog, {"token": "be" * 32})
    dialog.get_by_role("button", name="Submit").click()
    expect(
        dialog.get_by_text(re.compile("Success|fixed", re.IGNORECASE)).first
    ).to_be_visible()
    walk.check("repair-fixed")
    dialog.get_by_role(
        "button", name=re.compile("Close|Finish|OK", re.IGNORECASE)
    ).first.click()
    expect(page.get_by_text("Old iPad no longer receives pushes")).to_have_count(0)
    walk.check("repairs-empty")
    # The next push reaches the Old iPad again, by its new token.
    after = send_message(walk, "After the repair")
    walk.wait_output(r"APNs → Old iPad: .*After the repair", after)


STEPS: dict[str, Callable[[Walk], None]] = {
    "add-integration-menu": add_integration_menu,
    "import-folder": import_folder,
    "hub": hub_page,
    "add-apple-device": add_apple_device,
    "add-webpush-device": add_webpush_device,
    "options": options,
    "action-send": perform_send,
    "blueprint-automation": blueprint_automation,
    "repair": repair,
}


def walk_demo(walk: Walk, first: str | None) -> None:
    """Every step, in the order a new user takes them (from first, after a log-in)."""
    if first is None:
        with walk.screen("onboarding"):
            onboard(walk)
    else:
        log_in(walk)
    names = list(STEPS)
    for name in names[names.index(first) if first else 0 :]:
        with walk.screen(name):
            STEPS[name](walk)


def free_port() -> int:
    """Return a TCP port that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(base: str, timeout: float = 300) -> None:
    """Wait until Home Assistant answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"{base}/api/onboarding"
        # S310: an http URL of the demo, never a file.
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=5) as answer,  # noqa: S310
        ):
            if answer.status == 200:
                return
        time.sleep(1)
    raise AssertionError(f"Home Assistant did not answer at {base} in {timeout} s")


def log_errors(folder: Path) -> list[str]:
    """Return the ERROR lines of Home Assistant's log so far."""
    log = folder / "home-assistant.log"
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if " ERROR " in line]


def main() -> int:
    """Run the walk; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attach", help="the URL of a running demo (DEMO_SETUP=ui)")
    parser.add_argument("--demo", type=Path, help="that demo's folder")
    parser.add_argument("--output", type=Path, help="that demo's output, as a file")
    parser.add_argument(
        "--from", dest="first", help="with --attach: log in, start at this step"
    )
    args = parser.parse_args()
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir()
    started = time.monotonic()
    demo = None
    if args.attach:
        if args.demo is None or args.output is None:
            parser.error("--attach needs --demo and --output")
        base, folder = args.attach.rstrip("/"), args.demo

        def lines() -> list[str]:
            return args.output.read_text(encoding="utf-8").splitlines()

    else:
        folder = Path(tempfile.mkdtemp(prefix="direct-push-e2e-"))
        demo = Demo(folder, free_port())
        base = f"http://127.0.0.1:{demo.port}"
        lines = lambda: demo.lines  # noqa: E731
    status = 1
    try:
        wait_for_http(base)
        print(
            f"e2e: Home Assistant answers after {time.monotonic() - started:.0f} s",
            flush=True,
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            # Service workers reload HA's pages mid-test: block them.
            context = browser.new_context(
                service_workers="block", viewport={"width": 1280, "height": 1200}
            )
            context.set_default_timeout(20_000)
            walk = Walk(context.new_page(), base, lines)
            try:
                walk_demo(walk, args.first)
            except Exception as err:
                print(f"e2e: FAILED at {walk.step}: {err}", file=sys.stderr)
                raise
            finally:
                browser.close()
        status = 0
    finally:
        # The walk must log no ERROR. Stopping may: another integration's setup that is
        # still retrying without internet (radio_browser) logs its cancellation. There,
        # only Direct Push's own errors count.
        errors = log_errors(folder)
        if demo is not None:
            demo.stop()
            errors += [
                line
                for line in log_errors(folder)[len(errors) :]
                if OUR_LOGGERS.search(line)
            ]
        if (folder / "home-assistant.log").exists():
            shutil.copy(folder / "home-assistant.log", SHOTS / "home-assistant.log")
        if errors:
            print("e2e: ERROR lines in the log:\n" + "\n".join(errors))
            status = 1
        if demo is not None and status == 0:
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"e2e: {'passed' if status == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s;"
        f" screenshots in {SHOTS}",
        flush=True,
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
