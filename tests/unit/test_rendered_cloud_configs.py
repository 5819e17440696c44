"""The files the AWS and Kubernetes platforms ship (cloud-init user data, ConfigMaps, the Consul Secret) pass
the real tools: haproxy -c, nginx -t, consul validate, patroni --validate-config, promtool.

The files are taken from the captured resource inputs, byte for byte. Tools that bind or probe the host's
own address run in a private network namespace that holds that address (and, for Kubernetes, an
/etc/hosts standing in for cluster DNS), so the check sees the network the file was written for.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hastack.platforms.aws.cloud_init import USER_DATA_LIMIT
from hastack.testing import Capture, capture

from .platform_fixtures import ZONES3

CONSUL = "/opt/hastack/bin/consul"
PATRONI = "/opt/hastack/venv/bin/patroni"


def _tool(path: str | None) -> str:
    if not path or not Path(path).exists():
        pytest.fail(f"{path or 'tool'} is missing: `make setup` installs it")
    return path


def _isolated(
    cmd: list[str],
    *,
    addresses: tuple[str, ...] = (),
    listen: str | None = None,
    hosts: Path | None = None,
    tmpfs: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a new network + mount namespace: loopback up, ``addresses`` on it, optionally a TCP
    listener standing in for the local Consul agent, an /etc/hosts override and a tmpfs over ``tmpfs``."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip to give the check the host's own address")
    script = ["set -e", "ip link set lo up"]
    script += [f"ip addr add {a}/32 dev lo" for a in addresses]
    if hosts:
        script.append(f"mount --bind {hosts} /etc/hosts")
    if tmpfs:
        script.append(f"mount -t tmpfs tmpfs {tmpfs}")
    if listen:
        host, port = listen.rsplit(":", 1)
        script.append(
            f"python3 -c \"import socket,time; s=socket.create_server(('{host}', {port})); time.sleep(60)\" & L=$!"
        )
        script.append("sleep 0.3")
    script.append('rc=0; "$@" || rc=$?')
    if listen:
        script.append("kill $L")
    script.append("exit $rc")
    return subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", "\n".join(script), "sh", *cmd],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


# --------------------------------------------------------------------------------------------------
# Captures


@pytest.fixture(scope="module")
def aws_haproxy() -> Capture:
    return capture({"platform": "aws", "environment": "prod", "zones": ZONES3}, stack="prod")


@pytest.fixture(scope="module")
def aws_nginx() -> Capture:
    return capture({"platform": "aws", "zones": ZONES3[:2], "proxy": {"kind": "nginx"}}, stack="dev")


@pytest.fixture(scope="module")
def k8s_haproxy() -> Capture:
    return capture({"platform": "kubernetes", "environment": "prod", "zones": ZONES3}, stack="k8s")


@pytest.fixture(scope="module")
def k8s_nginx() -> Capture:
    return capture({"platform": "kubernetes", "zones": ZONES3, "proxy": {"kind": "nginx", "image": "nginx:1.22"}})


def _user_data(cap: Capture) -> dict[str, dict]:
    """Host name -> parsed cloud-config, from every launch template."""
    out = {}
    for lt in cap.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        text = base64.b64decode(lt.inputs["userData"]).decode()
        out[lt.inputs["tags"]["hastack.io/host"]] = {"raw": text, "doc": yaml.safe_load(text), "lt": lt}
    return out


def _aws_files(cap: Capture, tmp: Path) -> dict[str, dict[str, Path]]:
    """Host name -> {file name: path of the written copy}, for the files cloud-init writes."""
    out: dict[str, dict[str, Path]] = {}
    for host, ud in _user_data(cap).items():
        for entry in ud["doc"]["write_files"]:
            dest = tmp / host / entry["path"].lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(entry["content"])
            out.setdefault(host, {})[Path(entry["path"]).name] = dest
    return out


def _k8s_files(cap: Capture, tmp: Path) -> dict[str, dict[str, Path]]:
    """ConfigMap (one per tier, named like its workload) -> {file name: path of the written copy}."""
    out: dict[str, dict[str, Path]] = {}
    for cm in cap.of_type("kubernetes:core/v1:ConfigMap"):
        host = cm.inputs["metadata"]["name"]
        for fname, content in cm.inputs["data"].items():
            dest = tmp / host / fname
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(content)
            out.setdefault(host, {})[fname] = dest
    return out


def _addr(cap: Capture, host: str) -> str:
    return next(
        r.inputs["privateIp"]
        for r in cap.of_type("aws:ec2/instance:Instance")
        if r.inputs["tags"]["hastack.io/host"] == host
    )


# --------------------------------------------------------------------------------------------------
# AWS: cloud-init payloads


def test_every_user_data_is_a_cloud_config_within_the_ec2_limit(aws_haproxy, aws_nginx):
    for cap in (aws_haproxy, aws_nginx):
        uds = _user_data(cap)
        assert uds, "no launch templates captured"
        for host, ud in uds.items():
            assert ud["raw"].startswith("#cloud-config\n"), host
            assert len(ud["raw"].encode()) < USER_DATA_LIMIT, f"{host}: {len(ud['raw'])} bytes"
            assert ud["doc"]["runcmd"] == [["/usr/local/sbin/hastack-boot"]]


def test_aws_haproxy_config_passes_haproxy_check(aws_haproxy, tmp_path):
    haproxy = _tool(shutil.which("haproxy"))
    files = _aws_files(aws_haproxy, tmp_path)
    proxies = [h for h in files if h.startswith("proxy-")]
    assert len(proxies) >= 2
    for host in proxies:
        r = _run(haproxy, "-c", "-f", str(files[host]["haproxy.cfg"]))
        assert r.returncode == 0, r.stdout + r.stderr


def test_aws_nginx_config_passes_nginx_test_on_its_own_address(aws_nginx, tmp_path):
    nginx = _tool("/usr/sbin/nginx")
    _tool("/usr/lib/nginx/modules/ngx_stream_module.so")
    files = _aws_files(aws_nginx, tmp_path)
    proxies = [h for h in files if h.startswith("proxy-")]
    assert proxies
    for host in proxies:
        conf = files[host]["nginx.conf"]
        # nginx -t binds the listeners and opens the pid file: give it the host's IP and a private
        # /var/lib/hastack with the run folder the boot script creates.
        r = _isolated(
            ["sh", "-c", f"mkdir -p /var/lib/hastack/run && {nginx} -t -c {conf} -e stderr"],
            addresses=(_addr(aws_nginx, host),),
            tmpfs="/var/lib/hastack",
        )
        assert r.returncode == 0, r.stdout + r.stderr


def test_aws_consul_configs_pass_consul_validate(aws_haproxy, tmp_path):
    consul = _tool(CONSUL)
    files = _aws_files(aws_haproxy, tmp_path)
    agents = [h for h in files if "consul.hcl" in files[h]]
    assert {h.split("-")[0] for h in agents} == {"consul", "postgres", "proxy"}
    for host in agents:
        r = _run(consul, "validate", str(files[host]["consul.hcl"]))
        assert r.returncode == 0, f"{host}: {r.stdout}{r.stderr}"


def test_aws_patroni_configs_pass_patroni_validate_config(aws_haproxy, tmp_path):
    patroni = _tool(PATRONI)
    files = _aws_files(aws_haproxy, tmp_path)
    nodes = [h for h in files if "patroni.yml" in files[h]]
    assert len(nodes) == 3
    for host in nodes:
        ip = _addr(aws_haproxy, host)
        # The validator probes the local Consul agent and insists its own ports are bindable.
        r = _isolated(
            [patroni, "--validate-config", str(files[host]["patroni.yml"])], addresses=(ip,), listen=f"{ip}:8500"
        )
        assert r.returncode == 0, f"{host}: {r.stdout}{r.stderr}"


def test_aws_prometheus_config_and_rules_pass_promtool(aws_haproxy, tmp_path):
    _prometheus_passes_promtool(_aws_files(aws_haproxy, tmp_path), tmp_path, "/var/lib/hastack/conf", "/etc/hastack")


def _prometheus_passes_promtool(files: dict[str, dict[str, Path]], tmp: Path, conf_dir: str, token_dir: str) -> None:
    promtool = _tool(shutil.which("promtool"))
    host = next(h for h in files if "prometheus.yml" in files[h])
    rules, config = files[host]["alerts.yml"], files[host]["prometheus.yml"]
    r = _run(promtool, "check", "rules", str(rules))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = yaml.safe_load(config.read_text())
    # The config names the rules where the platform puts them; check that, then point promtool at our copy.
    assert doc["rule_files"] == [f"{conf_dir}/alerts.yml"]
    doc["rule_files"] = [str(rules)]
    # Likewise the Consul token file (ACLs are default-deny on cloud platforms): promtool insists it exists.
    (consul,) = [job for job in doc["scrape_configs"] if job["job_name"] == "consul"]
    assert consul["authorization"]["credentials_file"].startswith(token_dir + "/")
    token = tmp / "consul-token"
    token.write_text("00000000-0000-4000-8000-000000000000\n")
    consul["authorization"]["credentials_file"] = str(token)
    local = tmp / "prometheus-check.yml"
    local.write_text(yaml.safe_dump(doc))
    r = _run(promtool, "check", "config", str(local))
    assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------------------------------
# Kubernetes: ConfigMaps and the Consul Secret


def _cluster_dns(cap: Capture, tmp: Path) -> Path:
    """An /etc/hosts mapping every Service name the configs use to a loopback address (cluster DNS stand-in)."""
    names = sorted(
        {
            f"{s.inputs['metadata']['name']}.{s.inputs['metadata']['namespace']}.svc.cluster.local"
            for s in cap.of_type("kubernetes:core/v1:Service")
        }
    )
    hosts = tmp / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.{i + 2} {n}\n" for i, n in enumerate(names)))
    return hosts


def test_k8s_haproxy_configmaps_pass_haproxy_check(k8s_haproxy, tmp_path):
    haproxy = _tool(shutil.which("haproxy"))
    files = _k8s_files(k8s_haproxy, tmp_path)
    hosts = _cluster_dns(k8s_haproxy, tmp_path)
    proxies = [h for h in files if "haproxy.cfg" in files[h]]
    assert proxies == ["proxy"]  # one ConfigMap for every replica of the proxy Deployment
    for host in proxies:
        r = _isolated([haproxy, "-c", "-f", str(files[host]["haproxy.cfg"])], hosts=hosts)
        assert r.returncode == 0, r.stdout + r.stderr


def test_k8s_nginx_configmaps_pass_nginx_test(k8s_nginx, tmp_path):
    nginx = _tool("/usr/sbin/nginx")
    _tool("/usr/lib/nginx/modules/ngx_stream_module.so")
    files = _k8s_files(k8s_nginx, tmp_path)
    proxies = [h for h in files if "nginx.conf" in files[h]]
    assert proxies
    for host in proxies:
        # The pod mounts an emptyDir at /hastack/run; that folder cannot be created on this machine, so the
        # copy under test has only that root relocated.
        run = tmp_path / host / "run"
        run.mkdir()
        text = files[host]["nginx.conf"].read_text()
        assert "/hastack/run/" in text
        conf = tmp_path / host / "nginx-check.conf"
        conf.write_text(text.replace("/hastack/run/", f"{run}/"))
        r = _isolated([nginx, "-t", "-c", str(conf), "-e", "stderr"])
        assert r.returncode == 0, r.stdout + r.stderr


def test_k8s_consul_configs_with_their_secret_pass_consul_validate(k8s_haproxy, tmp_path):
    consul = _tool(CONSUL)
    files = _k8s_files(k8s_haproxy, tmp_path)
    secret = next(
        s for s in k8s_haproxy.of_type("kubernetes:core/v1:Secret") if s.inputs["metadata"]["name"] == "consul-secrets"
    )
    agents = [h for h in files if "consul.hcl" in files[h]]
    assert sorted(agents) == ["consul-server", "postgres", "proxy"]
    for host in agents:
        # Exactly what the agent loads: the ConfigMap's consul.hcl plus the Secret item mounted for its kind.
        key = "server.hcl" if host == "consul-server" else "agent.hcl"
        d = tmp_path / f"{host}-config"
        d.mkdir()
        (d / "consul.hcl").write_text(files[host]["consul.hcl"].read_text())
        (d / "secret.hcl").write_text(secret.inputs["stringData"][key])
        r = _run(consul, "validate", str(d))
        assert r.returncode == 0, f"{host}: {r.stdout}{r.stderr}"


def test_k8s_patroni_configmaps_pass_patroni_validate_config(k8s_haproxy, tmp_path):
    patroni = _tool(PATRONI)
    files = _k8s_files(k8s_haproxy, tmp_path)
    nodes = [h for h in files if "patroni.yml" in files[h]]
    assert nodes == ["postgres"]
    for host in nodes:
        r = _isolated([patroni, "--validate-config", str(files[host]["patroni.yml"])], listen="127.0.0.1:8500")
        assert r.returncode == 0, f"{host}: {r.stdout}{r.stderr}"


def test_k8s_prometheus_configmap_passes_promtool(k8s_haproxy, tmp_path):
    _prometheus_passes_promtool(_k8s_files(k8s_haproxy, tmp_path), tmp_path, "/hastack/conf", "/hastack/secrets")
