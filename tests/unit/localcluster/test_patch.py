from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from localcluster.errors import StatusError
from localcluster.patch import (
    ATOMIC_MAP,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    builtin_apply_keys,
    builtin_list_keys,
    crd_list_keys,
    json_equal,
)

# --- JSON patch ---------------------------------------------------------------------------

# RFC 6902 appendix A, the examples that succeed.
RFC6902_OK: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    ("A.1", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ("A.4", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ("A.6", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
     {"foo": "bar", "baz": "qux"}),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.16", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "doc", "ops", "expected"), RFC6902_OK, ids=lambda x: x)
def test_json_patch_rfc_examples(name: str, doc: Any, ops: Any, expected: Any) -> None:
    assert apply_json_patch(doc, ops) == expected


def test_json_patch_pointer_escaping() -> None:
    doc = {"metadata": {"annotations": {"example.com/a~b": "1"}}}
    ops = [
        {"op": "replace", "path": "/metadata/annotations/example.com~1a~0b", "value": "2"},
        {"op": "add", "path": "/metadata/annotations/x~1y", "value": "3"},
    ]
    assert apply_json_patch(doc, ops) == {
        "metadata": {"annotations": {"example.com/a~b": "2", "x/y": "3"}}
    }


def test_json_patch_copy_and_root_replace() -> None:
    doc = {"spec": {"a": [1, {"b": 2}]}}
    copied = apply_json_patch(doc, [{"op": "copy", "from": "/spec/a", "path": "/spec/c"}])
    assert copied == {"spec": {"a": [1, {"b": 2}], "c": [1, {"b": 2}]}}
    copied["spec"]["c"][1]["b"] = 99
    assert copied["spec"]["a"][1]["b"] == 2  # a copy, not an alias
    assert apply_json_patch(doc, [{"op": "replace", "path": "", "value": {"x": 1}}]) == {"x": 1}


def test_json_patch_test_compares_whole_values_and_types() -> None:
    doc = {"a": {"b": [1, 2]}, "t": True}
    apply_json_patch(doc, [{"op": "test", "path": "/a", "value": {"b": [1, 2]}}])
    with pytest.raises(StatusError):
        apply_json_patch(doc, [{"op": "test", "path": "/t", "value": 1}])
    with pytest.raises(StatusError):
        apply_json_patch(doc, [{"op": "test", "path": "/a/b", "value": [2, 1]}])


def test_json_patch_does_not_mutate_input_and_is_all_or_nothing() -> None:
    doc = {"data": {"a": "1"}, "list": [1]}
    before = copy.deepcopy(doc)
    value = {"nested": ["x"]}
    result = apply_json_patch(doc, [{"op": "add", "path": "/data/b", "value": value}])
    result["data"]["b"]["nested"].append("y")
    assert value == {"nested": ["x"]}
    with pytest.raises(StatusError):
        apply_json_patch(
            doc,
            [
                {"op": "remove", "path": "/data/a"},
                {"op": "add", "path": "/list/-", "value": 2},
                {"op": "test", "path": "/list/0", "value": 5},
            ],
        )
    assert doc == before


def test_json_patch_failed_test_is_422_with_upstream_wording() -> None:
    with pytest.raises(StatusError) as e:
        apply_json_patch({"data": {"x": "a"}}, [{"op": "test", "path": "/data/x", "value": "b"}])
    assert (e.value.code, e.value.reason) == (422, "Invalid")
    assert e.value.message == 'jsonpatch test operation does not apply: is: "a", expected: "b"'


def test_json_patch_remove_missing_is_422() -> None:
    with pytest.raises(StatusError) as e:
        apply_json_patch({"data": {}}, [{"op": "remove", "path": "/data/x"}])
    assert (e.value.code, e.value.reason) == (422, "Invalid")
    assert e.value.message == (
        'jsonpatch remove operation does not apply: doc is missing path: "/data/x"'
    )


@pytest.mark.parametrize(
    "op",
    [
        {"op": "add", "path": "/baz/bat", "value": "qux"},  # RFC A.12
        {"op": "add", "path": "/list/3", "value": 0},
        {"op": "add", "path": "/list/01", "value": 0},
        {"op": "remove", "path": "/list/-"},
        {"op": "replace", "path": "/nope", "value": 1},
        {"op": "replace", "path": "/list/2", "value": 1},
        {"op": "move", "from": "/nope", "path": "/x"},
        {"op": "move", "from": "/obj", "path": "/obj/child"},
        {"op": "copy", "from": "/list/9", "path": "/x"},
        {"op": "test", "path": "/nope", "value": None},
        {"op": "add", "path": "no-slash", "value": 1},
        {"op": "add", "path": "/bad~2escape", "value": 1},
        {"op": "add", "path": "/foo/x", "value": 1},  # into a string
        {"op": "remove", "path": ""},
    ],
)
def test_json_patch_operations_that_do_not_apply_are_422(op: dict[str, Any]) -> None:
    doc = {"foo": "bar", "list": [1, 2], "obj": {"a": 1}}
    with pytest.raises(StatusError) as e:
        apply_json_patch(doc, [op])
    assert e.value.code == 422
    assert e.value.message.startswith(f"jsonpatch {op['op']} operation does not apply: ")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        ("nope", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
        ([1], "json: cannot unmarshal number into Go value of type jsonpatch.Operation"),
        ([{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
        ([{"path": "/a", "value": 1}], "Unexpected kind: null"),
        ([{"op": "add", "value": 1}], 'jsonpatch add operation is missing the "path" field'),
        ([{"op": "test", "path": "/a"}], 'jsonpatch test operation is missing the "value" field'),
        ([{"op": "move", "path": "/a"}], 'jsonpatch move operation is missing the "from" field'),
    ],
)  # fmt: skip
def test_json_patch_malformed_documents_are_400(patch: Any, message: str) -> None:
    with pytest.raises(StatusError) as e:
        apply_json_patch({"a": 1}, patch)
    assert (e.value.code, e.value.reason, e.value.message) == (400, "BadRequest", message)


def test_json_patch_malformed_operation_rejected_before_anything_applies() -> None:
    with pytest.raises(StatusError) as e:
        apply_json_patch({}, [{"op": "test", "path": "/x", "value": 1}, {"op": "bogus"}])
    assert e.value.code == 400


def test_json_equal_distinguishes_bools_from_numbers() -> None:
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal(True, 1)
    assert not json_equal([0], [False])
    assert not json_equal({"a": None}, {})


# --- JSON merge patch ----------------------------------------------------------------------

# RFC 7386 appendix A, verbatim.
RFC7386: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), RFC7386)
def test_merge_patch_rfc_examples(doc: Any, patch: Any, expected: Any) -> None:
    assert apply_merge_patch(doc, patch) == expected


def test_merge_patch_does_not_mutate_input() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1]}}
    before = copy.deepcopy(doc)
    result = apply_merge_patch(doc, {"metadata": {"labels": {"a": None, "b": "2"}}})
    assert result == {"metadata": {"labels": {"b": "2"}}, "spec": {"list": [1]}}
    result["spec"]["list"].append(2)
    assert doc == before


