"""`memory_search`, `memory_store`, `memory_list`: the instance's memory server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from pydantic import Field

from agent.tools.base import Tool, ToolArgs, ToolContext, ToolError, truncate

REQUEST_TIMEOUT = 5.0
ATTEMPTS = 3
BACKOFF = 0.5
OUTPUT_LIMIT = 8000


class MemorySearchArgs(ToolArgs):
    query: str = Field(description="Words to search for")
    top_k: int = Field(default=5, ge=1, le=50, description="How many memories to return")


class MemoryStoreArgs(ToolArgs):
    content: str = Field(description="What to remember")
    tags: list[str] = Field(default_factory=list, description="Tags to file it under")


class MemoryListArgs(ToolArgs):
    tags: str = Field(default="", description="Only memories whose tags contain this text")
    limit: int = Field(default=20, ge=1, le=200)


async def _call(
    context: ToolContext, method: str, path: str, *, body: Any = None, params: Any = None
) -> str:
    base = context.config.memory_server_url
    if not base:
        raise ToolError("no memory server is configured")
    url = f"{base}{path}"
    last = ""
    for attempt in range(ATTEMPTS):
        try:
            async with context.session.request(
                method,
                url,
                json=body,
                params=params,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ) as response:
                text = await response.text()
                try:
                    loaded = json.loads(text)
                except ValueError:
                    loaded = None
                if isinstance(loaded, dict):
                    if loaded.get("success") is False or response.status >= 400:
                        raise ToolError(f"memory server: {loaded.get('error') or response.status}")
                    content = loaded.get("content")
                    if isinstance(content, str):
                        return truncate(content, OUTPUT_LIMIT)
                    return truncate(json.dumps(content, indent=1), OUTPUT_LIMIT)
                last = f"HTTP {response.status}: {text[:200]}"
                if response.status < 500:
                    raise ToolError(f"memory server: {last}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            last = str(exc) or type(exc).__name__
        if attempt + 1 < ATTEMPTS:
            await asyncio.sleep(BACKOFF * 2**attempt)
    raise ToolError(f"memory server unreachable after {ATTEMPTS} attempts: {last}")


async def memory_search(args: MemorySearchArgs, context: ToolContext) -> str:
    return await _call(context, "POST", "/search", body={"query": args.query, "top_k": args.top_k})


async def memory_store(args: MemoryStoreArgs, context: ToolContext) -> str:
    if not args.content.strip():
        raise ToolError("content is required")
    return await _call(context, "POST", "/store", body={"content": args.content, "tags": args.tags})


async def memory_list(args: MemoryListArgs, context: ToolContext) -> str:
    return await _call(
        context, "GET", "/list", params={"tags": args.tags, "limit": str(args.limit)}
    )


MEMORY_SEARCH = Tool(
    "memory_search",
    "Search your long-term memory for entries matching the query.",
    MemorySearchArgs,
    memory_search,
)
MEMORY_STORE = Tool(
    "memory_store",
    "Store a fact in your long-term memory so later runs can find it.",
    MemoryStoreArgs,
    memory_store,
)
MEMORY_LIST = Tool(
    "memory_list",
    "List your most recent memories, optionally filtered by tag.",
    MemoryListArgs,
    memory_list,
)
