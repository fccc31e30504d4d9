"""Protobuf request bodies decode into the same dicts a JSON client would have sent.

The bodies are built by a tiny encoder driven by the same facts table the decoder reads. Like
gogo (which Kubernetes clients use), it writes every plain scalar field, zero or not, so the
decoder's zero-value omission is exercised on realistic bodies.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import struct
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from localcluster import protobuf
from localcluster.errors import StatusError
from localcluster.protobuf import MAGIC, PROTOBUF, decode_object, go_duration

REPO = Path(__file__).resolve().parents[3]
TABLE = json.loads((REPO / "localcluster" / "proto_fields.json").read_text())
MESSAGES: dict[str, dict[str, list[str]]] = TABLE["messages"]
KINDS: dict[str, str] = TABLE["kinds"]
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
APIEXT = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1."
VARINT = {"int32", "int64", "uint32", "uint64", "bool", "enum"}


# --- a small encoder -----------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def scalar(number: int, type_name: str, value: Any) -> bytes:
    if type_name in VARINT:
        return tag(number, 0) + varint(int(value))
    if type_name == "double":
        return tag(number, 1) + struct.pack("<d", value)
    if type_name == "string":
        return length_delimited(number, value.encode())
    if type_name == "bytes":
        return length_delimited(number, base64.b64decode(value))
    raise AssertionError(f"encoder does not do {type_name}")


def zero(type_name: str) -> Any:
    return {"string": "", "bytes": "", "bool": False}.get(type_name, 0)


def seconds(text: str) -> tuple[int, int]:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return int(moment.timestamp()), moment.microsecond * 1000


def encode_value(value: Any, type_name: str) -> bytes:
    """The payload of one message-typed value (special types as the Go types write them)."""
    if type_name in (META + "Time", META + "MicroTime"):
        if value is None:
            return b""
        secs, nanos = seconds(value)
        return scalar(1, "int64", secs) + (scalar(2, "int32", nanos) if nanos else b"")
    if type_name == META + "Duration":
        return scalar(1, "int64", value)
    if type_name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return scalar(1, "string", value)
    if type_name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        if isinstance(value, str):
            return scalar(1, "int64", 1) + scalar(2, "int32", 0) + scalar(3, "string", value)
        return scalar(1, "int64", 0) + scalar(2, "int32", value) + scalar(3, "string", "")
    if type_name in ("k8s.io.apimachinery.pkg.runtime.RawExtension", APIEXT + "JSON"):
        return length_delimited(1, json.dumps(value).encode())
    if type_name == META + "FieldsV1":
        return length_delimited(1, json.dumps(value).encode())
    if type_name == META + "Verbs" or type_name.endswith(".ExtraValue"):
        return b"".join(scalar(1, "string", item) for item in value)
    if type_name == APIEXT + "JSONSchemaPropsOrBool":
        if isinstance(value, bool):
            return scalar(1, "bool", value)
        return scalar(1, "bool", True) + length_delimited(
            2, encode(value, APIEXT + "JSONSchemaProps")
        )
    if type_name == APIEXT + "JSONSchemaPropsOrArray":
        props = APIEXT + "JSONSchemaProps"
        if isinstance(value, list):
            return b"".join(length_delimited(2, encode(item, props)) for item in value)
        return length_delimited(1, encode(value, props))
    if type_name == APIEXT + "JSONSchemaPropsOrStringArray":
        if isinstance(value, list):
            return b"".join(scalar(2, "string", item) for item in value)
        return length_delimited(1, encode(value, APIEXT + "JSONSchemaProps"))
    return encode(value, type_name)


def encode(obj: dict[str, Any], message: str) -> bytes:
    """Encode a JSON-shaped dict as `message`, writing zero plain scalars like gogo does."""
    out = bytearray()
    for number_text, entry in MESSAGES[message].items():
        number = int(number_text)
        name, type_name, label = entry[:3]
        flag = entry[3] if len(entry) > 3 else ""
        if flag == "inline":
            out += length_delimited(number, encode(obj, type_name))
            continue
        if label.startswith("map:"):
            _, key_type, value_type = label.split(":")
            for key, item in obj.get(name, {}).items():
                value = (
                    scalar(2, value_type, item)
                    if value_type in VARINT | {"string", "bytes", "double"}
                    else length_delimited(2, encode_value(item, value_type))
                )
                out += length_delimited(number, scalar(1, key_type, key) + value)
        elif name not in obj:
            if label == "optional" and flag != "ptr" and "." not in type_name:
                out += scalar(number, type_name, zero(type_name))
        elif label == "repeated":
            for item in obj[name]:
                if "." in type_name:
                    out += length_delimited(number, encode_value(item, type_name))
                else:
                    out += scalar(number, type_name, item)
        elif "." in type_name:
            out += length_delimited(number, encode_value(obj[name], type_name))
        else:
            out += scalar(number, type_name, obj[name])
    return bytes(out)


def body(obj: dict[str, Any], *, content_type: str = "") -> bytes:
    """A whole request body: magic + runtime.Unknown{typeMeta, raw, contentType}."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    fields = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    raw = encode(fields, KINDS[f"{api_version}/{kind}"])
    type_meta = scalar(1, "string", api_version) + scalar(2, "string", kind)
    unknown = length_delimited(1, type_meta) + length_delimited(2, raw)
    unknown += scalar(3, "string", "") + scalar(4, "string", content_type)
    return MAGIC + unknown