# --- Strategic merge patch -------------------------------------------------------------


def smp(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return apply_strategic_merge_patch(doc, patch, builtin_list_keys)


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": list(containers), **spec}}


def test_smp_maps_merge_and_null_deletes() -> None:
    doc = {"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}}
    patch = {"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"y": "2"}}
    assert smp(doc, patch) == {
        "metadata": {"labels": {"b": "2", "c": "3"}},
        "data": {"x": "1", "y": "2"},
    }


def test_smp_merges_containers_by_name() -> None:
    doc = pod({"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1", "tty": True})
    result = smp(doc, {"spec": {"containers": [{"name": "side", "image": "s:2"}]}})
    assert result["spec"]["containers"] == [
        {"name": "app", "image": "a:1"},
        {"name": "side", "image": "s:2", "tty": True},
    ]


def test_smp_new_list_items_lead_like_upstream() -> None:
    # Without $setElementOrder upstream puts items the live list lacks first.
    doc = pod({"name": "app"}, {"name": "side"})
    result = smp(doc, {"spec": {"containers": [{"name": "new", "image": "n"}]}})
    assert [c["name"] for c in result["spec"]["containers"]] == ["new", "app", "side"]


def test_smp_delete_directive_removes_list_item() -> None:
    doc = pod({"name": "app"}, {"name": "side"})
    result = smp(doc, {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}})
    assert result["spec"]["containers"] == [{"name": "app"}]


def test_smp_replace_directive_on_list() -> None:
    doc = pod({"name": "app", "image": "a"}, {"name": "side"})
    patch = {"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}}
    assert smp(doc, patch)["spec"]["containers"] == [{"name": "only", "image": "o"}]


def test_smp_replace_directive_on_map() -> None:
    doc = {"data": {"a": "1", "b": "2"}, "keep": 1}
    assert smp(doc, {"data": {"$patch": "replace", "z": "9"}}) == {"data": {"z": "9"}, "keep": 1}


def test_smp_delete_directive_on_map() -> None:
    doc = {"spec": {"strategy": {"type": "Recreate"}, "replicas": 1}}
    assert smp(doc, {"spec": {"strategy": {"$patch": "delete"}}}) == {"spec": {"replicas": 1}}


def test_smp_retain_keys() -> None:
    doc = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch: dict[str, Any] = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(doc, patch) == {"spec": {"strategy": {"type": "Recreate"}}}
    volumes = pod(volumes=[{"name": "v", "emptyDir": {}}])
    patch = {
        "spec": {
            "volumes": [
                {"$retainKeys": ["configMap", "name"], "configMap": {"name": "c"}, "name": "v"}
            ]
        }
    }
    assert smp(volumes, patch)["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "c"}}]


def test_smp_set_element_order_reorders_maps() -> None:
    doc = pod({"name": "a"}, {"name": "b"}, {"name": "c"})
    patch = {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}
    assert [c["name"] for c in smp(doc, patch)["spec"]["containers"]] == ["c", "a", "b"]


def test_smp_set_element_order_places_new_items() -> None:
    doc = pod({"name": "a"}, {"name": "b"})
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "new"}, {"name": "b"}],
            "containers": [{"name": "new", "image": "n"}],
        }
    }
    result = smp(doc, patch)
    assert result["spec"]["containers"] == [
        {"name": "a"},
        {"name": "new", "image": "n"},
        {"name": "b"},
    ]


