from __future__ import annotations

from typing import Any

import pytest

from localcluster.jsonpath import compile_path, evaluate

POD: dict[str, Any] = {
    "kind": "Pod",
    "metadata": {
        "name": "web",
        "labels": {"app": "web"},
        "annotations": {"example.com/owner.name": "team-a", "plain": "x"},
    },
    "spec": {
        "containers": [
            {"name": "main", "image": "nginx:1", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "envoy:2"},
            {"name": "debug", "image": "busybox"},
        ],
        "replicas": 3,
    },
    "status": {
        "phase": "Running",
        "ready": True,
        "conditions": [
            {"type": "Initialized", "status": "True", "priority": 1},
            {"type": "Ready", "status": "False", "priority": 5},
            {"type": "PodScheduled", "status": "True", "priority": 10, "flag": None},
        ],
    },
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".status.phase", ["Running"]),
        ("{.status.phase}", ["Running"]),
        ("{ .status.phase }", ["Running"]),
        ("$.status.phase", ["Running"]),
        ("{$.status.phase}", ["Running"]),
        ("status.phase", ["Running"]),  # kubectl's relaxed form
        (".spec.replicas", [3]),
        (".status.ready", [True]),
        (".spec.containers[0].image", ["nginx:1"]),
        (".spec.containers[2].name", ["debug"]),
        (".spec.containers[-1].name", ["debug"]),
        (".spec.containers[-3].name", ["main"]),
        (".spec.containers[3].name", []),
        (".spec.containers[-4].name", []),
        (".spec.containers[*].name", ["main", "sidecar", "debug"]),
        (".spec.containers.*.name", ["main", "sidecar", "debug"]),
        (".spec.containers[0:2].name", ["main", "sidecar"]),
        (".spec.containers[1:].name", ["sidecar", "debug"]),
        (".spec.containers[:1].name", ["main"]),
        (".spec.containers[::2].name", ["main", "debug"]),
        (".spec.containers[-2:].name", ["sidecar", "debug"]),
        (".spec.containers[0,2].name", ["main", "debug"]),
        (".spec.containers[0].ports[0].containerPort", [80]),
        (".metadata.labels.*", ["web"]),
        (".metadata.labels[*]", ["web"]),
        (".metadata['name']", ["web"]),
        ('.metadata["name"]', ["web"]),
        ("['metadata']['name']", ["web"]),
        (".metadata.annotations['example.com/owner.name']", ["team-a"]),
        (".metadata.annotations.example\\.com/owner\\.name", ["team-a"]),
        (".metadata.annotations['plain','missing']", ["x"]),
        (".metadata['name','kind']", ["web"]),
        ("['kind','metadata'].name", ["web"]),
        ("..image", ["nginx:1", "envoy:2", "busybox"]),
        ("..containerPort", [80]),
        ("$..conditions[0].type", ["Initialized"]),
        (".status.missing", []),
        (".status.phase.deeper", []),
        (".spec.containers.name", []),  # a field of a list selects nothing
        (".status.phase[0]", []),
        (".metadata[0]", []),
        (".", [POD]),
        ("$", [POD]),
        ("{.}", [POD]),
    ],
)
def test_paths(path: str, expected: list[Any]) -> None:
    assert evaluate(path, POD) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ('.status.conditions[?(@.type=="Ready")].status', ["False"]),
        (".status.conditions[?(@.type == 'Ready')].status", ["False"]),
        ('.status.conditions[?( @.type != "Ready" )].type', ["Initialized", "PodScheduled"]),
        (".status.conditions[?(@.priority > 1)].type", ["Ready", "PodScheduled"]),
        (".status.conditions[?(@.priority >= 5)].type", ["Ready", "PodScheduled"]),
        (".status.conditions[?(@.priority < 5)].type", ["Initialized"]),
        (".status.conditions[?(@.priority <= 5)].type", ["Initialized", "Ready"]),
        (".status.conditions[?(@.priority == 5.0)].type", ["Ready"]),
        (".status.conditions[?(@.priority > -1)].type", ["Initialized", "Ready", "PodScheduled"]),
        ('.status.conditions[?(@.type > "P")].type', ["Ready", "PodScheduled"]),
        (".status.conditions[?(@.flag)].type", ["PodScheduled"]),  # present, even if null
        (".status.conditions[?(@.nope)].type", []),
        ('.status.conditions[?(@.priority == "5")].type', []),  # types differ: never equal
        ('.status.conditions[?(@.priority != "5")].type', ["Initialized", "Ready", "PodScheduled"]),
        (".status.conditions[?(@.type < 5)].type", []),  # different types are unordered
        (".status.conditions[?(@.flag == null)].type", ["PodScheduled"]),
        (".status.conditions[?(@.type == $.status.conditions[1].type)].priority", [5]),
        (".spec.containers[?(@.ports[0].containerPort == 80)].name", ["main"]),
        (".spec.containers[?(@.ports)].name", ["main"]),
        (".metadata[?(@.app)]", []),  # filters apply to lists only
    ],
)
def test_filters(path: str, expected: list[Any]) -> None:
    assert evaluate(path, POD) == expected