def roundtrip(obj: dict[str, Any]) -> dict[str, Any]:
    return decode_object(body(obj))


# --- objects kubectl creates ---------------------------------------------------------------


def test_configmap_with_data_and_binary_data() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "default", "labels": {"app": "web"}},
        "data": {"a": "b", "empty": ""},
        "binaryData": {"bin": base64.b64encode(b"\x00\xff\x10").decode()},
    }
    assert roundtrip(obj) == obj


def test_secret_keeps_bytes_as_base64_and_type() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "annotations": {"note": "ünïcode"}},
        "data": {"p": base64.b64encode(b"q").decode()},
        "stringData": {"raw": "text"},
        "type": "Opaque",
    }
    assert roundtrip(obj) == obj


def test_namespace_keeps_empty_spec_and_status() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    obj |= {"spec": {}, "status": {}}
    assert roundtrip(obj) == obj


def test_zero_creation_timestamp_is_omitted_and_a_real_one_is_rfc3339() -> None:
    obj = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}
    raw = body(obj)
    decoded = decode_object(raw)
    assert decoded == obj  # encoder wrote no creationTimestamp: zero Time -> omitted
    meta: dict[str, Any] = {"name": "sa", "creationTimestamp": "2026-01-02T03:04:05Z"}
    stamped = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
    assert roundtrip(stamped) == stamped


def test_empty_time_message_is_omitted() -> None:
    meta = encode({"name": "sa"}, META + "ObjectMeta") + length_delimited(8, b"")
    unknown = length_delimited(1, scalar(1, "string", "v1") + scalar(2, "string", "ServiceAccount"))
    unknown += length_delimited(2, length_delimited(1, meta))
    assert decode_object(MAGIC + unknown) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
    }


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "d"}
    container = {
        "name": "nginx",
        "image": "nginx:1",
        "command": ["nginx", "-g", "daemon off;"],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "env": [
            {"name": "A", "value": "1"},
            {
                "name": "B",
                "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": True}},
            },
            {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}},
        ],
        "resources": {
            "limits": {"cpu": "500m", "memory": "128Mi"},
            "requests": {"cpu": "250m"},
        },
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "http"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "volumes": [
                        {"name": "scratch", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}},
                    ],
                },
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
        },
        "status": {},
    }


def test_deployment_with_containers_env_ports_resources_volumes_and_intstr() -> None:
    obj = deployment(2)
    assert roundtrip(obj) == obj


def test_pointer_zero_is_kept_replicas_zero() -> None:
    obj = deployment(0)
    decoded = roundtrip(obj)
    assert decoded["spec"]["replicas"] == 0
    assert decoded == obj


def test_plain_zero_scalars_are_omitted() -> None:
    decoded = roundtrip(deployment(1))
    container = decoded["spec"]["template"]["spec"]["containers"][0]
    # gogo wrote workingDir="", stdin=false, terminationMessagePath="", ...: all dropped
    assert "workingDir" not in container and "stdin" not in container
    assert "hostPort" not in container["ports"][0]


def test_role_and_bindings() -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "default"},
        "rules": [
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
            {
                "verbs": ["get"],
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "resourceNames": ["d"],
            },
        ],
    }
    decoded = roundtrip(role)
    # a repeated string holding "" keeps it (it is an element, not a zero field)
    assert decoded == role
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "rb"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "sa", "namespace": "default"},
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
    }
    assert roundtrip(binding) == binding


def test_service_account_with_automount_false() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
        "automountServiceAccountToken": False,
        "imagePullSecrets": [{"name": "regcred"}],
    }
    assert roundtrip(obj) == obj