def test_smp_set_element_order_of_primitives() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}}
    assert smp(doc, patch) == {"metadata": {"finalizers": ["b", "c", "a"]}}


def test_smp_set_element_order_must_agree_with_patch_list() -> None:
    doc = pod({"name": "a"}, {"name": "b"})
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}],
        }
    }
    with pytest.raises(StatusError) as e:
        smp(doc, patch)
    assert e.value.code == 400


def test_smp_delete_from_primitive_list() -> None:
    doc = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}
    assert smp(doc, patch) == {"metadata": {"finalizers": ["a", "c"]}}


def test_smp_merging_primitive_list_is_a_union() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}}
    assert smp(doc, {"metadata": {"finalizers": ["b", "c"]}}) == {
        "metadata": {"finalizers": ["a", "b", "c"]}
    }


def test_smp_atomic_lists_are_replaced() -> None:
    doc = pod(
        {"name": "app", "args": ["a", "b"], "command": ["sh"], "envFrom": [{"prefix": "X"}]},
        tolerations=[{"key": "k1"}, {"key": "k2"}],
    )
    patch = {
        "spec": {
            "tolerations": [{"key": "k3"}],
            "containers": [{"name": "app", "args": ["c"], "envFrom": [{"prefix": "Y"}]}],
        }
    }
    result = smp(doc, patch)
    assert result["spec"]["tolerations"] == [{"key": "k3"}]
    assert result["spec"]["containers"] == [
        {"name": "app", "args": ["c"], "command": ["sh"], "envFrom": [{"prefix": "Y"}]}
    ]


def test_smp_service_ports_merge_by_port_and_container_ports_by_container_port() -> None:
    service = {
        "spec": {
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "https", "port": 443, "targetPort": 8443},
            ]
        }
    }
    result = smp(service, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert result["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 9090},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]
    doc = pod({"name": "app", "ports": [{"containerPort": 80, "name": "http"}]})
    patch = {
        "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "w"}]}]}
    }
    assert smp(doc, patch)["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "name": "w"}]


def test_smp_nested_lists_in_pod_templates() -> None:
    deployment = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "env": [{"name": "A", "value": "1"}]},
                    ],
                    "volumes": [{"name": "v1", "emptyDir": {}}],
                }
            }
        }
    }
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "A", "value": "2"}],
                            "volumeMounts": [{"mountPath": "/x", "name": "v2"}],
                        }
                    ],
                    "volumes": [{"name": "v2", "emptyDir": {}}],
                }
            }
        }
    }
    spec = smp(deployment, patch)["spec"]["template"]["spec"]
    assert spec["containers"] == [
        {"name": "app", "env": [{"name": "A", "value": "2"}], "volumeMounts": [
            {"mountPath": "/x", "name": "v2"}
        ]}
    ]  # fmt: skip
    assert [v["name"] for v in spec["volumes"]] == ["v2", "v1"]


