"""`sympozium up` itself: it prints where its kubeconfig is, stops cleanly on SIGTERM,
and keeps the cluster's state across a restart on the same data directory."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import yaml

from e2e.conftest import start_system, wait_phase
from e2e.test_agentrun import agent_run, apply, instance
from tests.integration.conftest import Kubectl


def api_port(kubeconfig: Path) -> int:
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    return int(server.rsplit(":", 1)[1])


def accepting(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_up_stops_cleanly_and_restarts_with_its_state(tmp_path: Path) -> None:
    # Relative, as `make run` passes it: pods must still find their volumes.
    data_dir = Path(os.path.relpath(tmp_path / "system"))
    first = start_system(data_dir)
    kubectl = Kubectl(first, tmp_path / "kubectl-cache")  # type: ignore[arg-type]
    try:
        assert (
            f"export KUBECONFIG={first.kubeconfig.resolve()}" in (data_dir / "up.log").read_text()
        )
        kubectl("create", "namespace", "kept")
        apply(kubectl, "kept", instance(), agent_run(first, "before", "instant"))
        assert (
            wait_phase(kubectl, "before", "kept", ("Succeeded", "Failed"))["status"]["phase"]
            == "Succeeded"
        )
        port = api_port(first.kubeconfig)
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=60) == 0
        assert not accepting(port), "the local cluster outlived sympozium up"
    finally:
        first.stop()

    second = start_system(data_dir)
    kubectl = Kubectl(second, tmp_path / "kubectl-cache-2")  # type: ignore[arg-type]
    try:
        kept = wait_phase(kubectl, "before", "kept", ("Succeeded",))
        assert kept["status"]["result"] == "done"
        apply(kubectl, "kept", agent_run(second, "after", "instant"))
        assert (
            wait_phase(kubectl, "after", "kept", ("Succeeded", "Failed"))["status"]["phase"]
            == "Succeeded"
        )
    finally:
        second.stop()
    assert second.process.returncode == 0
