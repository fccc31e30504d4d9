"""A scripted LLM provider for tests and demos: real HTTP, real wire protocols.

Speaks OpenAI Chat Completions (`POST /v1/chat/completions`, also Azure's
`/openai/deployments/<name>/chat/completions`, `stream: true` as SSE, `GET /v1/models`)
and the Anthropic Messages API (`POST /v1/messages`), with each provider's own error
shapes. It is stateless per conversation: the reply is chosen by the request's model
name (which script) and the number of assistant turns already in the request (which
step); past the end of a script its last step repeats. The one piece of state is the
counter behind `error.times` (an error returned only the first N times a step is hit).

A script file (YAML or JSON) maps model names to lists of steps:

    my-model:
      - tool_calls: [{name: list_directory, arguments: {path: /workspace}}]
      - content: "I saw: {{last_tool_result}}"
    flaky:
      - error: {status: 429, message: "slow down", times: 2, retry_after: 0}
        then: {content: "recovered"}
      - delay: 1.5
        then: {content: "late"}

`{{task}}` is the first user message, `{{last_tool_result}}` the last tool result.
Every request is recorded: `GET /_double/requests` lists them, `DELETE` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from agent.providers.anthropic import AnthropicUsage as AnthropicUsageWire
from agent.providers.anthropic import (
    ContentBlock,
    MessagesRequest,
    MessagesResponse,
)
from agent.providers.openai import (
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    CompletionUsage,
    FunctionCall,
    WireToolCall,
)

log = logging.getLogger("agent.llmdouble")

DEFAULT_SCRIPT = "echo"


class _StepModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCallStep(_StepModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ErrorStep(_StepModel):
    status: int = Field(default=500, ge=400, le=599)
    message: str = "scripted error"
    type: str | None = None
    times: int | None = Field(default=None, ge=1)
    retry_after: float | None = Field(default=None, ge=0)


class Step(_StepModel):
    content: str | None = None
    tool_calls: list[ToolCallStep] | None = None
    error: ErrorStep | None = None
    delay: float | None = Field(default=None, ge=0)
    then: Step | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        answer = self.content is not None or bool(self.tool_calls)
        kinds = sum((answer, self.error is not None, self.delay is not None))
        if kinds != 1:
            raise ValueError("a step is exactly one of: content/tool_calls, error, delay")
        if self.delay is not None and self.then is None:
            raise ValueError("a delay step needs 'then'")
        if self.error is not None and self.error.times is not None and self.then is None:
            raise ValueError("an error step with 'times' needs 'then'")
        if answer and self.then is not None:
            raise ValueError("'then' belongs to delay or error steps")
        return self


class Scripts(RootModel[dict[str, list[Step]]]):
    pass


def _answer(content: str) -> Step:
    return Step(content=content)


BUILTIN_SCRIPTS: dict[str, list[Step]] = {
    "echo": [_answer("echo: {{task}}")],
    "instant": [_answer("done")],
    "tool-then-answer": [
        Step(tool_calls=[ToolCallStep(name="list_directory", arguments={"path": "/workspace"})]),
        _answer("{{last_tool_result}}"),
    ],
    "exec-then-answer": [
        Step(
            tool_calls=[
                ToolCallStep(
                    name="execute_command", arguments={"command": "echo hello from the sidecar"}
                )
            ]
        ),
        _answer("{{last_tool_result}}"),
    ],
    "fail-401": [Step(error=ErrorStep(status=401, message="Incorrect API key provided"))],
    "fail-429": [
        Step(error=ErrorStep(status=429, message="Rate limit reached for requests", retry_after=1))
    ],
    "slow": [Step(delay=3600, then=_answer("finally"))],
}


def load_scripts(path: Path) -> dict[str, list[Step]]:
    """Scripts from a YAML or JSON file; ValueError with a readable reason."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read script file {path}: {exc}") from None
    try:
        return Scripts.model_validate(loaded or {}).root
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"script file {path}: {where}: {first['msg']}") from None


# ---- errors in each provider's shape

_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def openai_error(
    status: int, message: str, type_: str | None = None, retry_after: float | None = None
) -> web.Response:
    kind, code = _OPENAI_ERRORS.get(status, ("server_error", None))
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.json_response(
        {"error": {"message": message, "type": type_ or kind, "param": None, "code": code}},
        status=status,
        headers=headers,
    )


