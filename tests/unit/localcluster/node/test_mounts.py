"""Mount plumbing: the bind-mount wrapper, the env-mode table, mount point bookkeeping."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from localcluster.node.mounts import (
    MOUNTS_ENV,
    MountError,
    MountPoints,
    bind_command,
    mounted_anywhere,
    mounts_env,
    translate,
)
from localcluster.node.volumes import Mount

CAN_BIND = os.geteuid() == 0 and shutil.which("unshare") is not None


def test_translate_and_env_table(tmp_path: Path) -> None:
    mounts = [Mount(tmp_path / "a", "/etc/app"), Mount(tmp_path / "b", "/etc/app/nested")]
    assert translate("/etc/app/x/y", mounts) == str(tmp_path / "a" / "x" / "y")
    assert translate("/etc/app/nested/z", mounts) == str(tmp_path / "b" / "z")
    assert translate("/etc/app", mounts) == str(tmp_path / "a")
    assert translate("/etc/application", mounts) == "/etc/application"
    table = json.loads(mounts_env(mounts)[MOUNTS_ENV])
    assert table == {"/etc/app": str(tmp_path / "a"), "/etc/app/nested": str(tmp_path / "b")}


def test_mount_points_are_made_and_removed_by_count(tmp_path: Path) -> None:
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    source_file = tmp_path / "file"
    source_file.write_text("x")
    points = MountPoints()
    first = points.acquire([Mount(source_dir, str(tmp_path / "made" / "deep" / "dir"))])
    second = points.acquire(
        [
            Mount(source_dir, str(tmp_path / "made" / "other")),
            Mount(source_file, str(tmp_path / "made" / "f")),
        ]
    )
    assert (tmp_path / "made" / "deep" / "dir").is_dir()
    assert (tmp_path / "made" / "f").is_file()
    points.release(first)
    assert not (tmp_path / "made" / "deep").exists()
    assert (tmp_path / "made" / "other").is_dir()  # still used
    points.release(second)
    assert not (tmp_path / "made").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    assert points.acquire([Mount(source_dir, str(existing))]) == []
    with pytest.raises(MountError, match="it is a directory"):
        points.acquire([Mount(source_file, str(existing))])


@pytest.mark.skipif(not CAN_BIND, reason="bind mounts need root and unshare")
def test_bind_command_mounts_privately(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "key").write_text("value")
    target = tmp_path / "target"
    target.mkdir()
    argv = bind_command(
        ["sh", "-c", 'cat key; touch x 2>/dev/null || echo read-only; echo "$0"', "arg0"],
        [Mount(source, str(target), read_only=True)],
        str(target),
    )
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert result.stdout == "valueread-only\narg0\n"
    assert list(target.iterdir()) == []  # the host never saw the mount


def fake_proc(root: Path, tables: dict[str, tuple[str, str]]) -> Path:
    """A /proc with processes: pid -> (mount namespace, mountinfo)."""
    for pid, (namespace, mountinfo) in tables.items():
        (root / pid / "ns").mkdir(parents=True)
        (root / pid / "ns" / "mnt").symlink_to(namespace)
        (root / pid / "mountinfo").write_text(mountinfo)
    (root / "self").mkdir()
    return root


def test_mounts_in_any_namespace_are_found(tmp_path: Path) -> None:
    line = "36 35 98:0 /src {} rw,noatime master:1 - ext3 /dev/root rw\n"
    proc = fake_proc(
        tmp_path / "proc",
        {
            "1": ("mnt:[1]", line.format("/")),
            "2": ("mnt:[1]", line.format("/")),  # the same namespace is read once
            "3": ("mnt:[2]", line.format("/with\\040space")),
        },
    )
    assert mounted_anywhere(Path("/"), proc)
    assert mounted_anywhere(Path("/with space"), proc)
    assert not mounted_anywhere(Path("/elsewhere"), proc)


@pytest.mark.skipif(not CAN_BIND, reason="bind mounts need root and unshare")
def test_a_mount_point_in_use_elsewhere_stays(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    points = MountPoints()
    target = tmp_path / "made" / "point"
    held = points.acquire([Mount(source, str(target))])
    other = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            f"mount --bind {source} {target} && echo ready && sleep 30",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "ready\n"
        points.release(held)
        assert target.is_dir()  # another namespace still has it mounted
    finally:
        other.kill()
        other.wait()
