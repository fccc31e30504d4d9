"""Where the API server is and how to authenticate to it: kubeconfig or in-cluster.

Plain fields (server, CA, client certificate, token) are read from the kubeconfig here;
only `exec` plugins and `auth-provider` users go through kubernetes_asyncio's loader,
which knows how to run and refresh them. Credentials that change over time (projected
service-account tokens, exec plugins) are re-read through `ClientConfig.authorization`,
which the client calls every `auth_refresh_interval` seconds and after a 401.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import types
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.errors import ConfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")

# Returns the whole Authorization header value ("Bearer ...", "Basic ..."), or None.
AuthProvider = Callable[[], Awaitable[str | None]]


@dataclass
class ClientConfig:
    """Connection settings for one API server; secrets are kept out of `repr`."""

    server: str
    ca_data: bytes | None = field(default=None, repr=False)  # PEM
    ca_file: str | None = None
    client_cert_data: bytes | None = field(default=None, repr=False)  # PEM
    client_key_data: bytes | None = field(default=None, repr=False)  # PEM
    client_cert_file: str | None = None
    client_key_file: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None  # re-read periodically: projected tokens rotate
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_provider: AuthProvider | None = field(default=None, repr=False)
    auth_refresh_interval: float = 60.0
    insecure: bool = False
    tls_server_name: str | None = None
    proxy: str | None = None
    namespace: str = "default"

    def __post_init__(self) -> None:
        self.server = self.server.rstrip("/")

    @property
    def refreshes_auth(self) -> bool:
        """Whether `authorization()` may answer differently later (so is worth re-asking)."""
        return self.auth_provider is not None or self.token_file is not None

    async def authorization(self) -> str | None:
        """The current Authorization header value, re-reading rotating credentials."""
        if self.auth_provider is not None:
            return await self.auth_provider()
        if self.token_file is not None:
            token = _read_token(self.token_file)
            if token:
                return f"Bearer {token}"
        if self.token:
            return f"Bearer {self.token}"
        if self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return None

    def ssl_context(self) -> ssl.SSLContext | None:
        """Our own TLS context (None for plain http), trusting only the configured CA if any."""
        if not self.server.startswith("https:"):
            return None
        cadata = self.ca_data.decode() if self.ca_data else None
        context = ssl.create_default_context(cafile=self.ca_file, cadata=cadata)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_file or self.client_cert_data:
            _load_client_cert(context, self)
        return context

    # ---- loading

    @classmethod
    async def load(
        cls,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        *,
        service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """The explicit kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster."""
        env = os.environ if environ is None else environ
        found = _find_kubeconfig(kubeconfig, env)
        if found is not None:
            return await cls.from_kubeconfig(found, context)
        if env.get("KUBERNETES_SERVICE_HOST"):
            return cls.in_cluster(service_account_dir, environ=env)
        raise ConfigError("no kubeconfig (KUBECONFIG, ~/.kube/config) and not running in a cluster")

    @classmethod
    async def from_kubeconfig(
        cls, path: str | os.PathLike[str], context: str | None = None
    ) -> ClientConfig:
        """The settings of one context (default: current-context) of a kubeconfig file."""
        file, loaded = _read_kubeconfig(path)
        return await cls.from_kubeconfig_dict(loaded, context, base_dir=file.parent)

    @classmethod
    async def from_kubeconfig_dict(
        cls,
        kubeconfig: dict[str, Any],
        context: str | None = None,
        *,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> ClientConfig:
        """As `from_kubeconfig`, for an already parsed file; relative paths use `base_dir`."""
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        context_name = context or kubeconfig.get("current-context") or ""
        if not context_name:
            raise ConfigError("kubeconfig has no current-context and none was given")
        ctx = _named(kubeconfig, "contexts", context_name, "context")
        if ctx is None:
            raise ConfigError(f'kubeconfig has no context "{context_name}"')
        cluster = _named(kubeconfig, "clusters", str(ctx.get("cluster", "")), "cluster")
        if cluster is None or not cluster.get("server"):
            raise ConfigError(f'context "{context_name}" names no cluster with a server')
        user = _named(kubeconfig, "users", str(ctx.get("user", "")), "user") or {}

        def path_of(value: Any) -> str | None:
            return str(base / str(value)) if value else None

        config = cls(
            server=str(cluster["server"]),
            ca_data=_b64(cluster.get("certificate-authority-data")),
            ca_file=path_of(cluster.get("certificate-authority")),
            client_cert_data=_b64(user.get("client-certificate-data")),
            client_key_data=_b64(user.get("client-key-data")),
            client_cert_file=path_of(user.get("client-certificate")),
            client_key_file=path_of(user.get("client-key")),
            token=str(user["token"]) if user.get("token") else None,
            token_file=path_of(user.get("tokenFile")),
            username=user.get("username"),
            password=user.get("password"),
            insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
            tls_server_name=cluster.get("tls-server-name"),
            proxy=cluster.get("proxy-url"),
            namespace=str(ctx.get("namespace") or "default"),
        )
        if "exec" in user or "auth-provider" in user:
            await _use_plugin(config, kubeconfig, context_name, base)
        return config

    @classmethod
    def in_cluster(
        cls,
        service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """The pod's service account: the API server from the env, credentials from files."""
        env = os.environ if environ is None else environ
        host = env.get("KUBERNETES_SERVICE_HOST", "")
        port = env.get("KUBERNETES_SERVICE_PORT", "")
        if not host or not port:
            raise ConfigError("KUBERNETES_SERVICE_HOST/PORT are not set: not in a cluster")
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        directory = Path(service_account_dir)
        token_file = directory / "token"
        if not token_file.exists():
            raise ConfigError(f"no service account token at {token_file}")
        ca_file = directory / "ca.crt"
        namespace_file = directory / "namespace"
        namespace = ""
        if namespace_file.exists():
            namespace = namespace_file.read_text().strip()
        return cls(
            server=f"https://{host}:{port}",
            ca_file=str(ca_file) if ca_file.exists() else None,
            token_file=str(token_file),
            namespace=namespace or env.get("POD_NAMESPACE", "") or "default",
        )


