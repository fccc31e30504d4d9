"""An agent pod's volumes as temp directories, and `sympozium agent run` as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from agent.protocol import AgentResult, find_result

SYMPOZIUM = str(Path(sys.executable).parent / "sympozium")
VOLUMES = ("workspace", "ipc", "skills", "tmp", "memory", "input")


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str

    @property
    def result(self) -> AgentResult:
        parsed = find_result(self.stdout)
        assert parsed is not None, f"no result marker in stdout:\n{self.stdout}\n{self.stderr}"
        return parsed


@dataclass
class Pod:
    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def path(self, volume: str) -> Path:
        return self.root / volume

    def base_env(self) -> dict[str, str]:
        mounts = {f"/{name}": str(self.path(name)) for name in VOLUMES}
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LOCALCLUSTER_MOUNTS": json.dumps(mounts),
            "AGENT_RUN_ID": "run-test",
        }

    async def run(self, **env: str) -> Finished:
        process = await asyncio.create_subprocess_exec(
            SYMPOZIUM,
            "agent",
            "run",
            env={**self.base_env(), **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode is not None
        return Finished(process.returncode, stdout.decode(), stderr.decode())

    def written_result(self) -> AgentResult:
        return AgentResult.model_validate_json(
            (self.path("ipc") / "output" / "result.json").read_text()
        )


def make_pod(root: Path) -> Pod:
    for name in VOLUMES:
        (root / name).mkdir(parents=True, exist_ok=True)
    return Pod(root)
