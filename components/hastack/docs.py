"""Generate docs/configuration.md from the spec models (`make docs`), so the reference never drifts."""

from __future__ import annotations

import json
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .spec import SECRET_KEYS, HaStackSpec

HEADER = """# Configuration reference

Generated from `components/hastack/spec.py` by `make docs`; do not edit by hand.

Every key lives in the `hastack` namespace of a stack file (`stacks/Pulumi.<stack>.yaml`). Sections are
objects; set one value with `pulumi config set --path hastack:<key path> <value>`, for example
`pulumi config set --path hastack:proxy.check.interMs 400`.

Values are checked before any resource is registered. A refused value stops `pulumi preview` and
`pulumi up` with one line per problem naming the key, the rule and the value, for example
`hastack:consul.servers must be odd and >= 3 (and <= 7), got 4`.

Rules that span several keys (checked in code, see `HaStackSpec._cross` and the section validators):

- `postgres.synchronous.standbys` <= Postgres nodes - 1.
- `postgres.patroni.loopWait + 2 * retryTimeout` <= `postgres.patroni.ttl` (Patroni's own rule).
- Every port in `ports` is distinct (hosts may carry several roles).
- `postgres.mode: rds` needs `platform: aws`.
- `consul.aclDefaultPolicy: deny` is refused on `local`.
- `consul.servers` is odd, 3 to 7; by default one per zone rounded up to odd.
- `zones`: 2 to 5 distinct names; `postgres.nodes`: 2 to 9 (default: one per zone).

Secrets are not part of these sections. With `postgres.passwords.source: config` the program reads the
config secrets {secrets} (set them with `pulumi config set --secret`).
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " (optional)"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _rules(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for attr, text in (("ge", ">="), ("le", "<="), ("gt", ">"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{text} {value}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.default is not PydanticUndefined and field.default is not None:
        return f"`{json.dumps(field.default)}`"
    return ""


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str, str]]:
    rows = []
    nested = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{to_camel(name)}"
        ann = field.annotation
        desc = (field.description or "").replace("|", "\\|")
        rows.append((key, _type_name(ann), _default(field), _rules(field), desc))
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            nested.append((ann, f"{key}."))
    for sub, sub_prefix in nested:
        rows += _rows(sub, sub_prefix)
    return rows


def generate() -> str:
    out = [HEADER.format(secrets=", ".join(f"`hastack:{k}`" for k in SECRET_KEYS))]
    for name, field in HaStackSpec.model_fields.items():
        key = to_camel(name)
        ann = field.annotation
        out.append(f"\n## `hastack:{key}`\n\n{field.description}\n")
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.append("| key | type | default | range | description |\n|---|---|---|---|---|")
            for row in _rows(ann, f"{key}."):
                out.append("| `" + row[0] + "` | " + " | ".join(row[1:]) + " |")
        else:
            out.append(f"Type: {_type_name(ann)}.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