def test_job_with_pod_template() -> None:
    obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {},
                "spec": {
                    "containers": [{"name": "j", "image": "busybox", "resources": {}}],
                    "restartPolicy": "Never",
                },
            },
        },
        "status": {},
    }
    assert roundtrip(obj) == obj


def test_cronjob() -> None:
    obj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "cj"},
        "spec": {
            "schedule": "*/1 * * * *",
            "jobTemplate": {
                "metadata": {"name": "cj"},
                "spec": {"template": {"metadata": {}, "spec": {"containers": []}}},
            },
        },
        "status": {},
    }
    decoded = roundtrip(obj)
    # an empty repeated field never reaches the wire, so it comes back absent, as in Go
    assert decoded["spec"]["jobTemplate"]["spec"]["template"]["spec"] == {}


def test_service_ports_with_int_and_named_target_ports() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "labels": {"app": "svc"}},
        "spec": {
            "ports": [
                {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "web", "protocol": "TCP", "port": 81, "targetPort": "http"},
            ],
            "selector": {"app": "svc"},
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }
    assert roundtrip(obj) == obj


def test_pod_with_inline_volume_source_and_packed_repeated_ints() -> None:
    groups = b"".join(varint(value) for value in (1000, 2000, -1))
    security = scalar(2, "int64", 1000) + length_delimited(4, groups)
    container = scalar(1, "string", "c") + scalar(2, "string", "busybox")
    volume = scalar(1, "string", "v") + length_delimited(
        2, length_delimited(1, scalar(1, "string", "/data"))
    )
    spec = length_delimited(2, container) + length_delimited(14, security)
    spec += length_delimited(1, volume) + tag(999, 0) + varint(7)  # an unknown field
    pod = length_delimited(1, scalar(1, "string", "p")) + length_delimited(2, spec)
    unknown = length_delimited(1, scalar(1, "string", "v1") + scalar(2, "string", "Pod"))
    unknown += length_delimited(2, pod)
    assert decode_object(MAGIC + unknown) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "securityContext": {"runAsUser": 1000, "supplementalGroups": [1000, 2000, -1]},
            "volumes": [{"name": "v", "hostPath": {"path": "/data"}}],
        },
    }


def test_token_request_and_access_review() -> None:
    token = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {"name": "sa", "namespace": "default"},
        "spec": {
            "audiences": ["https://kubernetes.default.svc"],
            "expirationSeconds": 3600,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"},
        },
        "status": {},
    }
    assert roundtrip(token) == token
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {
            "resourceAttributes": {
                "namespace": "default",
                "verb": "get",
                "resource": "pods",
            }
        },
        "status": {"allowed": True},
    }
    assert roundtrip(review) == review


def test_lease_micro_time_keeps_microseconds() -> None:
    obj = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {
            "holderIdentity": "me",
            "leaseDurationSeconds": 15,
            "renewTime": "2026-01-02T03:04:05.123456Z",
        },
    }
    assert roundtrip(obj) == obj


def test_crd_schema_types() -> None:
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "ratio": {"type": "number", "maximum": 1.5},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "extra": {"type": "object", "additionalProperties": False},
                    "labels": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    },
                },
                "x-kubernetes-validations": [{"rule": "self.replicas >= 0"}],
            },
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
        "status": {"acceptedNames": {}},
    }
    assert roundtrip(crd) == crd


def test_raw_extension_holds_json() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "rev"},
        "data": {"spec": {"template": {"x": [1, "two", None]}}},
        "revision": 3,
    }
    assert roundtrip(obj) == obj


def test_negative_and_large_integers() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "generation": 2**40},
        "spec": {"containers": [], "priority": -5, "activeDeadlineSeconds": 2**35},
    }
    decoded = roundtrip(obj)
    assert decoded["metadata"]["generation"] == 2**40
    assert decoded["spec"]["priority"] == -5
    assert decoded["spec"]["activeDeadlineSeconds"] == 2**35


def test_json_content_type_inside_the_envelope() -> None:
    inner = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}
    type_meta = scalar(1, "string", "v1") + scalar(2, "string", "ConfigMap")
    unknown = length_delimited(1, type_meta) + length_delimited(2, json.dumps(inner).encode())
    unknown += scalar(4, "string", "application/json")
    assert decode_object(MAGIC + unknown) == inner


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (1_500_000_000, "1.5s"),
        (60 * 10**9, "1m0s"),
        (3600 * 10**9, "1h0m0s"),
        (3723 * 10**9 + 500_000_000, "1h2m3.5s"),
        (-90 * 10**9, "-1m30s"),
    ],
)
def test_go_duration(nanoseconds: int, text: str) -> None:
    assert go_duration(nanoseconds) == text


