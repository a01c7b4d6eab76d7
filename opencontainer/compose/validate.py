"""Validation against the Compose JSON schema (vendored ``schema/compose-spec.json``).

The validator is built once per process (``functools.cache``) and reused for every file.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .yamlio import Locations, compose_error


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    text = resources.files("opencontainer.compose").joinpath("schema/compose-spec.json")
    schema = json.loads(text.read_text(encoding="utf-8"))
    # the file says "draft-07/schema" without the trailing "#", which jsonschema does not map
    return jsonschema.Draft7Validator(schema)


def _type_name(t: Any) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string",
             "integer": "an integer", "number": "a number", "boolean": "a boolean",
             "null": "null"}
    if isinstance(t, list):
        return " or ".join(names.get(x, str(x)) for x in t)
    return names.get(str(t), str(t))


def _extra_keys(err: ValidationError) -> list[str]:
    schema = err.schema if isinstance(err.schema, dict) else {}
    props = schema.get("properties") or {}
    patterns = schema.get("patternProperties") or {}
    inst = err.instance if isinstance(err.instance, dict) else {}
    return [
        k for k in inst
        if k not in props and not any(re.search(pat, str(k)) for pat in patterns)
    ]


def _describe(err: ValidationError) -> str:
    v = err.validator
    if v == "additionalProperties":
        extra = _extra_keys(err)
        if extra:
            plural = "ies" if len(extra) > 1 else "y"
            return f"additional propert{plural} {', '.join(repr(e) for e in extra)} not allowed"
        return "additional properties are not allowed"
    if v == "type":
        return f"must be {_type_name(err.validator_value)}, not {_kind(err.instance)}"
    if v == "required":
        return str(err.message).replace("is a required property", "is required")
    if v == "enum":
        allowed = ", ".join(repr(x) for x in err.validator_value)
        return f"{err.instance!r} is not one of {allowed}"
    if v == "pattern":
        return f"{err.instance!r} does not match {err.validator_value!r}"
    if v == "uniqueItems":
        return "contains duplicate items"
    if v == "oneOf":
        types = []
        for sub in err.validator_value:
            if isinstance(sub, dict) and "type" in sub:
                types.append(_type_name(sub["type"]))
            elif isinstance(sub, dict) and "$ref" in sub:
                ref = str(sub["$ref"]).rsplit("/", 1)[-1]
                names = {"list_of_strings": "a list of strings"}
                types.append(names.get(ref, ref.replace("_", " ")))
        if types:
            return f"must be {' or '.join(types)}, not {_kind(err.instance)}"
    return str(err.message)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def validate_schema(data: Any, locs: Locations, file: str) -> None:
    """Raise a ComposeError (file, line, key path) for the most relevant schema violation."""
    validator = _validator()
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    err = best_match(errors)
    # for oneOf/anyOf, prefer the deepest context error that is not a plain type mismatch
    while err.context:
        deeper = best_match(err.context)
        if deeper is None or len(deeper.absolute_path) <= len(err.absolute_path):
            break
        err = deeper
    path = tuple(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        extra = _extra_keys(err)
        if extra:
            path = (*path, extra[0])
    raise compose_error(_describe(err), locs, path, file=file)
