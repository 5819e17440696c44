"""A reusable mock harness: build :class:`~hastack.stack.HaStack` without an engine and see every resource.

``capture_resources`` runs the component under ``pulumi.runtime.set_mocks`` (Pulumi's own unit-test method,
and the only way to exercise the AWS platform offline, because the AWS provider plugin cannot be obtained
here). It returns each registered resource with its inputs resolved to plain values, so platform tests and
the policy pack's rules can assert on the same data.

Mocked outputs are deterministic. Generated secrets (``random:RandomPassword`` results and the like) are
recorded in :attr:`Capture.generated_secrets`, so a test can prove none of them ever reaches user data or a
ConfigMap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import rpc

# The marker Pulumi's RPC layer wraps secret values in (see pulumi.runtime.rpc._special_secret_sig).
_SIG = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig


@dataclass(frozen=True)
class CapturedResource:
    """One resource as the engine would have seen it."""

    type: str
    """Type token, e.g. ``aws:ec2/instance:Instance`` or ``hastack:aws:ConsulCluster``."""
    name: str
    """Logical name (the first argument of the constructor)."""
    urn: str
    parent: str | None
    """URN of the parent resource; None only for the stack itself."""
    custom: bool
    """False for component resources."""
    inputs: dict[str, Any]
    """Inputs as plain values, secrets unwrapped."""
    outputs: dict[str, Any]
    """What the mocks returned as the resource's state (inputs plus mocked computed values)."""
    secret_paths: frozenset[str] = frozenset()
    """Dotted paths of inputs that were marked secret (``data.password``, ``userData``)."""
    id: str = ""
    """The mocked physical id (``<name>-id``); other resources' inputs refer to it."""
    provider: str = ""
    """Provider reference (``<urn>::<id>``) when one was set explicitly or inherited; empty for the default."""

    @property
    def labels(self) -> dict[str, str]:
        """hastack.io/* labels from AWS tags or Kubernetes metadata labels, whichever the resource has."""
        tags = self.inputs.get("tags")
        if isinstance(tags, dict):
            return {k: v for k, v in tags.items() if k.startswith("hastack.io/")}
        meta = self.inputs.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
            return {k: v for k, v in meta["labels"].items() if k.startswith("hastack.io/")}
        return {}


@dataclass
class Capture:
    resources: list[CapturedResource] = field(default_factory=list)
    generated_secrets: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Provider function calls (token, args), e.g. the AMI lookup."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """HaStack's resolved outputs (write_endpoint, write_dsn, ...)."""

    def of_type(self, type_: str) -> list[CapturedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> CapturedResource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)


def _unwrap(value: Any, path: str, secret_paths: set[str]) -> Any:
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET_SIG:
            secret_paths.add(path)
            return _unwrap(value.get("value"), path, secret_paths)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


def _fake(seed: str, length: int = 32) -> str:
    # Deterministic but unmistakable: a generated secret must be findable by substring search.
    return ("mock" + hashlib.sha256(seed.encode()).hexdigest())[:length]


