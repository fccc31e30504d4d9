from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import DEFAULT_SYSTEM_PROMPT, ConfigError, load_config
from agent.toolpolicy import ToolPolicy

BASE = {"TASK": "do it", "API_KEY": "sk-test"}


def test_defaults() -> None:
    config = load_config(BASE)
    assert config.task == "do it"
    assert config.provider == "openai"
    assert config.model == "gpt-4o-mini"
    assert config.base_url == "https://api.openai.com/v1"
    assert config.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert config.max_tool_iterations == 50
    assert config.timeout_seconds == 600
    assert config.thinking == "off"
    assert config.tool_policy == ToolPolicy()
    assert config.exec_sidecars == ()
    assert config.tools_enabled is True


def test_api_key_is_not_in_repr() -> None:
    assert "sk-test" not in repr(load_config(BASE))


def test_key_precedence() -> None:
    env = {"TASK": "t", "OPENAI_API_KEY": "second", "PROVIDER_API_KEY": "fifth", "API_KEY": "first"}
    assert load_config(env).api_key == "first"
    env.pop("API_KEY")
    assert load_config(env).api_key == "second"


@pytest.mark.parametrize(
    ("provider", "base"),
    [
        ("ollama", "http://ollama.default.svc:11434/v1"),
        ("lm-studio", "http://localhost:1234/v1"),
        ("anthropic", "https://api.anthropic.com"),
        ("OpenAI", "https://api.openai.com/v1"),
    ],
)
def test_provider_defaults(provider: str, base: str) -> None:
    config = load_config({**BASE, "MODEL_PROVIDER": provider})
    assert config.provider == provider.lower()
    assert config.base_url == base


def test_keyless_providers_and_base_url_trailing_slash() -> None:
    config = load_config(
        {"TASK": "t", "MODEL_PROVIDER": "custom", "MODEL_BASE_URL": "http://x:1/v1/"}
    )
    assert config.api_key is None
    assert config.base_url == "http://x:1/v1"
    assert load_config({"TASK": "t", "MODEL_PROVIDER": "ollama"}).api_key is None


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"API_KEY": "k"}, "TASK", "no task: set TASK or TASK_FILE"),
        (
            {**BASE, "MODEL_PROVIDER": "bedrock"},
            "MODEL_PROVIDER",
            "provider bedrock is not supported by this runner",
        ),
        ({**BASE, "MODEL_PROVIDER": "azure-openai"}, "MODEL_BASE_URL", "azure-openai"),
        ({"TASK": "t"}, "API_KEY", "needs an API key"),
        ({**BASE, "MAX_TOOL_ITERATIONS": "many"}, "MAX_TOOL_ITERATIONS", "integer"),
        ({**BASE, "MAX_TOOL_ITERATIONS": "0"}, "MAX_TOOL_ITERATIONS", "at least 1"),
        ({**BASE, "AGENT_TIMEOUT_SECONDS": "-3"}, "AGENT_TIMEOUT_SECONDS", "positive"),
        ({**BASE, "THINKING_MODE": "extreme"}, "THINKING_MODE", "off, low, medium or high"),
        ({**BASE, "TOOL_POLICY": "{nope"}, "TOOL_POLICY", "not valid JSON"),
        ({**BASE, "TOOL_POLICY": '{"allow": "read_file"}'}, "TOOL_POLICY", "allow"),
        ({**BASE, "TOOL_POLICY": '{"permit": []}'}, "TOOL_POLICY", "permit"),
        ({**BASE, "DEBUG": "maybe"}, "DEBUG", "true or false"),
        ({**BASE, "MODEL_BASE_URL": "ftp://x"}, "MODEL_BASE_URL", "http(s) URL"),
        ({**BASE, "TASK_FILE": "/nonexistent/task"}, "TASK", "no task"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str, fragment: str) -> None:
    if "TASK_FILE" in env:
        env = {k: v for k, v in env.items() if k != "TASK"}
        variable = "TASK_FILE"
        fragment = "does not exist"
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert caught.value.variable == variable
    assert fragment in str(caught.value)


def test_task_and_prompt_files_through_mounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "task").write_text("task from file\n")
    (tmp_path / "input" / "prompt").write_text("be brief")
    monkeypatch.setenv("LOCALCLUSTER_MOUNTS", json.dumps({"/input": str(tmp_path / "input")}))
    config = load_config(
        {"API_KEY": "k", "TASK_FILE": "/input/task", "SYSTEM_PROMPT_FILE": "/input/prompt"}
    )
    assert config.task == "task from file"
    assert config.system_prompt == "be brief"


def test_task_env_wins_over_file() -> None:
    assert load_config({**BASE, "TASK_FILE": "/does/not/matter"}).task == "do it"


def test_task_from_ipc_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "task.json").write_text(json.dumps({"task": "from ipc"}))
    monkeypatch.setenv("IPC_PATH", str(tmp_path))
    assert load_config({"API_KEY": "k"}).task == "from ipc"


def test_misc_values() -> None:
    config = load_config(
        {
            **BASE,
            "THINKING_MODE": "HIGH",
            "AGENT_TIMEOUT_SECONDS": "2",
            "EXEC_SIDECARS": " skill-a, ,skill-b ",
            "TOOL_POLICY": '{"deny": ["write_*"]}',
            "MEMORY_ENABLED": "true",
            "MEMORY_SERVER_URL": "http://mem:8080/",
            "TOOLS_ENABLED": "false",
        }
    )
    assert config.thinking == "high"
    assert config.timeout_seconds == 2
    assert config.exec_sidecars == ("skill-a", "skill-b")
    assert config.tool_policy.deny == ("write_*",)
    assert config.memory_enabled
    assert config.memory_server_url == "http://mem:8080"
    assert not config.tools_enabled


def test_openai_compatible_server_of_ones_own_needs_no_key() -> None:
    config = load_config({"TASK": "t", "MODEL_BASE_URL": "http://127.0.0.1:8900/v1"})
    assert config.api_key is None
    with pytest.raises(ConfigError, match="needs an API key"):
        load_config({"TASK": "t", "MODEL_BASE_URL": "https://api.openai.com/v1"})
