"""SympoziumConfig: cluster-wide settings (the singleton `default` in sympozium-system)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field

from .common import (
    Condition,
    SympoziumModel,
    _empty_to_none,
    _Resource,
)


class ConfigPhase(StrEnum):
    """Phase of a SympoziumConfig."""

    DISABLED = "Disabled"
    PENDING = "Pending"
    READY = "Ready"
    ERROR = "Error"


class GatewayTLS(SympoziumModel):
    """TLS of the shared Gateway."""

    enabled: bool = False
    """Serve HTTPS."""
    cert_manager_cluster_issuer: str | None = None
    """cert-manager ClusterIssuer for the wildcard certificate."""
    secret_name: str = "sympozium-wildcard-cert"
    """Secret holding the certificate."""


class GatewaySpec(SympoziumModel):
    """The shared Gateway API gateway exposing agents."""

    enabled: bool = False
    """Create the Gateway."""
    gateway_class_name: str = "sympozium"
    """GatewayClass name."""
    name: str = "sympozium-gateway"
    """Gateway name."""
    base_domain: str | None = None
    """Agents are exposed at <name>.<baseDomain>."""
    tls: GatewayTLS | None = None
    """HTTPS settings."""


class SympoziumConfigSpec(SympoziumModel):
    """Cluster-wide settings."""

    gateway: GatewaySpec | None = None
    """Shared Gateway settings."""


class GatewayStatus(SympoziumModel):
    """Observed state of the Gateway."""

    ready: bool = False
    """The Gateway is programmed."""
    address: str | None = None
    """Gateway address."""
    listener_count: int | None = None
    """Listeners on the Gateway."""


class SympoziumConfigStatus(SympoziumModel):
    """Observed state of the configuration."""

    phase: Annotated[ConfigPhase | None, BeforeValidator(_empty_to_none)] = None
    """Disabled, Pending, Ready or Error."""
    gateway: GatewayStatus | None = None
    """Gateway state."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready condition."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class SympoziumConfig(_Resource):
    """Cluster-wide Sympozium settings."""

    KIND: ClassVar[str] = "SympoziumConfig"

    kind: str = "SympoziumConfig"
    spec: SympoziumConfigSpec = Field(default_factory=SympoziumConfigSpec)
    status: SympoziumConfigStatus | None = None