def anthropic_error(
    status: int, message: str, type_: str | None = None, retry_after: float | None = None
) -> web.Response:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error")
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.json_response(
        {"type": "error", "error": {"type": type_ or kind, "message": message}},
        status=status,
        headers=headers,
    )


# ---- conversation facts the scripts depend on


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in values.items():
            value = value.replace("{{" + key + "}}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


class _Turns(BaseModel):
    """What step selection and templates need, the same for both protocols."""

    assistant_turns: int
    task: str
    last_tool_result: str


def _openai_turns(request: ChatCompletionRequest) -> _Turns:
    task = next((m.text() for m in request.messages if m.role == "user"), "")
    tool_results = [m.text() for m in request.messages if m.role == "tool"]
    return _Turns(
        assistant_turns=sum(1 for m in request.messages if m.role == "assistant"),
        task=task,
        last_tool_result=tool_results[-1] if tool_results else "",
    )


def _anthropic_turns(request: MessagesRequest) -> _Turns:
    task = ""
    results: list[str] = []
    for message in request.messages:
        if message.role != "user":
            continue
        for block in message.blocks():
            if block.type == "text" and not task:
                task = block.text or ""
            if block.type == "tool_result":
                results.append(block.result_text())
    return _Turns(
        assistant_turns=sum(1 for m in request.messages if m.role == "assistant"),
        task=task,
        last_tool_result=results[-1] if results else "",
    )


def _openai_problem(request: ChatCompletionRequest) -> str | None:
    """What the real API would reject about the conversation's tool turns."""
    pending: set[str] = set()
    for message in request.messages:
        if message.role == "assistant":
            if pending:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    f"responding to each 'tool_call_id'. Missing: {', '.join(sorted(pending))}"
                )
            pending = {c.id for c in message.tool_calls or []}
        elif message.role == "tool":
            if message.tool_call_id not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            pending.discard(message.tool_call_id)
    return None


def _anthropic_problem(request: MessagesRequest) -> str | None:
    thinking = request.thinking is not None and request.thinking.type == "enabled"
    if thinking:
        budget = request.thinking.budget_tokens if request.thinking else None
        if budget is None or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if request.max_tokens <= budget:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    expected: set[str] = set()
    for index, message in enumerate(request.messages):
        blocks = message.blocks()
        if message.role == "assistant":
            uses = [b for b in blocks if b.type == "tool_use"]
            if thinking and uses and blocks[0].type not in ("thinking", "redacted_thinking"):
                return (
                    f"messages.{index}.content.0.type: Expected `thinking` or "
                    f"`redacted_thinking`, but found `{blocks[0].type}`. When `thinking` is "
                    "enabled, a final `assistant` message must start with a thinking block."
                )
            expected = {b.id or "" for b in uses}
        else:
            results = {b.tool_use_id or "" for b in blocks if b.type == "tool_result"}
            if expected and not expected <= results:
                return (
                    f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(sorted(expected - results))}"
                )
            expected = set()
    return None


