"""The schema's last pass (a drf-spectacular postprocessing hook): the journey's order, the
examples of every operation, the units of every quantity."""

from __future__ import annotations

import copy
import re
from typing import Any

from portal.apidocs.descriptions import DESCRIPTIONS
from portal.apidocs.examples import OPERATION_EXAMPLES
from portal.apidocs.tags import TAG_NAMES, TAGS

METHODS = ("get", "post", "put", "patch", "delete")
EXAMPLE_URL = "https://portal.narvik.example"

# The unit each quantity is counted in, by the end of its field name; the description of a
# field says its unit unless it says so already.
UNITS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"gpu_hours$"), "GPU-hours", "In GPU-hours (one GPU for one hour)."),
    (re.compile(r"gpu_seconds$"), "GPU-seconds", "In GPU-seconds (one GPU for one second)."),
    (re.compile(r"_mwh$"), "MWh", "In MWh (facility energy, PUE included)."),
    (re.compile(r"_kwh$"), "kWh", "In kWh."),
    (re.compile(r"(^|_)mw$"), "MW", "In MW."),
    (re.compile(r"_w$"), " W", "In W (watts) per GPU."),
    (re.compile(r"flops$"), "FLOP/s", "In FLOP/s, dense BF16, per GPU."),
    (re.compile(r"_hours$"), "hours", "In hours."),
    (re.compile(r"days$"), "days", "In days."),
    (re.compile(r"(fraction|share|_limit|^availability)$"), "fraction", "A fraction from 0 to 1."),
    (re.compile(r"^pue$"), "PUE", "Power usage effectiveness (PUE): facility power over IT power."),
]
DAY_NOTE = "A calendar day in Europe/Oslo, YYYY-MM-DD."
DAY_MARK = "Europe/Oslo"


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    result["tags"] = TAGS
    _order_paths(result)
    for schema in _schemas(result):
        _type_nullable_choices(schema, result)
        _describe_units(schema)
    for path_item in result.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is not None:
                if not operation.get("description"):
                    operation["description"] = DESCRIPTIONS.get(operation["operationId"], "")
                _describe_parameter_units(operation)
                _add_examples(operation, result)
    return result


def _order_paths(result: dict[str, Any]) -> None:
    """Paths in the order of their tags (the journey's), each tag's in URL order."""

    def rank(item: tuple[str, dict[str, Any]]) -> int:
        ranks = [
            TAG_NAMES.index(tag) if tag in TAG_NAMES else len(TAG_NAMES)
            for method in METHODS
            for tag in item[1].get(method, {}).get("tags", [])
        ]
        return min(ranks, default=len(TAG_NAMES))

    result["paths"] = dict(sorted(result.get("paths", {}).items(), key=rank))


def _schemas(node: Any) -> Any:
    """Every schema object under the node, depth first."""
    if isinstance(node, dict):
        if "type" in node or "properties" in node or "oneOf" in node or "$ref" in node:
            yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def _component(result: dict[str, Any], reference: str) -> dict[str, Any]:
    name = reference.rsplit("/", 1)[-1]
    return dict(result.get("components", {}).get("schemas", {}).get(name, {}))


def _type_nullable_choices(schema: dict[str, Any], result: dict[str, Any]) -> None:
    """`nullable` with `oneOf` [a choice, null] and no `type` is refused by OpenAPI 3.0 tools
    (a nullable needs a type): give it the choice's type."""
    if not schema.get("nullable") or "type" in schema or "oneOf" not in schema:
        return
    types = {
        _component(result, option["$ref"]).get("type")
        for option in schema["oneOf"]
        if "$ref" in option and not option["$ref"].endswith("/NullEnum")
    }
    if len(types) == 1 and None not in types:
        schema["type"] = types.pop()


def _describe_units(schema: dict[str, Any]) -> None:
    for name, prop in schema.get("properties", {}).items():
        if isinstance(prop, dict):
            _describe(name, prop, prop)


def _describe_parameter_units(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query":
            _describe(parameter["name"], parameter.get("schema", {}), parameter)


def _describe(name: str, schema: dict[str, Any], holder: dict[str, Any]) -> None:
    description = holder.get("description", "")
    addition = ""
    if schema.get("format") == "date" or schema.get("pattern", "").startswith("^2[0-9]{3}-"):
        if DAY_MARK not in description:
            addition = DAY_NOTE
    elif schema.get("type") in ("integer", "number", "string") and "$ref" not in schema:
        for pattern, mark, sentence in UNITS:
            if pattern.search(name):
                if mark not in description and schema.get("format") != "date-time":
                    addition = sentence
                break
    if addition:
        holder["description"] = f"{description.rstrip()} {addition}".strip()


def _paginated(items: list[Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A page of the items, in the envelope the schema describes."""
    page: dict[str, Any] = {}
    for name in schema.get("properties", {}):
        if name == "results":
            page[name] = items
        elif name == "count":
            page[name] = len(items)
        else:  # next, previous: one page here
            page[name] = None
    return page


def _resolve(schema: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _component(result, schema["$ref"])
    return schema


def _add_examples(operation: dict[str, Any], result: dict[str, Any]) -> None:
    example = OPERATION_EXAMPLES.get(operation.get("operationId", ""))
    if example is None:
        return  # the examples test names what is missing
    body = operation.get("requestBody", {}).get("content", {})
    if example.request is not None:
        for media in body.values():
            media["examples"] = {
                "example": {"summary": example.summary, "value": copy.deepcopy(example.request)}
            }
    for status_code, response in operation.get("responses", {}).items():
        if not status_code.startswith("2"):
            continue
        for media in response.get("content", {}).values():
            value = copy.deepcopy(example.response)
            schema = _resolve(media.get("schema", {}), result)
            if isinstance(value, list) and "results" in schema.get("properties", {}):
                value = _paginated(value, schema)
            media["examples"] = {"example": {"summary": example.summary, "value": value}}
