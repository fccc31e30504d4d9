"""A pod's volumes as directories on this machine, and each container's mounts of them.

Every volume becomes one host directory:

- `emptyDir` (and generic `ephemeral`): `DATA_DIR/node/pods/<uid>/volumes/<name>`, gone
  with the pod;
- `configMap`, `secret`, `downwardAPI`, `projected`: the same place, written like the
  kubelet's atomic writer (files live in a `..<stamp>` directory that the `..data` symlink
  points at; the visible names are symlinks through `..data`), so a rewrite is one
  rename and a reader never sees half a set; mounted read-only;
- `persistentVolumeClaim`: `DATA_DIR/node/pvcs/<namespace>/<claim>`, which outlives the
  pod (the claim must exist; no provisioner or binding is modelled);
- `hostPath`: the path itself.

A projected `serviceAccountToken` holds a real token bound to the pod when the node is given
a `TokenSource` (the API server's `Tokens.pod_token`), else a placeholder file. Other volume
types make the pod wait with `FailedMount`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from localcluster.node.env import ConfigError, Fetch, expand, field_value, resource_value

Obj = dict[str, Any]

DEFAULT_MODE = 0o644
PLACEHOLDER_TOKEN = "localcluster-placeholder-token (real service-account tokens: issue 5)\n"
DATA_LINK = "..data"
# (pod, serviceAccountToken projection) -> the token file; LookupError while it cannot be made.
TokenSource = Callable[[Obj, Obj], bytes]


class VolumeError(Exception):
    """A volume cannot be set up yet (a missing ConfigMap, an unsupported type); retried."""

    reason = "FailedMount"


@dataclass(frozen=True)
class Mount:
    """One container mount: what host path appears at which path in the container."""

    host_path: Path
    container_path: str
    read_only: bool = False


@dataclass
class PodVolumes:
    """The host directory (or file) of each volume of one pod."""

    paths: dict[str, Path] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class NodePaths:
    """Where the node keeps things under DATA_DIR/node."""

    root: Path

    @property
    def pods(self) -> Path:
        return self.root / "pods"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pvcs(self) -> Path:
        return self.root / "pvcs"

    @property
    def processes(self) -> Path:
        return self.root / "processes"

    def pod_dir(self, uid: str) -> Path:
        return self.pods / uid

    def volume_dir(self, uid: str, name: str) -> Path:
        return self.pods / uid / "volumes" / name

    def claim_dir(self, namespace: str, claim: str) -> Path:
        return self.pvcs / namespace / claim


# ---- file sets


Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)


def _checked_path(path: str) -> str:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise VolumeError(f"invalid path {path!r}: must be relative and may not contain '..'")
    return str(pure)


def _mode(value: object, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def key_files(
    kind: str,
    namespace: str,
    name: str,
    found: Obj | None,
    values: Mapping[str, bytes],
    items: list[Obj] | None,
    mode: int,
    optional: bool,
) -> Files:
    """The files of a configMap/secret source: every key, or just `items`."""
    if found is None:
        if optional:
            return {}
        raise VolumeError(f'{kind.lower()} "{name}" not found')
    files: Files = {}
    if not items:
        for key, value in values.items():
            files[_checked_path(key)] = (value, mode)
        return files
    for item in items:
        key = str(item.get("key", ""))
        if key not in values:
            if optional:
                continue
            raise VolumeError(f"{kind.lower()} references non-existent config key: {key}")
        files[_checked_path(str(item.get("path") or key))] = (
            values[key],
            _mode(item.get("mode"), mode),
        )
    return files


def configmap_values(found: Obj | None) -> dict[str, bytes]:
    if found is None:
        return {}
    values = {k: str(v).encode() for k, v in (found.get("data") or {}).items()}
    for key, value in (found.get("binaryData") or {}).items():
        values[key] = base64.b64decode(str(value))
    return values


def secret_values(found: Obj | None) -> dict[str, bytes]:
    if found is None:
        return {}
    return {k: base64.b64decode(str(v)) for k, v in (found.get("data") or {}).items()}


def downward_files(pod: Obj, items: list[Obj], mode: int) -> Files:
    files: Files = {}
    for item in items:
        path = _checked_path(str(item.get("path", "")))
        try:
            if "fieldRef" in item:
                value = field_value(
                    pod, str((item["fieldRef"] or {}).get("fieldPath", "")), maps=True
                )
            elif "resourceFieldRef" in item:
                ref = item["resourceFieldRef"] or {}
                container = _container(pod, ref.get("containerName"))
                value = resource_value(container, str(ref.get("resource", "")), ref.get("divisor"))
            else:
                continue
        except ConfigError as exc:
            raise VolumeError(str(exc)) from None
        files[path] = (value.encode(), _mode(item.get("mode"), mode))
    return files


def _container(pod: Obj, name: object) -> Obj:
    for group in ("containers", "initContainers"):
        for container in (pod.get("spec") or {}).get(group) or ():
            if container.get("name") == name:
                found: Obj = container
                return found
    raise VolumeError(f"resourceFieldRef: no container named {name!r}")


async def volume_files(
    pod: Obj, volume: Obj, fetch: Fetch, tokens: TokenSource | None = None
) -> Files | None:
    """The files a configMap/secret/downwardAPI/projected volume holds; None for other types."""
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    if "configMap" in volume:
        source = volume["configMap"] or {}
        name = str(source.get("name", ""))
        found = await fetch("ConfigMap", namespace, name)
        return key_files(
            "ConfigMap",
            namespace,
            name,
            found,
            configmap_values(found),
            source.get("items"),
            _mode(source.get("defaultMode"), DEFAULT_MODE),
            bool(source.get("optional")),
        )
    if "secret" in volume:
        source = volume["secret"] or {}
        name = str(source.get("secretName", ""))
        found = await fetch("Secret", namespace, name)
        return key_files(
            "Secret",
            namespace,
            name,
            found,
            secret_values(found),
            source.get("items"),
            _mode(source.get("defaultMode"), DEFAULT_MODE),
            bool(source.get("optional")),
        )
    if "downwardAPI" in volume:
        source = volume["downwardAPI"] or {}
        return downward_files(
            pod, source.get("items") or [], _mode(source.get("defaultMode"), DEFAULT_MODE)
        )
    if "projected" in volume:
        return await _projected_files(pod, volume["projected"] or {}, fetch, namespace, tokens)
    return None


async def _projected_files(
    pod: Obj, projected: Obj, fetch: Fetch, namespace: str, tokens: TokenSource | None = None
) -> Files:
    mode = _mode(projected.get("defaultMode"), DEFAULT_MODE)
    files: Files = {}
    for source in projected.get("sources") or ():
        if "serviceAccountToken" in source:
            token = source["serviceAccountToken"] or {}
            path = _checked_path(str(token.get("path") or "token"))
            if tokens is None:
                files[path] = (PLACEHOLDER_TOKEN.encode(), mode)
            else:
                try:
                    files[path] = (tokens(pod, token), mode)
                except LookupError as exc:
                    raise VolumeError(str(exc).strip("'\"")) from None
        elif "configMap" in source:
            ref = source["configMap"] or {}
            name = str(ref.get("name", ""))
            found = await fetch("ConfigMap", namespace, name)
            files.update(
                key_files(
                    "ConfigMap",
                    namespace,
                    name,
                    found,
                    configmap_values(found),
                    ref.get("items"),
                    mode,
                    bool(ref.get("optional")),
                )
            )
        elif "secret" in source:
            ref = source["secret"] or {}
            name = str(ref.get("name", ""))
            found = await fetch("Secret", namespace, name)
            files.update(
                key_files(
                    "Secret",
                    namespace,
                    name,
                    found,
                    secret_values(found),
                    ref.get("items"),
                    mode,
                    bool(ref.get("optional")),
                )
            )
        elif "downwardAPI" in source:
            files.update(
                downward_files(pod, (source["downwardAPI"] or {}).get("items") or [], mode)
            )
        else:
            raise VolumeError(f"projected source not supported on the local node: {sorted(source)}")
    return files


# ---- the atomic writer


def read_current(target: Path) -> Files | None:
    """What `write_atomic` last wrote into `target`, None if nothing."""
    data = target / DATA_LINK
    if not data.is_dir():
        return None
    files: Files = {}
    for path in sorted(data.rglob("*")):
        if path.is_file():
            files[str(path.relative_to(data))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return files


def write_atomic(target: Path, files: Files, clock: Callable[[], float] = time.time) -> bool:
    """Makes `target` hold exactly `files`; True if anything changed."""
    target.mkdir(parents=True, exist_ok=True)
    if read_current(target) == files:
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime(clock()))
    fresh = target / f"{stamp}.{os.getpid()}{time.monotonic_ns() % 1_000_000_000}"
    fresh.mkdir()
    for relative, (content, mode) in files.items():
        path = fresh / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    old_link = target / DATA_LINK
    old = os.readlink(old_link) if old_link.is_symlink() else None
    temporary = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(fresh.name)
    os.replace(temporary, old_link)
    visible = {PurePosixPath(relative).parts[0] for relative in files}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            if link.is_dir():
                shutil.rmtree(link)
            elif link.exists():
                link.unlink()
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in visible and entry.is_symlink():
            entry.unlink()
    if old and old != fresh.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


# ---- setting up a pod's volumes


_READ_ONLY_TYPES = ("configMap", "secret", "downwardAPI", "projected")
_EMPTY_TYPES = ("emptyDir", "ephemeral")


async def prepare(
    pod: Obj, paths: NodePaths, fetch: Fetch, tokens: TokenSource | None = None
) -> PodVolumes:
    """Creates (or refreshes) every volume of the pod; raises VolumeError to retry later."""
    meta = pod.get("metadata") or {}
    uid = str(meta.get("uid", ""))
    namespace = str(meta.get("namespace", ""))
    result = PodVolumes()
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        name = str(volume.get("name", ""))
        files = await volume_files(pod, volume, fetch, tokens)
        if files is not None:
            directory = paths.volume_dir(uid, name)
            write_atomic(directory, files)
            result.paths[name] = directory
            result.read_only.add(name)
            continue
        if any(kind in volume for kind in _EMPTY_TYPES):
            directory = paths.volume_dir(uid, name)
            directory.mkdir(parents=True, exist_ok=True)
            result.paths[name] = directory
        elif "persistentVolumeClaim" in volume:
            source = volume["persistentVolumeClaim"] or {}
            claim = str(source.get("claimName", ""))
            if await fetch("PersistentVolumeClaim", namespace, claim) is None:
                raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
            directory = paths.claim_dir(namespace, claim)
            directory.mkdir(parents=True, exist_ok=True)
            result.paths[name] = directory
            if source.get("readOnly"):
                result.read_only.add(name)
        elif "hostPath" in volume:
            result.paths[name] = host_path(volume["hostPath"] or {})
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeError(f"volume {name!r}: type {kinds} is not supported on the local node")
    return result


async def refresh(
    pod: Obj, paths: NodePaths, fetch: Fetch, tokens: TokenSource | None = None
) -> None:
    """Rewrites configMap/secret/downwardAPI/projected volumes whose sources changed."""
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        if not any(kind in volume for kind in _READ_ONLY_TYPES):
            continue
        files = await volume_files(pod, volume, fetch, tokens)
        if files is not None:
            write_atomic(paths.volume_dir(uid, str(volume.get("name", ""))), files)


def host_path(source: Obj) -> Path:
    path = Path(str(source.get("path", "")))
    kind = str(source.get("type") or "")
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif kind == "Directory" and not path.is_dir():
        raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif kind == "Socket" and not path.is_socket():
        raise VolumeError(f"hostPath type check failed: {path} is not a socket file")
    return path


def container_mounts(
    container: Obj, volumes: PodVolumes, env: Mapping[str, str] | None = None
) -> list[Mount]:
    """The container's `volumeMounts` as host paths; `subPath(Expr)` picks a path inside."""
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts") or ():
        name = str(mount.get("name", ""))
        if name not in volumes.paths:
            raise VolumeError(f"volumeMount {name!r}: no volume of that name")
        source = volumes.paths[name]
        sub = str(mount.get("subPath") or "")
        if not sub and mount.get("subPathExpr"):
            sub = expand(str(mount["subPathExpr"]), (env or {}).get)
        if sub:
            source = source / _checked_path(sub)
            if not source.exists() and not source.is_symlink():
                source.mkdir(parents=True, exist_ok=True)
        mount_path = str(mount.get("mountPath", ""))
        if not mount_path.startswith("/") or PurePosixPath(mount_path) == PurePosixPath("/"):
            raise VolumeError(f"volumeMount {name!r}: invalid mountPath {mount_path!r}")
        read_only = bool(mount.get("readOnly")) or name in volumes.read_only
        mounts.append(Mount(source, str(PurePosixPath(mount_path)), read_only))
    return mounts


def remove_pod(paths: NodePaths, uid: str) -> None:
    """Deletes the pod's own volumes (never claims or host paths)."""
    shutil.rmtree(paths.pod_dir(uid), ignore_errors=True)
