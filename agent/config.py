"""The agent container's configuration, read once from its environment.

Every value the controller (or a user's `spec.env`) can set is parsed here into one
pydantic model; a bad value raises `ConfigError` naming the variable, which the runner
turns into exit code 2 and a one-line message. Files named by the environment (the
task, the system prompt, the IPC task file) are read through `pod_path()`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.protocol import ipc_path, pod_path
from agent.toolpolicy import ToolPolicy

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful AI assistant running as an agent inside a Kubernetes pod. "
    "Complete the task you are given, using the tools available to you when they help, "
    "and answer concisely."
)

OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_BASE_URLS = {
    "openai": OPENAI_BASE_URL,
    "ollama": "http://ollama.default.svc:11434/v1",
    "lm-studio": "http://localhost:1234/v1",
    "anthropic": ANTHROPIC_BASE_URL,
}
KEYLESS_PROVIDERS = frozenset({"ollama", "lm-studio", "custom", "vllm"})
KEYED_PROVIDERS = frozenset({"openai", "azure-openai", "anthropic"})
UNSUPPORTED_PROVIDERS = frozenset({"bedrock"})
API_KEY_VARIABLES = (
    "API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "PROVIDER_API_KEY",
)

ThinkingMode = Literal["off", "low", "medium", "high"]


class ConfigError(Exception):
    """A configuration value the runner cannot work with; exit code 2."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


