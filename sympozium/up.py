"""`sympozium up`: the whole system on one machine, in the foreground.

Starts the local cluster (its own process, so the API server and the node get a core of
their own), installs the CRDs generated from the models, runs the controller-manager in
this process, and optionally the scripted LLM double, until Ctrl-C/SIGTERM, then stops
everything in reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO

from controller import AlreadyExists, Client, NotFound
from reconcilers import labels
from reconcilers.cli import add_arguments as add_controller_arguments
from reconcilers.cli import configure_logging, run_controller, settings_from

log = logging.getLogger("sympozium.up")

CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
NAMESPACE = ("v1", "Namespace")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_controller_arguments(parser)
    parser.add_argument("--data-dir", type=Path, default=Path(".sympozium"))
    parser.add_argument("--port", type=int, default=6443, help="local API server port (0: any)")
    parser.add_argument(
        "--llm-double",
        type=int,
        metavar="PORT",
        default=None,
        help="also serve the scripted LLM test double on 127.0.0.1:PORT",
    )
    parser.add_argument(
        "--llm-double-script",
        type=Path,
        metavar="FILE.yaml",
        default=None,
        help="extra scripts for the LLM double (model name -> steps)",
    )
    parser.set_defaults(
        func=_command,
        metrics_bind_address="127.0.0.1:8080",
        health_probe_bind_address="127.0.0.1:8081",
    )


async def start_cluster(data_dir: Path, port: int, kubeconfig: Path) -> asyncio.subprocess.Process:
    """The local cluster as a child process; returns once its kubeconfig is written."""
    logfile = await asyncio.to_thread(_prepare, data_dir, kubeconfig)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sympozium.cli",
        "localcluster",
        "--data-dir",
        str(data_dir / "cluster"),
        "--port",
        str(port),
        "--kubeconfig",
        str(kubeconfig),
        stdout=logfile,
        stderr=asyncio.subprocess.STDOUT,
    )
    logfile.close()
    for _ in range(600):
        if await asyncio.to_thread(kubeconfig.exists):
            return process
        if process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    raise RuntimeError(f"the local cluster did not start; see {data_dir / 'localcluster.log'}")


def _prepare(data_dir: Path, kubeconfig: Path) -> BinaryIO:
    kubeconfig.unlink(missing_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    return open(data_dir / "localcluster.log", "ab")


async def install_crds(client: Client) -> None:
    """Creates or replaces every Sympozium CRD and waits until each is Established."""
    from api.v1alpha1.crdgen import KIND_INFOS
    from api.v1alpha1.crdgen import crd as crd_of

    for crd in (crd_of(info) for info in KIND_INFOS):
        name = crd["metadata"]["name"]
        try:
            await client.create(crd)
        except AlreadyExists:
            current = await client.get(CRD, name)
            crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await client.update(crd)
        await _wait_established(client, name)
    with contextlib.suppress(AlreadyExists):
        await client.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": labels.SYSTEM_NAMESPACE}}
        )


async def _wait_established(client: Client, name: str) -> None:
    for _ in range(200):
        with contextlib.suppress(NotFound):
            crd: dict[str, Any] = await client.get(CRD, name)
            for condition in (crd.get("status") or {}).get("conditions") or []:
                if condition.get("type") == "Established" and condition.get("status") == "True":
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"CRD {name} did not become Established")


async def up(args: argparse.Namespace) -> None:
    data_dir: Path = args.data_dir
    kubeconfig = data_dir / "kubeconfig"
    cluster = await start_cluster(data_dir, args.port, kubeconfig)
    double = None
    try:
        async with await Client.connect(kubeconfig=str(kubeconfig)) as client:
            await install_crds(client)
        if args.llm_double is not None:
            from agent.llmdouble import LLMDouble, load_scripts

            script = args.llm_double_script
            scripts = await asyncio.to_thread(load_scripts, script) if script else None
            double = LLMDouble(scripts, port=args.llm_double)
            await double.start()
        print(f"Sympozium is up. export KUBECONFIG={kubeconfig.resolve()}", flush=True)
        print("  .venv/bin/kubectl apply -f examples/agentrun-hello.yaml", flush=True)
        print("  .venv/bin/kubectl get agentruns -w", flush=True)
        if double is not None:
            print(f"  scripted LLM double at http://127.0.0.1:{args.llm_double}/v1", flush=True)
        await run_controller(kubeconfig, settings_from(args))
    finally:
        if double is not None:
            await double.stop()
        if cluster.returncode is None:
            cluster.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(cluster.wait(), 20)
            except TimeoutError:
                cluster.kill()
                await cluster.wait()


def _command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        asyncio.run(up(args))
    except (RuntimeError, ValueError) as error:
        log.error("%s", error)
        return 1
    return 0
