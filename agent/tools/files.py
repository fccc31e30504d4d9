"""`read_file`, `write_file`, `list_directory`: confined to the pod's volumes."""

from __future__ import annotations

import asyncio
import posixpath
from pathlib import Path

from pydantic import Field

from agent.protocol import IPC_ROOT, ipc_path, pod_path, write_atomic
from agent.tools.base import Tool, ToolArgs, ToolContext, ToolError, truncate

READ_ROOTS = ("/workspace", "/skills", "/tmp", "/ipc", "/memory", "/input")
WRITE_ROOTS = ("/workspace", "/tmp")
DEFAULT_DIR = "/workspace"
READ_LIMIT = 8000
LIST_LIMIT = 500


def host_root(root: str) -> Path:
    return ipc_path() if root == IPC_ROOT else pod_path(root)


def confine(path: str, roots: tuple[str, ...]) -> tuple[str, Path]:
    """The normalised pod path and the real host path; ToolError when outside `roots`.

    Relative paths are taken from /workspace. `..` is resolved before the check, and
    symlinks are followed, so neither can leave the root.
    """
    if not path or not path.strip():
        raise ToolError("path is required")
    if "\x00" in path:
        raise ToolError("path contains a NUL byte")
    raw = path.strip()
    absolute = raw if raw.startswith("/") else posixpath.join(DEFAULT_DIR, raw)
    normal = posixpath.normpath(absolute)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    root = next((r for r in roots if normal == r or normal.startswith(r + "/")), None)
    if root is None:
        raise ToolError(f"path {raw} is outside the allowed directories ({', '.join(roots)})")
    base = host_root(root)
    relative = posixpath.relpath(normal, root)
    host = base if relative == "." else base / relative
    resolved = host.resolve()
    base_resolved = base.resolve()
    if resolved != base_resolved and base_resolved not in resolved.parents:
        raise ToolError(f"path {raw} resolves outside {root}")
    return normal, resolved


class ReadFileArgs(ToolArgs):
    path: str = Field(description="Absolute path of the file, e.g. /workspace/README.md")


class WriteFileArgs(ToolArgs):
    path: str = Field(description="Absolute path under /workspace or /tmp")
    content: str = Field(description="The complete new content of the file")


class ListDirectoryArgs(ToolArgs):
    path: str = Field(default=DEFAULT_DIR, description="Absolute path of the directory")


def _read(host: Path, shown: str) -> str:
    if host.is_dir():
        raise ToolError(f"{shown} is a directory; use list_directory")
    if not host.exists():
        raise ToolError(f"{shown} does not exist")
    with host.open("rb") as handle:
        data = handle.read(READ_LIMIT * 4 + 1)
    text = data.decode("utf-8", errors="replace")
    if len(text) > READ_LIMIT or len(data) > READ_LIMIT * 4:
        total = host.stat().st_size
        return text[:READ_LIMIT] + f"\n... (truncated, file is {total} bytes)"
    return text


async def read_file(args: ReadFileArgs, context: ToolContext) -> str:
    shown, host = confine(args.path, READ_ROOTS)
    return await asyncio.to_thread(_read, host, shown)


def _write(host: Path, shown: str, content: str) -> str:
    if host.is_dir():
        raise ToolError(f"{shown} is a directory")
    write_atomic(host, content)
    return f"Wrote {len(content.encode('utf-8'))} bytes to {shown}"


async def write_file(args: WriteFileArgs, context: ToolContext) -> str:
    shown, host = confine(args.path, WRITE_ROOTS)
    return await asyncio.to_thread(_write, host, shown, args.content)


def _list(host: Path, shown: str) -> str:
    if not host.exists():
        raise ToolError(f"{shown} does not exist")
    if not host.is_dir():
        raise ToolError(f"{shown} is not a directory")
    entries = sorted(host.iterdir(), key=lambda p: p.name)
    lines: list[str] = []
    for entry in entries[:LIST_LIMIT]:
        if entry.is_dir():
            lines.append(f"{entry.name}/")
        else:
            try:
                size = entry.stat().st_size
            except OSError:
                size = 0
            lines.append(f"{entry.name} ({size} bytes)")
    if len(entries) > LIST_LIMIT:
        lines.append(f"... ({len(entries) - LIST_LIMIT} more entries)")
    if not lines:
        return f"{shown} is empty"
    return truncate("\n".join(lines), READ_LIMIT)


async def list_directory(args: ListDirectoryArgs, context: ToolContext) -> str:
    shown, host = confine(args.path, READ_ROOTS)
    return await asyncio.to_thread(_list, host, shown)


READ_FILE = Tool(
    "read_file",
    f"Read a text file (at most {READ_LIMIT} characters). Allowed under {', '.join(READ_ROOTS)}.",
    ReadFileArgs,
    read_file,
)
WRITE_FILE = Tool(
    "write_file",
    f"Create or overwrite a text file. Allowed under {', '.join(WRITE_ROOTS)}.",
    WriteFileArgs,
    write_file,
)
LIST_DIRECTORY = Tool(
    "list_directory",
    f"List the entries of a directory. Allowed under {', '.join(READ_ROOTS)}.",
    ListDirectoryArgs,
    list_directory,
)
