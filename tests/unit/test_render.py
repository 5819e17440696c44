"""Rendered files pass their own tools' checks, and carry what the architecture promises."""

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from hastack import render
from hastack.spec import load_spec
from hastack.topology import plan

PROMTOOL = shutil.which("promtool")
CONSUL = "/opt/hastack/bin/consul"
PATRONI = "/opt/hastack/venv/bin/patroni"
SECRETS = render.Secrets("su-pw'x", "repl-pw", "rewind-pw", render.gossip_key_from("seed"))


def _require(path: str | None) -> str:
    if not path or not Path(path).exists():
        pytest.fail(f"{path} is missing: `make setup` installs it")
    return path


def _render(tmp_path: Path, config: dict) -> tuple:
    # An address base no running stack uses, so tools that probe ports (patroni) see them free.
    p = plan(load_spec({"local": {"addressBase": 88}, **config}))
    site = render.Site(addresses={h.name: h.local_address for h in p.hosts}, root=str(tmp_path), per_host_dirs=True)
    files = {}
    for h in p.hosts:
        for path, content in render.host_files(p, h, site, SECRETS).items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content)
            files[path] = content
    return p, site, files


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_haproxy_config_passes_haproxy_check(tmp_path):
    p, site, _ = _render(tmp_path, {})
    for h in p.proxies:
        r = _run(_require(shutil.which("haproxy")), "-c", "-f", f"{site.paths(h).conf}/haproxy.cfg")
        assert r.returncode == 0, r.stdout + r.stderr


def test_nginx_config_passes_nginx_test(tmp_path):
    p, site, _ = _render(tmp_path, {"proxy": {"kind": "nginx"}})
    for h in p.proxies:
        Path(site.paths(h).run).mkdir(parents=True, exist_ok=True)
        r = _run(_require("/usr/sbin/nginx"), "-t", "-c", f"{site.paths(h).conf}/nginx.conf", "-p",
                 site.paths(h).run + "/", "-e", "stderr")  # fmt: skip
        assert r.returncode == 0, r.stderr


def test_consul_configs_pass_consul_validate(tmp_path):
    p, site, _ = _render(tmp_path, {})
    for h in (*p.consul_servers, *p.consul_clients):
        r = _run(_require(CONSUL), "validate", f"{site.paths(h).conf}/consul.hcl")
        assert r.returncode == 0, r.stdout + r.stderr


def test_patroni_configs_pass_patroni_validate_config(tmp_path):
    p, site, _ = _render(tmp_path, {})
    for h in p.postgres:
        # Patroni's validator insists that the DCS address accepts connections (and that its own ports are
        # free); a listening socket stands in for the host's Consul agent.
        with socket.create_server((h.local_address, 8500)):
            r = _run(_require(PATRONI), "--validate-config", f"{site.paths(h).conf}/patroni.yml")
        assert r.returncode == 0, r.stdout + r.stderr


def test_prometheus_config_and_rules_pass_promtool(tmp_path):
    p, site, _ = _render(tmp_path, {})
    assert p.monitoring is not None
    conf = site.paths(p.monitoring).conf
    r = _run(_require(PROMTOOL), "check", "config", f"{conf}/prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run(_require(PROMTOOL), "check", "rules", f"{conf}/alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_prometheus_sends_a_consul_token_only_when_the_site_names_its_file(tmp_path):
    # Cloud platforms run Consul's ACLs default-deny, so /v1/agent/metrics needs a token; local runs none.
    p = plan(load_spec({}))
    assert p.monitoring is not None
    token = tmp_path / "consul-token"
    token.write_text("00000000-0000-4000-8000-000000000000\n")
    site = render.Site(addresses={h.name: h.local_address for h in p.hosts}, root=str(tmp_path))
    plain = yaml.safe_load(render.prometheus_config(p, site, "/rules.yml"))
    assert all("authorization" not in job for job in plain["scrape_configs"])

    with_token = render.Site(**{**site.__dict__, "extra": {"consul_metrics_token_file": str(token)}})
    text = render.prometheus_config(p, with_token, str(tmp_path / "alerts.yml"))
    jobs = {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}
    assert jobs["consul"]["authorization"] == {"credentials_file": str(token)}
    assert [name for name, job in jobs.items() if "authorization" in job] == ["consul"]
    (tmp_path / "alerts.yml").write_text(render.alert_rules(p))
    (tmp_path / "prometheus.yml").write_text(text)
    r = _run(_require(PROMTOOL), "check", "config", str(tmp_path / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_alert_rules_pass_the_promtool_unit_suite(tmp_path):
    p, site, _ = _render(tmp_path, {})
    assert p.monitoring is not None
    suite = (Path(__file__).parent / "promtool" / "alerts_test.yml").read_text()
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(suite.replace("RULES_FILE", f"{site.paths(p.monitoring).conf}/alerts.yml"))
    r = _run(_require(PROMTOOL), "test", "rules", str(test_file))
    assert r.returncode == 0, r.stdout + r.stderr


def test_patroni_uses_its_own_hosts_consul_agent_with_a_serf_bound_session(tmp_path):
    p, site, files = _render(tmp_path, {})
    for h in p.postgres:
        cfg = yaml.safe_load(files[f"{site.paths(h).conf}/patroni.yml"])
        assert cfg["consul"]["host"] == f"{h.local_address}:8500"
        assert cfg["consul"]["checks"] == ["serfHealth"]
        assert cfg["bootstrap"]["dcs"]["synchronous_mode"] is True
        assert cfg["bootstrap"]["dcs"]["postgresql"]["use_pg_rewind"] is True
        assert cfg["postgresql"]["authentication"]["superuser"]["password"] == "su-pw'x"


def test_cloud_rendering_leaves_passwords_and_gossip_key_out(tmp_path):
    p = plan(load_spec({"platform": "aws"}))
    site = render.Site(addresses={h.name: f"10.0.0.{i}" for i, h in enumerate(p.hosts)})
    for h in p.hosts:
        for content in render.host_files(p, h, site, None).values():
            assert "password:" not in content
            assert "encrypt =" not in content


def test_haproxy_routes_writes_by_primary_check_and_reads_by_replica_check(tmp_path):
    p, site, files = _render(tmp_path, {"proxy": {"check": {"interMs": 400}}})
    cfg = files[f"{site.paths(p.proxies[0]).conf}/haproxy.cfg"]
    primary, replicas = cfg.split("listen primary")[1].split("listen replicas")
    assert "http-check send meth OPTIONS uri /primary" in primary
    assert "http-check send meth OPTIONS uri /replica" in replicas
    assert "inter 400ms" in primary
    assert primary.count(" check port 8008") == 3


def test_consul_servers_expect_every_server_and_tune_gossip(tmp_path):
    p, site, files = _render(tmp_path, {})
    cfg = files[f"{site.paths(p.consul_servers[0]).conf}/consul.hcl"]
    assert "bootstrap_expect = 3" in cfg
    assert "raft_multiplier = 1" in cfg
    assert 'probe_interval = "500ms"' in cfg
    assert f'encrypt = "{SECRETS.gossip_key}"' in cfg


def test_nginx_resolves_the_primary_through_the_local_consul_agent(tmp_path):
    p, site, files = _render(tmp_path, {"proxy": {"kind": "nginx"}})
    h = p.proxies[0]
    cfg = files[f"{site.paths(h).conf}/nginx.conf"]
    assert f"resolver {h.local_address}:8600" in cfg
    assert "set $primary primary.hastack.service.consul;" in cfg


def test_gossip_key_is_32_bytes_of_base64():
    import base64

    assert len(base64.b64decode(render.gossip_key_from("anything"))) == 32
