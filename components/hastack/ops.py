"""Python API over a deployed stack: up, preview, destroy, outputs and the spec, through Pulumi's
Automation API and the real engine. The CLI, the drills and the integration tests all use it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from .spec import CONFIG_KEYS, HaStackSpec, load_spec
from .topology import Plan, plan

ROOT = Path(os.environ.get("HASTACK_PROJECT_DIR", Path(__file__).resolve().parents[2]))


def policy_config(stack: str, root: Path = ROOT) -> Path | None:
    path = root / "stacks" / f"policy.{stack}.json"
    return path if path.exists() else None


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass
class Stack:
    """One stack of the hastack project (``stacks/Pulumi.<name>.yaml``)."""

    name: str = "local"
    root: Path = ROOT

    @cached_property
    def _stack(self) -> auto.Stack:
        # A local program (the project's Pulumi.yaml), not an inline one: `pulumi up` and this API run the
        # same stacks/__main__.py through the same language host.
        return auto.create_or_select_stack(stack_name=self.name, work_dir=str(self.root))

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self._stack.get_all_config().items():
            ns, _, short = key.partition(":")
            if ns != "hastack" or short not in CONFIG_KEYS:
                continue
            try:
                out[short] = json.loads(value.value)
            except json.JSONDecodeError:
                out[short] = value.value
        return out

    @cached_property
    def spec(self) -> HaStackSpec:
        return load_spec(self.config())

    @cached_property
    def plan(self) -> Plan:
        return plan(self.spec)

    def up(self, on_output: Callable[[str], Any] | None = print, **kw: Any) -> auto.UpResult:
        return self._stack.up(on_output=on_output, color="always" if on_output is print else "never", **kw)

    def preview(self, on_output: Callable[[str], Any] | None = print, policy: bool = True, **kw: Any) -> Any:
        pack = self.root / "policies"
        packs = [str(pack)] if policy and (pack / "PulumiPolicy.yaml").exists() else []
        cfg = policy_config(self.name, self.root)
        extra: dict[str, Any] = {}
        if packs:
            extra["policy_packs"] = packs
            if cfg:
                extra["policy_pack_configs"] = [str(cfg)]
        # With --diff the engine writes diagnostics (policy messages such as the blast-radius table, and
        # errors) to stderr; pass them through wherever stdout goes.
        on_error = _to_stderr if on_output is print else on_output
        return self._stack.preview(on_output=on_output, on_error=on_error, diff=True, **extra, **kw)

    def destroy(self, on_output: Callable[[str], Any] | None = print, **kw: Any) -> auto.DestroyResult:
        return self._stack.destroy(on_output=on_output, **kw)

    def outputs(self, secrets: bool = False) -> dict[str, Any]:
        outs = self._stack.outputs()
        return {k: v.value for k, v in outs.items() if secrets or not v.secret}

    def set_config(self, key_path: str, value: Any) -> None:
        """Set one config value by path, like ``pulumi config set --path hastack:<key_path> <value>``."""
        self._stack.set_config(f"hastack:{key_path}", auto.ConfigValue(value=str(value)), path=True)
        self.__dict__.pop("spec", None)
        self.__dict__.pop("plan", None)

    def remove_config(self, key_path: str) -> None:
        self._stack.remove_config(f"hastack:{key_path}", path=True)
        self.__dict__.pop("spec", None)
        self.__dict__.pop("plan", None)
