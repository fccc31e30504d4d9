from __future__ import annotations

from typing import Any

import pytest

from localcluster.errors import StatusError
from localcluster.selectors import (
    FieldSelector,
    LabelSelector,
    label_value_errors,
    qualified_name_errors,
    supported_field_selectors,
)

POD_FIELDS = supported_field_selectors("Pod", "")


def bad_label_selector(text: str) -> StatusError:
    with pytest.raises(StatusError) as info:
        LabelSelector.parse(text)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    return info.value


# ---- label selectors: matching


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a==b", {"a": "x"}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {}, True),  # a missing label is "not equal"
        ("a in (x, y)", {"a": "y"}, True),
        ("a in (x, y)", {"a": "z"}, False),
        ("a in (x, y)", {}, False),
        ("a notin (x)", {"a": "y"}, True),
        ("a notin (x)", {"a": "x"}, False),
        ("a notin (x)", {}, True),
        ("a", {"a": ""}, True),
        ("a", {"b": "1"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("a=b,c", {"a": "b", "c": "1"}, True),
        ("a=b,c", {"a": "b"}, False),
        ("a=b,!c", {"a": "b", "c": "1"}, False),
        ("a>5", {"a": "6"}, True),
        ("a>5", {"a": "5"}, False),
        ("a>5", {"a": "x"}, False),
        ("a>5", {}, False),
        ("a<5", {"a": "-1"}, True),
        ("a<5", {"a": "7"}, False),
        ("a=", {"a": ""}, True),
        ("a=", {"a": "x"}, False),
        ("a in ()", {"a": ""}, True),
        ("a in (,x)", {"a": ""}, True),
        ("a in (,x)", {"a": "x"}, True),
        ("example.com/role=web", {"example.com/role": "web"}, True),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(selector).matches(labels) is expected


def test_label_selector_tolerates_whitespace() -> None:
    sel = LabelSelector.parse("  env  in  ( prod ,  staging )  ,  tier != db ,  ! canary ")
    assert sel.matches({"env": "prod", "tier": "web"})
    assert not sel.matches({"env": "prod", "tier": "web", "canary": "1"})
    assert not sel.matches({"env": "dev", "tier": "web"})
    assert not sel.matches({"env": "staging", "tier": "db"})


def test_empty_selector_matches_everything() -> None:
    for text in ("", "   "):
        sel = LabelSelector.parse(text)
        assert sel.empty
        assert sel.matches(None)
        assert sel.matches({"anything": "at-all"})
    assert not LabelSelector.parse("a").empty


def test_none_labels_are_treated_as_no_labels() -> None:
    assert LabelSelector.parse("!a").matches(None)
    assert LabelSelector.parse("a!=b").matches(None)
    assert not LabelSelector.parse("a").matches(None)


def test_keywords_are_ordinary_keys_and_values() -> None:
    sel = LabelSelector.parse("in=notin")
    assert sel.matches({"in": "notin"})
    assert not sel.matches({"in": "in"})
    assert LabelSelector.parse("notin in (in)").matches({"notin": "in"})


def test_label_selector_string_is_canonical() -> None:
    sel = LabelSelector.parse("z=1, a in (y,x), !b, c, d notin (q), e!=f, g==h, n>3")
    assert str(sel) == "a in (x,y),!b,c,d notin (q),e!=f,g==h,n>3,z=1"


# ---- label selectors: errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=(b", "unable to parse requirement: found '(', expected: identifier"),
        ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
        ),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b,", "unable to parse requirement: found '', expected: ',', or identifier"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ],
)
def test_label_selector_syntax_errors(text: str, message: str) -> None:
    assert bad_label_selector(text).message == message


def test_invalid_label_key_names_the_key() -> None:
    message = bad_label_selector("-a=b").message
    assert message.startswith('unable to parse requirement: <nil>: Invalid value: "-a": name part')
    assert "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'" in message


def test_invalid_label_value_names_value_and_key() -> None:
    message = bad_label_selector("app=-x").message
    assert message.startswith(
        'unable to parse requirement: values[0][app]: Invalid value: "-x": a valid label must be'
    )


def test_too_long_label_value_is_rejected() -> None:
    message = bad_label_selector("a=" + "x" * 64).message
    assert "must be no more than 63 characters" in message


def test_gt_needs_an_integer() -> None:
    message = bad_label_selector("a>x").message
    assert message == (
        "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' "
        "operators, the value must be an integer"
    )


# ---- label selectors: metav1.LabelSelector


