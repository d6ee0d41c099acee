"""The OpenAPI documentation as a newcomer reads it: every operation has a request and an
answer example and one example per error code it documents, every example is true to the
serializers, tags follow the applicant's journey, quantities say their units.

A route added later fails here until it has its examples; the failure names what to add."""

from __future__ import annotations

import copy
import io
import re
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

from portal.apidocs.errors import OPERATION_ERRORS
from portal.apidocs.examples import OPERATION_EXAMPLES
from portal.apidocs.hooks import DAY_MARK, UNITS
from portal.apidocs.tags import TAG_NAMES

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
EXAMPLES_FILE = "portal/apidocs/examples.py"
ERRORS_FILE = "portal/apidocs/errors.py"


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    out = io.StringIO()
    with django_db_blocker.unblock():
        call_command("spectacular", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


# Fields an answer leaves out when they do not apply, by component.
OPTIONAL_IN_ANSWERS = {
    "Reason": {"day"},  # only capacity reasons name the day that failed
    "ValidationError": {"fields"},  # only `validation_error` has fields
}


def _resolve(node: Any, schema: dict[str, Any]) -> tuple[Any, str]:
    name = ""
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node, name


def closed(node: Any, schema: dict[str, Any], *, answer: bool) -> Any:
    """The schema with every reference inlined and every object closed: no property the
    serializer does not have; in an answer, every property present."""
    resolved, component = _resolve(node, schema)
    node = copy.deepcopy(resolved)
    if not isinstance(node, dict):
        return node
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            node[key] = [closed(option, schema, answer=answer) for option in node[key]]
    if "items" in node:
        node["items"] = closed(node["items"], schema, answer=answer)
    if "properties" in node:
        node["properties"] = {
            name: closed(value, schema, answer=answer) for name, value in node["properties"].items()
        }
        if answer:
            optional = OPTIONAL_IN_ANSWERS.get(component, set())
            node["required"] = sorted(set(node["properties"]) - optional)
        node.setdefault("additionalProperties", False)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = closed(node["additionalProperties"], schema, answer=answer)
    return node


def test_every_operation_has_a_request_and_an_answer_example(schema):
    # then
    missing = []
    for method, path, operation in _operations(schema):
        name = operation["operationId"]
        where = f"{method} {path} (operationId `{name}`)"
        if name not in OPERATION_EXAMPLES:
            missing.append(
                f"{where}: add `{name!r}: Example(summary, request=..., response=...)` to "
                f"OPERATION_EXAMPLES in {EXAMPLES_FILE}"
            )
            continue
        example = OPERATION_EXAMPLES[name]
        if "requestBody" in operation and example.request is None:
            missing.append(f"{where}: give its Example a `request=` body in {EXAMPLES_FILE}")
        for status_code, response in operation["responses"].items():
            if status_code.startswith("2") and response.get("content") and example.response is None:
                missing.append(
                    f"{where}: give its Example a `response=` body (the {status_code} answer; "
                    f"for a list, its items) in {EXAMPLES_FILE}"
                )
        if method in ("POST", "PUT", "PATCH", "DELETE") and name not in OPERATION_ERRORS:
            missing.append(
                f"{where}: name the codes its services can refuse it with in OPERATION_ERRORS "
                f"in {ERRORS_FILE} (`{name!r}: ()` when there are none)"
            )
    known = {operation["operationId"] for _, _, operation in _operations(schema)}
    for name in sorted(set(OPERATION_EXAMPLES) - known):
        missing.append(f"`{name}` in {EXAMPLES_FILE} names no operation: rename or remove it")
    for name in sorted(set(OPERATION_ERRORS) - known):
        missing.append(f"`{name}` in {ERRORS_FILE} names no operation: rename or remove it")
    assert not missing, "\n".join(missing)


def test_every_body_in_the_schema_shows_an_example(schema):
    # A media type without an example is shown by ReDoc as generated `property1` filler.
    # then
    bare = []
    for method, path, operation in _operations(schema):
        name = operation["operationId"]
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        bodies += [(code, r.get("content", {})) for code, r in operation["responses"].items()]
        for where, content in bodies:
            for media_type, media in content.items():
                if not media.get("examples"):
                    bare.append(
                        f"{method} {path} ({name}) {where} {media_type}: no example. "
                        + (
                            f"Its error codes come from {ERRORS_FILE} and portal/schema.py"
                            if where >= "4"
                            else f"Add it to OPERATION_EXAMPLES[{name!r}] in {EXAMPLES_FILE}"
                        )
                    )
    assert not bare, "\n".join(bare)


def test_every_documented_error_code_has_an_example(schema):
    # then
    missing = []
    for method, path, operation in _operations(schema):
        for status_code, response in operation["responses"].items():
            if not status_code.startswith(("4", "5")):
                continue
            media = response.get("content", {}).get("application/json", {})
            shown = {example["value"]["code"] for example in media.get("examples", {}).values()}
            listed = set(re.findall(r"`([a-z_]+)`", response.get("description", "")))
            where = f"{method} {path} ({operation['operationId']}) {status_code}"
            if not shown:
                missing.append(f"{where}: no example of its codes; name them in {ERRORS_FILE}")
            for code in sorted(listed - shown):
                missing.append(
                    f"{where}: documents `{code}` with no example; add an ErrorCode for it to "
                    f"OPERATION_ERRORS[{operation['operationId']!r}] in {ERRORS_FILE}"
                )
    assert not missing, "\n".join(missing)


def test_every_example_is_true_to_the_serializers(schema):
    # given: the schema the serializers make, every object closed and every answer complete
    failures = []
    for method, path, operation in _operations(schema):
        name = operation["operationId"]
        checks: list[tuple[str, Any, Any, Any]] = []
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            for key, example in media.get("examples", {}).items():
                checks.append((f"request {media_type} {key}", media["schema"], example, False))
        for status_code, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                for key, example in media.get("examples", {}).items():
                    checks.append((f"{status_code} {media_type} {key}", media["schema"],
                                   example, True))  # fmt: skip

        # when
        for where, body_schema, example, answer in checks:
            validator_class = OAS30ReadValidator if answer else OAS30WriteValidator
            validator = validator_class(closed(body_schema, schema, answer=answer))
            for error in validator.iter_errors(example["value"]):
                location = "/".join(str(part) for part in error.absolute_path) or "(body)"
                failures.append(f"{method} {path} ({name}) {where} at {location}: {error.message}")

    # then
    assert not failures, "Examples that the serializers contradict:\n" + "\n".join(failures)


def test_tags_follow_the_applicants_journey(schema):
    # then: the tags, in order, each described; operations under declared tags only
    assert [tag["name"] for tag in schema["tags"]] == TAG_NAMES
    assert all(tag["description"] for tag in schema["tags"])
    ranks = []
    for method, path, operation in _operations(schema):
        assert len(operation["tags"]) == 1, f"{method} {path}: {operation['tags']}"
        assert operation["tags"][0] in TAG_NAMES, f"{method} {path}: {operation['tags']}"
        ranks.append(TAG_NAMES.index(operation["tags"][0]))
    first_paths = list(schema["paths"])[:3]
    assert "/api/v1/auth/token/" in first_paths
    # the paths come in the tags' order, as Swagger UI and ReDoc list them
    path_ranks = [
        min(TAG_NAMES.index(op["tags"][0]) for m, op in item.items() if m in METHODS)
        for item in schema["paths"].values()
    ]
    assert path_ranks == sorted(path_ranks)


def test_the_journey_is_tagged_as_the_applicant_meets_it(schema):
    # given
    tag_of = {operation["operationId"]: operation["tags"][0]
              for _, _, operation in _operations(schema)}  # fmt: skip

    # then
    journey = [
        ("auth_token_create", "Sign in"),
        ("programs_list", "Programs and capacity"),
        ("capacity_list", "Programs and capacity"),
        ("applications_create", "Applications"),
        ("applications_submit", "Applications"),
        ("applications_retrieve", "Applications"),
        ("usage_create", "Usage"),
        ("allocations_release", "Allocations"),
        ("applications_approve", "Reviews"),
        ("sites_create", "Inventory"),
    ]
    assert [(name, tag_of[name]) for name, _ in journey] == journey


def _quantities(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for component, body in schema["components"]["schemas"].items():
        for name, prop in body.get("properties", {}).items():
            found.append((f"{component}.{name}", name, prop, prop))
    for method, path, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                found.append((f"{method} {path} ?{parameter['name']}", parameter["name"],
                              parameter["schema"], parameter))  # fmt: skip
    return found


def test_quantities_and_days_say_their_units(schema):
    # then
    unsaid = []
    for where, name, field_schema, holder in _quantities(schema):
        description = holder.get("description", "")
        if field_schema.get("format") == "date" and DAY_MARK not in description:
            unsaid.append(f"{where}: a day that does not say it is in {DAY_MARK}")
        if field_schema.get("type") not in ("integer", "number", "string"):
            continue
        if field_schema.get("format") in ("date", "date-time"):
            continue
        for pattern, mark, _ in UNITS:
            if pattern.search(name):
                if mark not in description:
                    unsaid.append(f"{where}: does not say its unit ({mark.strip()})")
                break
    assert not unsaid, "\n".join(unsaid)
    granted = schema["components"]["schemas"]["Allocation"]["properties"]["granted_gpu_hours"]
    assert "GPU-hours" in granted["description"]


def test_every_operation_says_what_it_does(schema):
    # then: its own description, never a view's docstring written for the code's readers
    undescribed = [
        f"{method} {path} ({operation['operationId']}): add a description to DESCRIPTIONS in "
        "portal/apidocs/descriptions.py (or `description=` in its @extend_schema)"
        for method, path, operation in _operations(schema)
        if not operation.get("description")
    ]
    assert not undescribed, "\n".join(undescribed)
    descriptions = {op["operationId"]: op["description"] for _, _, op in _operations(schema)}
    assert "GET a page of rows" not in descriptions["sites_list"]
    assert "Operators only" in descriptions["sites_create"]


def test_summaries_read_as_english(schema):
    # then: "a accelerator", "a a" and friends
    slips = []
    for method, path, operation in _operations(schema):
        summary = operation.get("summary", "")
        if not summary:
            slips.append(f"{method} {path}: no summary")
        if re.search(r"\ba [aeiouAEIOU]|\ban [^aeiouAEIOU\W]|\b(\w+) \1\b", summary):
            slips.append(f"{method} {path}: {summary!r}")
    assert not slips, "\n".join(slips)
