"""AgentRun latency and throughput on one machine: created → Succeeded, and runs/s.

Starts `sympozium up` (local cluster, CRDs, controller-manager, scripted LLM double) as a
user would, then creates AgentRuns whose model answers at once (`instant`): first one at
a time (latency, p50/p99), then a stream with 20 in flight (sustained runs/s). Prints
figures; never asserts. The original reports 5-30 s cold starts per run on a cluster.

    .venv/bin/python bench/agentruns.py [--sequential 20] [--runs 100] [--in-flight 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stats import percentile

from controller import Client

AGENT_RUN = ("sympozium.ai/v1alpha1", "AgentRun")
INSTANCE = ("sympozium.ai/v1alpha1", "SympoziumInstance")
NAMESPACE = "default"
TERMINAL = ("Succeeded", "Failed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_system(workdir: Path, llm_port: int) -> asyncio.subprocess.Process:
    log_path = workdir / "up.log"
    log = await asyncio.to_thread(open, log_path, "ab")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "sympozium"),
        "up",
        "--data-dir",
        str(workdir),
        "--port",
        "0",
        "--llm-double",
        str(llm_port),
        "--metrics-bind-address=0",
        "--health-probe-bind-address=0",
        "--max-run-history=10000",
        "--workers=8",
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 90
    while b"Sympozium is up" not in await asyncio.to_thread(log_path.read_bytes):
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"sympozium up did not start; see {log_path}")
        await asyncio.sleep(0.1)
    return process


def agent_run(name: str, llm_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "sympozium.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "instanceRef": "bench",
            "agentId": "primary",
            "sessionKey": name,
            "task": "answer at once",
            "model": {
                "provider": "openai",
                "model": "instant",
                "baseURL": f"{llm_url}/v1",
                "authSecretRef": "",
            },
        },
    }


class Finishes:
    """When each run was first seen terminal, from one watch."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.phase: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def follow(self, client: Client) -> None:
        rv = (await client.list(AGENT_RUN, NAMESPACE)).resource_version
        while True:
            async for event in client.watch(
                AGENT_RUN, NAMESPACE, resource_version=rv, timeout_seconds=300
            ):
                rv = event.object["metadata"].get("resourceVersion", rv)
                phase = (event.object.get("status") or {}).get("phase")
                name = event.object["metadata"]["name"]
                if phase in TERMINAL and name not in self.at:
                    self.at[name] = time.perf_counter()
                    self.phase[name] = phase
                    self.changed.set()

    async def wait(self, name: str, patience: float) -> None:
        deadline = time.monotonic() + patience
        while name not in self.at and time.monotonic() < deadline:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)


async def measure(args: argparse.Namespace, kubeconfig: Path, llm_url: str) -> dict[str, Any]:
    client = await Client.connect(kubeconfig=str(kubeconfig))
    finishes = Finishes()
    watcher = asyncio.create_task(finishes.follow(client))
    created: dict[str, float] = {}
    try:
        await client.create(
            {
                "apiVersion": "sympozium.ai/v1alpha1",
                "kind": "SympoziumInstance",
                "metadata": {"name": "bench", "namespace": NAMESPACE},
                "spec": {"agents": {"default": {"model": "instant"}}, "memory": {"enabled": False}},
            }
        )
        await asyncio.sleep(0.5)

        async def one(name: str) -> None:
            created[name] = time.perf_counter()
            await client.create(agent_run(name, llm_url))
            await finishes.wait(name, args.timeout)

        alone = [f"alone-{i}" for i in range(args.sequential)]
        for name in alone:
            await one(name)
        names = [f"stream-{i}" for i in range(args.runs)]
        slots = asyncio.Semaphore(args.in_flight)

        async def slot(name: str) -> None:
            async with slots:
                await one(name)

        started = time.perf_counter()
        await asyncio.gather(*(slot(name) for name in names))
        elapsed = time.perf_counter() - started

        def latencies(which: list[str]) -> list[float]:
            return [finishes.at[n] - created[n] for n in which if n in finishes.at]

        succeeded = sum(1 for n in alone + names if finishes.phase.get(n) == "Succeeded")
        single, stream = latencies(alone), latencies(names)
        return {
            "sequential": len(alone),
            "single_p50_ms": 1000 * percentile(single, 0.5),
            "single_p99_ms": 1000 * percentile(single, 0.99),
            "runs": len(names),
            "in_flight": args.in_flight,
            "stream_runs_per_s": len(stream) / elapsed if elapsed else 0.0,
            "stream_p50_ms": 1000 * percentile(stream, 0.5),
            "stream_p99_ms": 1000 * percentile(stream, 0.99),
            "succeeded": succeeded,
            "total": len(alone) + len(names),
        }
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        await client.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-agentruns-"))
    llm_port = free_port()
    process = await start_system(workdir, llm_port)
    try:
        return await measure(args, workdir / "kubeconfig", f"http://127.0.0.1:{llm_port}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="AgentRun latency and throughput")
    parser.add_argument("--sequential", type=int, default=20, help="runs timed one at a time")
    parser.add_argument("--runs", type=int, default=100, help="runs in the sustained stream")
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    rows = [
        (f"one at a time ({figures['sequential']} runs)", ""),
        (
            "  created -> Succeeded p50 / p99 ms",
            f"{figures['single_p50_ms']:.0f} / {figures['single_p99_ms']:.0f}",
        ),
        (f"{figures['runs']} runs, {figures['in_flight']} in flight", ""),
        ("  runs/s sustained", f"{figures['stream_runs_per_s']:.2f}"),
        (
            "  created -> Succeeded p50 / p99 ms",
            f"{figures['stream_p50_ms']:.0f} / {figures['stream_p99_ms']:.0f}",
        ),
        ("succeeded", f"{figures['succeeded']} / {figures['total']}"),
        ("target: created -> Succeeded p50", "under 2000 ms (original: 5-30 s cold start)"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