def test_from_dict_match_labels_and_expressions() -> None:
    sel = LabelSelector.from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    good = {"app": "web", "tier": "b", "env": "prod", "owner": "me"}
    assert sel.matches(good)
    assert not sel.matches({**good, "app": "db"})
    assert not sel.matches({**good, "tier": "c"})
    assert not sel.matches({**good, "env": "dev"})
    assert not sel.matches({k: v for k, v in good.items() if k != "owner"})
    assert not sel.matches({**good, "canary": "true"})
    assert str(sel) == "app=web,!canary,env notin (dev),owner,tier in (a,b)"


def test_from_dict_empty_matches_everything() -> None:
    empties: list[dict[str, Any]] = [
        {},
        {"matchLabels": {}, "matchExpressions": []},
        {"matchLabels": None},
    ]
    for empty in empties:
        sel = LabelSelector.from_dict(empty)
        assert sel.empty
        assert sel.matches({"a": "b"})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]},
            '"Equals" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't "
            "be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and '
            "does not exist",
        ),
        ({"matchLabels": {"bad key": "v"}}, 'key: Invalid value: "bad key": name part'),
        ({"matchLabels": {"k": "bad value"}}, 'values[0][k]: Invalid value: "bad value"'),
    ],
)
def test_from_dict_rejects_invalid_selectors(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(StatusError) as info:
        LabelSelector.from_dict(selector)
    assert info.value.code == 400
    assert info.value.message.startswith(message)


# ---- name and value validation


@pytest.mark.parametrize(
    "key",
    ["a", "A-b_c.d", "example.com/name", "a.b-c.io/x", "x" * 63, "p" * 253 + "/n"],
)
def test_valid_qualified_names(key: str) -> None:
    assert qualified_name_errors(key) == []


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "name part must be non-empty"),
        ("-a", "name part must consist of"),
        ("a-", "name part must consist of"),
        ("x" * 64, "name part must be no more than 63 characters"),
        ("/a", "prefix part must be non-empty"),
        ("Example.com/a", "prefix part a lowercase RFC 1123 subdomain"),
        ("p" * 254 + "/a", "prefix part must be no more than 253 characters"),
        ("a/b/c", "a qualified name must consist of"),
        ("a b", "name part must consist of"),
        ("a\n", "name part must consist of"),
    ],
)
def test_invalid_qualified_names(key: str, fragment: str) -> None:
    assert any(fragment in e for e in qualified_name_errors(key))


def test_label_values() -> None:
    assert label_value_errors("") == []
    assert label_value_errors("v1.2_3-x") == []
    assert label_value_errors("-x") != []
    assert label_value_errors("a/b") != []
    assert label_value_errors("x" * 64)[0] == "must be no more than 63 characters"


# ---- field selectors


def pod(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": fields.get("name", "p1"), "namespace": "default"},
        "spec": fields.get("spec", {}),
        "status": fields.get("status", {}),
    }


@pytest.mark.parametrize(
    ("selector", "obj", "expected"),
    [
        ("metadata.name=p1", pod(), True),
        ("metadata.name==p1", pod(), True),
        ("metadata.name=p2", pod(), False),
        ("metadata.name!=p2", pod(), True),
        ("metadata.name!=p1", pod(), False),
        ("metadata.namespace=default", pod(), True),
        ("status.phase=Running", pod(status={"phase": "Running"}), True),
        ("status.phase=Running,metadata.name=p1", pod(status={"phase": "Running"}), True),
        ("status.phase=Running,metadata.name=p2", pod(status={"phase": "Running"}), False),
        ("status.phase!=Running", pod(status={"phase": "Pending"}), True),
        ("spec.nodeName=", pod(), True),  # a missing field compares as ""
        ("spec.nodeName!=", pod(), False),
        ("spec.nodeName!=", pod(spec={"nodeName": "n1"}), True),
        ("spec.nodeName=n1", pod(spec={"nodeName": "n1"}), True),
        ("spec.hostNetwork=true", pod(spec={"hostNetwork": True}), True),
        ("spec.hostNetwork=false", pod(spec={"hostNetwork": True}), False),
        ("spec.hostNetwork=false", pod(spec={"hostNetwork": False}), True),
        ("spec.hostNetwork=false", pod(), True),  # defaulted to false upstream
        ("spec.hostNetwork!=true", pod(), True),
        ("", pod(), True),
    ],
)
def test_field_selector_matches(selector: str, obj: dict[str, Any], expected: bool) -> None:
    assert FieldSelector.parse(selector, POD_FIELDS).matches(obj) is expected


def test_job_status_successful_reads_succeeded() -> None:
    fields = supported_field_selectors("Job", "batch")
    job = {"kind": "Job", "metadata": {"name": "j"}, "status": {"succeeded": 2}}
    assert FieldSelector.parse("status.successful=2", fields).matches(job)
    assert not FieldSelector.parse("status.successful=1", fields).matches(job)
    fresh = {"kind": "Job", "metadata": {"name": "j"}, "status": {}}
    assert FieldSelector.parse("status.successful=0", fields).matches(fresh)


