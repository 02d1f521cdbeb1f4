"""The Helm chart, rendered and linted by Helm's own engine (helm-python-sdk), offline."""

from __future__ import annotations

import re
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

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
            "istio-values.yaml", "existing-secret-values.yaml", "autoscaling-values.yaml",
            "networkpolicy-servicemonitor-values.yaml"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_lints_strict_and_validates(name):
    report = helm.lint(str(CHART), scenario(name), strict=True, kube_version=f"v{K8S_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not problems, problems
    docs = render(scenario(name))
    for kind, items in docs.items():
        if kind in ("NOTES", "ServiceMonitor", "AuthorizationPolicy"):
            continue  # CRDs: no upstream schema in kubernetes-validate
        for doc in items:
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
    snippets = next(d for d in docs["ConfigMap"] if d["metadata"]["name"].endswith("-snippets"))
    mesh = yaml.safe_load(snippets["data"]["mesh-config.yaml"])
    assert mesh["extensionProviders"][0]["envoyExtAuthzGrpc"]["service"] == "127.0.0.1"


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


def test_several_replicas_on_memory_store_refuse_to_render():
    with pytest.raises(helm.HelmError, match="several replicas need a shared store"):
        render({"replicaCount": 2})
    with pytest.raises(helm.HelmError, match="shared store"):
        render({"autoscaling": {"enabled": True}})


@pytest.mark.parametrize("values,key", [({"replicas": 2}, "replicas"), ({"image": {"tags": "x"}}, "tags"),
                                        ({"mode": "daemonset"}, "mode"), ({"workers": 0}, "workers")])
def test_schema_rejects_unknown_or_bad_values(values, key):
    with pytest.raises(helm.HelmError, match=re.escape(key)):
        helm.Chart.load(str(CHART)).validate_schema(values)