class LLMDouble:
    """The server; usable in-process (`await start()` → root URL) or via the CLI.

    OpenAI clients use `<url>/v1` as their base URL, Anthropic clients `<url>`.
    """

    def __init__(
        self,
        scripts: Mapping[str, list[Step] | list[dict[str, Any]]] | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.scripts: dict[str, list[Step]] = dict(BUILTIN_SCRIPTS)
        if scripts:
            self.scripts.update(Scripts.model_validate(dict(scripts)).root)
        self.api_key = api_key
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self._hits: dict[tuple[str, int], int] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/chat/completions", self._openai)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_double/requests", self._list_requests)
        app.router.add_delete("/_double/requests", self._clear_requests)
        app.router.add_get("/healthz", self._health)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(
            self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- helpers

    def _authorized(self, request: web.Request) -> bool:
        if not self.api_key:
            return True
        offered = {
            request.headers.get("x-api-key"),
            request.headers.get("api-key"),
        }
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            offered.add(authorization[len("Bearer ") :])
        return self.api_key in offered

    def _step(self, model: str, index: int) -> Step:
        script = self.scripts.get(model) or self.scripts[DEFAULT_SCRIPT]
        return script[min(index, len(script) - 1)]

    async def _resolve(self, model: str, index: int) -> Step:
        """Follow delays and counted errors down to the step that answers."""
        step = self._step(model, index)
        while True:
            if step.delay is not None and step.then is not None:
                await asyncio.sleep(step.delay)
                step = step.then
                continue
            if step.error is not None and step.error.times is not None and step.then is not None:
                key = (model, index)
                hits = self._hits.get(key, 0)
                self._hits[key] = hits + 1
                if hits >= step.error.times:
                    step = step.then
                    continue
            return step

    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry.setdefault("at", time.time())
        self.requests.append(entry)
        return entry

    async def _body(self, request: web.Request) -> dict[str, Any] | str:
        try:
            loaded = await request.json()
        except ValueError as exc:
            return f"We could not parse the JSON body of your request: {exc}"
        if not isinstance(loaded, dict):
            return "The request body must be a JSON object."
        return loaded

    # ---- OpenAI

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self._record({"path": request.path, "status": 401, "protocol": "openai"})
            return openai_error(
                401,
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
            )
        body = await self._body(request)
        if isinstance(body, str):
            return openai_error(400, body)
        deployment = request.match_info.get("deployment")
        if deployment and "model" not in body:
            body = {**body, "model": deployment}
        try:
            chat = ChatCompletionRequest.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return openai_error(400, f"Invalid request: {where}: {first['msg']}")
        model = deployment or chat.model
        entry = self._record(
            {
                "path": request.path,
                "query": dict(request.query),
                "protocol": "openai",
                "model": model,
                "tools": [t.function.name for t in chat.tools or []],
                "messages": body.get("messages", []),
                "body": body,
            }
        )
        problem = _openai_problem(chat)
        if problem:
            entry["status"] = 400
            return openai_error(400, problem)
        turns = _openai_turns(chat)
        step = await self._resolve(model, turns.assistant_turns)
        if step.error is not None:
            entry["status"] = step.error.status
            return openai_error(
                step.error.status, step.error.message, step.error.type, step.error.retry_after
            )
        values = {"task": turns.task, "last_tool_result": turns.last_tool_result}
        content = _fill(step.content, values) if step.content is not None else None
        calls = [
            WireToolCall(
                id=f"call_{turns.assistant_turns}_{i}_{uuid.uuid4().hex[:8]}",
                function=FunctionCall(
                    name=c.name, arguments=json.dumps(_fill(c.arguments, values))
                ),
            )
            for i, c in enumerate(step.tool_calls or [])
        ]
        prompt_text = json.dumps(body.get("messages", [])) + json.dumps(body.get("tools") or [])
        completion_text = (content or "") + "".join(c.function.arguments for c in calls)
        usage = CompletionUsage(
            prompt_tokens=_tokens(prompt_text), completion_tokens=_tokens(completion_text)
        )
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        entry["status"] = 200
        entry["usage"] = {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
        }
        completion = ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
            created=int(time.time()),
            model=model,
            choices=[
                Choice(
                    message=ChatMessage(
                        role="assistant", content=content, tool_calls=calls or None
                    ),
                    finish_reason="tool_calls" if calls else "stop",
                )
            ],
            usage=usage,
        )
        if chat.stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._openai_stream(request, completion, include_usage)
        out = completion.dump()
        out["choices"][0]["message"].setdefault("content", None)
        return web.json_response(out)

    async def _openai_stream(
        self, request: web.Request, completion: ChatCompletion, include_usage: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        base = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
        }

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {**base, "choices": choices, **extra}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        choice = completion.choices[0]
        message = choice.message
        await send([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        text = message.text()
        for start in range(0, len(text), 16):
            await send([{"index": 0, "delta": {"content": text[start : start + 16]}}])
        for i, call in enumerate(message.tool_calls or []):
            delta = {
                "tool_calls": [
                    {
                        "index": i,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": ""},
                    }
                ]
            }
            await send([{"index": 0, "delta": delta}])
            arguments = {
                "tool_calls": [{"index": i, "function": {"arguments": call.function.arguments}}]
            }
            await send([{"index": 0, "delta": arguments}])
        await send([{"index": 0, "delta": {}, "finish_reason": choice.finish_reason}])
        if include_usage and completion.usage is not None:
            await send([], usage=completion.usage.dump())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # ---- Anthropic

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self._record({"path": request.path, "status": 401, "protocol": "anthropic"})
            return anthropic_error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(400, "anthropic-version: header is required")
        body = await self._body(request)
        if isinstance(body, str):
            return anthropic_error(400, body)
        try:
            messages = MessagesRequest.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return anthropic_error(400, f"{where}: {first['msg']}")
        entry = self._record(
            {
                "path": request.path,
                "protocol": "anthropic",
                "model": messages.model,
                "tools": [t.name for t in messages.tools or []],
                "messages": body.get("messages", []),
                "body": body,
            }
        )
        if messages.stream:
            entry["status"] = 400
            return anthropic_error(400, "stream: streaming is not supported by the LLM double")
        problem = _anthropic_problem(messages)
        if problem:
            entry["status"] = 400
            return anthropic_error(400, problem)
        turns = _anthropic_turns(messages)
        step = await self._resolve(messages.model, turns.assistant_turns)
        if step.error is not None:
            entry["status"] = step.error.status
            return anthropic_error(
                step.error.status, step.error.message, step.error.type, step.error.retry_after
            )
        values = {"task": turns.task, "last_tool_result": turns.last_tool_result}
        blocks: list[ContentBlock] = []
        if messages.thinking is not None and messages.thinking.type == "enabled":
            blocks.append(
                ContentBlock(
                    type="thinking",
                    thinking=f"Thinking about step {turns.assistant_turns}.",
                    signature=f"sig-{uuid.uuid4().hex}",
                )
            )
        if step.content is not None:
            blocks.append(ContentBlock(type="text", text=_fill(step.content, values)))
        for i, call in enumerate(step.tool_calls or []):
            blocks.append(
                ContentBlock(
                    type="tool_use",
                    id=f"toolu_{turns.assistant_turns}_{i}_{uuid.uuid4().hex[:8]}",
                    name=call.name,
                    input=_fill(call.arguments, values),
                )
            )
        prompt_text = json.dumps(body.get("messages", [])) + json.dumps(body.get("system") or "")
        prompt_text += json.dumps(body.get("tools") or [])
        completion_text = "".join(
            (b.text or "") + (json.dumps(b.input) if b.input is not None else "") for b in blocks
        )
        usage = AnthropicUsageWire(
            input_tokens=_tokens(prompt_text), output_tokens=_tokens(completion_text)
        )
        entry["status"] = 200
        entry["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        reply = MessagesResponse(
            id=f"msg_{uuid.uuid4().hex[:24]}",
            model=messages.model,
            content=blocks,
            stop_reason="tool_use" if step.tool_calls else "end_turn",
            usage=usage,
        )
        out = reply.dump()
        out["stop_sequence"] = None
        return web.json_response(out)

    # ---- the rest

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return openai_error(401, "Incorrect API key provided.")
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "llm-double"}
                    for name in sorted(self.scripts)
                ],
            }
        )

    async def _list_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.requests)

    async def _clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        self._hits.clear()
        return web.json_response({"cleared": True})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


# ---- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8900, help="port to listen on (0 = any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--script",
        type=Path,
        default=None,
        metavar="FILE.yaml",
        help="scripts to add (YAML or JSON: model name → list of steps)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this key (Authorization: Bearer, x-api-key or api-key)",
    )
    parser.set_defaults(func=_command)


async def serve(double: LLMDouble) -> None:
    url = await double.start()
    print(f"llm-double listening on {url} (OpenAI base {url}/v1, Anthropic base {url})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await double.stop()


def _command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="level=%(levelname)s logger=%(name)s %(message)s"
    )
    scripts: dict[str, list[Step]] = {}
    if args.script is not None:
        try:
            scripts = load_scripts(args.script)
        except ValueError as exc:
            print(f"sympozium llm-double: {exc}", flush=True)
            return 2
    double = LLMDouble(scripts, api_key=args.api_key, host=args.host, port=args.port)
    try:
        asyncio.run(serve(double))
    except OSError as exc:
        print(f"sympozium llm-double: cannot listen on {args.host}:{args.port}: {exc}", flush=True)
        return 1
    return 0
