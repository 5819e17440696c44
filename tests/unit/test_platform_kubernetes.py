"""Contracts of the Kubernetes platform, checked on the objects it registers under Pulumi's mocks."""

from __future__ import annotations

import pytest
import yaml

from hastack.spec import SpecError, load_spec
from hastack.testing import Capture, CapturedResource, capture, walk_strings

from .platform_fixtures import ZONES3, prod_and_dev

PROD = {
    "platform": "kubernetes",
    "environment": "prod",
    "zones": ZONES3,
    "consul": {"image": "hashicorp/consul:1.8.7"},
    "postgres": {"image": "registry.example/spilo-15:3.0-p1"},
    "kubernetes": {"namespace": "db", "storageClass": "gp3", "storageGb": 80},
}
DEV = {"platform": "kubernetes", "environment": "dev", "zones": ZONES3[:2]}

STS = "kubernetes:apps/v1:StatefulSet"
DEPLOY = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CM = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"


prod, dev, each = prod_and_dev(PROD, DEV, prod_stack="k8s")


def _workloads(cap: Capture) -> list[CapturedResource]:
    return [*cap.of_type(STS), *cap.of_type(DEPLOY)]


def _pod(w: CapturedResource) -> dict:
    return w.inputs["spec"]["template"]


def _labels(w: CapturedResource) -> dict:
    return _pod(w)["metadata"]["labels"]


def _by_role(cap: Capture, role: str) -> list[CapturedResource]:
    return [w for w in _workloads(cap) if _labels(w)["hastack.io/role"] == role]


# --------------------------------------------------------------------------------------------------
# Placement, spread and disruption budgets


def test_consul_and_postgres_are_statefulsets_one_replica_per_zone_and_proxies_a_deployment_of_two(each):
    config, cap = each
    per = {(_labels(w)["hastack.io/role"], w.type): w.inputs["spec"]["replicas"] for w in _workloads(cap)}
    assert len(per) == len(_workloads(cap)) == 4  # one workload per tier
    assert per[("consul", STS)] == 3
    assert per[("postgres", STS)] == len(config["zones"])
    assert per[("proxy", DEPLOY)] >= 2
    assert per[("monitoring", DEPLOY)] == 1


def test_every_tier_spreads_its_replicas_over_zones_with_do_not_schedule(each):
    config, cap = each
    for w in _workloads(cap):
        spec, labels = _pod(w)["spec"], _labels(w)
        # The scheduler places the replicas: no pod is pinned to a zone any more.
        assert "affinity" not in spec and "nodeSelector" not in spec, w.name
        zone_spread = [
            c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"
        ]
        assert len(zone_spread) == 1, w.name
        c = zone_spread[0]
        assert c["whenUnsatisfiable"] == "DoNotSchedule" and c["maxSkew"] == 1
        # Every configured zone counts even while it has no schedulable node: replicas wait instead of piling up.
        assert c["minDomains"] == min(w.inputs["spec"]["replicas"], len(config["zones"]))
        # The constraint counts the whole tier: its selector is the workload's and matches every replica.
        assert c["labelSelector"]["matchLabels"] == w.inputs["spec"]["selector"]["matchLabels"]
        assert c["labelSelector"]["matchLabels"].items() <= labels.items()


def test_disruption_budgets_keep_consul_quorum_and_lose_at_most_one_postgres_or_proxy(prod):
    pdbs = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in prod.of_type(PDB)}
    assert pdbs["consul"]["minAvailable"] == 2
    assert pdbs["postgres"]["maxUnavailable"] == 1
    assert pdbs["proxy"]["maxUnavailable"] == 1
    for role, budget in pdbs.items():
        selected = [w for w in _workloads(prod) if budget["selector"]["matchLabels"].items() <= _labels(w).items()]
        assert selected == _by_role(prod, role), role


def test_every_workload_has_a_disruption_budget_and_prometheus_may_be_drained(each):
    _, cap = each
    budgets = [p.inputs for p in cap.of_type(PDB)]
    for w in _workloads(cap):
        covering = [
            b
            for b in budgets
            if b["spec"]["selector"]["matchLabels"].items() <= _labels(w).items()
            and b["metadata"]["namespace"] == w.inputs["metadata"]["namespace"]
        ]
        assert len(covering) == 1, w.name
    # One Prometheus: minAvailable 1 would block every node drain, so the budget allows that one pod to go.
    (monitoring,) = [b["spec"] for b in budgets if b["metadata"]["name"] == "monitoring"]
    assert monitoring["maxUnavailable"] == 1 and "minAvailable" not in monitoring


