"""Glue between Pulumi config and the spec, shared by stacks/__main__.py and user programs."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from .spec import CONFIG_KEYS, HaStackSpec, load_spec
from .stack import HaStack


def config_sections(config: pulumi.Config) -> dict[str, Any]:
    """Every `hastack:*` key present in the stack config, as plain values (secrets excluded)."""
    out: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        raw = config.get(key)
        if raw is None:
            continue
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a plain string such as `hastack:platform: local`
    return out


def load_stack_spec(config: pulumi.Config) -> HaStackSpec:
    """Validate the stack's config; raises :class:`hastack.spec.SpecError` before anything is registered."""
    return load_spec(config_sections(config))


def export_endpoints(stack: HaStack) -> None:
    pulumi.export("writeEndpoint", stack.write_endpoint)
    pulumi.export("readEndpoint", stack.read_endpoint)
    pulumi.export("writeDsn", stack.write_dsn)
    pulumi.export("readDsn", stack.read_dsn)
    pulumi.export("consulUi", stack.consul_ui)
    pulumi.export("prometheusUrl", stack.prometheus_url)
    pulumi.export("patroniUrls", stack.patroni_urls)
    pulumi.export("zones", stack.spec.zones)
