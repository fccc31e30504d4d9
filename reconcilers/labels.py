"""Label, annotation and finalizer keys users and tools already know (crds.md)."""

from __future__ import annotations

INSTANCE = "sympozium.ai/instance"
AGENT_RUN = "sympozium.ai/agent-run"
COMPONENT = "sympozium.ai/component"
SOURCE = "sympozium.ai/source"
SKILL = "sympozium.ai/skill"
MANAGED_BY = "sympozium.ai/managed-by"
PART_OF = "app.kubernetes.io/part-of"
APP_MANAGED_BY = "app.kubernetes.io/managed-by"

TRACEPARENT = "otel.dev/traceparent"
REPLY_CHANNEL = "sympozium.ai/reply-channel"
REPLY_CHAT_ID = "sympozium.ai/reply-chat-id"

AGENT_RUN_FINALIZER = "sympozium.ai/agentrun-finalizer"

SYSTEM_NAMESPACE = "sympozium-system"


def run_labels(run_name: str, instance: str, component: str = "agent-run") -> dict[str, str]:
    """The labels on everything made for one run: pruning, cleanup and selectors key on them."""
    return {
        AGENT_RUN: run_name,
        INSTANCE: instance,
        COMPONENT: component,
        PART_OF: "sympozium",
        APP_MANAGED_BY: "sympozium-controller",
    }