def _find_kubeconfig(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    for entry in env.get("KUBECONFIG", "").split(os.pathsep):
        if entry and Path(entry).expanduser().exists():
            return Path(entry)
    home = DEFAULT_KUBECONFIG.expanduser()
    return home if home.exists() else None


def _read_kubeconfig(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    file = Path(path).expanduser()
    try:
        loaded = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {file}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"kubeconfig {file} is not a mapping")
    return file, loaded


def _read_token(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc}") from exc


def _b64(value: Any) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value))
    except ValueError as exc:
        raise ConfigError(f"invalid base64 in kubeconfig: {exc}") from exc


def _named(kubeconfig: dict[str, Any], section: str, name: str, key: str) -> dict[str, Any] | None:
    for entry in kubeconfig.get(section) or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(key)
            return value if isinstance(value, dict) else {}
    return None


def _load_client_cert(context: ssl.SSLContext, config: ClientConfig) -> None:
    """`load_cert_chain` only takes files, so inline PEM goes through a private temp dir."""
    if config.client_cert_data is None and config.client_key_data is None:
        if config.client_cert_file is None:
            return
        context.load_cert_chain(config.client_cert_file, config.client_key_file)
        return
    with tempfile.TemporaryDirectory(prefix="controller-tls-") as tmp:
        cert = config.client_cert_file
        key = config.client_key_file
        if config.client_cert_data is not None:
            cert = os.path.join(tmp, "tls.crt")
            Path(cert).write_bytes(config.client_cert_data)
        if config.client_key_data is not None:
            key = os.path.join(tmp, "tls.key")
            Path(key).write_bytes(config.client_key_data)
        if cert is None:
            raise ConfigError("a client key was given without a client certificate")
        context.load_cert_chain(cert, key)


async def _use_plugin(
    config: ClientConfig, kubeconfig: dict[str, Any], context: str, base: Path
) -> None:
    """Credentials from an exec plugin or auth-provider, via kubernetes_asyncio's loader.

    The loader re-runs the plugin only when its credential expired, so asking it on
    every refresh is cheap. It is imported here because importing it is slow.
    """
    from kubernetes_asyncio.config.kube_config import KubeConfigLoader

    loader = KubeConfigLoader(
        config_dict=kubeconfig, active_context=context, config_base_path=str(base)
    )
    target = types.SimpleNamespace(api_key={})

    async def authorization() -> str | None:
        await loader.load_and_set(target)
        header = target.api_key.get("BearerToken")
        return str(header) if header else None

    try:
        await authorization()
    except Exception as exc:
        raise ConfigError(f"kubeconfig credential plugin failed: {exc}") from exc
    # An exec plugin may hand out a client certificate instead of a token.
    cert_file = getattr(target, "cert_file", None)
    key_file = getattr(target, "key_file", None)
    if cert_file and key_file and not (config.client_cert_file or config.client_cert_data):
        config.client_cert_file, config.client_key_file = str(cert_file), str(key_file)
    config.auth_provider = authorization


__all__ = ["SERVICE_ACCOUNT_DIR", "AuthProvider", "ClientConfig"]