def test_smp_strips_directives_from_new_values() -> None:
    doc: dict[str, Any] = {"spec": {}}
    patch = {
        "spec": {
            "$setElementOrder/volumes": [{"name": "w"}],
            "volumes": [{"name": "gone", "$patch": "delete"}, {"name": "w", "secret": None}],
            "template": {"$patch": "replace", "spec": {"$retainKeys": ["a"], "a": 1}},
            "initContainers": [
                {"name": "i", "$setElementOrder/env": [{"name": "E"}], "env": [{"name": "E"}]}
            ],
        }
    }
    assert smp(doc, patch) == {
        "spec": {
            "volumes": [{"name": "w"}],
            "template": {"spec": {"a": 1}},
            "initContainers": [{"name": "i", "env": [{"name": "E"}]}],
        }
    }


def test_smp_does_not_mutate_inputs() -> None:
    doc = pod({"name": "app", "env": [{"name": "A"}]})
    patch = {"spec": {"containers": [{"name": "app", "env": [{"name": "B"}]}]}}
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    result = smp(doc, patch)
    result["spec"]["containers"][0]["env"].append({"name": "C"})
    assert (doc, patch) == (doc_before, patch_before)


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"containers": [{"image": "no-name"}]}},
        {"spec": {"containers": [{"$patch": "delete"}]}},
        {"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}},
        {"spec": {"containers": [{"$patch": "merge"}]}},
        {"spec": {"$patch": "bogus"}},
        {"spec": {"$setElementOrder/containers": "not-a-list"}},
        {"spec": {"$retainKeys": "not-a-list"}},
    ],
)
def test_smp_malformed_patches_are_400(patch: dict[str, Any]) -> None:
    with pytest.raises(StatusError) as e:
        smp(pod({"name": "a"}), patch)
    assert e.value.code == 400


def test_smp_missing_merge_key_message() -> None:
    with pytest.raises(StatusError) as e:
        smp(pod({"name": "a"}), {"spec": {"containers": [{"image": "x"}]}})
    assert e.value.message == 'map: {"image":"x"} does not contain declared merge key: name'


def test_smp_kubectl_client_side_apply_of_a_deployment() -> None:
    """What `kubectl apply` (client-side) sends after image/env edits and a removed sidecar."""
    old_applied = '{"kind":"Deployment","spec":{"template":{"spec":{"containers":["..."]}}}}'
    new_applied = '{"kind":"Deployment","spec":{"template":{"spec":{"containers":["!"]}}}}'
    live: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "kubectl.kubernetes.io/last-applied-configuration": old_applied,
            },
            "labels": {"app": "web"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "imagePullPolicy": "IfNotPresent",
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "DEBUG", "value": "0"},
                                {"name": "INJECTED", "value": "by-webhook"},
                            ],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        },
                        {"name": "metrics", "image": "exporter:1"},
                    ],
                    "dnsPolicy": "ClusterFirst",
                },
            },
        },
    }
    # Verbatim shape of kubectl's three-way patch (keys sorted as Go marshals them).
    patch = json.loads(
        json.dumps(
            {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": new_applied}
                },
                "spec": {
                    "template": {
                        "spec": {
                            "$setElementOrder/containers": [{"name": "web"}],
                            "containers": [
                                {
                                    "$setElementOrder/env": [{"name": "MODE"}, {"name": "LOG"}],
                                    "env": [
                                        {"name": "MODE", "value": "staging"},
                                        {"name": "LOG", "value": "debug"},
                                        {"$patch": "delete", "name": "DEBUG"},
                                    ],
                                    "image": "nginx:1.27",
                                    "name": "web",
                                },
                                {"$patch": "delete", "name": "metrics"},
                            ],
                        }
                    }
                },
            },
            sort_keys=True,
        )
    )
    result = smp(live, patch)
    expected = copy.deepcopy(live)
    expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = (
        new_applied
    )
    expected["spec"]["template"]["spec"]["containers"] = [
        {
            "name": "web",
            "image": "nginx:1.27",
            "imagePullPolicy": "IfNotPresent",
            "env": [
                {"name": "MODE", "value": "staging"},
                {"name": "LOG", "value": "debug"},
                {"name": "INJECTED", "value": "by-webhook"},
            ],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
        }
    ]
    assert result == expected
    assert "$" not in json.dumps(result)


