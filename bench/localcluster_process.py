"""`sympozium localcluster` as a child process of a benchmark, started as a user would.

    async with localcluster_process.running(data_dir, log_path) as cluster:
        ...  # cluster.url, cluster.token, cluster.ssl_context, cluster.kubeconfig, ...

It is ready once its kubeconfig exists and parses (server URL, bearer token, CA); it is
stopped with SIGTERM, then SIGKILL if it hangs. The benchmarks import this module as
`import localcluster_process`: they run as scripts, so `bench/` is on sys.path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from yarl import URL

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
POLL_INTERVAL = 0.05
# What reading a kubeconfig raises while it is missing or only partly written.
INCOMPLETE = (OSError, ValueError, yaml.YAMLError, KeyError, IndexError, TypeError)


@dataclass(frozen=True)
class Kubeconfig:
    """What a client needs from a local cluster's kubeconfig."""

    url: str  # without a trailing slash
    token: str
    ssl_context: ssl.SSLContext


@dataclass(frozen=True)
class LocalCluster:
    """One running `sympozium localcluster`."""

    process: asyncio.subprocess.Process
    data_dir: Path
    kubeconfig: Path
    url: str  # without a trailing slash
    token: str
    ssl_context: ssl.SSLContext  # trusts the kubeconfig's CA, the same as DATA_DIR/pki/ca.crt
    log_path: Path
    startup_seconds: float


def sympozium_executable() -> Path:
    """The console script beside the interpreter: the venv's python runs the benchmarks."""
    beside = Path(sys.executable).parent / "sympozium"
    if beside.exists():
        return beside
    return Path(__file__).resolve().parent.parent / ".venv" / "bin" / "sympozium"


def read_kubeconfig(path: Path) -> Kubeconfig:
    """The server URL, token and CA of a kubeconfig. Raises one of INCOMPLETE while the file
    is missing or incomplete, and RuntimeError for a server that is not on 127.0.0.1."""
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    token = str(config["users"][0]["user"]["token"])
    url = str(cluster["server"]).rstrip("/")
    if URL(url).host not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"refusing to benchmark a non-loopback server: {url}")
    if "certificate-authority-data" in cluster:
        pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
        tls = ssl.create_default_context(cadata=pem)
    elif "certificate-authority" in cluster:
        tls = ssl.create_default_context(cafile=str(cluster["certificate-authority"]))
    else:
        tls = ssl.create_default_context(cafile=str(path.parent / "pki" / "ca.crt"))
    return Kubeconfig(url, token, tls)


async def stop(process: asyncio.subprocess.Process, grace: float = STOP_TIMEOUT) -> None:
    """SIGTERM first (the cluster, like the benchmarks' own children, shuts down cleanly on
    it), SIGKILL if it hangs; each waits at most `grace` seconds."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.wait_for(process.wait(), grace)


@contextlib.asynccontextmanager
async def running(
    data_dir: Path,
    log_path: Path,
    extra_args: Sequence[str] = (),
    *,
    start_timeout: float = START_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> AsyncIterator[LocalCluster]:
    """`sympozium localcluster --data-dir DATA_DIR --port 0 [EXTRA_ARGS]`, its output in
    LOG_PATH, from when its kubeconfig is complete until the block exits (then stopped).

    Raises RuntimeError if it exits or is not ready within `start_timeout` seconds."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    kubeconfig = data_dir / "kubeconfig"
    started = time.perf_counter()
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            str(sympozium_executable()),
            "localcluster",
            "--data-dir",
            str(data_dir),
            "--port",
            "0",
            *extra_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            found: Kubeconfig | None = None
            while found is None:
                if process.returncode is not None or time.perf_counter() > started + start_timeout:
                    raise RuntimeError(f"the local cluster did not start (see {log_path})")
                await asyncio.sleep(POLL_INTERVAL)
                with contextlib.suppress(*INCOMPLETE):
                    found = read_kubeconfig(kubeconfig)
            yield LocalCluster(
                process=process,
                data_dir=data_dir,
                kubeconfig=kubeconfig,
                url=found.url,
                token=found.token,
                ssl_context=found.ssl_context,
                log_path=log_path,
                startup_seconds=time.perf_counter() - started,
            )
        finally:
            await stop(process, stop_timeout)


def high_water_mark(pid: int) -> int:
    """A process's peak RSS in bytes (VmHWM), catching peaks shorter than any sampling."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0
