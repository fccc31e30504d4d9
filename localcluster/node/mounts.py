"""How a container process sees its volumes at their `mountPath` without images.

Bind mode (root on Linux with util-linux's `unshare` and `mount`): the container runs as

    unshare --mount --propagation private -- /bin/sh -c SCRIPT localcluster-mounts CMD ARGS...

so it gets a private mount namespace; the script bind-mounts each volume onto its
mountPath (remounting read-only ones `ro`), enters `workingDir` and `exec`s the real
command, which keeps the pid we started and leaves the host's mounts untouched. The
mounts die with the last process of the container. Mount points missing on the host
are created (a directory, or an empty file for a file `subPath`) and removed again once
no running container needs them.

Env mode (not root, no `unshare`, or forced with `LOCALCLUSTER_NODE_MOUNTS=env`): nothing
is mounted. The container gets `LOCALCLUSTER_MOUNTS`, a JSON object
`{"<mountPath>": "<host directory>"}`, which Sympozium's own components honour to find
their files; an absolute command or `workingDir` under a mountPath is translated to
the host path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from localcluster.node.volumes import Mount

log = logging.getLogger("localcluster.node")

BIND = "bind"
ENV = "env"
MOUNTS_ENV = "LOCALCLUSTER_MOUNTS"


class MountError(Exception):
    """A mount point cannot be made on this machine."""

    reason = "CreateContainerError"


async def detect(requested: str = "auto") -> str:
    """BIND if this machine can give a process a private mount namespace, else ENV."""
    if requested == ENV:
        return ENV
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    able = sys.platform.startswith("linux") and os.geteuid() == 0 and unshare and mount
    if able and unshare is not None:
        try:
            probe = await asyncio.create_subprocess_exec(
                unshare,
                "--mount",
                "--propagation",
                "private",
                "--",
                "true",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            if await probe.wait() == 0:
                return BIND
        except OSError:
            pass
    if requested == BIND:
        log.warning("bind mounts are not possible here (need root and unshare); using env mode")
    return ENV


def _depth(mount: Mount) -> int:
    return len(PurePosixPath(mount.container_path).parts)


def split_shadowing(
    mounts: Iterable[Mount], protected: Iterable[Path]
) -> tuple[list[Mount], list[Mount]]:
    """(mounts to bind, mounts that would hide what the container itself needs).

    A volume mounted at e.g. `/tmp` would hide this node's data directory, the Python
    installation the container runs from and the other volumes' sources when those live
    under `/tmp` (as in every test). Such a mount is not bound; the container finds it
    through `LOCALCLUSTER_MOUNTS` instead, as in env mode.
    """
    listed = list(mounts)
    needed = [Path(os.path.abspath(p)) for p in (*protected, *(m.host_path for m in listed))]
    bound: list[Mount] = []
    kept_out: list[Mount] = []
    for mount in listed:
        target = Path(mount.container_path)
        hides = any(path == target or target in path.parents for path in needed)
        (kept_out if hides else bound).append(mount)
    return bound, kept_out


def bind_command(argv: list[str], mounts: Iterable[Mount], working_dir: str | None) -> list[str]:
    """`argv` wrapped to run in a private mount namespace with `mounts` in place."""
    unshare = shutil.which("unshare") or "unshare"
    lines = ['fail() { echo "localcluster: cannot mount $1 at $2" >&2; exit 128; }']
    for mount in sorted(mounts, key=_depth):  # parents before what is mounted inside them
        source, target = shlex.quote(str(mount.host_path)), shlex.quote(mount.container_path)
        lines.append(f"mount --bind {source} {target} || fail {source} {target}")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro {target} || fail {source} {target}")
    if working_dir:
        quoted = shlex.quote(working_dir)
        lines.append(f"if [ -d {quoted} ]; then cd {quoted}; fi")
    lines.append('exec "$@"')
    script = "\n".join(lines)
    return [
        *(unshare, "--mount", "--propagation", "private", "--"),
        *("/bin/sh", "-c", script, "localcluster-mounts", *argv),
    ]


def translate(path: str, mounts: Iterable[Mount]) -> str:
    """A container path as the host path it is mounted from (env mode), else unchanged."""
    pure = PurePosixPath(path)
    best: Mount | None = None
    for mount in mounts:
        target = PurePosixPath(mount.container_path)
        if (pure == target or target in pure.parents) and (
            best is None or _depth(mount) > _depth(best)
        ):
            best = mount
    if best is None:
        return path
    rest = pure.relative_to(best.container_path)
    return str(best.host_path / rest) if str(rest) != "." else str(best.host_path)


def mounts_env(mounts: Iterable[Mount]) -> dict[str, str]:
    table = {m.container_path: str(m.host_path) for m in mounts}
    return {MOUNTS_ENV: json.dumps(table, sort_keys=True)}


class MountPoints:
    """Creates missing mount points on the host, and removes them when no longer used.

    Counted per path, so two containers mounting at the same place (or one below a
    directory the other made) never pull a mount point from under each other.
    """

    def __init__(self) -> None:
        self._created: set[Path] = set()
        self._refs: Counter[Path] = Counter()

    def acquire(self, mounts: Iterable[Mount]) -> list[Path]:
        """Makes every mount point exist; returns the created paths the caller holds."""
        held: list[Path] = []
        try:
            for mount in mounts:
                held += self._ensure(mount)
        except BaseException:
            self.release(held)
            raise
        return held

    def _ensure(self, mount: Mount) -> list[Path]:
        target = Path(mount.container_path)
        is_dir = mount.host_path.is_dir()
        chain: list[Path] = []
        for parent in reversed(target.parents):
            if not parent.exists():
                self._make(parent, directory=True)
            if parent in self._created:
                chain.append(parent)
        if not target.exists() and not target.is_symlink():
            self._make(target, directory=is_dir)
        elif target.is_dir() != is_dir:
            raise MountError(
                f"cannot mount a {'directory' if is_dir else 'file'} at {target}: "
                f"it is a {'directory' if target.is_dir() else 'file'} on this machine"
            )
        if target in self._created:
            chain.append(target)
        self._refs.update(chain)
        return chain

    def _make(self, path: Path, directory: bool) -> None:
        try:
            if directory:
                path.mkdir()
            else:
                path.touch()
        except FileExistsError:
            return
        except OSError as exc:
            raise MountError(f"cannot create mount point {path}: {exc.strerror}") from None
        self._created.add(path)

    def release(self, held: Iterable[Path]) -> None:
        for path in sorted(held, key=lambda p: len(p.parts), reverse=True):
            self._refs[path] -= 1
            if self._refs[path] > 0:
                continue
            del self._refs[path]
            if path in self._created:
                self._created.discard(path)
                if mounted_anywhere(path):
                    continue  # removing it would detach another namespace's mount
                with contextlib.suppress(OSError):
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()
                    else:
                        path.unlink()


_ESCAPE = re.compile(rb"\\([0-7]{3})")


def _unescape(field: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), field)


def mounted_anywhere(path: Path, proc: Path = Path("/proc")) -> bool:
    """Whether any mount namespace on this machine has something mounted at `path`.

    Another node on the same machine (a second local cluster) may be using a mount
    point this node made: Linux detaches a mount when its mount point is removed in
    another namespace, so such a mount point must stay. Each namespace is read once.
    """
    wanted = os.fsencode(str(path))
    seen: set[str] = set()
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return False
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            namespace = os.readlink(os.path.join(entry.path, "ns", "mnt"))
        except OSError:
            continue
        if namespace in seen:
            continue
        seen.add(namespace)
        try:
            with open(os.path.join(entry.path, "mountinfo"), "rb") as f:
                table = f.read()
        except OSError:
            continue
        for line in table.splitlines():
            fields = line.split(b" ")
            if len(fields) > 4 and _unescape(fields[4]) == wanted:
                return True
    return False
