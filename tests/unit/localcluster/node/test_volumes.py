"""Volume materialisation: the atomic writer's layout, every volume type, container mounts."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from localcluster.node.volumes import (
    DATA_LINK,
    PLACEHOLDER_TOKEN,
    Mount,
    NodePaths,
    PodVolumes,
    VolumeError,
    container_mounts,
    prepare,
    read_current,
    refresh,
    remove_pod,
    write_atomic,
)

Obj = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Objects:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Obj] = {
            ("ConfigMap", "cm"): {
                "data": {"key": "value", "other": "o"},
                "binaryData": {"bin": b64(b"\x00\x01")},
            },
            ("Secret", "sec"): {"data": {"password": b64(b"s3cret")}},
            ("PersistentVolumeClaim", "claim"): {"spec": {}},
        }

    async def fetch(self, kind: str, namespace: str, name: str) -> Obj | None:
        assert namespace == "ns"
        return self.items.get((kind, name))


def pod(*volumes: Obj) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "main", "image": "x"}], "volumes": list(volumes)},
    }


def visible(directory: Path) -> dict[str, bytes]:
    """The files a container sees, through the `..data` symlinks, without the internals."""
    found: dict[str, bytes] = {}
    for root, dirs, files in os.walk(directory, followlinks=True):
        relative = Path(root).relative_to(directory)
        if relative.parts and relative.parts[0].startswith(".."):
            continue
        dirs[:] = [d for d in dirs if not d.startswith("..")]
        for name in files:
            if not name.startswith(".."):
                found[str(relative / name)] = (Path(root) / name).read_bytes()
    return found


def test_write_atomic_swaps_whole_sets(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").is_symlink() and os.readlink(target / "a") == f"{DATA_LINK}/a"
    assert visible(target) == {"a": b"1", "dir/b": b"2"}
    assert (target / DATA_LINK / "dir" / "b").stat().st_mode & 0o777 == 0o600
    first = os.readlink(target / DATA_LINK)
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert write_atomic(target, {"a": (b"changed", 0o644)})
    assert visible(target) == {"a": b"changed"}
    assert not (target / "dir").exists()
    assert not (target / first).exists()  # the old set is gone
    assert read_current(target) == {"a": (b"changed", 0o644)}


async def test_every_supported_volume_type(tmp_path: Path) -> None:
    paths = NodePaths(tmp_path / "node")
    spec = pod(
        {"name": "cfg", "configMap": {"name": "cm"}},
        {
            "name": "picked",
            "configMap": {
                "name": "cm",
                "defaultMode": 0o600,
                "items": [
                    {"key": "key", "path": "sub/renamed"},
                    {"key": "other", "path": "o", "mode": 0o400},
                ],
            },
        },
        {"name": "sec", "secret": {"secretName": "sec"}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        },
        {
            "name": "token",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"path": "token"}},
                    {"configMap": {"name": "cm", "items": [{"key": "key", "path": "ca.crt"}]}},
                    {"secret": {"name": "sec"}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ]
            },
        },
        {"name": "host", "hostPath": {"path": str(tmp_path / "host"), "type": "DirectoryOrCreate"}},
    )
    result = await prepare(spec, paths, Objects().fetch)
    assert visible(result.paths["cfg"]) == {"bin": b"\x00\x01", "key": b"value", "other": b"o"}
    assert visible(result.paths["picked"]) == {"sub/renamed": b"value", "o": b"o"}
    assert (result.paths["picked"] / "sub" / "renamed").stat().st_mode & 0o777 == 0o600
    assert (result.paths["picked"] / "o").stat().st_mode & 0o777 == 0o400
    assert visible(result.paths["sec"]) == {"password": b"s3cret"}
    assert result.paths["scratch"] == paths.volume_dir("uid-1", "scratch")
    assert result.paths["scratch"].is_dir()
    assert result.paths["data"] == tmp_path / "node" / "pvcs" / "ns" / "claim"
    assert visible(result.paths["info"]) == {"labels": b'a="b"'}
    assert visible(result.paths["token"]) == {
        "token": PLACEHOLDER_TOKEN.encode(),
        "ca.crt": b"value",
        "password": b"s3cret",
        "namespace": b"ns",
    }
    assert (tmp_path / "host").is_dir()
    assert result.read_only == {"cfg", "picked", "sec", "info", "token"}
    # the claim outlives the pod, the pod's own volumes do not
    (result.paths["data"] / "kept").write_text("x")
    remove_pod(paths, "uid-1")
    assert not paths.pod_dir("uid-1").exists()
    assert (result.paths["data"] / "kept").exists()


async def test_refresh_rewrites_changed_sources(tmp_path: Path) -> None:
    paths = NodePaths(tmp_path)
    objects = Objects()
    spec = pod({"name": "cfg", "configMap": {"name": "cm"}})
    result = await prepare(spec, paths, objects.fetch)
    objects.items[("ConfigMap", "cm")] = {"data": {"key": "new"}}
    await refresh(spec, paths, objects.fetch)
    assert visible(result.paths["cfg"]) == {"key": b"new"}


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "v", "configMap": {"name": "missing"}}, 'configmap "missing" not found'),
        ({"name": "v", "secret": {"secretName": "missing"}}, 'secret "missing" not found'),
        (
            {"name": "v", "configMap": {"name": "cm", "items": [{"key": "zz", "path": "z"}]}},
            "non-existent config key: zz",
        ),
        ({"name": "v", "persistentVolumeClaim": {"claimName": "nope"}}, "not found"),
        ({"name": "v", "nfs": {"server": "x", "path": "/"}}, "not supported"),
        (
            {"name": "v", "configMap": {"name": "cm", "items": [{"key": "key", "path": "../x"}]}},
            "may not contain",
        ),
    ],
)
async def test_volumes_that_cannot_be_set_up(tmp_path: Path, volume: Obj, message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        await prepare(pod(volume), NodePaths(tmp_path), Objects().fetch)


async def test_optional_sources_may_be_missing(tmp_path: Path) -> None:
    result = await prepare(
        pod(
            {"name": "a", "configMap": {"name": "missing", "optional": True}},
            {"name": "b", "secret": {"secretName": "missing", "optional": True}},
        ),
        NodePaths(tmp_path),
        Objects().fetch,
    )
    assert visible(result.paths["a"]) == {} and visible(result.paths["b"]) == {}


def test_container_mounts(tmp_path: Path) -> None:
    volumes = PodVolumes(
        paths={"cfg": tmp_path / "cfg", "data": tmp_path / "data"}, read_only={"cfg"}
    )
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "key").write_text("v")
    container = {
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/cfg/"},
            {"name": "cfg", "mountPath": "/etc/key", "subPath": "key"},
            {"name": "data", "mountPath": "/data", "readOnly": True},
            {"name": "data", "mountPath": "/per-pod", "subPathExpr": "$(POD)"},
        ]
    }
    mounts = container_mounts(container, volumes, {"POD": "p1"})
    assert mounts == [
        Mount(tmp_path / "cfg", "/etc/cfg", True),
        Mount(tmp_path / "cfg" / "key", "/etc/key", True),
        Mount(tmp_path / "data", "/data", True),
        Mount(tmp_path / "data" / "p1", "/per-pod", False),
    ]
    assert (tmp_path / "data" / "p1").is_dir()
    with pytest.raises(VolumeError, match="no volume"):
        container_mounts({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, volumes)
    with pytest.raises(VolumeError, match="invalid mountPath"):
        container_mounts({"volumeMounts": [{"name": "cfg", "mountPath": "/"}]}, volumes)
