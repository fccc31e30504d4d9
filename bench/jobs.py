"""Job latency on the local node: created → pod Running → Job Complete, and Jobs/s.

Starts a fresh local cluster (with `--allow-image 'busybox*'`), then creates Jobs whose
container exits at once, from a few concurrent clients, and watches Jobs and Pods to
time each Job's path. Prints p50/p99 per step and the sustained Jobs/s; never asserts.

    .venv/bin/python bench/jobs.py [--jobs 100] [--clients 4] [--image busybox|sympozium]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import localcluster_process
from stats import percentile

from controller import Client

JOB = ("batch/v1", "Job")
POD = ("v1", "Pod")
IMAGES = {
    "busybox": ("busybox:1.36", ["sh", "-c", "true"]),
    "sympozium": ("ghcr.io/sympozium-ai/sympozium:latest", ["python", "-c", "pass"]),
}
START_TIMEOUT = 30.0  # the local cluster writing its kubeconfig
STOP_TIMEOUT = 30.0  # after SIGTERM, then after SIGKILL


class Timeline:
    """First time each Job was created, had a Running pod, and was Complete."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.complete: dict[str, float] = {}

    def on_pod(self, pod: dict[str, Any]) -> None:
        job = (pod["metadata"].get("labels") or {}).get("job-name")
        phase = (pod.get("status") or {}).get("phase")
        if job and phase in ("Running", "Succeeded"):
            self.running.setdefault(job, time.perf_counter())

    def on_job(self, job: dict[str, Any]) -> None:
        for condition in (job.get("status") or {}).get("conditions") or ():
            if condition.get("type") == "Complete" and condition.get("status") == "True":
                self.complete.setdefault(job["metadata"]["name"], time.perf_counter())


async def follow(client: Client, kind: tuple[str, str], namespace: str, handle: Any) -> None:
    rv = (await client.list(kind, namespace)).resource_version
    while True:
        async for event in client.watch(kind, namespace, resource_version=rv, timeout_seconds=300):
            rv = event.object["metadata"].get("resourceVersion", rv)
            if event.type in ("ADDED", "MODIFIED"):
                handle(event.object)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    started = False  # a cluster that did not start leaves its workdir (and log) behind
    try:
        async with localcluster_process.running(
            workdir / "data",
            workdir / "localcluster.log",
            ["--allow-image", "busybox*"],
            start_timeout=START_TIMEOUT,
            stop_timeout=STOP_TIMEOUT,
        ) as cluster:
            started = True
            return await measure(args, cluster.kubeconfig)
    finally:
        if started and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


async def measure(args: argparse.Namespace, kubeconfig: Path) -> dict[str, Any]:
    client = await Client.connect(kubeconfig=str(kubeconfig))
    image, command = IMAGES[args.image]
    timeline = Timeline()
    watchers = [
        asyncio.create_task(follow(client, POD, "default", timeline.on_pod)),
        asyncio.create_task(follow(client, JOB, "default", timeline.on_job)),
    ]
    try:
        await asyncio.sleep(0.5)

        def body(name: str) -> dict[str, Any]:
            container = {"name": "c", "image": image, "command": command}
            return {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "backoffLimit": 0,
                    "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
                },
            }

        async def create(name: str) -> None:
            timeline.created[name] = time.perf_counter()
            await client.create(body(name))

        async def until_complete(names: list[str]) -> None:
            for _ in range(int(args.timeout / 0.01)):
                if all(n in timeline.complete for n in names):
                    return
                await asyncio.sleep(0.01)

        # Latency: one Job at a time, so no Job waits behind another.
        alone = [f"alone-{i}" for i in range(args.sequential)]
        for name in alone:
            await create(name)
            await until_complete([name])
        # Throughput: a burst from several clients.
        names = [f"burst-{i}" for i in range(args.jobs)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for name in names:
            queue.put_nowait(name)

        async def creator() -> None:
            while not queue.empty():
                await create(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(args.clients)))
        await until_complete(names)
        elapsed = time.perf_counter() - started

        def latencies(stage: dict[str, float], which: list[str]) -> list[float]:
            return [stage[n] - timeline.created[n] for n in which if n in stage]

        to_running = latencies(timeline.running, alone)
        to_complete = latencies(timeline.complete, alone)
        burst_complete = latencies(timeline.complete, names)
        return {
            "jobs": len(names),
            "image": image,
            "completed": len(burst_complete),
            "jobs_per_s": len(burst_complete) / elapsed if elapsed else 0.0,
            "burst_complete_p50_ms": 1000 * percentile(burst_complete, 0.5),
            "sequential": len(alone),
            "running_p50_ms": 1000 * percentile(to_running, 0.5),
            "running_p99_ms": 1000 * percentile(to_running, 0.99),
            "complete_p50_ms": 1000 * percentile(to_complete, 0.5),
            "complete_p99_ms": 1000 * percentile(to_complete, 0.99),
            "complete_mean_ms": 1000 * statistics.fmean(to_complete)
            if to_complete
            else float("nan"),
        }
    finally:
        for task in watchers:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*watchers, return_exceptions=True)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Job latency on the local node")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sequential", type=int, default=30, help="Jobs timed one at a time")
    parser.add_argument("--image", choices=sorted(IMAGES), default="busybox")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    rows = [
        ("image", figures["image"]),
        (f"one at a time ({figures['sequential']} Jobs)", ""),
        (
            "  created -> pod Running p50 / p99 ms",
            f"{figures['running_p50_ms']:.0f} / {figures['running_p99_ms']:.0f}",
        ),
        (
            "  created -> Job Complete p50 / p99 ms",
            f"{figures['complete_p50_ms']:.0f} / {figures['complete_p99_ms']:.0f}",
        ),
        (
            f"burst of {figures['jobs']} Jobs from {args.clients} clients",
            f"{figures['completed']} completed",
        ),
        ("  Jobs/s sustained", f"{figures['jobs_per_s']:.1f}"),
        ("  created -> Complete p50 ms (queueing)", f"{figures['burst_complete_p50_ms']:.0f}"),
        ("target: one Job created -> Complete p50", "under 1000 ms"),
    ]
    for label, value in rows:
        print(f"{label:<44}{value}")
    print(json.dumps({"benchmark": "jobs", "results": figures}))


if __name__ == "__main__":
    main()
