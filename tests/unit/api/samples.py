"""Wire-format objects of every sympozium.ai/v1alpha1 kind, shared by the api tests."""

from __future__ import annotations

import copy
from typing import Any

API_VERSION = "sympozium.ai/v1alpha1"


def _obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


MINIMAL: dict[str, dict[str, Any]] = {
    "AgentRun": _obj(
        "AgentRun",
        "run-1",
        {
            "instanceRef": "alice",
            "agentId": "primary",
            "sessionKey": "",
            "task": "say hello",
            "model": {"provider": "openai", "model": "gpt-4o", "authSecretRef": ""},
        },
    ),
    "SympoziumInstance": _obj(
        "SympoziumInstance", "alice", {"agents": {"default": {"model": "gpt-4o"}}}
    ),
    "PersonaPack": _obj(
        "PersonaPack",
        "team",
        {"personas": [{"name": "reviewer", "systemPrompt": "You review code."}]},
    ),
    "SkillPack": _obj(
        "SkillPack", "code-review", {"skills": [{"name": "review", "content": "# Review\n"}]}
    ),
    "SympoziumPolicy": _obj("SympoziumPolicy", "permissive", {}),
    "SympoziumSchedule": _obj(
        "SympoziumSchedule",
        "hourly",
        {"instanceRef": "alice", "schedule": "0 * * * *", "task": "check the cluster"},
    ),
    "MCPServer": _obj("MCPServer", "github", {"transportType": "http", "toolsPrefix": "gh"}),
    "SympoziumConfig": _obj("SympoziumConfig", "default", {}),
}
"""The smallest valid object of each kind."""

