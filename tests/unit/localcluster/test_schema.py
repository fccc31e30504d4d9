"""Structural schema pruning/defaulting/validation and ObjectMeta validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from localcluster.errors import Cause
from localcluster.schema import (
    SchemaOutcome,
    default_prune_validate,
    validate_dns_label,
    validate_metadata,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def resource(spec: Any, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
    }
    obj.update(extra)
    return obj


def with_spec(spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec_schema}}


def obj_schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def run(spec: Any, spec_schema: dict[str, Any]) -> tuple[dict[str, Any], SchemaOutcome]:
    obj = resource(spec)
    return obj, default_prune_validate(obj, with_spec(spec_schema))


def errors_of(spec: Any, spec_schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    _, outcome = run(spec, spec_schema)
    return [(c.field, c.message, c.reason) for c in outcome.causes]


def messages(causes: list[Cause]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


# --- types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "value", "actual"),
    [
        ("integer", "3", "string"),
        ("integer", 1.5, "number"),
        ("integer", True, "boolean"),
        ("string", 3, "integer"),
        ("string", {"a": 1}, "object"),
        ("boolean", "true", "string"),
        ("number", [1], "array"),
        ("object", "x", "string"),
        ("array", {}, "object"),
        ("string", None, "null"),
    ],
)
def test_type_mismatch_names_the_actual_json_type(declared: str, value: Any, actual: str) -> None:
    errors = errors_of({"f": value}, obj_schema(f={"type": declared}))
    message = f'Invalid value: "{actual}": spec.f in body must be of type {declared}: "{actual}"'
    assert errors == [("spec.f", message, "FieldValueTypeInvalid")]


@pytest.mark.parametrize(
    ("declared", "value"),
    [
        ("integer", 3),
        ("integer", 3.0),
        ("number", 3),
        ("number", 2.5),
        ("string", ""),
        ("boolean", False),
        ("object", {}),
        ("array", []),
    ],
)
def test_type_match(declared: str, value: Any) -> None:
    assert errors_of({"f": value}, obj_schema(f={"type": declared})) == []


def test_nullable_accepts_null_and_skips_other_checks() -> None:
    schema = obj_schema(f={"type": "string", "nullable": True, "enum": ["a"], "minLength": 2})
    obj, outcome = run({"f": None}, schema)
    assert outcome.causes == []
    assert obj["spec"] == {"f": None}


def test_null_for_non_nullable_field_with_default_is_defaulted() -> None:
    obj, outcome = run({"f": None}, obj_schema(f={"type": "string", "default": "d"}))
    assert outcome.causes == []
    assert obj["spec"] == {"f": "d"}


def test_nullable_null_keeps_null_even_with_default() -> None:
    schema = obj_schema(f={"type": "string", "nullable": True, "default": "d"})
    obj, _ = run({"f": None}, schema)
    assert obj["spec"] == {"f": None}


def test_root_type_error_uses_body_as_subject() -> None:
    outcome = default_prune_validate({}, {"type": "object", "required": ["spec"]})
    assert messages(outcome.causes) == ["spec: Required value"]


# --- required / enum / strings ------------------------------------------------------------


def test_required_reports_each_missing_property_at_its_path() -> None:
    schema = {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {"model": {"type": "string"}, "prompt": {"type": "string"}},
    }
    assert errors_of({}, schema) == [
        ("spec.model", "Required value", "FieldValueRequired"),
        ("spec.prompt", "Required value", "FieldValueRequired"),
    ]


def test_required_satisfied_by_default() -> None:
    schema = {
        "type": "object",
        "required": ["mode"],
        "properties": {"mode": {"type": "string", "default": "auto"}},
    }
    obj, outcome = run({}, schema)
    assert outcome.causes == []
    assert obj["spec"] == {"mode": "auto"}


def test_enum_strings() -> None:
    schema = obj_schema(mode={"type": "string", "enum": ["a", "b"]})
    assert errors_of({"mode": "x"}, schema) == [
        (
            "spec.mode",
            'Unsupported value: "x": supported values: "a", "b"',
            "FieldValueNotSupported",
        )
    ]
    assert errors_of({"mode": "b"}, schema) == []


def test_enum_numbers_like_upstream() -> None:
    # Upstream quotes every supported value but prints a numeric bad value bare.
    schema = obj_schema(n={"type": "integer", "enum": [1, 2]})
    assert errors_of({"n": 3}, schema) == [
        ("spec.n", 'Unsupported value: 3: supported values: "1", "2"', "FieldValueNotSupported")
    ]
    assert errors_of({"n": 2}, schema) == []


def test_enum_does_not_confuse_true_and_one() -> None:
    schema = obj_schema(n={"enum": [1]})
    assert errors_of({"n": True}, schema) == [
        ("spec.n", 'Unsupported value: true: supported values: "1"', "FieldValueNotSupported")
    ]


def test_type_and_enum_errors_are_both_reported() -> None:
    schema = obj_schema(n={"type": "integer", "enum": [1, 2]})
    assert [m for _, m, _ in errors_of({"n": "x"}, schema)] == [
        'Invalid value: "string": spec.n in body must be of type integer: "string"',
        'Unsupported value: "x": supported values: "1", "2"',
    ]


def test_pattern_is_an_unanchored_search() -> None:
    schema = obj_schema(name={"type": "string", "pattern": "[0-9]"})
    assert errors_of({"name": "abc1def"}, schema) == []
    assert errors_of({"name": "abc"}, schema) == [
        (
            "spec.name",
            "Invalid value: \"abc\": spec.name in body should match '[0-9]'",
            "FieldValueInvalid",
        )
    ]


def test_pattern_anchored() -> None:
    schema = obj_schema(name={"type": "string", "pattern": "^[a-z]+$"})
    assert errors_of({"name": "ABC"}, schema) == [
        (
            "spec.name",
            "Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'",
            "FieldValueInvalid",
        )
    ]


def test_pattern_dollar_means_end_of_text_like_re2() -> None:
    schema = obj_schema(name={"type": "string", "pattern": "^[a-z]+$"})
    assert len(errors_of({"name": "abc\n"}, schema)) == 1


def test_invalid_pattern_is_reported_not_raised() -> None:
    errors = errors_of({"name": "x"}, obj_schema(name={"type": "string", "pattern": "+"}))
    assert len(errors) == 1
    assert errors[0][1].startswith('Invalid value: "": spec.name in body should match \'+, but')


def test_min_length() -> None:
    schema = obj_schema(name={"type": "string", "minLength": 1})
    assert errors_of({"name": ""}, schema) == [
        (
            "spec.name",
            'Invalid value: "": spec.name in body should be at least 1 chars long',
            "FieldValueInvalid",
        )
    ]


def test_max_length_counts_characters() -> None:
    schema = obj_schema(name={"type": "string", "maxLength": 5})
    assert errors_of({"name": "héllo"}, schema) == []
    assert errors_of({"name": "abcdef"}, schema) == [
        ("spec.name", "Too long: may not be more than 5 bytes", "FieldValueTooLong")
    ]


def test_string_rendering_escapes_like_go() -> None:
    schema = obj_schema(name={"type": "string", "enum": ["a"]})
    message = errors_of({"name": 'q"\n\\'}, schema)[0][1]
    assert message == 'Unsupported value: "q\\"\\n\\\\": supported values: "a"'


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "value", "detail"),
    [
        ({"minimum": 1}, 0, "should be greater than or equal to 1"),
        ({"minimum": 1, "exclusiveMinimum": True}, 1, "should be greater than 1"),
        ({"maximum": 10}, 11, "should be less than or equal to 10"),
        ({"maximum": 10, "exclusiveMaximum": True}, 10, "should be less than 10"),
        ({"maximum": 1.5}, 2.25, "should be less than or equal to 1.5"),
        ({"maximum": 1000000}, 2000000, "should be less than or equal to 1e+06"),
        ({"multipleOf": 5}, 7, "should be a multiple of 5"),
    ],
)
def test_numeric_bounds(bounds: dict[str, Any], value: Any, detail: str) -> None:
    errors = errors_of({"n": value}, obj_schema(n={"type": "number", **bounds}))
    rendered = "2.25" if value == 2.25 else str(value)
    assert errors == [
        ("spec.n", f"Invalid value: {rendered}: spec.n in body {detail}", "FieldValueInvalid")
    ]


@pytest.mark.parametrize(
    ("bounds", "value"),
    [
        ({"minimum": 1}, 1),
        ({"maximum": 10}, 10),
        ({"minimum": 1, "exclusiveMinimum": True}, 1.5),
        ({"multipleOf": 5}, 15),
        ({"multipleOf": 0.1}, 0.3),
    ],
)
def test_numeric_bounds_pass(bounds: dict[str, Any], value: Any) -> None:
    assert errors_of({"n": value}, obj_schema(n={"type": "number", **bounds})) == []


def test_int32_and_int64_ranges() -> None:
    schema = obj_schema(
        a={"type": "integer", "format": "int32"}, b={"type": "integer", "format": "int64"}
    )
    assert errors_of({"a": 2**31 - 1, "b": 2**63 - 1}, schema) == []
    assert errors_of({"a": 2**31, "b": -(2**63) - 1}, schema) == [
        (
            "spec.a",
            "Invalid value: 2147483648: spec.a in body must be of type int32",
            "FieldValueInvalid",
        ),
        (
            "spec.b",
            "Invalid value: -9223372036854775809: spec.b in body must be of type int64",
            "FieldValueInvalid",
        ),
    ]


# --- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-02-29T10:00:00Z", "nope"),
        ("date-time", "2024-01-02T03:04:05.123+02:00", "2023-02-29T10:00:00Z"),
        ("date-time", "2024-01-02t03:04:05z", "2024-01-02T25:00:00Z"),
        ("date", "2024-02-29", "2024-13-01"),
        ("date", "1999-12-31", "2024-01-02T00:00:00Z"),
        ("byte", "aGVsbG8=", "not base64!"),
        ("byte", "", "aGVsbG8"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456"),
        ("uuid", "123E4567E89B12D3A456426614174000", "zzzz4567-e89b-12d3-a456-426614174000"),
        ("email", "a@example.com", "not-an-email"),
        ("email", "Jane <jane@example.com>", "a@@b"),
        ("hostname", "example.com", "-bad.example.com"),
        ("hostname", "localhost", "a_b.com"),
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv4", "192.168.1.1", "::1"),
        ("ipv6", "::1", "10.0.0.1"),
        ("ipv6", "2001:db8::8a2e:370:7334", "2001:db8:::1"),
        ("uri", "https://example.com/x?y=1", "example.com"),
        ("uri", "/absolute/path", "relative/path"),
        ("duration", "1h30m", "nope"),
        ("duration", "500ms", "5x"),
        ("duration", "10s", "h30"),
        ("duration", "-1.5h", "h"),
        ("duration", "3 days", ""),
        ("cidr", "10.0.0.0/8", "10.0.0.0"),
    ],
)
def test_string_formats(fmt: str, good: str, bad: str) -> None:
    schema = obj_schema(f={"type": "string", "format": fmt})
    assert errors_of({"f": good}, schema) == []
    expected = f'Invalid value: "{bad}": spec.f in body must be of type {fmt}: "{bad}"'
    assert errors_of({"f": bad}, schema) == [("spec.f", expected, "FieldValueInvalid")]


def test_unknown_format_is_ignored() -> None:
    assert errors_of({"f": "anything"}, obj_schema(f={"type": "string", "format": "color"})) == []


def test_date_time_message_matches_upstream() -> None:
    errors = errors_of({"when": "nope"}, obj_schema(when={"type": "string", "format": "date-time"}))
    assert errors == [
        (
            "spec.when",
            'Invalid value: "nope": spec.when in body must be of type date-time: "nope"',
            "FieldValueInvalid",
        )
    ]


# --- arrays -------------------------------------------------------------------------------


def test_min_items() -> None:
    schema = obj_schema(items={"type": "array", "minItems": 1, "items": {"type": "string"}})
    assert errors_of({"items": []}, schema) == [
        (
            "spec.items",
            "Invalid value: 0: spec.items in body should have at least 1 items",
            "FieldValueInvalid",
        )
    ]


def test_max_items() -> None:
    schema = obj_schema(items={"type": "array", "maxItems": 3, "items": {"type": "integer"}})
    assert errors_of({"items": [1, 2, 3, 4]}, schema) == [
        ("spec.items", "Too many: 4: must have at most 3 items", "FieldValueTooMany")
    ]
    assert errors_of({"items": [1, 2, 3]}, schema) == []


def test_unique_items() -> None:
    schema = obj_schema(items={"type": "array", "uniqueItems": True, "items": {"type": "integer"}})
    assert errors_of({"items": [1, 2]}, schema) == []
    assert errors_of({"items": [1, 1]}, schema) == [
        (
            "spec.items",
            'Invalid value: "array": spec.items in body shouldn\'t contain duplicates',
            "FieldValueInvalid",
        )
    ]


def test_item_errors_carry_index_paths() -> None:
    schema = obj_schema(
        containers={
            "type": "array",
            "items": obj_schema(name={"type": "string"}, port={"type": "integer"}),
        }
    )
    errors = errors_of({"containers": [{"name": "a"}, {"name": 1, "port": "x"}]}, schema)
    assert [field for field, _, _ in errors] == [
        "spec.containers[1].name",
        "spec.containers[1].port",
    ]


def test_list_type_set_duplicates() -> None:
    schema = obj_schema(
        tags={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    )
    assert errors_of({"tags": ["a", "b", "a", "a", "b"]}, schema) == [
        ("spec.tags[2]", 'Duplicate value: "a"', "FieldValueDuplicate"),
        ("spec.tags[4]", 'Duplicate value: "b"', "FieldValueDuplicate"),
    ]
    assert errors_of({"tags": ["a", "b"]}, schema) == []


def test_list_type_set_of_numbers() -> None:
    schema = obj_schema(
        ns={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}
    )
    assert errors_of({"ns": [1, 2, 1]}, schema) == [
        ("spec.ns[2]", "Duplicate value: 1", "FieldValueDuplicate")
    ]


def test_list_type_map_duplicate_key() -> None:
    schema = obj_schema(
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": obj_schema(name={"type": "string"}, port={"type": "integer"}),
        }
    )
    spec = {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}, {"name": "a", "port": 3}]}
    assert errors_of(spec, schema) == [
        (
            "spec.ports[2]",
            'Duplicate value: map[string]interface {}{"name":"a"}',
            "FieldValueDuplicate",
        )
    ]


def test_list_type_map_with_two_keys_and_defaulted_key() -> None:
    schema = obj_schema(
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": obj_schema(
                port={"type": "integer"}, protocol={"type": "string", "default": "TCP"}
            ),
        }
    )
    spec = {
        "ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}]
    }
    assert errors_of(spec, schema) == [
        (
            "spec.ports[2]",
            'Duplicate value: map[string]interface {}{"port":80, "protocol":"TCP"}',
            "FieldValueDuplicate",
        )
    ]


def test_list_type_map_requires_objects() -> None:
    schema = obj_schema(
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"x-kubernetes-preserve-unknown-fields": True},
        }
    )
    assert errors_of({"ports": [{"name": "a"}, "x"]}, schema) == [
        (
            "spec.ports[1]",
            'Invalid value: "x": must be an object for an array of list-type map',
            "FieldValueInvalid",
        )
    ]


# --- objects ------------------------------------------------------------------------------


def test_additional_properties_entries_use_dotted_paths() -> None:
    schema = obj_schema(limits={"type": "object", "additionalProperties": {"type": "integer"}})
    obj, outcome = run({"limits": {"cpu": 1, "memory": "lots"}}, schema)
    assert outcome.unknown_fields == []
    assert obj["spec"]["limits"] == {"cpu": 1, "memory": "lots"}
    assert messages(outcome.causes) == [
        'spec.limits.memory: Invalid value: "string": spec.limits.memory in body must be of type '
        'integer: "string"'
    ]


def test_min_and_max_properties() -> None:
    schema = obj_schema(
        m={
            "type": "object",
            "minProperties": 2,
            "maxProperties": 3,
            "additionalProperties": {"type": "string"},
        }
    )
    assert errors_of({"m": {"a": "1"}}, schema) == [
        (
            "spec.m",
            "Invalid value: 1: spec.m in body should have at least 2 properties",
            "FieldValueInvalid",
        )
    ]
    assert errors_of({"m": dict.fromkeys("abcd", "x")}, schema) == [
        ("spec.m", "Too many: 4: must have at most 3 items", "FieldValueTooMany")
    ]


def test_every_error_is_reported_in_walk_order() -> None:
    schema = {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string"},
            "replicas": {"type": "integer", "minimum": 1},
            "name": {"type": "string", "maxLength": 3},
            "nested": obj_schema(deep=obj_schema(flag={"type": "boolean"})),
        },
    }
    spec = {"replicas": 0, "name": "toolong", "nested": {"deep": {"flag": "yes"}}}
    assert [f for f, _, _ in errors_of(spec, schema)] == [
        "spec.model",
        "spec.replicas",
        "spec.name",
        "spec.nested.deep.flag",
    ]


# --- combinators --------------------------------------------------------------------------


def test_one_of() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
    }
    assert errors_of({"a": "x"}, schema) == []
    expected = 'Invalid value: "object": spec in body must validate one and only one schema (oneOf)'
    assert errors_of({"a": "x", "b": "y"}, schema) == [("spec", expected, "FieldValueInvalid")]
    assert errors_of({}, schema) == [("spec", expected, "FieldValueInvalid")]


def test_any_of() -> None:
    schema = obj_schema(
        size={
            "x-kubernetes-int-or-string": True,
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^[0-9]+Gi$"},
            ],
        }
    )
    assert errors_of({"size": 3}, schema) == []
    assert errors_of({"size": "3Gi"}, schema) == []
    assert errors_of({"size": "3Mi"}, schema) == [
        (
            "spec.size",
            'Invalid value: "3Mi": spec.size in body must validate at least one schema (anyOf)',
            "FieldValueInvalid",
        )
    ]


def test_all_of_reports_branch_errors() -> None:
    schema = obj_schema(n={"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]})
    assert errors_of({"n": 9}, schema) == [
        (
            "spec.n",
            "Invalid value: 9: spec.n in body should be less than or equal to 5",
            "FieldValueInvalid",
        )
    ]


def test_not() -> None:
    schema = obj_schema(s={"type": "string", "not": {"enum": ["forbidden"]}})
    assert errors_of({"s": "fine"}, schema) == []
    assert errors_of({"s": "forbidden"}, schema) == [
        (
            "spec.s",
            'Invalid value: "forbidden": spec.s in body must not validate the schema (not)',
            "FieldValueInvalid",
        )
    ]


def test_cel_rules_are_ignored() -> None:
    schema = obj_schema(n={"type": "integer", "x-kubernetes-validations": [{"rule": "self > 100"}]})
    assert errors_of({"n": 1}, schema) == []


# --- int-or-string ------------------------------------------------------------------------


def test_int_or_string_accepts_both() -> None:
    schema = obj_schema(port={"x-kubernetes-int-or-string": True, "pattern": "^[a-z]+$"})
    assert errors_of({"port": 8080}, schema) == []
    assert errors_of({"port": "http"}, schema) == []


def test_int_or_string_pattern_only_applies_to_strings() -> None:
    schema = obj_schema(port={"x-kubernetes-int-or-string": True, "pattern": "^[a-z]+$"})
    assert [f for f, _, _ in errors_of({"port": "HTTP"}, schema)] == ["spec.port"]


@pytest.mark.parametrize(("value", "actual"), [(True, "boolean"), (1.5, "number"), (None, "null")])
def test_int_or_string_rejects_other_types(value: Any, actual: str) -> None:
    errors = errors_of({"port": value}, obj_schema(port={"x-kubernetes-int-or-string": True}))
    message = (
        f'Invalid value: "{actual}": spec.port in body must be of type integer,string: "{actual}"'
    )
    assert errors == [("spec.port", message, "FieldValueTypeInvalid")]


# --- pruning ------------------------------------------------------------------------------


def test_pruning_records_paths_and_keeps_resource_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": obj_schema(
                replicas={"type": "integer"},
                items={"type": "array", "items": obj_schema(name={"type": "string"})},
            )
        },
    }
    obj = resource(
        {"replicas": 1, "foo": 1, "items": [{"name": "a", "bar": 2}, {"name": "b"}]},
        status={"x": 1},
    )
    outcome = default_prune_validate(obj, schema)
    assert outcome.unknown_fields == ["spec.foo", "spec.items[0].bar", "status"]
    assert obj == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"replicas": 1, "items": [{"name": "a"}, {"name": "b"}]},
    }
    assert outcome.causes == []


def test_metadata_is_not_validated_or_pruned_at_root() -> None:
    schema = {
        "type": "object",
        "required": ["metadata"],
        "properties": {"metadata": obj_schema(name={"type": "string", "maxLength": 1})},
    }
    obj = {"apiVersion": "v1", "kind": "K", "metadata": {"name": "long-name", "labels": {"a": "b"}}}
    outcome = default_prune_validate(obj, schema)
    assert outcome == SchemaOutcome([], [])
    assert obj["metadata"] == {"name": "long-name", "labels": {"a": "b"}}


def test_not_embedded_root_prunes_resource_fields() -> None:
    obj = {"apiVersion": "v1", "kind": "K", "a": 1}
    outcome = default_prune_validate(obj, obj_schema(a={"type": "integer"}), embedded_root=False)
    assert outcome.unknown_fields == ["apiVersion", "kind"]
    assert obj == {"a": 1}


def test_additional_properties_objects_are_pruned_below() -> None:
    schema = obj_schema(
        byName={"type": "object", "additionalProperties": obj_schema(x={"type": "string"})}
    )
    obj, outcome = run({"byName": {"k": {"x": "1", "y": 2}}}, schema)
    assert outcome.unknown_fields == ["spec.byName.k.y"]
    assert obj["spec"] == {"byName": {"k": {"x": "1"}}}


def test_additional_properties_true_keeps_everything() -> None:
    schema = obj_schema(anything={"type": "object", "additionalProperties": True})
    obj, outcome = run({"anything": {"a": {"b": [1]}}}, schema)
    assert outcome.unknown_fields == []
    assert obj["spec"] == {"anything": {"a": {"b": [1]}}}


def test_preserve_unknown_fields_keeps_unknown_but_checks_declared() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "known": {"type": "integer", "minimum": 1},
            "child": obj_schema(a={"type": "string"}),
            "withDefault": {"type": "string", "default": "d"},
        },
    }
    spec = {"known": 0, "free": {"any": ["thing"]}, "child": {"a": "x", "b": 1}}
    obj, outcome = run(spec, schema)
    # Preserving is not inherited: the declared child is still pruned.
    assert outcome.unknown_fields == ["spec.child.b"]
    assert obj["spec"] == {
        "known": 0,
        "free": {"any": ["thing"]},
        "child": {"a": "x"},
        "withDefault": "d",
    }
    assert [c.field for c in outcome.causes] == ["spec.known"]


def test_preserve_unknown_fields_without_type() -> None:
    schema = obj_schema(raw={"x-kubernetes-preserve-unknown-fields": True})
    obj, outcome = run({"raw": {"deep": {"x": [1, {"y": None}]}}}, schema)
    assert outcome == SchemaOutcome([], [])
    assert obj["spec"] == {"raw": {"deep": {"x": [1, {"y": None}]}}}


def test_object_without_properties_is_emptied() -> None:
    obj, outcome = run({"o": {"a": 1, "b": 2}}, obj_schema(o={"type": "object"}))
    assert outcome.unknown_fields == ["spec.o.a", "spec.o.b"]
    assert obj["spec"] == {"o": {}}


# --- embedded resources -------------------------------------------------------------------


def embedded_schema() -> dict[str, Any]:
    return obj_schema(
        template={
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "properties": {"spec": obj_schema(image={"type": "string"})},
        }
    )


def test_embedded_resource_keeps_type_meta_and_metadata() -> None:
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"image": "x", "junk": 1},
        "other": 1,
    }
    obj, outcome = run({"template": template}, embedded_schema())
    assert outcome.causes == []
    assert outcome.unknown_fields == ["spec.template.spec.junk", "spec.template.other"]
    assert obj["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"image": "x"},
    }


def test_embedded_resource_requires_api_version_and_kind() -> None:
    errors = errors_of({"template": {"metadata": {"name": "Bad_Name"}}}, embedded_schema())
    assert errors == [
        ("spec.template.apiVersion", "Required value: must not be empty", "FieldValueRequired"),
        ("spec.template.kind", "Required value: must not be empty", "FieldValueRequired"),
        (
            "spec.template.metadata.name",
            f'Invalid value: "Bad_Name": {SUBDOMAIN_MSG}',
            "FieldValueInvalid",
        ),
    ]


def test_embedded_resource_kind_and_api_version_values() -> None:
    errors = errors_of({"template": {"apiVersion": "a/b/c", "kind": 3}}, embedded_schema())
    assert errors == [
        (
            "spec.template.apiVersion",
            'Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c',
            "FieldValueInvalid",
        ),
        ("spec.template.kind", "Invalid value: 3: must be a string", "FieldValueInvalid"),
    ]


# --- defaulting ---------------------------------------------------------------------------


def test_defaults_applied_recursively_and_deep_copied() -> None:
    shared = {"level": "info", "sinks": []}
    schema = obj_schema(
        logging={
            "type": "object",
            "default": shared,
            "properties": {
                "level": {"type": "string"},
                "sinks": {"type": "array", "items": {"type": "string"}},
                "format": {"type": "string", "default": "json"},
            },
        }
    )
    obj, outcome = run({}, schema)
    assert outcome.causes == []
    assert obj["spec"] == {"logging": {"level": "info", "sinks": [], "format": "json"}}
    obj["spec"]["logging"]["sinks"].append("x")
    assert shared == {"level": "info", "sinks": []}


def test_defaults_not_applied_to_absent_parent() -> None:
    schema = obj_schema(parent=obj_schema(child={"type": "string", "default": "d"}))
    obj, _ = run({}, schema)
    assert obj["spec"] == {}
    obj, _ = run({"parent": {}}, schema)
    assert obj["spec"] == {"parent": {"child": "d"}}


def test_defaults_inside_array_items() -> None:
    schema = obj_schema(
        containers={
            "type": "array",
            "items": obj_schema(
                name={"type": "string"},
                pullPolicy={"type": "string", "default": "IfNotPresent"},
                ports={
                    "type": "array",
                    "items": obj_schema(protocol={"type": "string", "default": "TCP"}),
                },
            ),
        }
    )
    spec = {"containers": [{"name": "a"}, {"name": "b", "pullPolicy": "Always", "ports": [{}]}]}
    obj, outcome = run(spec, schema)
    assert outcome.causes == []
    assert obj["spec"]["containers"] == [
        {"name": "a", "pullPolicy": "IfNotPresent"},
        {"name": "b", "pullPolicy": "Always", "ports": [{"protocol": "TCP"}]},
    ]


def test_null_array_item_with_item_default() -> None:
    schema = obj_schema(xs={"type": "array", "items": {"type": "string", "default": "z"}})
    obj, _ = run({"xs": ["a", None]}, schema)
    assert obj["spec"]["xs"] == ["a", "z"]


def test_defaults_for_additional_properties_values() -> None:
    schema = obj_schema(
        m={
            "type": "object",
            "additionalProperties": obj_schema(
                weight={"type": "integer", "default": 1}, name={"type": "string"}
            ),
        }
    )
    obj, _ = run({"m": {"a": {}, "b": {"weight": 5}}}, schema)
    assert obj["spec"]["m"] == {"a": {"weight": 1}, "b": {"weight": 5}}


def test_defaults_do_not_resurrect_pruned_fields_and_default_is_validated() -> None:
    schema = obj_schema(n={"type": "integer", "default": 0, "minimum": 1})
    obj, outcome = run({"n": None}, schema)
    assert obj["spec"] == {"n": 0}
    assert messages(outcome.causes) == [
        "spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1"
    ]


def test_input_schema_is_not_mutated() -> None:
    inner = obj_schema(a={"type": "integer", "default": 1})
    schema = with_spec(obj_schema(o={**inner, "default": {}}))
    before = copy.deepcopy(schema)
    obj = resource({})
    default_prune_validate(obj, schema)
    assert obj["spec"] == {"o": {"a": 1}}
    assert schema == before


# --- metadata -----------------------------------------------------------------------------


def test_valid_metadata() -> None:
    meta = {
        "name": "my-app.v1",
        "namespace": "default",
        "labels": {"app.kubernetes.io/name": "x", "empty": ""},
        "annotations": {"Example.com/Note": "anything goes here"},
        "finalizers": ["example.com/cleanup"],
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "d",
                "uid": "1",
                "controller": True,
            }
        ],
    }
    assert validate_metadata(meta, namespaced=True) == []


def test_name_required_unless_generate_name() -> None:
    assert validate_metadata({}, namespaced=True) == [
        Cause(
            "metadata.name",
            "Required value: name or generateName is required",
            "FieldValueRequired",
        )
    ]
    assert validate_metadata({"generateName": "app-"}, namespaced=True) == []
    assert validate_metadata({}, namespaced=True, name_required=False) == []


def test_name_must_be_subdomain() -> None:
    assert validate_metadata({"name": "Bad_Name"}, namespaced=False) == [
        Cause("metadata.name", f'Invalid value: "Bad_Name": {SUBDOMAIN_MSG}', "FieldValueInvalid")
    ]
    assert validate_metadata({"name": "a.b-c"}, namespaced=False) == []


def test_name_too_long_reports_length_and_keeps_going() -> None:
    causes = validate_metadata({"name": "a" * 254}, namespaced=False)
    assert messages(causes) == [
        f'metadata.name: Invalid value: "{"a" * 254}": must be no more than 253 characters'
    ]


def test_name_is_label() -> None:
    causes = validate_metadata({"name": "a.b"}, namespaced=False, name_is_label=True)
    assert causes == [
        Cause("metadata.name", f'Invalid value: "a.b": {LABEL_MSG}', "FieldValueInvalid")
    ]
    assert validate_metadata({"name": "a-b"}, namespaced=False, name_is_label=True) == []


def test_generate_name_prefix_may_end_with_dash() -> None:
    assert validate_metadata({"generateName": "web-"}, namespaced=False) == []
    causes = validate_metadata({"generateName": "Web-"}, namespaced=False)
    assert [c.field for c in causes] == ["metadata.generateName"]


def test_namespace_must_be_label_when_present() -> None:
    causes = validate_metadata({"name": "a", "namespace": "Not_OK"}, namespaced=True)
    assert causes == [
        Cause("metadata.namespace", f'Invalid value: "Not_OK": {LABEL_MSG}', "FieldValueInvalid")
    ]
    assert validate_metadata({"name": "a"}, namespaced=True) == []


def test_label_key_and_value_errors() -> None:
    causes = validate_metadata(
        {"name": "a", "labels": {"bad key": "ok", "good": "bad value!", "x/": "v"}}, namespaced=True
    )
    assert messages(causes) == [
        f'metadata.labels: Invalid value: "bad key": name part {QUALIFIED_NAME_MSG}',
        f'metadata.labels: Invalid value: "bad value!": {LABEL_VALUE_MSG}',
        'metadata.labels: Invalid value: "x/": name part must be non-empty',
        f'metadata.labels: Invalid value: "x/": name part {QUALIFIED_NAME_MSG}',
    ]


def test_label_key_prefix_and_lengths() -> None:
    causes = validate_metadata(
        {"name": "a", "labels": {"Bad_Prefix/name": "v", "k": "v" * 64, "n" * 64: "v"}},
        namespaced=True,
    )
    assert messages(causes) == [
        f'metadata.labels: Invalid value: "Bad_Prefix/name": prefix part {SUBDOMAIN_MSG}',
        f'metadata.labels: Invalid value: "{"v" * 64}": must be no more than 63 characters',
        f'metadata.labels: Invalid value: "{"n" * 64}": name part '
        "must be no more than 63 characters",
    ]


def test_labels_must_be_strings() -> None:
    causes = validate_metadata({"name": "a", "labels": {"a": 1}}, namespaced=True)
    assert causes == [
        Cause(
            "metadata.labels.a",
            'Invalid value: "integer": metadata.labels.a in body must be of type string: "integer"',
            "FieldValueTypeInvalid",
        )
    ]
    causes = validate_metadata({"name": "a", "labels": ["a"]}, namespaced=True)
    assert [c.field for c in causes] == ["metadata.labels"]


def test_annotation_keys_are_case_insensitive_qualified_names() -> None:
    assert (
        validate_metadata({"name": "a", "annotations": {"Foo.COM/Bar": "x"}}, namespaced=True) == []
    )
    causes = validate_metadata({"name": "a", "annotations": {"a b": "x"}}, namespaced=True)
    assert messages(causes) == [
        f'metadata.annotations: Invalid value: "a b": name part {QUALIFIED_NAME_MSG}'
    ]


def test_annotations_total_size() -> None:
    big = {"a": "x" * (262144 - 1)}
    assert validate_metadata({"name": "a", "annotations": big}, namespaced=True) == []
    big = {"a": "x" * 262144}
    assert validate_metadata({"name": "a", "annotations": big}, namespaced=True) == [
        Cause(
            "metadata.annotations", "Too long: must have at most 262144 bytes", "FieldValueTooLong"
        )
    ]


def test_finalizers_are_qualified_names() -> None:
    causes = validate_metadata({"name": "a", "finalizers": ["ok/fine", "not ok"]}, namespaced=True)
    assert messages(causes) == [
        f'metadata.finalizers: Invalid value: "not ok": name part {QUALIFIED_NAME_MSG}'
    ]


def test_owner_reference_fields_must_not_be_empty() -> None:
    causes = validate_metadata(
        {"name": "a", "ownerReferences": [{"apiVersion": "apps/", "kind": "D"}]}, namespaced=True
    )
    assert causes == [
        Cause(
            "metadata.ownerReferences[0].apiVersion",
            'Invalid value: "apps/": version must not be empty',
            "FieldValueInvalid",
        ),
        Cause("metadata.ownerReferences[0].name", 'Invalid value: "": name must not be empty'),
        Cause("metadata.ownerReferences[0].uid", 'Invalid value: "": uid must not be empty'),
    ]


def test_only_one_controller_owner() -> None:
    refs = [
        {"apiVersion": "v1", "kind": "A", "name": "x", "uid": "1", "controller": True},
        {"apiVersion": "v1", "kind": "B", "name": "y", "uid": "2", "controller": False},
        {"apiVersion": "v1", "kind": "C", "name": "z", "uid": "3", "controller": True},
    ]
    causes = validate_metadata({"name": "a", "ownerReferences": refs}, namespaced=True)
    assert len(causes) == 1
    assert causes[0].field == "metadata.ownerReferences"
    assert causes[0].message.startswith('Invalid value: [{"apiVersion":"v1","kind":"A"')
    assert causes[0].message.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "A/x and C/z"
    )


def test_every_metadata_error_is_reported() -> None:
    meta = {
        "name": "Bad",
        "generation": -1,
        "labels": {"k": "bad value!"},
        "finalizers": ["bad finalizer"],
    }
    assert [c.field for c in validate_metadata(meta, namespaced=False)] == [
        "metadata.name",
        "metadata.generation",
        "metadata.labels",
        "metadata.finalizers",
    ]


def test_validate_dns_label() -> None:
    assert validate_dns_label("kube-system", "metadata.name") == []
    assert validate_dns_label("", "metadata.name") == [
        Cause("metadata.name", f'Invalid value: "": {LABEL_MSG}', "FieldValueInvalid")
    ]
    assert [c.message for c in validate_dns_label("a" * 64, "f")] == [
        f'Invalid value: "{"a" * 64}": must be no more than 63 characters'
    ]


def test_falsy_defaults_are_applied() -> None:
    schema = obj_schema(
        enabled={"type": "boolean", "default": False},
        count={"type": "integer", "default": 0},
        name={"type": "string", "default": ""},
    )
    obj, _ = run({}, schema)
    assert obj["spec"] == {"enabled": False, "count": 0, "name": ""}


def test_additional_properties_false_prunes_unknown() -> None:
    schema = {"type": "object", "additionalProperties": False, "properties": {"a": {}}}
    obj, outcome = run({"a": 1, "b": 2}, schema)
    assert outcome.unknown_fields == ["spec.b"]
    assert obj["spec"] == {"a": 1}
