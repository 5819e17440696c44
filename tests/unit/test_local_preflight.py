"""The local platform refuses a machine it cannot run on before registering anything."""

import socket

import pytest

from hastack.platforms.local import preflight
from hastack.spec import SpecError, load_spec
from hastack.topology import plan


def test_missing_binaries_name_the_config_key_and_the_fix(tmp_path):
    spec = load_spec({"local": {"runtimeDir": str(tmp_path / "nothing-here"), "addressBase": 91}})
    with pytest.raises(SpecError) as exc:
        preflight.check(spec, plan(spec), "unit-preflight")
    consul = [p for p in exc.value.problems if "consul 1.8.7" in p]
    assert consul == [
        f"hastack:local.runtimeDir needs consul 1.8.7 at {tmp_path}/nothing-here/bin/consul, which is missing "
        "(run `make setup`)"
    ]


def test_an_unknown_service_user_is_refused():
    spec = load_spec({"local": {"serviceUser": "no-such-user-hastack", "addressBase": 92}})
    with pytest.raises(SpecError) as exc:
        preflight.check(spec, plan(spec), "unit-preflight")
    assert any(p.startswith("hastack:local.serviceUser must name an existing user") for p in exc.value.problems)


def test_a_port_already_taken_by_another_process_is_a_clash():
    spec = load_spec({"local": {"addressBase": 93}})
    p = plan(spec)
    node = p.postgres[0]
    with socket.create_server((node.local_address, spec.ports.postgres)), pytest.raises(SpecError) as exc:
        preflight.check(spec, p, "unit-preflight")
    assert any(
        f"{node.local_address}:5432 ({node.name} postgres) is already in use" in problem
        for problem in exc.value.problems
    ), exc.value.problems


def test_every_listening_socket_of_the_stack_is_checked():
    p = plan(load_spec({"local": {"addressBase": 94}}))
    bound = preflight.bound_ports(p)
    assert len(bound) == len(set((a, port) for a, port, _ in bound))
    assert ("127.0.95.21", 5000, "proxy-az1 write port") in bound
    assert ("127.0.95.31", 9090, "monitoring-az1 prometheus") in bound
