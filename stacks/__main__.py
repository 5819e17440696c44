"""hastack's ready program: one HaStack from the stack's `hastack:*` config, endpoints exported."""

import sys

import pulumi

from hastack.program import export_endpoints, load_stack_spec
from hastack.spec import SpecError
from hastack.stack import HaStack

try:
    spec = load_stack_spec(pulumi.Config("hastack"))
except SpecError as err:
    # Refused before any resource is registered: nothing is created, nothing half-deployed.
    print(err, file=sys.stderr)
    sys.exit(32)  # the exit code Pulumi's Python host treats as "error already shown"

stack = HaStack("hastack", spec)
export_endpoints(stack)
