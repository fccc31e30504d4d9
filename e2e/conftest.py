"""The whole system on one machine (`sympozium up`), driven through the real kubectl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import VENV_BIN, Kubectl, free_port

MAX_RUN_HISTORY = 3
# Scripts the tests add to the double's built-in ones (agent.llmdouble).
DOUBLE_SCRIPTS = """
remember:
  - content: |
      noted
      __SYMPOZIUM_MEMORY__
      - the user likes tea
      __SYMPOZIUM_MEMORY_END__
"""


@dataclass
class System:
    data_dir: Path
    kubeconfig: Path
    process: subprocess.Popen[bytes]
    llm_url: str
    metrics_url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_system(data_dir: Path, extra_args: tuple[str, ...] = ()) -> System:
    data_dir.mkdir(parents=True, exist_ok=True)
    llm_port, metrics_port = free_port(), free_port()
    script = data_dir / "double-scripts.yaml"
    script.write_text(DOUBLE_SCRIPTS)
    log_path = data_dir / "up.log"
    offset = log_path.stat().st_size if log_path.exists() else 0  # a restart appends
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "sympozium"),
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                "--llm-double",
                str(llm_port),
                f"--llm-double-script={script}",
                f"--metrics-bind-address=127.0.0.1:{metrics_port}",
                "--health-probe-bind-address=127.0.0.1:0",
                f"--max-run-history={MAX_RUN_HISTORY}",
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 90
    while b"Sympozium is up" not in log_path.read_bytes()[offset:]:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"sympozium up did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.1)
    return System(
        data_dir,
        data_dir / "kubeconfig",
        process,
        f"http://127.0.0.1:{llm_port}",
        f"http://127.0.0.1:{metrics_port}/metrics",
    )


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start_system(tmp_path_factory.mktemp("sympozium"))
    yield running
    running.stop()


@pytest.fixture
def kubectl(system: System, tmp_path: Path) -> Kubectl:
    return Kubectl(system, tmp_path / "kubectl-cache")  # type: ignore[arg-type]


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    return name


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    found = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if found.returncode != 0:
        if "NotFound" in found.stderr or "not found" in found.stderr:
            return None
        raise AssertionError(found.stderr)
    loaded: dict[str, Any] = json.loads(found.stdout)
    return loaded


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 60, interval: float = 0.2
) -> Any:
    """Polls until `probe` returns something truthy; fails naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def wait_phase(
    kubectl: Kubectl, name: str, namespace: str, phases: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run = get(kubectl, "agentrun", name, namespace)
        if run and (run.get("status") or {}).get("phase") in phases:
            return run
        return None

    found: dict[str, Any] = wait_for(f"agentrun {name} in {phases}", probe, timeout)
    return found