def test_boolean_literals() -> None:
    items = {"items": [{"n": "a", "on": True}, {"n": "b", "on": False}, {"n": "c", "on": 1}]}
    assert evaluate(".items[?(@.on == true)].n", items) == ["a"]
    assert evaluate(".items[?(@.on == false)].n", items) == ["b"]
    assert evaluate(".items[?(@.on == 1)].n", items) == ["c"]  # 1 is not true


def test_filter_on_list_of_scalars() -> None:
    assert evaluate('.xs[?(@ == "b")]', {"xs": ["a", "b", "c"]}) == ["b"]
    assert evaluate(".xs[?(@ > 1)]", {"xs": [1, 2, 3]}) == [2, 3]


def test_items_wildcard_over_list() -> None:
    doc = {"items": [{"name": "a"}, {"name": "b"}, {"other": 1}]}
    assert evaluate(".items[*].name", doc) == ["a", "b"]


def test_results_are_the_values_themselves() -> None:
    (containers,) = evaluate(".spec.containers", POD)
    assert containers is POD["spec"]["containers"]


def test_evaluates_against_any_json_value() -> None:
    assert evaluate(".a", None) == []
    assert evaluate(".a", [1, 2]) == []
    assert evaluate("[1]", [1, 2]) == [2]
    assert evaluate(".a", "text") == []


def test_compile_path_is_reusable_and_cached() -> None:
    path = compile_path(".metadata.name")
    assert path(POD) == ["web"]
    assert path({"metadata": {"name": "other"}}) == ["other"]
    assert compile_path(".metadata.name") is path


def test_escaped_star_is_a_key() -> None:
    assert evaluate(".a.\\*", {"a": {"*": 1, "b": 2}}) == [1]
    assert evaluate(".a.*", {"a": {"*": 1, "b": 2}}) == [1, 2]


def test_quoted_names_may_contain_brackets_and_escaped_quotes() -> None:
    doc = {"m": {"a]b": 1, "it's": 2}}
    assert evaluate(".m['a]b']", doc) == [1]
    assert evaluate(".m['it\\'s']", doc) == [2]
    assert evaluate('.m["it\'s"]', doc) == [2]


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("{}", "empty expression"),
        ("{.a", "unclosed '{'"),
        (".a[", "unterminated '['"),
        (".a[0", "unterminated '['"),
        (".a[x]", "expected an index"),
        (".a['x", "unterminated string"),
        (".a[1:2:0]", "slice step cannot be zero"),
        (".a[?(@.x ~ 1)]", "expected a comparison operator"),
        (".a[?(@.x = 1)]", "expected a comparison operator"),
        (".a[?(1)]", "existence filter needs a path"),
        (".a[?(@.x == )]", "expected @, $, a string or a number"),
        (".a[?(@.x == 1]", "expected ')'"),
        (".a[?@.x]", "expected '('"),
        ("..", "after '..'"),
        (".a b", "unexpected ' '"),
        (".a)", "unexpected ')'"),
        ("@.a", "unexpected '@'"),
        ("{.a}{.b}", "unexpected '}'"),
    ],
)
def test_syntax_errors(path: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        compile_path(path)
    assert fragment in str(info.value)
    assert "invalid JSONPath" in str(info.value)
