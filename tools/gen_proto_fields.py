"""Generate `localcluster/proto_fields.json`, the facts table the protobuf decoder reads.

Where the input comes from
--------------------------
The public `generated.proto` files that Kubernetes publishes for its API types, as found in
the kubernetes/kubernetes repository under `staging/src/k8s.io/` (mirrored as the
k8s.io/api, k8s.io/apimachinery and k8s.io/apiextensions-apiserver modules):

* `api/{core,apps,batch,rbac,networking,coordination,events,admissionregistration,
  authentication,authorization,policy,autoscaling}/v1/generated.proto`
* `apimachinery/pkg/apis/meta/v1`, `pkg/runtime`, `pkg/util/intstr`, `pkg/api/resource`
* `apiextensions-apiserver/pkg/apis/apiextensions/v1`

Only facts are taken from them: message names, field names, field numbers, field types and
labels. Nothing else (no comments, no prose) reaches the output. A few facts that a `.proto`
file cannot express are listed below by hand (`INLINE`, `JSON_NAMES`, `POINTERS`); they
describe the Go structs behind the messages, i.e. how Go's encoding/json renders them.

How to rerun
------------
Put copies of those files in one directory (any file names ending in `.proto`, any
sub-directories, comments may stay in), then from the repository root::

    python tools/gen_proto_fields.py DIR            # writes localcluster/proto_fields.json
    python tools/gen_proto_fields.py DIR -o OUT.json

The parser here is our own small proto2 reader: `syntax`/`package`/`import`/`option`
statements, messages (nested too), `optional`/`required`/`repeated` fields, `map<K, V>`
fields, `oneof` blocks, enums (skipped), and package-qualified type references resolved the
way protoc resolves them (innermost scope first). Comments are ignored.

Output format (compact JSON, no whitespace)::

    {"kinds": {"<apiVersion>/<Kind>": "<full.message.Name>", ...},
     "messages": {"<full.message.Name>": {"<number>": [json_name, type, label(, flag)]}}}

`type` is a scalar name (string, bytes, int32, int64, bool, double, ...) or a full message
name; `label` is "optional", "repeated" or "map:<keytype>:<valuetype>". The optional `flag`
is "inline" (a Go embedded struct whose fields JSON merges into the parent) or "ptr" (a Go
pointer to a scalar: its zero value was set on purpose and must be kept).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCALARS = frozenset(
    {
        "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
        "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
    }
)  # fmt: skip

CORE = "k8s.io.api.core.v1"
APPS = "k8s.io.api.apps.v1"
BATCH = "k8s.io.api.batch.v1"
NETWORKING = "k8s.io.api.networking.v1"
COORDINATION = "k8s.io.api.coordination.v1"
ADMISSION = "k8s.io.api.admissionregistration.v1"
AUTHN = "k8s.io.api.authentication.v1"
AUTOSCALING = "k8s.io.api.autoscaling.v1"
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
APIEXT = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1"


def _names(package: str, text: str) -> set[str]:
    """`"A.x B.y"` in `package` -> {"package.A.x", "package.B.y"}."""
    return {f"{package}.{item}" for item in text.split()}


# Go structs embedded with `json:",inline"`: their fields appear directly in the parent.
INLINE: frozenset[str] = frozenset(
    _names(
        CORE,
        "ConfigMapEnvSource.localObjectReference ConfigMapKeySelector.localObjectReference "
        "ConfigMapProjection.localObjectReference ConfigMapVolumeSource.localObjectReference "
        "SecretEnvSource.localObjectReference SecretKeySelector.localObjectReference "
        "SecretProjection.localObjectReference EphemeralContainer.ephemeralContainerCommon "
        "Probe.handler Volume.volumeSource PersistentVolumeSpec.persistentVolumeSource "
        "VolumeMountStatus.volumeStatus",
    )
    | _names(NETWORKING, "IngressRule.ingressRuleValue")
    | _names(ADMISSION, "NamedRuleWithOperations.ruleWithOperations RuleWithOperations.rule")
)

# Fields whose JSON name differs from the proto field name.
JSON_NAMES: dict[str, str] = {
    f"{AUTHN}.BoundObjectReference.uID": "uid",
    f"{NETWORKING}.IngressClassParametersReference.aPIGroup": "apiGroup",
    f"{ADMISSION}.ValidatingWebhookConfiguration.Webhooks": "webhooks",
    f"{ADMISSION}.MutatingWebhookConfiguration.Webhooks": "webhooks",
    f"{ADMISSION}.Validation.Expression": "expression",
    f"{ADMISSION}.Variable.Name": "name",
    f"{ADMISSION}.Variable.Expression": "expression",
    f"{APIEXT}.JSONSchemaProps.ref": "$ref",
    f"{APIEXT}.JSONSchemaProps.schema": "$schema",
    f"{APIEXT}.JSONSchemaProps.xKubernetesPreserveUnknownFields": (
        "x-kubernetes-preserve-unknown-fields"
    ),
    f"{APIEXT}.JSONSchemaProps.xKubernetesEmbeddedResource": "x-kubernetes-embedded-resource",
    f"{APIEXT}.JSONSchemaProps.xKubernetesIntOrString": "x-kubernetes-int-or-string",
    f"{APIEXT}.JSONSchemaProps.xKubernetesListMapKeys": "x-kubernetes-list-map-keys",
    f"{APIEXT}.JSONSchemaProps.xKubernetesListType": "x-kubernetes-list-type",
    f"{APIEXT}.JSONSchemaProps.xKubernetesMapType": "x-kubernetes-map-type",
    f"{APIEXT}.JSONSchemaProps.xKubernetesValidations": "x-kubernetes-validations",
}

# Scalar fields that are Go pointers (*int32, *bool, *string, ...): a zero value on the wire
# means "explicitly set to zero" (e.g. `replicas: 0`), unlike a plain Go field, whose zero
# value gogo writes for every unset field.
POINTERS: frozenset[str] = frozenset(
    _names(
        CORE,
        "ConfigMap.immutable Secret.immutable ServiceAccount.automountServiceAccountToken "
        "ConfigMapEnvSource.optional ConfigMapKeySelector.optional ConfigMapProjection.optional "
        "ConfigMapVolumeSource.optional ConfigMapVolumeSource.defaultMode "
        "SecretEnvSource.optional SecretKeySelector.optional SecretProjection.optional "
        "SecretVolumeSource.optional SecretVolumeSource.defaultMode FileKeySelector.optional "
        "ClusterTrustBundleProjection.optional KeyToPath.mode DownwardAPIVolumeFile.mode "
        "DownwardAPIVolumeSource.defaultMode ProjectedVolumeSource.defaultMode "
        "ServiceAccountTokenProjection.expirationSeconds "
        "PodCertificateProjection.maxExpirationSeconds "
        "PodSpec.terminationGracePeriodSeconds PodSpec.activeDeadlineSeconds "
        "PodSpec.automountServiceAccountToken PodSpec.shareProcessNamespace PodSpec.priority "
        "PodSpec.enableServiceLinks PodSpec.setHostnameAsFQDN PodSpec.hostUsers "
        "PodSpec.preemptionPolicy PodSpec.hostnameOverride Container.restartPolicy "
        "EphemeralContainerCommon.restartPolicy "
        "SecurityContext.privileged SecurityContext.runAsUser SecurityContext.runAsGroup "
        "SecurityContext.runAsNonRoot SecurityContext.readOnlyRootFilesystem "
        "SecurityContext.allowPrivilegeEscalation SecurityContext.procMount "
        "PodSecurityContext.runAsUser PodSecurityContext.runAsGroup "
        "PodSecurityContext.runAsNonRoot PodSecurityContext.fsGroup "
        "PodSecurityContext.fsGroupChangePolicy PodSecurityContext.supplementalGroupsPolicy "
        "PodSecurityContext.seLinuxChangePolicy "
        "WindowsSecurityContextOptions.gmsaCredentialSpecName "
        "WindowsSecurityContextOptions.gmsaCredentialSpec "
        "WindowsSecurityContextOptions.runAsUserName WindowsSecurityContextOptions.hostProcess "
        "Probe.terminationGracePeriodSeconds GRPCAction.service Lifecycle.stopSignal "
        "HostPathVolumeSource.type CSIVolumeSource.readOnly CSIVolumeSource.fsType "
        "AzureDiskVolumeSource.cachingMode AzureDiskVolumeSource.fsType "
        "AzureDiskVolumeSource.readOnly AzureDiskVolumeSource.kind "
        "ISCSIVolumeSource.initiatorName ISCSIPersistentVolumeSource.initiatorName "
        "VolumeMount.mountPropagation VolumeMount.recursiveReadOnly "
        "ServiceSpec.ipFamilyPolicy ServiceSpec.allocateLoadBalancerNodePorts "
        "ServiceSpec.loadBalancerClass ServiceSpec.internalTrafficPolicy "
        "ServiceSpec.trafficDistribution ServicePort.appProtocol ClientIPConfig.timeoutSeconds "
        "Toleration.tolerationSeconds TopologySpreadConstraint.minDomains "
        "TopologySpreadConstraint.nodeAffinityPolicy TopologySpreadConstraint.nodeTaintsPolicy "
        "ReplicationControllerSpec.replicas PersistentVolumeClaimSpec.storageClassName "
        "PersistentVolumeClaimSpec.volumeMode PersistentVolumeClaimSpec.volumeAttributesClassName "
        "PodResourceClaim.resourceClaimName PodResourceClaim.resourceClaimTemplateName "
        "EndpointAddress.nodeName EndpointPort.appProtocol ContainerStatus.started",
    )
    | _names(
        APPS,
        "DeploymentSpec.replicas DeploymentSpec.revisionHistoryLimit "
        "DeploymentSpec.progressDeadlineSeconds DeploymentSpec.podReplacementPolicy "
        "DeploymentStatus.terminatingReplicas ReplicaSetSpec.replicas "
        "ReplicaSetStatus.terminatingReplicas StatefulSetSpec.replicas "
        "StatefulSetSpec.revisionHistoryLimit DaemonSetSpec.revisionHistoryLimit "
        "RollingUpdateStatefulSetStrategy.partition",
    )
    | _names(
        BATCH,
        "JobSpec.parallelism JobSpec.completions JobSpec.activeDeadlineSeconds "
        "JobSpec.backoffLimit JobSpec.backoffLimitPerIndex JobSpec.maxFailedIndexes "
        "JobSpec.manualSelector JobSpec.ttlSecondsAfterFinished JobSpec.completionMode "
        "JobSpec.suspend JobSpec.podReplacementPolicy JobSpec.managedBy "
        "CronJobSpec.timeZone CronJobSpec.startingDeadlineSeconds CronJobSpec.suspend "
        "CronJobSpec.successfulJobsHistoryLimit CronJobSpec.failedJobsHistoryLimit "
        "JobStatus.terminating JobStatus.ready JobStatus.failedIndexes "
        "PodFailurePolicyOnExitCodesRequirement.containerName "
        "SuccessPolicyRule.succeededIndexes SuccessPolicyRule.succeededCount",
    )
    | _names(
        NETWORKING,
        "HTTPIngressPath.pathType IngressSpec.ingressClassName NetworkPolicyPort.protocol "
        "NetworkPolicyPort.endPort IngressClassParametersReference.aPIGroup "
        "IngressClassParametersReference.scope IngressClassParametersReference.namespace",
    )
    | _names(
        COORDINATION,
        "LeaseSpec.holderIdentity LeaseSpec.leaseDurationSeconds LeaseSpec.leaseTransitions "
        "LeaseSpec.strategy LeaseSpec.preferredHolder",
    )
    | _names(
        ADMISSION,
        "ValidatingWebhook.failurePolicy ValidatingWebhook.matchPolicy "
        "ValidatingWebhook.sideEffects ValidatingWebhook.timeoutSeconds "
        "MutatingWebhook.failurePolicy MutatingWebhook.matchPolicy MutatingWebhook.sideEffects "
        "MutatingWebhook.timeoutSeconds MutatingWebhook.reinvocationPolicy "
        "WebhookClientConfig.url ServiceReference.path ServiceReference.port Rule.scope "
        "MatchResources.matchPolicy ValidatingAdmissionPolicySpec.failurePolicy "
        "ParamRef.parameterNotFoundAction",
    )
    | _names(AUTHN, "TokenRequestSpec.expirationSeconds")
    | _names(
        AUTOSCALING,
        "HorizontalPodAutoscalerSpec.minReplicas "
        "HorizontalPodAutoscalerSpec.targetCPUUtilizationPercentage "
        "HorizontalPodAutoscalerStatus.observedGeneration "
        "HorizontalPodAutoscalerStatus.currentCPUUtilizationPercentage "
        "ResourceMetricSource.targetAverageUtilization "
        "ResourceMetricStatus.currentAverageUtilization "
        "ContainerResourceMetricSource.targetAverageUtilization "
        "ContainerResourceMetricStatus.currentAverageUtilization",
    )
    | _names(
        META,
        "ObjectMeta.deletionGracePeriodSeconds OwnerReference.controller "
        "OwnerReference.blockOwnerDeletion DeleteOptions.gracePeriodSeconds "
        "DeleteOptions.orphanDependents DeleteOptions.propagationPolicy "
        "ListMeta.remainingItemCount Preconditions.uid Preconditions.resourceVersion "
        "PatchOptions.force",
    )
    | _names(
        APIEXT,
        "JSONSchemaProps.maximum JSONSchemaProps.minimum JSONSchemaProps.maxLength "
        "JSONSchemaProps.minLength JSONSchemaProps.maxItems JSONSchemaProps.minItems "
        "JSONSchemaProps.multipleOf JSONSchemaProps.maxProperties JSONSchemaProps.minProperties "
        "JSONSchemaProps.xKubernetesPreserveUnknownFields JSONSchemaProps.xKubernetesListType "
        "JSONSchemaProps.xKubernetesMapType ServiceReference.path ServiceReference.port "
        "WebhookClientConfig.url CustomResourceSubresourceScale.labelSelectorPath "
        "ValidationRule.optionalOldSelf",
    )
)

# Fields newer than some copies of the files: added when the message exists but lacks them.
EXTRA_FIELDS: dict[str, list[tuple[int, str, str, str]]] = {
    f"{APIEXT}.JSONSchemaProps": [
        (44, "xKubernetesValidations", f"{APIEXT}.ValidationRule", "repeated")
    ],
    f"{APIEXT}.CustomResourceDefinitionVersion": [
        (9, "selectableFields", f"{APIEXT}.SelectableField", "repeated")
    ],
}
EXTRA_MESSAGES: dict[str, list[tuple[int, str, str, str]]] = {
    f"{APIEXT}.ValidationRule": [
        (1, "rule", "string", "optional"),
        (2, "message", "string", "optional"),
        (3, "messageExpression", "string", "optional"),
        (4, "reason", "string", "optional"),
        (5, "fieldPath", "string", "optional"),
        (6, "optionalOldSelf", "bool", "optional"),
    ],
    f"{APIEXT}.SelectableField": [(1, "jsonPath", "string", "optional")],
}

# API groups whose name is not "<package segment>.k8s.io".
GROUPS = {"core": "", "apps": "apps", "batch": "batch", "policy": "policy",
          "autoscaling": "autoscaling", "rbac": "rbac.authorization.k8s.io"}  # fmt: skip
API_PACKAGE = re.compile(r"^k8s\.io\.api\.(\w+)\.(v\w+)$")
APIEXT_PACKAGE = re.compile(r"^k8s\.io\.apiextensions_apiserver\.pkg\.apis\.apiextensions\.(v\w+)$")
# Messages with an ObjectMeta that are parts of other objects, not kinds of their own.
NOT_KINDS = frozenset({"PodTemplateSpec", "JobTemplateSpec", "PersistentVolumeClaimTemplate"})
OBJECT_META = f"{META}.ObjectMeta"

_TOKEN = re.compile(
    r"""(?P<skip>\s+|//[^\n]*|/\*.*?\*/)
      |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      |(?P<word>\.?[A-Za-z_][A-Za-z0-9_.]*)
      |(?P<num>[-+]?[0-9][0-9A-Za-z_.+-]*)
      |(?P<sym>[{}<>;=,()\[\]])""",
    re.S | re.X,
)


class ProtoError(Exception):
    """A .proto file this parser cannot read."""


@dataclass
class RawField:
    number: int
    name: str
    type_ref: str
    label: str  # optional | repeated | map
    key_type: str = ""


@dataclass
class RawMessage:
    full_name: str
    scope: str  # where type references inside this message are resolved from
    fields: list[RawField] = field(default_factory=list)


def tokenize(text: str, source: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            line = text.count("\n", 0, pos) + 1
            raise ProtoError(f"{source}:{line}: unexpected character {text[pos]!r}")
        if match.lastgroup != "skip":
            tokens.append(match.group())
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], source: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.source = source
        self.package = ""
        self.messages: list[RawMessage] = []

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        if self.pos >= len(self.tokens):
            raise ProtoError(f"{self.source}: unexpected end of file")
        token = self.tokens[self.pos]
        if expected is not None and token != expected:
            raise ProtoError(f"{self.source}: expected {expected!r}, found {token!r}")
        self.pos += 1
        return token

    def skip_statement(self) -> None:
        """Skip to the end of the current `...;` statement (brackets may nest)."""
        depth = 0
        while True:
            token = self.take()
            if token in "([":
                depth += 1
            elif token in ")]":
                depth -= 1
            elif token == ";" and depth <= 0:
                return

    def skip_block(self) -> None:
        """Skip `name { ... }` (enum, service, extend): everything up to the matching brace."""
        while self.take() != "{":
            pass
        depth = 1
        while depth:
            token = self.take()
            depth += {"{": 1, "}": -1}.get(token, 0)

    def parse(self) -> list[RawMessage]:
        while self.pos < len(self.tokens):
            token = self.take()
            if token == "package":
                self.package = self.take().lstrip(".")
                self.take(";")
            elif token in ("syntax", "edition", "import", "option"):
                self.skip_statement()
            elif token == "message":
                self.parse_message(self.package)
            elif token in ("enum", "service", "extend"):
                self.skip_block()
            elif token != ";":
                raise ProtoError(f"{self.source}: unexpected {token!r} at top level")
        return self.messages

    def parse_message(self, parent: str) -> None:
        name = self.take()
        full_name = f"{parent}.{name}" if parent else name
        message = RawMessage(full_name, full_name)
        self.messages.append(message)
        self.take("{")
        self.parse_body(message, closing="}")

    def parse_body(self, message: RawMessage, closing: str) -> None:
        while True:
            token = self.peek()
            if token == closing:
                self.take()
                return
            if token == "message":
                self.take()
                self.parse_message(message.full_name)
            elif token in ("enum", "extend"):
                self.skip_block()
            elif token in ("option", "reserved", "extensions"):
                self.skip_statement()
            elif token == "oneof":
                self.take()
                self.take()  # the oneof's name
                self.take("{")
                self.parse_body(message, closing="}")
            elif token == ";":
                self.take()
            else:
                message.fields.append(self.parse_field())

    def parse_field(self) -> RawField:
        token = self.take()
        if token == "map":
            self.take("<")
            key_type = self.take()
            self.take(",")
            value_type = self.take()
            self.take(">")
            name = self.take()
            number = self.field_number()
            return RawField(number, name, value_type, "map", key_type)
        label = "optional"
        if token in ("optional", "required", "repeated"):
            label = "repeated" if token == "repeated" else "optional"
            token = self.take()
        if token == "group":
            raise ProtoError(f"{self.source}: groups are not supported")
        name = self.take()
        return RawField(self.field_number(), name, token, label)

    def field_number(self) -> int:
        self.take("=")
        number = self.take()
        if self.peek() == "[":
            while self.take() != "]":
                pass
        self.take(";")
        try:
            return int(number, 0)
        except ValueError:
            raise ProtoError(f"{self.source}: bad field number {number!r}") from None


def parse_file(text: str, source: str) -> list[RawMessage]:
    return _Parser(tokenize(text, source), source).parse()


def resolve(type_ref: str, scope: str, known: set[str]) -> str:
    """The full name of `type_ref` as used inside `scope` (protoc's innermost-first rule)."""
    if type_ref in SCALARS:
        return type_ref
    if type_ref.startswith("."):
        return type_ref[1:]
    parts = scope.split(".")
    for end in range(len(parts), -1, -1):
        candidate = ".".join([*parts[:end], type_ref])
        if candidate in known:
            return candidate
    raise ProtoError(f"cannot resolve type {type_ref!r} used in {scope}")


def api_version(package: str) -> str | None:
    """`k8s.io.api.apps.v1` -> `apps/v1`; `k8s.io.api.core.v1` -> `v1`; other packages: None."""
    match = API_PACKAGE.match(package)
    if match:
        segment, version = match.groups()
        group = GROUPS.get(segment, f"{segment}.k8s.io")
        return f"{group}/{version}" if group else version
    match = APIEXT_PACKAGE.match(package)
    if match:
        return f"apiextensions.k8s.io/{match.group(1)}"
    return None


def build_table(messages: list[RawMessage]) -> dict[str, dict[str, Any]]:
    known = {message.full_name for message in messages} | set(EXTRA_MESSAGES)
    table: dict[str, dict[int, list[str]]] = {}
    by_name: dict[str, tuple[str, str]] = {}  # message.field -> (message, number)
    for message in messages:
        if message.full_name in table:
            raise ProtoError(f"message {message.full_name} is defined twice")
        entries: dict[int, list[str]] = {}
        for raw in message.fields:
            type_name = resolve(raw.type_ref, message.scope, known)
            label = raw.label
            if label == "map":
                label = f"map:{resolve(raw.key_type, message.scope, known)}:{type_name}"
                type_name = "map"
            key = f"{message.full_name}.{raw.name}"
            entry = [JSON_NAMES.get(key, raw.name), type_name, label]
            if key in INLINE:
                entry.append("inline")
            elif key in POINTERS:
                entry.append("ptr")
            entries[raw.number] = entry
            by_name[key] = (message.full_name, str(raw.number))
        table[message.full_name] = entries
    packages = {message.full_name.rpartition(".")[0] for message in messages}
    for name, extra in [*EXTRA_FIELDS.items(), *EXTRA_MESSAGES.items()]:
        if name not in table and name.rpartition(".")[0] in packages and name in EXTRA_MESSAGES:
            table[name] = {}
        for number, field_name, type_name, label in extra if name in table else ():
            key = f"{name}.{field_name}"
            entry = [JSON_NAMES.get(key, field_name), type_name, label]
            if key in POINTERS:
                entry.append("ptr")
            table[name].setdefault(number, entry)
            by_name.setdefault(key, (name, str(number)))
    present = {message.full_name for message in messages}
    for key in sorted(INLINE | POINTERS | set(JSON_NAMES)):
        if key.rsplit(".", 1)[0] in present and key not in by_name:
            raise ProtoError(f"hand-written fact names a field that does not exist: {key}")
    kinds: dict[str, str] = {}
    for message in messages:
        package, _, kind = message.full_name.rpartition(".")
        version = api_version(package)
        fields = table[message.full_name]
        meta = fields.get(1)
        if version and kind not in NOT_KINDS and meta == ["metadata", OBJECT_META, "optional"]:
            kinds[f"{version}/{kind}"] = message.full_name
    return {
        "kinds": dict(sorted(kinds.items())),
        "messages": {
            name: {str(number): entries[number] for number in sorted(entries)}
            for name, entries in sorted(table.items())
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proto_dir", type=Path, help="directory holding generated.proto copies")
    default_out = Path(__file__).resolve().parent.parent / "localcluster" / "proto_fields.json"
    parser.add_argument("-o", "--output", type=Path, default=default_out)
    args = parser.parse_args(argv)
    files = sorted(args.proto_dir.rglob("*.proto"))
    if not files:
        print(f"no .proto files under {args.proto_dir}", file=sys.stderr)
        return 1
    messages: list[RawMessage] = []
    try:
        for path in files:
            messages.extend(parse_file(path.read_text(encoding="utf-8"), str(path)))
        table = build_table(messages)
    except ProtoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(table, separators=(",", ":"), ensure_ascii=False)
    args.output.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(text) + 1} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