def test_postgres_volume_claims_use_the_storage_class_size_and_labels(prod):
    (w,) = _by_role(prod, "postgres")
    (claim,) = w.inputs["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "gp3"
    assert claim["spec"]["resources"]["requests"]["storage"] == "80Gi"
    assert claim["metadata"]["labels"]["hastack.io/role"] == "postgres"
    assert claim["metadata"]["labels"]["hastack.io/stack"] == "k8s"
    for w in _by_role(prod, "consul"):
        assert w.inputs["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"]["hastack.io/role"] == "consul"


def test_each_postgres_pod_runs_a_consul_agent_that_patroni_uses_on_localhost(prod):
    cms = {c.inputs["metadata"]["name"]: c.inputs["data"] for c in prod.of_type(CM)}
    (w,) = _by_role(prod, "postgres")
    names = [c["name"] for c in _pod(w)["spec"]["containers"]]
    assert {"patroni", "consul", "postgres-exporter"} <= set(names)
    conf = next(v["configMap"]["name"] for v in _pod(w)["spec"]["volumes"] if v["name"] == "conf")
    patroni = yaml.safe_load(cms[conf]["patroni.yml"])
    assert patroni["consul"]["host"] == "127.0.0.1:8500"
    assert patroni["consul"]["checks"] == ["serfHealth"]
    assert "server     = false" in cms[conf]["consul.hcl"]


def test_each_pod_names_itself_from_the_downward_api_over_the_shared_config(prod):
    """One pod template serves a tier, so what names a pod comes from its own name and IP at start."""
    downward = {
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
        "POD_IP": {"fieldRef": {"fieldPath": "status.podIP"}},
    }
    for w in _workloads(prod):
        for c in _pod(w)["spec"]["containers"]:
            if c["name"] != "consul":
                continue
            env = {e["name"]: e.get("valueFrom") for e in c["env"]}
            assert {k: env[k] for k in downward} == downward, w.name
            assert "-node=$(POD_NAME)" in c["command"] and "-advertise=$(POD_IP)" in c["command"], w.name
    (pg,) = _by_role(prod, "postgres")
    patroni = next(c for c in _pod(pg)["spec"]["containers"] if c["name"] == "patroni")
    env = [e["name"] for e in patroni["env"]]
    values = {e["name"]: e.get("value") for e in patroni["env"]}
    # $(VAR) expands only to variables defined earlier in the list.
    assert env.index("POD_NAME") < env.index("PATRONI_NAME")
    assert values["PATRONI_NAME"] == "$(POD_NAME)"
    assert values["PATRONI_RESTAPI_CONNECT_ADDRESS"] == "$(POD_NAME).db.svc.cluster.local:8008"
    assert values["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == "$(POD_NAME).db.svc.cluster.local:5432"


def test_images_come_from_the_spec(prod):
    spec = load_spec(PROD)
    images = {c["name"]: c["image"] for w in _workloads(prod) for c in _pod(w)["spec"]["containers"]}
    assert images["patroni"] == spec.postgres.image == "registry.example/spilo-15:3.0-p1"
    assert images["consul"] == spec.consul.image
    assert images["haproxy"] == spec.proxy.image
    assert images["prometheus"] == spec.monitoring.image
    assert images["postgres-exporter"] == spec.kubernetes.postgres_exporter_image


def test_labels_name_role_and_stack_on_every_pod_template_and_selector(each):
    _, cap = each
    roles = []
    for w in _workloads(cap):
        labels = _labels(w)
        assert {"hastack.io/role", "hastack.io/stack"} <= set(labels)
        # The scheduler picks each replica's zone, so a pod template can name no zone or host.
        assert "hastack.io/zone" not in labels and "hastack.io/host" not in labels
        assert w.inputs["spec"]["selector"]["matchLabels"] == {
            "hastack.io/role": labels["hastack.io/role"],
            "hastack.io/stack": labels["hastack.io/stack"],
        }
        roles.append(labels["hastack.io/role"])
    assert sorted(roles) == ["consul", "monitoring", "postgres", "proxy"]


def test_tier_components_have_platform_type_tokens_and_role_keyed_children(prod):
    tokens = {r.type for r in prod.resources if not r.custom}
    for tier in ("HaStack", "ConsulCluster", "PostgresCluster", "ProxyTier", "Monitoring"):
        assert f"hastack:kubernetes:{tier}" in tokens
    names = {"consul": "consul-server", "postgres": "postgres", "proxy": "proxy", "monitoring": "prometheus"}
    for w in _workloads(prod):
        role = _labels(w)["hastack.io/role"]
        assert w.name == f"hastack-{role}"
        assert w.inputs["metadata"]["name"] == names[role]


def test_statefulsets_are_governed_by_their_headless_services(prod):
    svcs = {s.inputs["metadata"]["name"]: s.inputs["spec"] for s in prod.of_type("kubernetes:core/v1:Service")}
    for w in prod.of_type(STS):
        governing = svcs[w.inputs["spec"]["serviceName"]]
        assert governing["clusterIP"] == "None" and governing["publishNotReadyAddresses"] is True
        assert governing["selector"] == w.inputs["spec"]["selector"]["matchLabels"]


# --------------------------------------------------------------------------------------------------
# Network policies


def _allowed_sources(cap: Capture, role: str, port: int) -> set[str] | None:
    """Roles whose pods may reach ``port`` on pods of ``role`` (None: anyone)."""
    sources: set[str] = set()
    for pol in cap.of_type(NETPOL):
        spec = pol.inputs["spec"]
        sel = spec["podSelector"]
        if not sel:
            continue
        roles = next(e["values"] for e in sel["matchExpressions"] if e["key"] == "hastack.io/role")
        if role not in roles:
            continue
        for rule in spec.get("ingress", []):
            if not any(p["port"] == port for p in rule["ports"]):
                continue
            if "from" not in rule:
                return None
            for peer in rule["from"]:
                sources |= set(next(e["values"] for e in peer["podSelector"]["matchExpressions"]))
    return sources


def test_namespace_denies_ingress_by_default(each):
    _, cap = each
    deny = [p for p in cap.of_type(NETPOL) if p.inputs["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert deny[0].inputs["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny[0].inputs["spec"]


def test_postgres_is_reachable_only_from_the_proxy_tier_and_its_peers(prod):
    assert _allowed_sources(prod, "postgres", 5432) == {"proxy", "postgres"}
    assert _allowed_sources(prod, "postgres", 8008) == {"proxy", "postgres", "monitoring"}
    assert _allowed_sources(prod, "postgres", 9187) == {"monitoring"}
    assert _allowed_sources(prod, "consul", 8300) == {"consul", "postgres", "proxy"}
    assert _allowed_sources(prod, "proxy", 5000) is None  # the client-facing port


# --------------------------------------------------------------------------------------------------
# Secrets


def test_no_generated_secret_in_any_configmap_or_pod_template(each):
    _, cap = each
    assert len(cap.generated_secrets) >= 5
    for r in (*cap.of_type(CM), *_workloads(cap)):
        for text in walk_strings(r.inputs):
            for secret in cap.generated_secrets:
                assert secret not in text, f"{r.name} carries a generated secret"


def test_passwords_reach_pods_only_through_secret_references(prod):
    secrets = {s.inputs["metadata"]["name"]: s for s in prod.of_type(SECRET)}
    pw = secrets["postgres-passwords"]
    assert set(pw.inputs["stringData"]) == {"superuser", "replication", "rewind"}
    assert "stringData" in pw.secret_paths
    consul = secrets["consul-secrets"]
    assert "stringData" in consul.secret_paths
    assert "encrypt =" in consul.inputs["stringData"]["agent.hcl"]
    for w in _by_role(prod, "postgres"):
        patroni = next(c for c in _pod(w)["spec"]["containers"] if c["name"] == "patroni")
        env = {e["name"]: e for e in patroni["env"]}
        for var, key in (("PATRONI_SUPERUSER_PASSWORD", "superuser"), ("PATRONI_REPLICATION_PASSWORD", "replication")):
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "postgres-passwords", "key": key}
            assert "value" not in env[var]


def test_prometheus_reads_the_consul_token_from_the_secret_through_a_volume(prod):
    (mon,) = _by_role(prod, "monitoring")
    cm = next(c for c in prod.of_type(CM) if c.inputs["metadata"]["name"] == "prometheus")
    jobs = {j["job_name"]: j for j in yaml.safe_load(cm.inputs["data"]["prometheus.yml"])["scrape_configs"]}
    path = jobs["consul"]["authorization"]["credentials_file"]
    pod = _pod(mon)["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    assert mount["readOnly"] is True
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "consul-secrets"
    assert secret["items"] == [{"key": "token", "path": path.removeprefix(mount["mountPath"] + "/")}]
    assert secret["defaultMode"] == 0o440  # owner root, group = the pod's fsGroup (Prometheus)
    token = next(s for s in prod.of_type(SECRET) if s.inputs["metadata"]["name"] == "consul-secrets")
    assert token.inputs["stringData"]["token"] in prod.generated_secrets


# --------------------------------------------------------------------------------------------------
# Services, outputs, provider


def test_clients_get_write_and_read_services_over_the_proxy_tier(prod):
    svcs = {s.inputs["metadata"]["name"]: s.inputs["spec"] for s in prod.of_type("kubernetes:core/v1:Service")}
    assert svcs["hastack-primary"]["ports"][0]["port"] == 5000
    assert svcs["hastack-replicas"]["ports"][0]["port"] == 5001
    assert svcs["hastack-primary"]["selector"]["hastack.io/role"] == "proxy"
    assert svcs["consul-server"]["clusterIP"] == "None"
    # Each member's stable address: a Service per StatefulSet pod, named like it and selecting only it.
    for i in range(3):
        member = svcs[f"postgres-{i}"]
        assert member["publishNotReadyAddresses"] is True
        assert member["selector"]["statefulset.kubernetes.io/pod-name"] == f"postgres-{i}"
        assert member["selector"]["hastack.io/role"] == "postgres"


def test_haproxy_backends_and_patroni_urls_are_the_member_services(prod):
    cm = next(c for c in prod.of_type(CM) if c.inputs["metadata"]["name"] == "proxy")
    servers = [
        line.split()[2] for line in cm.inputs["data"]["haproxy.cfg"].splitlines() if line.strip().startswith("server ")
    ]
    members = {f"postgres-{i}.db.svc.cluster.local:5432" for i in range(3)}
    assert set(servers) == members
    assert prod.outputs["patroni_urls"] == [f"http://postgres-{i}.db.svc.cluster.local:8008" for i in range(3)]


def test_outputs_name_the_in_cluster_services(prod):
    assert prod.outputs["write_endpoint"] == "hastack-primary.db.svc.cluster.local:5000"
    assert prod.outputs["read_endpoint"] == "hastack-replicas.db.svc.cluster.local:5001"
    assert prod.outputs["write_dsn"].startswith("postgresql://postgres:")
    assert len(prod.outputs["patroni_urls"]) == 3
    assert prod.outputs["prometheus_url"] == "http://prometheus.db.svc.cluster.local:9090"
    assert all(r.inputs["metadata"]["namespace"] == "db" for r in prod.of_type(CM))


def test_render_yaml_to_directory_routes_every_object_through_one_provider(tmp_path):
    out = str(tmp_path / "manifests")
    cap = capture({**DEV, "kubernetes": {"renderYamlToDirectory": out}}, stack="dev")
    (provider,) = cap.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["renderYamlToDirectory"] == out
    objects = [r for r in cap.resources if r.type.startswith("kubernetes:")]
    assert objects and all(r.provider.startswith(provider.urn) for r in objects)


def test_default_objects_use_the_ambient_kubeconfig(dev):
    assert not dev.of_type("pulumi:providers:kubernetes")


def test_rds_mode_is_refused_on_kubernetes():
    with pytest.raises(SpecError, match=r"postgres\.mode rds is only available on platform aws"):
        load_spec({**DEV, "postgres": {"mode": "rds"}})
