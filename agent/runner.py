"""`sympozium agent run`: the agent container's LLM loop and its exit protocol.

Reads the configuration from the environment, asks the model, executes the tools it
calls (only those the tool policy offers), and reports exactly once: the memory marker
(if any) and the result marker on stdout, `output/stream-0.json`, `output/result.json`
and the `done` sentinel under `/ipc`. Exit 0 on success, 1 on failure, 2 on bad
configuration. Logs go to stderr as key=value and never contain the API key.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.config import AgentConfig, ConfigError, load_config
from agent.logs import configure_logging
from agent.protocol import (
    DONE_FILE,
    RESULT_FILE,
    AgentResult,
    RunMetrics,
    StreamChunk,
    ipc_path,
    memory_marker,
    result_marker,
    write_atomic,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from agent.providers.base import ChatResponse, Message, Provider, Sleep, ToolCall
    from agent.tools.base import Tool, ToolContext

log = logging.getLogger("agent.runner")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
STREAM_FILE = "output/stream-0.json"


class RunError(Exception):
    """The run failed for a reason to report as the result's error."""


@dataclass
class RunState:
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    refused_tool_calls: int = 0
    model_calls: int = 0
    messages: list[Message] = field(default_factory=list)


@dataclass
class Outcome:
    result: AgentResult
    memory: str | None = None


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}"


# ---- tracing


@contextmanager
def _tracing(config: AgentConfig, env: Mapping[str, str]) -> Iterator[Tracer]:
    """A tracer; spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set and an
    OTLP exporter package is installed. Otherwise the API's no-op tracer still carries
    the incoming TRACEPARENT through to the `_meta` of request files."""
    from opentelemetry import trace

    shutdown: Callable[[], None] | None = None
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        shutdown = _install_exporter(config)
    try:
        yield trace.get_tracer("sympozium.agent")
    finally:
        if shutdown is not None:
            shutdown()


