"""The Helm chart, rendered and linted by Helm's own engine (helm-python-sdk), offline."""

from __future__ import annotations

import re
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.charts import istio_schema

from config import load_settings
from sidecar.http_app import build_app  # noqa: F401  (the probes' paths are served by it)

CHART = Path(__file__).resolve().parents[2] / "charts" / "auth-sidecar"
SCENARIOS = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
K8S_VERSION = "1.33.0"


def render(values: dict | None = None) -> dict[str, list[dict]]:
    out = helm.Chart.load(str(CHART)).render(values, name="rel", namespace="auth", is_install=True)
    docs: dict[str, list[dict]] = {}
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            docs["NOTES"] = [{"text": text}]
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.setdefault(doc["kind"], []).append(doc)
    return docs


def scenario(name: str) -> dict:
    return yaml.safe_load((CHART / "ci" / name).read_text()) or {}


def test_every_supported_setup_has_a_scenario():
    assert {"default-values.yaml", "sidecar-values.yaml", "external-redis-values.yaml", "bundled-redis-values.yaml",
            "istio-values.yaml", "istio-sidecar-values.yaml", "existing-secret-values.yaml",
            "autoscaling-values.yaml", "networkpolicy-servicemonitor-values.yaml"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_lints_strict_and_validates(name):
    report = helm.lint(str(CHART), scenario(name), strict=True, kube_version=f"v{K8S_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not problems, problems
    docs = render(scenario(name))
    for kind, items in docs.items():
        if kind in ("NOTES", "ServiceMonitor"):
            continue  # a CRD with no schema kept here
        for doc in items:
            if kind in istio_schema.KINDS:  # Istio's own CRD schemas (tests/charts/data/istio)
                assert istio_schema.errors(doc) == [], (kind, doc["metadata"]["name"])
            else:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def containers(docs) -> list[dict]:
    found = []
    for kind in ("Deployment", "StatefulSet"):
        for doc in docs.get(kind, []):
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
            found += pod["containers"]
    return found


@pytest.mark.parametrize("name", SCENARIOS)
def test_pods_are_hardened(name):
    for c in containers(render(scenario(name))):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]


def sidecar_container(docs) -> dict:
    if "Deployment" in docs:
        return docs["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    snippet = docs["ConfigMap"][[d["metadata"]["name"] for d in docs["ConfigMap"]].index("rel-auth-sidecar-snippets")]
    return yaml.safe_load(snippet["data"]["container.yaml"])


def rendered_settings(docs, tmp_path):
    cm = next(d for d in docs["ConfigMap"] if d["metadata"]["name"] == "rel-auth-sidecar")
    file = tmp_path / "config.yaml"
    file.write_text(cm["data"]["config.yaml"])
    env = {e["name"]: e.get("value", "from-secret") for e in sidecar_container(docs).get("env", [])}
    env = {k: v.replace("$(REDIS_PASSWORD)", "s3cret") for k, v in env.items() if k.startswith("AUTH_SIDECAR_")}
    return load_settings(str(file), environ=env)


@pytest.mark.parametrize("name", SCENARIOS)
def test_configmap_loads_with_the_sidecars_own_loader(name, tmp_path):
    docs = render(scenario(name))
    settings = rendered_settings(docs, tmp_path)
    assert settings.keys_dir == "/etc/auth-sidecar-keys"
    container = sidecar_container(docs)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert settings.keys_dir in mounts


@pytest.mark.parametrize("name", SCENARIOS)
def test_probes_point_at_real_ports_and_paths(name, tmp_path):
    docs = render(scenario(name))
    settings = rendered_settings(docs, tmp_path)
    c = sidecar_container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["grpc"] == int(settings.grpc_listen.rsplit(":", 1)[1])
    assert ports["http"] == int(settings.http_listen.rsplit(":", 1)[1])
    assert c["livenessProbe"]["grpc"]["port"] == ports["grpc"]
    ready = c["readinessProbe"]["httpGet"]
    assert ready["port"] == "http" and ready["path"] == "/readyz"
    source = (CHART.parents[1] / "sidecar" / "http_app.py").read_text()
    assert 'Route("/readyz"' in source


def test_external_redis_password_goes_into_the_store_url(tmp_path):
    docs = render(scenario("external-redis-values.yaml"))
    settings = rendered_settings(docs, tmp_path)
    assert settings.store_url == "redis://:s3cret@redis-master.data.svc:6379/0"
    assert settings.workers == 1  # workers is a CLI flag
    assert "--workers" in sidecar_container(docs)["args"] and "2" in sidecar_container(docs)["args"]


def test_bundled_redis_has_persistence():
    docs = render(scenario("bundled-redis-values.yaml"))
    sts = docs["StatefulSet"][0]
    assert "--appendonly" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_istio_policy_names_the_provider_the_notes_register():
    docs = render(scenario("istio-values.yaml"))
    policy = docs["AuthorizationPolicy"][0]
    assert policy["spec"]["action"] == "CUSTOM"
    notes = docs["NOTES"][0]["text"]
    mesh = yaml.safe_load(notes[notes.index("meshConfig:"):notes.index("\n\n", notes.index("meshConfig:"))])
    names = [p["name"] for p in mesh["meshConfig"]["extensionProviders"]]
    assert policy["spec"]["provider"]["name"] in names
    http = next(p for p in mesh["meshConfig"]["extensionProviders"] if "envoyExtAuthzHttp" in p)
    assert "x-tenant-id" in http["envoyExtAuthzHttp"]["headersToUpstreamOnAllow"]


def test_sidecar_mode_renders_snippets_and_no_deployment():
    docs = render(scenario("sidecar-values.yaml"))
    assert "Deployment" not in docs and "Service" not in docs
    assert "ServiceEntry" not in docs and "AuthorizationPolicy" not in docs  # istio.enabled is off
    assert "istio.enabled=true" in docs["NOTES"][0]["text"]


def mesh_providers(docs) -> dict[str, tuple[str, dict]]:
    """Provider name -> (kind of provider, its settings), from the NOTES; the same as the snippet's."""
    notes = docs["NOTES"][0]["text"]
    mesh = yaml.safe_load(notes[notes.index("meshConfig:"):notes.index("\n\n", notes.index("meshConfig:"))])
    providers = mesh["meshConfig"]["extensionProviders"]
    snippets = [d for d in docs["ConfigMap"] if d["metadata"]["name"].endswith("-snippets")]
    if snippets:
        assert yaml.safe_load(snippets[0]["data"]["mesh-config.yaml"])["extensionProviders"] == providers
    return {p["name"]: next((k, v) for k, v in p.items() if k != "name") for p in providers}


def test_sidecar_mode_with_istio_gives_the_provider_hosts_a_loopback_service_entry(tmp_path):
    # Istio resolves a provider's `service` in its registry (a Service or a ServiceEntry), never
    # as an IP: istio/istio samples/extauthz/local-ext-authz.yaml does the same.
    docs = render(scenario("istio-sidecar-values.yaml"))
    entries = {e["spec"]["hosts"][0]: e for e in docs["ServiceEntry"]}
    settings = rendered_settings(docs, tmp_path)
    container_ports = {p["name"]: p["containerPort"] for p in sidecar_container(docs)["ports"]}
    protocols = {"envoyExtAuthzGrpc": ("GRPC", "grpc", settings.grpc_listen),
                 "envoyExtAuthzHttp": ("HTTP", "http", settings.http_listen)}
    providers = mesh_providers(docs)
    assert {kind for kind, _ in providers.values()} == set(protocols)
    for kind, provider in providers.values():
        protocol, port_name, listen = protocols[kind]
        namespace, host = provider["service"].split("/")
        entry = entries[host]
        assert entry["metadata"]["namespace"] == namespace == "auth"
        assert entry["spec"]["resolution"] == "STATIC" and entry["spec"]["exportTo"] == ["."]
        assert entry["spec"]["endpoints"] == [{"address": "127.0.0.1"}]
        assert entry["spec"]["ports"] == [{"name": port_name, "number": provider["port"], "protocol": protocol}]
        assert provider["port"] == container_ports[port_name] == int(listen.rsplit(":", 1)[1])
        assert listen.rsplit(":", 1)[0] in ("127.0.0.1", "0.0.0.0")  # reachable on the pod's loopback
    assert len(entries) == 2
    policy = docs["AuthorizationPolicy"][0]
    assert policy["spec"]["provider"]["name"] in providers


def test_central_mode_providers_name_the_kubernetes_service():
    docs = render(scenario("istio-values.yaml"))
    assert "ServiceEntry" not in docs
    service = docs["Service"][0]
    fqdn = f"{service['metadata']['name']}.auth.svc.cluster.local"
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    for kind, provider in mesh_providers(docs).values():
        assert provider["service"] == fqdn
        assert provider["port"] == ports["grpc" if kind == "envoyExtAuthzGrpc" else "http"]


def istio_policy() -> dict:
    return render(scenario("istio-values.yaml"))["AuthorizationPolicy"][0]


@pytest.mark.parametrize("path,value,problem", [
    (("spec", "actions"), "CUSTOM", "'actions' was unexpected"),
    (("spec", "provider", "names"), "auth-sidecar-grpc", "'names' was unexpected"),
    (("spec", "action"), "CUSTOMS", "is not one of"),
    (("spec", "rules", 0, "to", 0, "operation", "path"), ["/x"], "'path' was unexpected"),
    (("spec", "targetRef"), {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
     "only one of targetRefs or selector"),  # a CEL rule of the CRD
])
def test_a_wrong_authorization_policy_fails_istio_validation(path, value, problem):
    policy = istio_policy()
    assert istio_schema.errors(policy) == []
    node = policy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    found = istio_schema.errors(policy)
    assert any(problem in e for e in found), found


def test_a_wrong_service_entry_fails_istio_validation():
    entry = render(scenario("istio-sidecar-values.yaml"))["ServiceEntry"][0]
    entry["spec"]["resolution"] = "NONE"  # NONE cannot carry endpoints (a CEL rule)
    assert any("NONE mode cannot set endpoints" in e for e in istio_schema.errors(entry))
    entry["spec"]["resolution"] = "STATIC"
    entry["spec"]["ports"][0]["number"] = 70000
    assert any("port must be between 1-65535" in e for e in istio_schema.errors(entry))


def test_existing_secret_is_used_and_none_is_created():
    docs = render(scenario("existing-secret-values.yaml"))
    assert "Secret" not in docs
    env = sidecar_container(docs)["env"]
    assert env[0]["valueFrom"]["secretKeyRef"]["name"] == "auth-sidecar-keys"


def test_generated_signing_key_loads():
    from cryptography.hazmat.primitives import serialization
    import base64

    secret = render()["Secret"][0]
    pem = base64.b64decode(secret["data"]["signing-key.pem"])
    serialization.load_pem_private_key(pem, password=None)


def test_several_workers_on_memory_store_refuse_to_render():
    # memory:// lives in each worker process: several would split users, clients and sessions.
    assert render()["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--workers", "1"]
    for values in ({"workers": 2}, {"workers": 4, "mode": "sidecar"}):
        with pytest.raises(helm.HelmError, match=r"workers: \d with store.type=memory \(store_url memory://\)"):
            render(values)
    render({"workers": 2, "store": {"type": "bundled"}})  # a shared store: fine


def test_several_replicas_on_memory_store_refuse_to_render():
    with pytest.raises(helm.HelmError, match="several replicas need a shared store"):
        render({"replicaCount": 2})
    with pytest.raises(helm.HelmError, match="shared store"):
        render({"autoscaling": {"enabled": True}})


@pytest.mark.parametrize("values,key", [({"replicas": 2}, "replicas"), ({"image": {"tags": "x"}}, "tags"),
                                        ({"mode": "daemonset"}, "mode"), ({"workers": 0}, "workers"),
                                        ({"istio": {"localHosts": {"grpc": "127.0.0.1", "http": "a.local"}}},
                                         "localHosts")])
def test_schema_rejects_unknown_or_bad_values(values, key):
    with pytest.raises(helm.HelmError, match=re.escape(key)):
        helm.Chart.load(str(CHART)).validate_schema(values)


def doc_blocks(name: str) -> list[dict]:
    """The YAML code blocks of a doc, each document parsed."""
    text = (CHART.parents[1] / "docs" / name).read_text()
    out = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        out += [d for d in yaml.safe_load_all(block) if d]
    return out


@pytest.mark.parametrize("mode,namespace,values", [
    ("central", "auth", {"istio": {"enabled": True, "namespace": "apps", "selector": {"app": "orders"},
                                   "paths": ["/api/*"]}}),
    ("sidecar", "apps", {"mode": "sidecar", "istio": {"enabled": True, "selector": {"app": "orders"}}}),
])
def test_istio_doc_shows_what_the_chart_renders(mode, namespace, values):
    # docs/istio.md is meant to be copied: its objects and mesh config are the rendered ones.
    out = helm.Chart.load(str(CHART)).render(values, name="auth", namespace=namespace, is_install=True)
    rendered = [d for path, text in out.items() if not path.endswith("NOTES.txt")
                for d in yaml.safe_load_all(text) if d]
    notes = next(text for path, text in out.items() if path.endswith("NOTES.txt"))
    mesh = yaml.safe_load(notes[notes.index("meshConfig:"):notes.index("\n\n", notes.index("meshConfig:"))])
    blocks = doc_blocks("istio.md")
    assert mesh in [b for b in blocks if "meshConfig" in b]
    for obj in rendered:
        if obj["kind"] in istio_schema.KINDS:
            obj["metadata"] = {k: obj["metadata"][k] for k in ("name", "namespace")}
            assert obj in blocks, obj["metadata"]
            assert istio_schema.errors(obj) == []
