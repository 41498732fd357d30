"""A real MQTT broker for tests: Debian's mosquitto on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

START_TIMEOUT = 10.0


def _find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").is_file():
        found = "/usr/sbin/mosquitto"  # /usr/sbin is often not on a user's PATH
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Broker:
    """A mosquitto process; restart() keeps its port so clients can reconnect."""

    def __init__(self, executable: str) -> None:
        """Prepare a broker on a free port; start() runs it."""
        self._executable = executable
        self._folder = tempfile.TemporaryDirectory(prefix="mosquitto-")
        self.port = _free_port()
        self.config = Path(self._folder.name) / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
        )
        self._log = Path(self._folder.name) / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        assert self._process is None, "already running"
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own fixed command
                [self._executable, "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        log_text = self._log.read_text(errors="replace")
        self.stop()
        pytest.fail(f"mosquitto did not listen on 127.0.0.1:{self.port}:\n{log_text}")

    def stop(self) -> None:
        """Stop the broker; what it retained is gone (persistence is off)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """Return whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """Stop the broker and remove its folder."""
        self.stop()
        self._folder.cleanup()


@pytest.fixture
def mosquitto(socket_enabled: None) -> Iterator[Broker]:
    """A started broker on 127.0.0.1:<broker.port>, stopped after the test."""
    executable = _find_mosquitto()
    if executable is None:
        pytest.fail(
            "mosquitto is not installed: run `apt-get install mosquitto` "
            "(CI installs it); the MQTT tests need a real broker"
        )
    broker = Broker(executable)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