def test_duration_message() -> None:
    assert protobuf._convert(META + "Duration", scalar(1, "int64", 3600 * 10**9), 0) == "1h0m0s"


# --- errors --------------------------------------------------------------------------------


def error_of(raw: bytes) -> StatusError:
    with pytest.raises(StatusError) as caught:
        decode_object(raw)
    assert caught.value.code == 400
    return caught.value


def test_bad_magic() -> None:
    assert "k8s" in error_of(b'{"kind": "ConfigMap"}').message


def test_truncated_body() -> None:
    raw = body({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert "truncated" in error_of(raw[:-3]).message
    assert "truncated" in error_of(raw[:12]).message


def test_unknown_kind() -> None:
    type_meta = scalar(1, "string", "example.com/v1") + scalar(2, "string", "Widget")
    raw = MAGIC + length_delimited(1, type_meta) + length_delimited(2, b"")
    assert error_of(raw).message == (
        "the local cluster cannot decode protobuf for example.com/v1/Widget; send JSON"
    )


def test_missing_type_meta() -> None:
    assert "apiVersion and kind" in error_of(MAGIC + length_delimited(2, b"")).message


def test_wrong_wire_type() -> None:
    type_meta = scalar(1, "string", "v1") + scalar(2, "string", "ConfigMap")
    raw = MAGIC + length_delimited(1, type_meta) + length_delimited(2, tag(1, 0) + varint(5))
    assert "wire type" in error_of(raw).message


def test_content_encoding_is_refused() -> None:
    type_meta = scalar(1, "string", "v1") + scalar(2, "string", "ConfigMap")
    raw = MAGIC + length_delimited(1, type_meta) + scalar(3, "string", "gzip")
    assert "contentEncoding" in error_of(raw).message


def test_content_type_constant() -> None:
    assert PROTOBUF == "application/vnd.kubernetes.protobuf"


# --- the table and its generator -----------------------------------------------------------


def test_table_covers_kubectl_kinds_and_is_closed() -> None:
    for kind in (
        "v1/ConfigMap",
        "v1/Secret",
        "v1/Namespace",
        "v1/ServiceAccount",
        "v1/Service",
        "v1/Pod",
        "apps/v1/Deployment",
        "batch/v1/Job",
        "batch/v1/CronJob",
        "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
        "authentication.k8s.io/v1/TokenRequest",
        "authorization.k8s.io/v1/SelfSubjectAccessReview",
        "networking.k8s.io/v1/Ingress",
        "policy/v1/PodDisruptionBudget",
        "coordination.k8s.io/v1/Lease",
        "apiextensions.k8s.io/v1/CustomResourceDefinition",
    ):
        assert kind in KINDS, kind
    for fields in MESSAGES.values():
        for _, type_name, label, *_ in fields.values():
            types = label.split(":")[1:] if label.startswith("map:") else [type_name]
            for name in types:
                assert "." not in name or name in MESSAGES, name


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_proto_fields", REPO / "tools" / "gen_proto_fields.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_proto_fields"] = module
    spec.loader.exec_module(module)
    return module


def test_generator_parses_proto2() -> None:
    generator = load_generator()
    text = """
    // a comment
    syntax = "proto2";
    package k8s.io.api.demo.v1;
    import "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto";
    option go_package = "v1";
    /* block
       comment */
    message Widget {
      optional .k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;
      optional Spec spec = 2 [(gogoproto.nullable) = false];
      message Spec {
        repeated string names = 1;
        map<string, Inner> parts = 2;
        oneof choice { int64 big = 3; }
      }
      enum Mode { A = 0; }
    }
    message Inner { optional bytes blob = 1; }
    """
    meta = (
        "package k8s.io.apimachinery.pkg.apis.meta.v1;"
        "message ObjectMeta { optional int64 deletionGracePeriodSeconds = 10; }"
    )
    messages = generator.parse_file(text, "demo.proto") + generator.parse_file(meta, "m.proto")
    table = generator.build_table(messages)
    assert table["kinds"] == {"demo.k8s.io/v1/Widget": "k8s.io.api.demo.v1.Widget"}
    assert table["messages"]["k8s.io.api.demo.v1.Widget.Spec"] == {
        "1": ["names", "string", "repeated"],
        "2": ["parts", "map", "map:string:k8s.io.api.demo.v1.Inner"],
        "3": ["big", "int64", "optional"],
    }
    assert table["messages"]["k8s.io.api.demo.v1.Widget"]["2"] == [
        "spec",
        "k8s.io.api.demo.v1.Widget.Spec",
        "optional",
    ]
