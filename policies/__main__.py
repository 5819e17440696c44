"""hastack's policy pack: wires :mod:`policies.rules` into a ``pulumi_policy.PolicyPack``.

The engine runs this file with ``python -m pulumi.policy <engine> <this folder>``; enforcement levels and
rule settings come from ``stacks/policy.<stack>.json`` (see docs/policies.md). Advisory unless configured.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import _DictProxy, _is_unknown, _ListProxy

if __package__ in (None, ""):
    # Run as a folder by the policy runner: make `policies` importable as the package it is.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies import rules


def plain(value: Any) -> Any:
    """Unwrap pulumi_policy's unknown-checking proxies; values unknown during preview become ``rules.UNKNOWN``.

    The proxies raise on reading an unknown value, which would abort a whole stack rule for one output
    that is not known yet; the rules decide for themselves what an unknown value means.
    """
    if isinstance(value, _DictProxy | _ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return rules.UNKNOWN if _is_unknown(value) else value


def show(message: str, urn: str = "") -> None:
    """Show ``message`` in the preview output, on success too, without inventing a violation.

    The engine address is the runner's first argument. Its Log service takes a multi-line message as one
    diagnostic of the stack; a pack's stderr would also show, but one diagnostic per line.
    """
    try:
        channel = grpc.insecure_channel(sys.argv[1])
        engine_pb2_grpc.EngineStub(channel).Log(
            engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message, urn=urn), timeout=10
        )
        channel.close()
    except (IndexError, grpc.RpcError, ValueError):
        print(message, file=sys.stderr, flush=True)


def _resource(r: PolicyResource) -> rules.Resource:
    deps = {k: tuple(d.urn for d in v) for k, v in (r.property_dependencies or {}).items()}
    return rules.Resource(type=r.resource_type, name=r.name, props=plain(r.props), urn=r.urn, deps=deps)


def _settings(config: Mapping[str, Any] | None) -> rules.Settings:
    return rules.Settings.from_config(plain(config) if config else None)


def _schema(rule: rules.Rule) -> PolicyConfigSchema | None:
    if not rule.config:
        return None
    return PolicyConfigSchema(properties={k: rules.CONFIG_SCHEMA[k] for k in rule.config})


def _resource_policy(rule: rules.Rule, check: rules.ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, plain(args.props), _settings(args.get_config())):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate, config_schema=_schema(rule)
    )


def _stack_policy(rule: rules.Rule, check: rules.StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [_resource(r) for r in args.resources]
        settings = _settings(args.get_config())
        if rule.name == "blast-radius":
            table, violations = rules.blast_radius_report(resources, settings)
            if table:
                stack = next((r.urn for r in resources if r.type == "pulumi:pulumi:Stack"), "")
                show(f"hastack blast radius (one zone lost at a time):\n{table}", stack)
        else:
            violations = check(resources, settings)
        if rule.name == "blast-radius" and violations:
            # Diagnostics never reach a pull request comment (pulumi/actions#343); a violation does, so the
            # failing table travels with it.
            report_violation("\n".join(v.message for v in violations) + f"\n\n{table}", None)
            return
        for v in violations:
            report_violation(v.message, v.urn)

    return StackValidationPolicy(
        name=rule.name, description=rule.description, validate=validate, config_schema=_schema(rule)
    )


def policies() -> list[Policy]:
    out: list[Policy] = []
    for rule in rules.RULES:
        if rule.stack is not None:
            out.append(_stack_policy(rule, rule.stack))
        elif rule.resource is not None:
            out.append(_resource_policy(rule, rule.resource))
    return out


if __name__ == "__main__":
    # Starts the analyzer server and blocks; only when the engine runs the pack.
    PolicyPack(name="hastack", enforcement_level=EnforcementLevel.ADVISORY, policies=policies())
