"""MCPServer: a Model Context Protocol server, external or deployed in the cluster."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .common import (
    Condition,
    ResourceRequirements,
    SympoziumModel,
    _Resource,
)


class SecretRef(SympoziumModel):
    """A Secret whose keys become environment variables."""

    name: str
    """Secret name."""


class MCPServerDeployment(SympoziumModel):
    """How to run the server in the cluster."""

    image: str = Field(min_length=1)
    """Container image."""
    cmd: str | None = None
    """Command."""
    args: list[str] = Field(default_factory=list)
    """Arguments."""
    port: int = 8080
    """Port the server listens on (http transport)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables."""
    secret_refs: list[SecretRef] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Secrets loaded as environment variables."""
    resources: ResourceRequirements | None = None
    """Container resources."""
    service_account_name: str | None = None
    """Service account of the server pods."""


class MCPServerSpec(SympoziumModel):
    """Where the server is and which of its tools agents see."""

    transport_type: Literal["stdio", "http"]
    """stdio (bridged) or http."""
    tools_prefix: str = Field(min_length=1)
    """Prefix added to the server's tool names."""
    url: str | None = None
    """URL of an external server (then nothing is deployed)."""
    deployment: MCPServerDeployment | None = None
    """How to run the server in the cluster."""
    timeout: int = 30
    """Call timeout in seconds."""
    replicas: int = 1
    """Server replicas."""
    tools_allow: list[str] = Field(default_factory=list)
    """Only these (unprefixed) tools are exposed."""
    tools_deny: list[str] = Field(default_factory=list)
    """These (unprefixed) tools are hidden, after toolsAllow."""


class MCPServerStatus(SympoziumModel):
    """Observed state of an MCP server."""

    ready: bool = False
    """The server answers."""
    url: str | None = None
    """URL agents use."""
    tool_count: int | None = None
    """Tools discovered."""
    tools: list[str] = Field(default_factory=list)
    """Tool names discovered."""
    conditions: list[Condition] = Field(default_factory=list)
    """Deployed and Ready conditions."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class MCPServer(_Resource):
    """A Model Context Protocol server whose tools agents may call."""

    KIND: ClassVar[str] = "MCPServer"

    kind: str = "MCPServer"
    spec: MCPServerSpec
    status: MCPServerStatus | None = None
