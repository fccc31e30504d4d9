"""Container probes (startup, liveness, readiness) with the kubelet's thresholds.

`exec` runs the command with the container's environment (inside its mount namespace,
via `nsenter`, when the node bind-mounts volumes); `httpGet` and `tcpSocket` talk to
127.0.0.1, where every pod listens (pods share the host network). `grpc` probes are
not supported and count as successes, with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from localcluster.node.env import POD_IP

log = logging.getLogger("localcluster.node")
Obj = dict[str, Any]
Check = Callable[[], Awaitable[bool]]


def port_number(port: object, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for declared in container.get("ports") or ():
        if declared.get("name") == text:
            return int(declared.get("containerPort", 0))
    raise ValueError(f"no port named {text!r} in container {container.get('name')!r}")


async def exec_check(argv: list[str], env: dict[str, str], timeout: float) -> bool:  # noqa: ASYNC109
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    except (OSError, ValueError):
        return False
    try:
        return await asyncio.wait_for(proc.wait(), timeout) == 0
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False


async def http_check(probe: Obj, container: Obj, timeout: float) -> bool:  # noqa: ASYNC109
    scheme = str(probe.get("scheme") or "HTTP").lower()
    host = probe.get("host") or POD_IP
    path = str(probe.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port_number(probe.get('port'), container)}{path}"
    headers = {str(h.get("name")): str(h.get("value", "")) for h in probe.get("httpHeaders") or ()}
    headers.setdefault("User-Agent", "kube-probe/1.36")
    tls: ssl.SSLContext | bool = False  # the kubelet does not verify probe certificates
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url, headers=headers, ssl=tls, allow_redirects=True) as response,
        ):
            return 200 <= response.status < 400
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
        return False


async def tcp_check(probe: Obj, container: Obj, timeout: float) -> bool:  # noqa: ASYNC109
    host = str(probe.get("host") or POD_IP)
    try:
        port = port_number(probe.get("port"), container)
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def make_check(
    probe: Obj, container: Obj, env: dict[str, str], pid: int | None, bind_mounts: bool
) -> Check:
    """The one check a probe describes."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if "exec" in probe:
        command = [str(c) for c in (probe["exec"] or {}).get("command") or ()]
        nsenter = shutil.which("nsenter")
        if bind_mounts and pid is not None and nsenter:
            command = [nsenter, "--target", str(pid), "--mount", "--", *command]

        async def run_exec() -> bool:
            return bool(command) and await exec_check(command, env, timeout)

        return run_exec
    if "httpGet" in probe:
        http = probe["httpGet"] or {}
        return lambda: http_check(http, container, timeout)
    if "tcpSocket" in probe:
        tcp = probe["tcpSocket"] or {}
        return lambda: tcp_check(tcp, container, timeout)
    log.warning("probe %s is not supported on the local node; counting it as passing", probe)

    async def unsupported() -> bool:
        return True

    return unsupported


async def run_probe(
    probe: Obj,
    check: Check,
    on_result: Callable[[bool], None],
    *,
    until_success: bool = False,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Checks every `periodSeconds`; reports a flip once a threshold of results agrees.

    `on_result(True)` after `successThreshold` successes in a row, `on_result(False)`
    after `failureThreshold` failures; `until_success` stops at the first success
    (a startup probe).
    """
    period = float(probe.get("periodSeconds") or 10)
    successes_needed = int(probe.get("successThreshold") or 1)
    failures_allowed = int(probe.get("failureThreshold") or 3)
    await sleep(float(probe.get("initialDelaySeconds") or 0))
    successes = failures = 0
    reported: bool | None = None
    while True:
        passed = await check()
        if passed:
            successes, failures = successes + 1, 0
            if successes >= successes_needed and reported is not True:
                reported = True
                on_result(True)
                if until_success:
                    return
        else:
            successes, failures = 0, failures + 1
            if failures >= failures_allowed and reported is not False:
                reported = False
                on_result(False)
        await sleep(period)