def test_smp_with_crd_composite_keys_matches_all_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                        "items": {"type": "object"},
                    }
                },
            }
        },
    }
    doc = {
        "spec": {
            "ports": [
                {"port": 80, "protocol": "TCP", "x": 1},
                {"port": 80, "protocol": "UDP", "x": 2},
            ]
        }
    }
    patch = {"spec": {"ports": [{"port": 80, "protocol": "UDP", "x": 3}]}}
    result = apply_strategic_merge_patch(doc, patch, crd_list_keys(schema))
    assert result["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP", "x": 1},
        {"port": 80, "protocol": "UDP", "x": 3},
    ]


# --- Merge keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("spec", "containers"), "name"),
        (("spec", "initContainers"), "name"),
        (("spec", "ephemeralContainers"), "name"),
        (("spec", "template", "spec", "containers"), "name"),
        (("spec", "template", "spec", "initContainers", "env"), "name"),
        (("spec", "containers", "env"), "name"),
        (("spec", "volumes"), "name"),
        (("spec", "template", "spec", "volumes"), "name"),
        (("spec", "template", "spec", "containers", "volumeMounts"), "mountPath"),
        (("spec", "containers", "volumeDevices"), "devicePath"),
        (("spec", "containers", "ports"), "containerPort"),
        (("spec", "template", "spec", "containers", "ports"), "containerPort"),
        (("spec", "ports"), "port"),
        (("spec", "imagePullSecrets"), "name"),
        (("spec", "hostAliases"), "ip"),
        (("spec", "topologySpreadConstraints"), "topologyKey"),
        (("spec", "resourceClaims"), "name"),
        (("metadata", "ownerReferences"), "uid"),
        (("metadata", "finalizers"), ""),
        (("spec", "template", "metadata", "finalizers"), ""),
        (("status", "conditions"), "type"),
        (("spec", "tolerations"), None),
        (("spec", "template", "spec", "tolerations"), None),
        (("spec", "containers", "args"), None),
        (("spec", "containers", "command"), None),
        (("spec", "containers", "envFrom"), None),
        (("rules",), None),
        (("subjects",), None),
        (("subsets", "ports"), None),
        (("spec", "ingress", "ports"), None),
        (("data", "containers"), None),
        ((), None),
    ],
)
def test_builtin_list_keys(path: tuple[str, ...], expected: str | None) -> None:
    assert builtin_list_keys(path) == expected


def test_builtin_apply_keys_use_list_map_keys_and_atomic_selectors() -> None:
    assert builtin_apply_keys(("spec", "containers", "ports")) == "containerPort,protocol"
    assert builtin_apply_keys(("spec", "ports")) == "port,protocol"
    assert builtin_apply_keys(("spec", "containers")) == "name"
    assert builtin_apply_keys(("spec", "selector")) == ATOMIC_MAP
    assert builtin_apply_keys(("roleRef",)) == ATOMIC_MAP
    assert builtin_apply_keys(("spec", "template", "spec")) is None


CRD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "sub": {
                                "type": "array",
                                "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["id", "kind"],
                                "items": {"type": "object"},
                            }
                        },
                    },
                },
                "tags": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "args": {"type": "array", "items": {"type": "string"}},
                "explicit": {
                    "type": "array",
                    "x-kubernetes-list-type": "atomic",
                    "items": {"type": "string"},
                },
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "groups": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string"},
                    },
                },
            },
        }
    },
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("spec", "items"), "name"),
        (("spec", "items", "sub"), "id,kind"),
        (("spec", "tags"), ""),
        (("spec", "args"), None),
        (("spec", "explicit"), None),
        (("spec", "selector"), ATOMIC_MAP),
        (("spec", "groups", "anything"), ""),
        (("spec", "unknown"), None),
        (("spec",), None),
        (("metadata", "finalizers"), ""),
        (("metadata", "ownerReferences"), "uid"),
    ],
)
def test_crd_list_keys(path: tuple[str, ...], expected: str | None) -> None:
    assert crd_list_keys(CRD_SCHEMA)(path) == expected