def _install_exporter(config: AgentConfig) -> Callable[[], None] | None:
    for module_name in (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME", "sympozium-agent")}
        if config.agent_run_id:
            attributes["sympozium.agent_run.id"] = config.agent_run_id
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(
            BatchSpanProcessor(module.OTLPSpanExporter(), schedule_delay_millis=1000)
        )
        trace.set_tracer_provider(provider)
        return provider.shutdown
    log.warning(
        "event=otel_exporter_missing detail=%s",
        "OTEL_EXPORTER_OTLP_ENDPOINT is set but no OTLP exporter package is installed; spans are not exported",
    )
    return None


def _parent_context(config: AgentConfig) -> Any:
    if not config.traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": config.traceparent})


# ---- the loop


async def _call_model(
    provider: Provider, state: RunState, tools: list[Tool[Any]], tracer: Tracer, model: str
) -> ChatResponse:
    with tracer.start_as_current_span(
        "gen_ai.chat",
        attributes={"gen_ai.system": provider.name, "gen_ai.request.model": model},
    ) as span:
        response = await provider.chat(state.messages, [tool.spec() for tool in tools])
        span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
    state.model_calls += 1
    state.input_tokens += response.usage.input_tokens
    state.output_tokens += response.usage.output_tokens
    log.info(
        "event=model_response call=%d tool_calls=%d input_tokens=%d output_tokens=%d",
        state.model_calls,
        len(response.tool_calls),
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    return response


async def _execute_tool(
    call: ToolCall,
    offered: dict[str, Tool[Any]],
    context: ToolContext,
    state: RunState,
    tracer: Tracer,
) -> str:
    state.tool_calls += 1
    with tracer.start_as_current_span(
        "gen_ai.execute_tool",
        attributes={"gen_ai.tool.name": call.name, "gen_ai.tool.call.id": call.id},
    ) as span:
        tool = offered.get(call.name)
        if tool is None:
            state.refused_tool_calls += 1
            log.warning("event=tool_refused tool=%s reason=not_offered_by_policy", call.name)
            span.set_attribute("sympozium.tool.refused", True)
            return f'Error: tool "{call.name}" is not allowed by policy'
        try:
            arguments = call.parsed_arguments()
        except ValueError as exc:
            output = f"Error: {exc}"
        else:
            started = time.monotonic()
            output = await tool.invoke(arguments, context)
            log.info(
                "event=tool_call tool=%s status=%s duration_ms=%d",
                call.name,
                "error" if output.startswith("Error:") else "ok",
                int((time.monotonic() - started) * 1000),
            )
        span.set_attribute(
            "sympozium.tool.status", "error" if output.startswith("Error:") else "ok"
        )
        return output


async def _conversation(
    config: AgentConfig,
    provider: Provider,
    tools: list[Tool[Any]],
    context: ToolContext,
    state: RunState,
    tracer: Tracer,
) -> str:
    from agent.providers.base import Message

    offered = {tool.name: tool for tool in tools}
    for _ in range(config.max_tool_iterations):
        response = await _call_model(provider, state, tools, tracer, config.model)
        state.messages.append(
            Message(
                role="assistant",
                content=response.text,
                tool_calls=list(response.tool_calls),
                provider_blocks=response.provider_blocks,
            )
        )
        if not response.tool_calls:
            return response.text
        for call in response.tool_calls:
            output = await _execute_tool(call, offered, context, state, tracer)
            state.messages.append(
                Message(
                    role="tool",
                    content=output,
                    tool_call_id=call.id,
                    name=call.name,
                    is_error=output.startswith("Error:"),
                )
            )
    raise RunError(f"exceeded maximum tool-call iterations ({config.max_tool_iterations})")


async def run_agent(
    config: AgentConfig,
    env: Mapping[str, str] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Outcome:
    """Run the task to a result; never raises for anything the run itself can report."""
    import aiohttp

    from agent import prompt
    from agent.providers import HTTPClient, Message, ProviderError, make_provider
    from agent.tools import offered_tools
    from agent.tools.base import ToolContext

    loop = asyncio.get_running_loop()
    started = loop.time()
    state = RunState()
    tools = offered_tools(config)
    log.info(
        "event=run_start run=%s provider=%s model=%s tools=%s timeout_s=%s",
        config.agent_run_id or "-",
        config.provider,
        config.model,
        ",".join(tool.name for tool in tools) or "-",
        _seconds_text(config.timeout_seconds),
    )
    error: str | None = None
    text = ""
    environment = env if env is not None else os.environ
    with (
        _tracing(config, environment) as tracer,
        tracer.start_as_current_span(
            "sympozium.agent.run",
            context=_parent_context(config),
            attributes={
                "sympozium.agent_run.id": config.agent_run_id or "",
                "sympozium.instance": config.instance_name or "",
                "gen_ai.request.model": config.model,
            },
        ) as span,
    ):
        timeout = asyncio.timeout(config.timeout_seconds)
        try:
            async with timeout:
                skills = await asyncio.to_thread(prompt.read_skills)
                memory = (
                    await asyncio.to_thread(prompt.read_memory) if config.memory_enabled else None
                )
                state.messages = [
                    Message(
                        role="system",
                        content=prompt.build_system_prompt(
                            config, skills, [tool.name for tool in tools]
                        ),
                    ),
                    Message(role="user", content=prompt.build_user_message(config.task, memory)),
                ]
                async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=30)
                ) as session:
                    http = HTTPClient(
                        session=session, deadline=started + config.timeout_seconds, sleep=sleep
                    )
                    provider = make_provider(config, http)
                    context = ToolContext(config=config, session=session)
                    text = await _conversation(config, provider, tools, context, state, tracer)
        except TimeoutError as exc:
            if timeout.expired():
                error = f"agent timed out after {_seconds_text(config.timeout_seconds)}s"
            else:
                error = f"agent failed: {type(exc).__name__}: {exc}"
        except (ProviderError, RunError) as exc:
            error = str(exc)
        except Exception as exc:  # a bug must still end in a result the controller can read
            log.exception("event=run_crashed")
            error = f"agent failed: {type(exc).__name__}: {exc}"
        span.set_attribute("sympozium.agent.status", "error" if error else "success")
    metrics = RunMetrics(
        duration_ms=int((loop.time() - started) * 1000),
        input_tokens=state.input_tokens,
        output_tokens=state.output_tokens,
        tool_calls=state.tool_calls,
    )
    log.info(
        "event=run_finished status=%s duration_ms=%d model_calls=%d tool_calls=%d "
        "refused_tool_calls=%d input_tokens=%d output_tokens=%d",
        "error" if error else "success",
        metrics.duration_ms,
        state.model_calls,
        state.tool_calls,
        state.refused_tool_calls,
        metrics.input_tokens,
        metrics.output_tokens,
    )
    if error is not None:
        log.error("event=run_failed error=%r", error)
        return Outcome(AgentResult(status="error", error=error, metrics=metrics))
    response, memory_block = prompt.extract_memory(text)
    if config.debug:
        response = text
    return Outcome(AgentResult(status="success", response=response, metrics=metrics), memory_block)


# ---- reporting


def write_outputs(result: AgentResult) -> None:
    """stream-0.json (if there is a response), result.json, then the done sentinel."""
    root = ipc_path()
    if not root.is_dir():
        log.warning(
            "event=ipc_missing path=%s detail=%s", root, "no /ipc volume; result files not written"
        )
        return
    try:
        if result.response:
            write_atomic(ipc_path(STREAM_FILE), StreamChunk(content=result.response).to_json())
        write_atomic(ipc_path(RESULT_FILE), result.to_json())
        write_atomic(ipc_path(DONE_FILE), "")
    except OSError as exc:
        log.error("event=ipc_write_failed path=%s error=%r", ipc_path(), str(exc))


def report(outcome: Outcome) -> None:
    """Everything the controller and the sidecars read, in the order they expect."""
    if outcome.memory:
        sys.stdout.write(memory_marker(outcome.memory))
    write_outputs(outcome.result)
    sys.stdout.write(result_marker(outcome.result))
    sys.stdout.flush()


def main(env: Mapping[str, str] | None = None) -> int:
    environment = env if env is not None else os.environ
    debug = (environment.get("DEBUG") or "").strip().lower() in ("1", "true", "yes", "on")
    configure_logging(debug)
    try:
        config = load_config(environment)
    except ConfigError as exc:
        message = f"configuration error: {exc}"
        sys.stderr.write(f"sympozium agent run: {message}\n")
        report(Outcome(AgentResult(status="error", error=message)))
        return EXIT_CONFIG
    outcome = asyncio.run(run_agent(config, environment))
    report(outcome)
    return EXIT_OK if outcome.result.status == "success" else EXIT_FAILED