class _Mocks(_mocks.Mocks):
    """Plausible computed values for the types hastack uses; everything else echoes its inputs."""

    def __init__(self, capture: Capture):
        self.capture = capture

    def new_resource(self, args: _mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        typ, name = args.typ, args.name
        state = dict(args.inputs)
        rid = f"{name}-id"
        if typ == "random:index/randomPassword:RandomPassword":
            state["result"] = _fake(f"password/{name}", int(args.inputs.get("length", 32)))
            self.capture.generated_secrets.append(state["result"])
        elif typ == "random:index/randomUuid:RandomUuid":
            h = hashlib.sha256(f"uuid/{name}".encode()).hexdigest()
            state["result"] = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
            self.capture.generated_secrets.append(state["result"])
        elif typ.startswith("aws:"):
            state.setdefault("arn", f"arn:aws:mock:::{name}")
            if typ == "aws:ec2/launchTemplate:LaunchTemplate":
                state["latestVersion"] = 1
            elif typ in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"):
                state["arnSuffix"] = f"mock/{name}"
            if typ == "aws:lb/loadBalancer:LoadBalancer":
                state["dnsName"] = f"{name}.elb.mock.amazonaws.com"
            elif typ == "aws:rds/instance:Instance":
                state["address"] = f"{name}.rds.mock.amazonaws.com"
                state["endpoint"] = f"{state['address']}:{args.inputs.get('port', 5432)}"
                state["identifier"] = args.inputs.get("identifier") or name
            elif typ == "aws:s3/bucket:Bucket":
                state["bucket"] = args.inputs.get("bucket") or f"{name}-mock"
            elif typ == "aws:ssm/parameter:Parameter":
                state.setdefault("name", args.inputs.get("name") or name)
        elif typ.startswith("kubernetes:"):
            meta = dict(state.get("metadata") or {})
            meta.setdefault("name", name)
            state["metadata"] = meta
        return rid, state

    def call(self, args: _mocks.MockCallArgs) -> Any:
        # A bare dict: the mock monitor would iterate a (dict, None) tuple's failures.
        self.capture.calls.append((args.token, dict(args.args)))
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0mock", "imageId": "ami-0mock", "name": "debian-12-amd64-mock", "architecture": "x86_64"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:root", "userId": "mock"}
        return {}


class _Monitor(_mocks.MockMonitor):
    """Also records parent and secretness, which the stock monitor drops."""

    def __init__(self, mocks: _Mocks, capture: Capture):
        super().__init__(mocks)
        self.capture = capture

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw = rpc.deserialize_properties(request.object)
        secret_paths: set[str] = set()
        inputs = _unwrap(raw, "", secret_paths)
        state = self.resources[response.urn].state
        self.capture.resources.append(
            CapturedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=inputs,
                outputs=_unwrap(dict(state), "", set()),
                secret_paths=frozenset(secret_paths),
                id=self.resources[response.urn].id or "",
                provider=request.provider or "",
            )
        )
        return response


def _config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def capture(
    config: Mapping[str, Any],
    stack: str = "prod",
    project: str = "hastack",
    *,
    name: str = "hastack",
    extra_config: Mapping[str, Any] | None = None,
) -> Capture:
    """Build ``HaStack`` from ``hastack:*`` config sections (as in stack YAML) under mocks.

    ``config`` may also hold the secret keys (``superuserPassword``, ...); ``extra_config`` takes full
    keys such as ``aws:region``.
    """
    from .spec import load_spec
    from .stack import HaStack

    result = Capture()
    mocks = _Mocks(result)
    _mocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=_Monitor(mocks, result))

    all_config = {f"hastack:{k}": _config_value(v) for k, v in config.items()}
    all_config.update({k: _config_value(v) for k, v in (extra_config or {}).items()})
    pulumi.runtime.set_all_config(all_config, [k for k in all_config if k.endswith("Password")])
    spec = load_spec({k: v for k, v in config.items()})

    outputs: dict[str, Any] = {}

    def program() -> None:
        ha = HaStack(name, spec, stack=stack)
        keys = ("write_endpoint", "read_endpoint", "write_dsn", "read_dsn", "consul_ui", "prometheus_url")
        for key in (*keys, "patroni_urls"):
            getattr(ha, key).apply(lambda v, key=key: outputs.__setitem__(key, v))

    try:
        _mocks._sync_await(_mocks.run_pulumi_func(program))
    finally:
        pulumi.runtime.set_all_config({}, [])
    result.outputs = outputs
    return result


def capture_resources(
    config: Mapping[str, Any], stack: str = "prod", project: str = "hastack"
) -> list[CapturedResource]:
    """Every resource ``HaStack`` registers for ``config`` (``hastack:*`` sections), in registration order."""
    return capture(config, stack, project).resources


def walk_strings(value: Any) -> Iterator[str]:
    """Every string inside a captured input (for "no secret anywhere in X" assertions)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


__all__ = ["Capture", "CapturedResource", "capture", "capture_resources", "walk_strings"]
