"""A real local cluster process for the integration tests, and real clients for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

VENV_BIN = Path(sys.executable).parent
KUBECTL = str(VENV_BIN / "kubectl")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningCluster:
    data_dir: Path
    kubeconfig: Path
    process: subprocess.Popen[bytes]

    @property
    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        return loaded

    @property
    def url(self) -> str:
        return str(self.config["clusters"][0]["cluster"]["server"])

    @property
    def token(self) -> str:
        return str(self.config["users"][0]["user"]["token"])

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_cluster(
    data_dir: Path,
    port: int = 0,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> RunningCluster:
    kubeconfig = data_dir / "kubeconfig"
    if kubeconfig.exists():
        kubeconfig.unlink()
    log = open(data_dir.parent / f"{data_dir.name}.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(VENV_BIN / "sympozium"),
            "localcluster",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while not kubeconfig.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"local cluster did not start (see {log.name})")
        time.sleep(0.05)
    return RunningCluster(data_dir, kubeconfig, process)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    running = start_cluster(tmp_path_factory.mktemp("cluster") / "data")
    yield running
    running.stop()


class Kubectl:
    """The real kubectl, with its own discovery cache so tests never see stale resources."""

    def __init__(self, cluster: RunningCluster, cache_dir: Path) -> None:
        self._cluster = cluster
        self._cache_dir = cache_dir

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            KUBECTL,
            f"--kubeconfig={self._cluster.kubeconfig}",
            f"--cache-dir={self._cache_dir}",
            *args,
        ]
        result = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "KUBECTL_KUBERC": "false"},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        cmd = [
            KUBECTL,
            f"--kubeconfig={self._cluster.kubeconfig}",
            f"--cache-dir={self._cache_dir}",
            *args,
        ]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def kubectl(cluster: RunningCluster, tmp_path: Path) -> Kubectl:
    return Kubectl(cluster, tmp_path / "kubectl-cache")


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    return name