FULL: dict[str, dict[str, Any]] = {
    "AgentRun": {
        **_obj(
            "AgentRun",
            "run-full",
            {
                "instanceRef": "alice",
                "agentId": "schedule-1",
                "sessionKey": "s-1",
                "env": {"A": "1", "B": "2"},
                "parent": {"runName": "run-0", "sessionKey": "s-0", "spawnDepth": 1},
                "task": {"prompt": "fix the bug", "context": "see issue 12"},
                "systemPrompt": "You are careful.",
                "model": {
                    "provider": "openai",
                    "model": "gpt-4o",
                    "baseURL": "http://127.0.0.1:11434/v1",
                    "thinking": "high",
                    "authSecretRef": "alice-openai",
                    "nodeSelector": {"gpu": "true"},
                },
                "sandbox": {
                    "enabled": False,
                    "image": "sandbox:1",
                    "securityContext": {
                        "readOnlyRootFilesystem": False,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
                },
                "agentSandbox": {
                    "enabled": True,
                    "runtimeClass": "gvisor",
                    "warmPoolRef": "wp-alice",
                    "resources": {"limits": {"cpu": "2"}},
                },
                "skills": [
                    {"skillPackRef": "k8s-ops", "params": {"repo": "a/b"}},
                    {"configMapRef": "my-skills"},
                ],
                "toolPolicy": {"allow": ["read_file"], "deny": ["execute_command"]},
                "timeout": "1h30m",
                "cleanup": "keep",
                "mode": "server",
            },
        ),
        "status": {
            "phase": "Succeeded",
            "podName": "run-full-abcde",
            "jobName": "run-full",
            "sandboxName": "sb-run-full",
            "sandboxClaimName": "sbc-run-full",
            "startedAt": "2025-01-02T03:04:05Z",
            "completedAt": "2025-01-02T03:05:05Z",
            "result": "done",
            "error": "",
            "exitCode": 0,
            "tokenUsage": {
                "inputTokens": 10,
                "outputTokens": 5,
                "totalTokens": 15,
                "toolCalls": 0,
                "durationMs": 1200,
            },
            "deploymentName": "run-full-server",
            "serviceName": "run-full-server",
            "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Done",
                    "message": "",
                    "lastTransitionTime": "2025-01-02T03:05:05Z",
                    "observedGeneration": 2,
                }
            ],
            "observedGeneration": 2,
        },
    },
    "SympoziumInstance": {
        **_obj(
            "SympoziumInstance",
            "alice-full",
            {
                "channels": [
                    {
                        "type": "telegram",
                        "configRef": {"secret": "tg"},
                        "accessControl": {
                            "allowedSenders": ["1"],
                            "deniedSenders": ["2"],
                            "allowedChats": ["3"],
                            "denyMessage": "no",
                        },
                    },
                    {"type": "slack", "configRef": {"provider": "slack", "secret": "sl"}},
                ],
                "agents": {
                    "default": {
                        "model": "gpt-4o",
                        "baseURL": "http://llm/v1",
                        "thinking": "off",
                        "sandbox": {"enabled": False, "image": "sb:1"},
                        "agentSandbox": {
                            "enabled": True,
                            "runtimeClass": "gvisor",
                            "warmPool": {"size": 3, "runtimeClass": "gvisor"},
                        },
                        "subagents": {
                            "maxDepth": 1,
                            "maxConcurrent": 2,
                            "maxChildrenPerAgent": 1,
                        },
                        "nodeSelector": {"zone": "a"},
                    }
                },
                "skills": [{"skillPackRef": "memory"}],
                "policyRef": "restrictive",
                "authRefs": [{"provider": "openai", "secret": "alice-openai"}],
                "memory": {"enabled": False, "maxSizeKB": 512, "systemPrompt": "remember"},
                "observability": {
                    "enabled": True,
                    "otlpEndpoint": "otel:4317",
                    "otlpProtocol": "grpc",
                    "serviceName": "alice",
                    "headers": {"x": "y"},
                    "headersSecretRef": "otel-headers",
                    "samplingRatio": "0.5",
                    "resourceAttributes": {"team": "a"},
                },
                "mcpServers": [
                    {
                        "name": "github",
                        "url": "http://gh:8080",
                        "toolsPrefix": "gh",
                        "timeout": 10,
                        "authSecret": "gh-token",
                        "authKey": "key",
                        "headers": {"h": "v"},
                        "toolsAllow": ["a"],
                        "toolsDeny": ["b"],
                    }
                ],
                "webEndpoint": {
                    "enabled": False,
                    "hostname": "a.example.com",
                    "authSecretRef": "k",
                    "rateLimit": {"requestsPerMinute": 5, "burstSize": 1},
                },
            },
        ),
        "status": {
            "phase": "Running",
            "channels": [
                {
                    "type": "telegram",
                    "status": "Connected",
                    "lastHealthCheck": "2025-01-02T03:04:05Z",
                    "message": "ok",
                }
            ],
            "activeAgentPods": 1,
            "totalAgentRuns": 12,
            "webEndpoint": {"status": "Ready", "url": "http://x", "authSecretName": "k"},
            "conditions": [],
        },
    },
    "PersonaPack": {
        **_obj(
            "PersonaPack",
            "team-full",
            {
                "enabled": False,
                "description": "A team",
                "category": "dev",
                "version": "1.0.0",
                "personas": [
                    {
                        "name": "lead",
                        "displayName": "Tech Lead",
                        "systemPrompt": "You lead.",
                        "model": "gpt-4o",
                        "skills": ["github-gitops"],
                        "toolPolicy": {"allow": ["a"], "deny": []},
                        "schedule": {
                            "type": "sweep",
                            "interval": "5m",
                            "cron": "0 8 * * 1",
                            "task": "sweep",
                        },
                        "memory": {"enabled": False, "seeds": ["fact"]},
                        "channels": ["slack"],
                        "webEndpoint": {"enabled": False, "hostname": "lead.example.com"},
                    }
                ],
                "authRefs": [{"secret": "openai"}],
                "excludePersonas": ["qa"],
                "channelConfigs": {"slack": "slack-secret"},
                "policyRef": "restrictive",
                "baseURL": "http://llm/v1",
                "skillParams": {"github-gitops": {"repo": "a/b"}},
                "taskOverride": "do it",
                "channelAccessControl": {"slack": {"allowedChats": ["c1"]}},
                "agentSandbox": {"enabled": False},
            },
        ),
        "status": {
            "phase": "Ready",
            "personaCount": 1,
            "installedCount": 1,
            "installedPersonas": [
                {"name": "lead", "instanceName": "team-full-lead", "scheduleName": "s"}
            ],
        },
    },
    "SkillPack": {
        **_obj(
            "SkillPack",
            "llmfit",
            {
                "skills": [
                    {
                        "name": "placement",
                        "description": "where models fit",
                        "requires": {"bins": ["kubectl"], "tools": ["execute_command"]},
                        "content": "# Placement\n\nUse llmfit.\n",
                    }
                ],
                "category": "sre",
                "source": "builtin",
                "version": "0.1.0",
                "runtimeRequirements": {
                    "image": "img",
                    "sandbox": False,
                    "minMemory": "1Gi",
                    "minCPU": "1",
                },
                "sidecar": {
                    "image": "skill-llmfit:1",
                    "command": ["/bin/tool-executor"],
                    "env": [{"name": "EVENT_BUS_URL", "value": "nats://nats:4222"}],
                    "mountWorkspace": False,
                    "resources": {"cpu": "100m", "memory": "256Mi"},
                    "rbac": [
                        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]}
                    ],
                    "clusterRBAC": [
                        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}
                    ],
                    "secretRef": "gh-token",
                    "secretMountPath": "/secrets/github-token",
                    "hostAccess": {
                        "enabled": True,
                        "hostNetwork": False,
                        "hostPID": True,
                        "privileged": False,
                        "runAsRoot": True,
                        "mounts": [
                            {"hostPath": "/proc", "mountPath": "/host/proc", "readOnly": False}
                        ],
                    },
                    "requiresServer": True,
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "UDP"}],
                },
            },
        ),
        "status": {"phase": "Ready", "configMapName": "llmfit", "skillCount": 1},
    },
    "SympoziumPolicy": {
        **_obj(
            "SympoziumPolicy",
            "restrictive",
            {
                "sandboxPolicy": {
                    "required": True,
                    "defaultImage": "sb:1",
                    "maxCPU": "2",
                    "maxMemory": "4Gi",
                    "allowHostMounts": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "agentSandboxPolicy": {
                        "required": False,
                        "defaultRuntimeClass": "gvisor",
                        "allowedRuntimeClasses": ["gvisor", "kata"],
                    },
                },
                "subagentPolicy": {"maxDepth": 2, "maxConcurrent": 3},
                "toolGating": {
                    "defaultAction": "deny",
                    "rules": [
                        {"tool": "execute_command", "action": "ask"},
                        {"tool": "read_file", "action": "allow"},
                    ],
                },
                "featureGates": {"code-execution": False, "sub-agents": True},
                "networkPolicy": {
                    "denyAll": False,
                    "allowDNS": False,
                    "allowEventBus": False,
                    "allowedEgress": [{"host": "api.openai.com", "port": 443}],
                },
            },
        ),
        "status": {"boundInstances": 2},
    },
    "SympoziumSchedule": {
        **_obj(
            "SympoziumSchedule",
            "heartbeat",
            {
                "instanceRef": "alice",
                "schedule": "*/15 * * * *",
                "task": "check health",
                "type": "heartbeat",
                "suspend": False,
                "concurrencyPolicy": "Replace",
                "includeMemory": False,
            },
        ),
        "status": {
            "phase": "Active",
            "lastRunTime": "2025-01-02T03:00:00Z",
            "nextRunTime": "2025-01-02T03:15:00Z",
            "lastRunName": "heartbeat-1",
            "totalRuns": 9007199254740993,
        },
    },
    "MCPServer": {
        **_obj(
            "MCPServer",
            "github-full",
            {
                "transportType": "stdio",
                "toolsPrefix": "gh",
                "url": "http://gh:8080",
                "deployment": {
                    "image": "mcp/github:1",
                    "cmd": "github-mcp",
                    "args": ["--stdio"],
                    "port": 9000,
                    "env": {"LOG": "debug"},
                    "secretRefs": [{"name": "gh-token"}],
                    "resources": {"requests": {"cpu": "50m"}},
                    "serviceAccountName": "mcp",
                },
                "timeout": 5,
                "replicas": 2,
                "toolsAllow": ["list_issues"],
                "toolsDeny": ["delete_repo"],
            },
        ),
        "status": {
            "ready": False,
            "url": "http://github-full:9000",
            "toolCount": 0,
            "tools": [],
            "conditions": [{"type": "Deployed", "status": "True", "reason": "Created"}],
        },
    },
    "SympoziumConfig": {
        **_obj(
            "SympoziumConfig",
            "default",
            {
                "gateway": {
                    "enabled": True,
                    "gatewayClassName": "istio",
                    "name": "gw",
                    "baseDomain": "agents.example.com",
                    "tls": {
                        "enabled": False,
                        "certManagerClusterIssuer": "letsencrypt",
                        "secretName": "wild",
                    },
                }
            },
        ),
        "status": {
            "phase": "Ready",
            "gateway": {"ready": True, "address": "10.0.0.1", "listenerCount": 2},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    },
}
"""An object of each kind with every field set, falsy values included."""


def minimal(kind: str) -> dict[str, Any]:
    """A fresh copy of the minimal object of `kind`."""
    return copy.deepcopy(MINIMAL[kind])


def full(kind: str) -> dict[str, Any]:
    """A fresh copy of the full object of `kind`."""
    return copy.deepcopy(FULL[kind])