def test_event_fields() -> None:
    fields = supported_field_selectors("Event", "")
    event = {
        "kind": "Event",
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "p1", "uid": "u-1"},
        "reason": "Started",
        "type": "Normal",
        "reportingComponent": "kubelet",
    }
    assert FieldSelector.parse(
        "involvedObject.kind=Pod,involvedObject.name=p1,involvedObject.uid=u-1", fields
    ).matches(event)
    assert FieldSelector.parse("reason=Started,type=Normal", fields).matches(event)
    assert FieldSelector.parse("reportingComponent=kubelet", fields).matches(event)
    # `source` falls back to the reporting controller when source.component is empty.
    assert FieldSelector.parse("source=kubelet", fields).matches(event)
    event["source"] = {"component": "scheduler"}
    assert FieldSelector.parse("source=scheduler", fields).matches(event)
    assert not FieldSelector.parse("source=kubelet", fields).matches(event)


def test_computed_fields_apply_only_to_their_kind() -> None:
    fields = frozenset({"metadata.name", "status.successful"})
    custom = {"kind": "Widget", "metadata": {"name": "w"}, "status": {"successful": "yes"}}
    assert FieldSelector.parse("status.successful=yes", fields).matches(custom)


def test_values_can_escape_separators() -> None:
    sel = FieldSelector.parse(r"metadata.name=a\,b\=c\\d", POD_FIELDS)
    assert sel.matches(pod(name="a,b=c\\d"))
    assert not sel.matches(pod(name="a"))
    assert sel.exact_name() == "a,b=c\\d"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        (
            "metadata.name=a,x",
            "invalid selector: 'metadata.name=a,x'; can't understand 'x'",
        ),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
        (r"metadata.name=a\q", "invalid field selector: invalid escape sequence: \\q"),
        ("metadata.name=a\\", "invalid field selector: unterminated escape sequence"),
    ],
)
def test_field_selector_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        FieldSelector.parse(text, POD_FIELDS)
    assert info.value.code == 400
    assert info.value.message == message


def test_unsupported_field_lists_the_supported_ones() -> None:
    with pytest.raises(StatusError) as info:
        FieldSelector.parse("foo.bar=baz", supported_field_selectors("ConfigMap", ""))
    assert info.value.code == 400
    assert info.value.message == (
        '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    with pytest.raises(StatusError) as info:
        FieldSelector.parse("foo=bar", supported_field_selectors("Secret", ""))
    assert info.value.message == (
        '"foo" is not a known field selector: only "metadata.name", "metadata.namespace", "type"'
    )


def test_pod_only_fields_are_rejected_for_other_kinds() -> None:
    with pytest.raises(StatusError):
        FieldSelector.parse("status.phase=Running", supported_field_selectors("ConfigMap", ""))


def test_exact_name() -> None:
    assert FieldSelector.parse("metadata.name=x", POD_FIELDS).exact_name() == "x"
    assert FieldSelector.parse("status.phase=R,metadata.name==x", POD_FIELDS).exact_name() == "x"
    assert FieldSelector.parse("metadata.name!=x", POD_FIELDS).exact_name() is None
    assert FieldSelector.parse("status.phase=R", POD_FIELDS).exact_name() is None
    assert FieldSelector.parse("", POD_FIELDS).exact_name() is None


def test_empty_field_selector() -> None:
    assert FieldSelector.parse("", POD_FIELDS).empty
    assert not FieldSelector.parse("metadata.name=a", POD_FIELDS).empty


def test_caller_supplied_fields_for_custom_resources() -> None:
    fields = supported_field_selectors("Widget", "example.com") | {"spec.color"}
    widget = {"kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red", "size": 3}}
    assert FieldSelector.parse("spec.color=red", fields).matches(widget)
    assert FieldSelector.parse("spec.size=3", fields | {"spec.size"}).matches(widget)


def test_supported_field_selectors() -> None:
    meta = {"metadata.name", "metadata.namespace"}
    assert supported_field_selectors("ConfigMap", "") == meta
    assert supported_field_selectors("CustomResourceDefinition", "apiextensions.k8s.io") == meta
    assert supported_field_selectors("Widget", "example.com") == meta
    assert supported_field_selectors("Secret", "") == meta | {"type"}
    assert supported_field_selectors("Namespace", "") == meta | {"status.phase"}
    assert supported_field_selectors("Job", "batch") == meta | {"status.successful"}
    assert supported_field_selectors("Pod", "") == meta | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    }
    assert "involvedObject.name" in supported_field_selectors("Event", "")
    assert "source" in supported_field_selectors("Event", "")
    # A same-named kind in another group does not inherit core's fields.
    assert supported_field_selectors("Pod", "example.com") == meta