class AgentConfig(BaseModel):
    """Everything `sympozium agent run` needs, already validated."""

    model_config = ConfigDict(frozen=True)

    task: str
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    provider: str = "openai"
    model: str = "gpt-4o-mini"
    base_url: str = OPENAI_BASE_URL
    api_key: str | None = Field(default=None, repr=False)
    azure_api_version: str = "2024-06-01"
    thinking: ThinkingMode = "off"
    max_tool_iterations: int = 50
    timeout_seconds: float = 600.0
    tools_enabled: bool = True
    tool_policy: ToolPolicy = Field(default_factory=ToolPolicy)
    exec_sidecars: tuple[str, ...] = ()
    memory_enabled: bool = False
    memory_server_url: str | None = None
    source_channel: str | None = None
    source_chat_id: str | None = None
    agent_run_id: str | None = None
    instance_name: str | None = None
    namespace: str | None = None
    traceparent: str | None = None
    debug: bool = False

    @property
    def is_anthropic(self) -> bool:
        return self.provider == "anthropic"


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    text = raw[:-1] if raw.endswith("s") else raw
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(name, f"expected a number of seconds, got {raw!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(name, f"must be a positive number of seconds, got {raw!r}")
    return value


def _read_pod_file(variable: str, path: str) -> str:
    host = pod_path(path)
    try:
        return host.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(variable, f"file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(variable, f"cannot read {path}: {exc}") from None


def _task(env: Mapping[str, str]) -> str:
    task = _get(env, "TASK")
    if task is not None:
        return task
    task_file = _get(env, "TASK_FILE")
    if task_file is not None:
        text = _read_pod_file("TASK_FILE", task_file).strip()
        if not text:
            raise ConfigError("TASK_FILE", f"file {task_file} is empty")
        return text
    ipc_task = ipc_path("input/task.json")
    if ipc_task.is_file():
        try:
            loaded = json.loads(ipc_task.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError("TASK", f"cannot read /ipc/input/task.json: {exc}") from None
        if isinstance(loaded, dict) and isinstance(loaded.get("task"), str) and loaded["task"]:
            return str(loaded["task"])
        raise ConfigError("TASK", "/ipc/input/task.json has no string field 'task'")
    raise ConfigError("TASK", "no task: set TASK or TASK_FILE")


def _system_prompt(env: Mapping[str, str]) -> str:
    prompt = _get(env, "SYSTEM_PROMPT")
    if prompt is not None:
        return prompt
    prompt_file = _get(env, "SYSTEM_PROMPT_FILE")
    if prompt_file is not None:
        text = _read_pod_file("SYSTEM_PROMPT_FILE", prompt_file).strip()
        return text or DEFAULT_SYSTEM_PROMPT
    return DEFAULT_SYSTEM_PROMPT


def _thinking(env: Mapping[str, str]) -> ThinkingMode:
    raw = (_get(env, "THINKING_MODE") or "off").lower()
    if raw in ("off", "none", "disabled"):
        return "off"
    if raw == "low":
        return "low"
    if raw == "medium":
        return "medium"
    if raw == "high":
        return "high"
    raise ConfigError("THINKING_MODE", f"expected off, low, medium or high, got {raw!r}")


def _url(name: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(name, f"expected an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def _provider_settings(env: Mapping[str, str]) -> tuple[str, str]:
    provider = (_get(env, "MODEL_PROVIDER") or "openai").lower()
    if provider in UNSUPPORTED_PROVIDERS:
        raise ConfigError("MODEL_PROVIDER", f"provider {provider} is not supported by this runner")
    raw_base = _get(env, "MODEL_BASE_URL")
    if raw_base is not None:
        return provider, _url("MODEL_BASE_URL", raw_base)
    if provider == "azure-openai":
        raise ConfigError(
            "MODEL_BASE_URL", "provider azure-openai needs the resource URL in MODEL_BASE_URL"
        )
    default = default_base_url(provider)
    if default is None:
        raise ConfigError(
            "MODEL_BASE_URL", f"provider {provider} needs a base URL in MODEL_BASE_URL"
        )
    return provider, default


def default_base_url(provider: str) -> str | None:
    """Where a provider is reached without MODEL_BASE_URL; None when it must be given.

    The controller asks too, to open the run's NetworkPolicy to the same endpoint.
    """
    provider = provider.lower()
    if provider == "azure-openai":
        return None
    if provider in DEFAULT_BASE_URLS:
        return DEFAULT_BASE_URLS[provider]
    if provider not in KEYLESS_PROVIDERS:
        return OPENAI_BASE_URL
    return None


def load_config(env: Mapping[str, str]) -> AgentConfig:
    """Parse the environment; raises `ConfigError` naming the first bad variable."""
    task = _task(env)
    provider, base_url = _provider_settings(env)
    api_key = next((key for name in API_KEY_VARIABLES if (key := _get(env, name))), None)
    # An OpenAI-compatible server of one's own (vLLM, a proxy, the test double) may need
    # no key; only the providers' own endpoints always do.
    own_endpoint = provider == "openai" and base_url != OPENAI_BASE_URL
    if api_key is None and provider in KEYED_PROVIDERS and not own_endpoint:
        raise ConfigError(
            "API_KEY",
            f"provider {provider} needs an API key (set one of {', '.join(API_KEY_VARIABLES)})",
        )
    policy_raw = _get(env, "TOOL_POLICY")
    try:
        policy = ToolPolicy.parse(policy_raw) if policy_raw else ToolPolicy()
    except ValueError as exc:
        raise ConfigError("TOOL_POLICY", str(exc)) from None
    sidecars = tuple(s.strip() for s in (env.get("EXEC_SIDECARS") or "").split(",") if s.strip())
    memory_url = _get(env, "MEMORY_SERVER_URL")
    values = {
        "task": task,
        "system_prompt": _system_prompt(env),
        "provider": provider,
        "model": _get(env, "MODEL_NAME") or "gpt-4o-mini",
        "base_url": base_url,
        "api_key": api_key,
        "azure_api_version": _get(env, "AZURE_OPENAI_API_VERSION") or "2024-06-01",
        "thinking": _thinking(env),
        "max_tool_iterations": _int(env, "MAX_TOOL_ITERATIONS", 50),
        "timeout_seconds": _seconds(env, "AGENT_TIMEOUT_SECONDS", 600.0),
        "tools_enabled": _bool(env, "TOOLS_ENABLED", True),
        "tool_policy": policy,
        "exec_sidecars": sidecars,
        "memory_enabled": _bool(env, "MEMORY_ENABLED", False),
        "memory_server_url": _url("MEMORY_SERVER_URL", memory_url) if memory_url else None,
        "source_channel": _get(env, "SOURCE_CHANNEL"),
        "source_chat_id": _get(env, "SOURCE_CHAT_ID"),
        "agent_run_id": _get(env, "AGENT_RUN_ID"),
        "instance_name": _get(env, "INSTANCE_NAME"),
        "namespace": _get(env, "AGENT_NAMESPACE"),
        "traceparent": _get(env, "TRACEPARENT"),
        "debug": _bool(env, "DEBUG", False),
    }
    try:
        return AgentConfig.model_validate(values)
    except ValidationError as exc:  # pragma: no cover - every field is checked above
        first = exc.errors()[0]
        raise ConfigError(".".join(str(p) for p in first["loc"]), first["msg"]) from None
