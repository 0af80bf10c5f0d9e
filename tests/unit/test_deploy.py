"""deploy/ builds with kustomize and validates offline (no cluster runs here; docs/deploy.md).

Every overlay is built with `kubectl kustomize`; the built-in objects are validated
against the Kubernetes 1.32 schemas (kubernetes-validate, strict: an unknown field is an
error), the custom resources against the openAPIV3Schema of their CRDs kept in
deploy/crds/ (made strict the same way); and the objects are checked against the code:
a Deployment and a ScaledObject per worker, a trigger per queue the worker consumes,
the environment each process reads, the Dockerfile's image user and commands.

Without kubectl these tests fail rather than skip: CI and every machine scripts/test
provisions have it, and a validation that silently stops running is worse than none.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from kernel.settings import SERVICES, Settings, worker_port
from ops.broker_users import PROCESSES, password_variable
from sandboxes import VARIABLES as SANDBOX_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "production")
KUBERNETES_VERSION = "1.32"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
CUSTOM_GROUPS = ("keda.sh", "rabbitmq.com", "postgresql.cnpg.io")

# Read by the processes themselves, not through Settings (ops/cli.py, kernel/settings.py),
# and by the development stand-ins (sandboxes/).
DIRECT_VARIABLES = {"AGORA_ENV_FILE", "AGORA_RUN_DIR", *(password_variable(p) for p in PROCESSES)}
# What a process cannot run without in a deployment, beyond the settings whose
# default points at this machine (found in the code below): secrets and identities.
REQUIRED = {
    "edge": {"AGORA_ENV", "AGORA_HOST", "AGORA_ENV_FILE", "AGORA_CSRF_SECRET", "AGORA_PUBLIC_URL"},
    "worker": {
        "AGORA_ENV",
        "AGORA_HOST",
        "AGORA_ENV_FILE",
        "AGORA_RUN_DIR",
        "AGORA_PREFETCH",
        "AGORA_GRACEFUL_TIMEOUT_SECONDS",
        "AGORA_DATA_KEYS",
        "AGORA_DATA_KEY_ID",
        "AGORA_SERVICE_SECRET",
    },
    "notifications": {"AGORA_TWILIO_ACCOUNT_SID", "AGORA_TWILIO_AUTH_TOKEN"},
    "payments": {"AGORA_STRIPE_SECRET_KEY", "AGORA_STRIPE_WEBHOOK_SECRET"},
    "migration": {"AGORA_ENV_FILE", "AGORA_DATABASE_URL"},
    "broker-setup": {"AGORA_ENV_FILE", "AGORA_AMQP_URL", "AGORA_RABBITMQ_MANAGEMENT_URL"}
    | {password_variable(p) for p in PROCESSES},
}
# The security model (docs/security.md): the edge never holds these.
EDGE_NEVER = {
    "AGORA_DATA_KEYS",
    "AGORA_DATA_KEY_ID",
    "AGORA_DATABASE_URL",
    "AGORA_SERVICE_SECRET",
    "AGORA_STRIPE_SECRET_KEY",
    "AGORA_STRIPE_WEBHOOK_SECRET",
}


# --- building -------------------------------------------------------------------------


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not installed: deploy/ cannot be built and validated "
            "(install kubectl 1.32, which bundles kustomize 5.5)"
        )
    return kubectl


@functools.cache
def _built(overlay: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize deploy/overlays/{overlay} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def built(overlay: str) -> list[dict[str, Any]]:
    return copy.deepcopy(list(_built(overlay)))


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in built(overlay) if o["kind"] == kind}


def pod_specs(overlay: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for o in built(overlay):
        if o["kind"] in ("Deployment", "Job"):
            yield o["metadata"]["name"], o["spec"]["template"]


def config(overlay: str) -> dict[str, str]:
    (data,) = [o["data"] for o in built(overlay) if o["kind"] == "ConfigMap" and "AGORA_ENV" in o.get("data", {})]
    return dict(data)


def component(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def agora_image(overlay: str) -> str:
    kustomization = yaml.safe_load((DEPLOY / "overlays" / overlay / "kustomization.yaml").read_text())
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    image = {**base["images"][0], **next(iter(kustomization.get("images", [])), {})}
    return f"{image['newName']}:{image['newTag']}"


# --- the worker pools, from the code ---------------------------------------------------

_QUEUES_SCRIPT = """
import importlib, json
from kernel.settings import SERVICES
out = {}
for name in SERVICES:
    module = importlib.import_module(f"workers.{name}.app")
    (service,) = [v for v in vars(module).values() if type(v).__name__ == "WorkerService"]
    out[name] = [queue.name for queue in service._queues]
print(json.dumps(out))
"""


@functools.cache
def consumed_queues() -> dict[str, list[str]]:
    """Each worker's queues, as its app.py subscribes them (a process of its own: importing
    the apps builds their brokers and engines, which connect to nothing until started)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AGORA_")},
        "AGORA_ENV_FILE": "",
        "AGORA_DATA_KEYS": "test:" + "A" * 43 + "=",
        "AGORA_DATA_KEY_ID": "test",
    }
    result = subprocess.run(
        [sys.executable, "-c", _QUEUES_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    queues: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return queues


def settings_read_by(*packages: str) -> set[str]:
    """The Settings fields the code under `packages` reads (`settings.<field>`)."""
    fields = set(Settings.model_fields)
    found: set[str] = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            found |= {name for name in re.findall(r"settings\.(\w+)", path.read_text()) if name in fields}
    return found


def development_only_settings(fields: set[str]) -> set[str]:
    """Those whose default is this machine: wrong anywhere but a developer's laptop."""
    return {
        f"AGORA_{name.upper()}"
        for name in fields
        if any(host in str(Settings.model_fields[name].default) for host in ("127.0.0.1", "localhost"))
    }


# --- 1. building and validating ---------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds(overlay: str) -> None:
    kinds = {o["kind"] for o in built(overlay)}
    assert {"Deployment", "ScaledObject", "RabbitmqCluster", "Cluster", "Job", "NetworkPolicy"} <= kinds
    namespaces = {o["metadata"].get("namespace") for o in built(overlay)}
    assert len(namespaces) == 1 and None not in namespaces, namespaces


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_in_objects_match_the_kubernetes_schemas(overlay: str) -> None:
    checked = 0
    for o in built(overlay):
        if o["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
            continue
        try:
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{o['kind']}/{o['metadata']['name']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 20


def _strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field
    validation does (plain JSON Schema would let a misspelt field through)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the openAPIV3Schema of every CRD in deploy/crds/."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((DEPLOY / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_crds(overlay: str) -> None:
    kinds = set()
    for o in built(overlay):
        if o["apiVersion"].split("/")[0] not in CUSTOM_GROUPS:
            continue
        schema = crd_schemas().get((o["apiVersion"], o["kind"]))
        assert schema is not None, f"no CRD in deploy/crds/ for {o['apiVersion']} {o['kind']}"
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(o), key=lambda e: list(e.path))
        where = f"{o['kind']}/{o['metadata']['name']}"
        assert not errors, "\n".join(f"{where}: {e.message} at {list(e.path)}" for e in errors)
        kinds.add(o["kind"])
    assert kinds == {"ScaledObject", "TriggerAuthentication", "RabbitmqCluster", "Cluster"}


def test_the_crd_check_refuses_a_misspelt_field() -> None:
    scaled = objects("dev", "ScaledObject")["agora-orders"]
    scaled["spec"]["maxReplicas"] = 3
    schema = crd_schemas()[("keda.sh/v1alpha1", "ScaledObject")]
    assert not jsonschema.Draft7Validator(schema).is_valid(scaled)


# --- 2. the pools against the code --------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_worker_has_a_deployment_a_scaledobject_and_a_trigger_per_queue(overlay: str) -> None:
    deployments, scaled = objects(overlay, "Deployment"), objects(overlay, "ScaledObject")
    auths = objects(overlay, "TriggerAuthentication")
    prefetch = int(config(overlay)["AGORA_PREFETCH"])
    assert set(scaled) == {f"agora-{name}" for name in SERVICES}
    for name in SERVICES:
        assert f"agora-{name}" in deployments, name
        so = scaled[f"agora-{name}"]["spec"]
        assert so["scaleTargetRef"]["name"] == f"agora-{name}"
        assert 1 <= so["minReplicaCount"] <= so["maxReplicaCount"], name
        triggers = so["triggers"]
        assert sorted(t["metadata"]["queueName"] for t in triggers) == sorted(consumed_queues()[name]), name
        for trigger in triggers:
            meta = trigger["metadata"]
            assert trigger["type"] == "rabbitmq" and meta["mode"] == "QueueLength" and meta["protocol"] == "http"
            assert trigger["authenticationRef"]["name"] in auths
            assert "host" not in meta, "the host (with credentials) comes from the TriggerAuthentication's Secret"
            # Below the prefetch, one replica's own unacknowledged deliveries would ask for more.
            assert float(meta["value"]) >= prefetch, (name, meta["queueName"])
        assert "replicas" not in deployments[f"agora-{name}"]["spec"], "KEDA owns the worker pools' replicas"


def test_the_queue_check_notices_a_queue_without_trigger() -> None:
    triggers = objects("production", "ScaledObject")["agora-payments"]["spec"]["triggers"]
    names = sorted(t["metadata"]["queueName"] for t in triggers[1:])
    assert names != sorted(consumed_queues()["payments"])
    assert "payments.authorize_payment_v1" in consumed_queues()["payments"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_database_connection_budget_holds_every_pool_at_its_largest(overlay: str) -> None:
    (cluster,) = objects(overlay, "Cluster").values()
    max_connections = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    prefetch = int(config(overlay)["AGORA_PREFETCH"])
    per_process = prefetch + 2 + 4  # pool_size (workers/runtime/service.py) + max_overflow (db/engine.py)
    deployments = objects(overlay, "Deployment")
    processes = 0
    for name, so in objects(overlay, "ScaledObject").items():
        surge = deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        assert isinstance(surge, int)
        processes += so["spec"]["maxReplicaCount"] + surge
    jobs = 1 + 4  # the migration's engine
    reserved = 3 + 10  # superuser_reserved_connections, and people with psql
    assert processes * per_process + jobs + reserved <= max_connections, (processes, per_process, max_connections)


def test_production_replicates_synchronously_and_survives_one_standby_down() -> None:
    (cluster,) = objects("production", "Cluster").values()
    synchronous = cluster["spec"]["postgresql"]["synchronous"]
    assert synchronous["dataDurability"] == "required" and synchronous["number"] >= 1
    # The primary, the standbys it waits for, and one more that may be down.
    assert cluster["spec"]["instances"] >= synchronous["number"] + 2
    (dev,) = objects("dev", "Cluster").values()
    assert "synchronous" not in dev["spec"]["postgresql"]


# --- 3. the environment each process reads ---------------------------------------------


def _environment(overlay: str, container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Variable name -> its source ({"value": ...}, {"secret": (name, key)}, {"config": ...})."""
    env: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"].startswith("agora-config")
            env.update({k: {"value": v} for k, v in config(overlay).items()})
        else:
            secret = source["secretRef"]["name"]
            assert secret == "agora-broker-passwords", "only the broker setup takes a whole Secret"
            env.update({password_variable(p): {"secret": (secret, password_variable(p))} for p in PROCESSES})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = {"value": var["value"]}
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = {"secret": (ref["name"], ref["key"]), "optional": ref.get("optional", False)}
    return env


def _agora_containers(overlay: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, pod in pod_specs(overlay):
        if component(pod) in ("edge", "worker", "migration", "broker-setup"):
            for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
                yield name, component(pod), container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_one_the_code_reads(overlay: str) -> None:
    known = {f"AGORA_{field.upper()}" for field in Settings.model_fields} | DIRECT_VARIABLES
    for name, pod in pod_specs(overlay):
        sandbox = component(pod) == "sandbox"
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            for var in _environment(overlay, container):
                if var.startswith("AGORA_"):
                    assert var in (SANDBOX_VARIABLES if sandbox else known), f"{name}: {var} is read by nothing"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_the_code_needs_is_provided(overlay: str) -> None:
    common = settings_read_by("kernel", "db", "contracts")
    runtime = settings_read_by("workers/runtime")
    needs = {
        "edge": REQUIRED["edge"] | development_only_settings(common | settings_read_by("edge")),
        **{
            f"agora-{service}": REQUIRED["worker"]
            | REQUIRED.get(service, set())
            | development_only_settings(common | runtime | settings_read_by(f"workers/{service}"))
            for service in SERVICES
        },
        "migration": REQUIRED["migration"],
        "broker-setup": REQUIRED["broker-setup"],
    }
    seen = set()
    for name, kind, container in _agora_containers(overlay):
        if container["name"] == "wait-for-schema":
            assert {"AGORA_DATABASE_URL", "AGORA_ENV_FILE"} <= _environment(overlay, container).keys()
            continue
        key = name if kind == "worker" else kind
        env = _environment(overlay, container)
        missing = needs[key] - env.keys()
        assert not missing, f"{overlay}: {name} lacks {sorted(missing)}"
        if kind == "edge":
            assert not EDGE_NEVER & env.keys(), f"the edge must not hold {sorted(EDGE_NEVER & env.keys())}"
        seen.add(key)
    assert seen == needs.keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_only_by_reference(overlay: str) -> None:
    assert not [o for o in built(overlay) if o["kind"] == "Secret"], "the operator creates the Secrets"
    secretish = re.compile(r"SECRET|PASSWORD|TOKEN|_KEYS$|OIDC_PROVIDERS")
    for name, pod in pod_specs(overlay):
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            env = _environment(overlay, container)
            defined: list[str] = []
            for var in container.get("env", []):
                # $(VAR) expands only variables defined earlier in the list.
                for ref in re.findall(r"\$\((\w+)\)", var.get("value", "")):
                    assert ref in defined, f"{name}: {var['name']} uses $({ref}) before it is defined"
                defined.append(var["name"])
            for var, source in env.items():
                if secretish.search(var):
                    assert "secret" in source, f"{name}: {var} must come from a Secret"
                value = str(source.get("value", ""))
                password = re.match(r"^\w[\w+.-]*://[^:/@]*:([^@]*)@", value)
                assert not password or re.fullmatch(r"\$\(\w+\)", password.group(1)), f"{name}: a password in {var}"
    # And nowhere else in deploy/ either (the CRDs are the projects' own files).
    for path in DEPLOY.rglob("*.yaml"):
        if path.parent.name != "crds":
            text = path.read_text()
            assert "kind: Secret" not in text and "stringData" not in text, path


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_every_process_accepts_the_environment_it_is_given(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, _, container in _agora_containers(overlay):
        values = {}
        for var, source in _environment(overlay, container).items():
            if source.get("optional"):
                continue  # an operator may leave it out
            if "secret" in source:
                values[var] = "k1:" + "A" * 43 + "=" if var == "AGORA_DATA_KEYS" else "s3cr3t-" + "x" * 40
            else:
                values[var] = re.sub(r"\$\((\w+)\)", "x", str(source["value"]))
        for var in [v for v in os.environ if v.startswith("AGORA_")]:
            monkeypatch.delenv(var)
        for var, value in values.items():
            monkeypatch.setenv(var, value)
        try:
            Settings(_env_file=None)  # type: ignore[call-arg]
        except ValueError as exc:
            pytest.fail(f"{overlay}: {name}/{container['name']} would not start: {exc}")


# --- 4. images, commands, probes, shutdown, disruption ----------------------------------


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_and_commands_are_the_dockerfiles(overlay: str) -> None:
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", _dockerfile(), re.M).group(1))  # type: ignore[union-attr]
    uid = int(re.search(r"useradd --system --uid (\d+) agora", _dockerfile()).group(1))  # type: ignore[union-attr]
    exposed = int(re.search(r"^EXPOSE (\d+)$", _dockerfile(), re.M).group(1))  # type: ignore[union-attr]
    image = agora_image(overlay)
    expected = {
        "agora-edge": cmd,
        "agora-migrate": COMPOSE["migrate"]["command"],
        "agora-broker-setup": COMPOSE["broker-setup"]["command"],
        **{f"agora-{name}": COMPOSE[name]["command"] for name in SERVICES},
    }
    assert COMPOSE["edge"]["command"] == cmd
    for name, _, container in _agora_containers(overlay):
        assert container["image"] == image, f"{name}: {container['image']}"
        if container["name"] != "wait-for-schema":
            assert container["command"] == expected[name], name
    for name, pod in pod_specs(overlay):
        if component(pod) in ("edge", "worker", "migration", "broker-setup", "sandbox"):
            assert pod["spec"].get("securityContext", {}).get("runAsUser", uid) == uid, name
        if component(pod) == "sandbox":
            assert pod["spec"]["containers"][0]["image"] == image
    edge = objects(overlay, "Deployment")["agora-edge"]["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in edge["ports"]}["http"] == exposed


def default_settings() -> Settings:
    """The code's defaults, whatever AGORA_* variables the calling shell exports
    (scripts/test exports the test services' ports)."""
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("AGORA_")}
    try:
        return Settings(_env_file=None)  # type: ignore[call-arg]
    finally:
        os.environ.update(saved)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_shutdown_and_disruption_budgets(overlay: str) -> None:
    settings = default_settings()
    graceful = float(config(overlay)["AGORA_GRACEFUL_TIMEOUT_SECONDS"])
    deployments = objects(overlay, "Deployment")
    budgets = list(objects(overlay, "PodDisruptionBudget").values())
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"
        if component(pod) not in ("edge", "worker"):
            continue
        (container,) = pod["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        probe_port = ports[container["readinessProbe"]["httpGet"]["port"]]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert ports[container["livenessProbe"]["httpGet"]["port"]] == probe_port
        assert "cpu" in container["resources"]["requests"] and "memory" in container["resources"]["requests"]
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        if component(pod) == "worker":
            service = name.removeprefix("agora-")
            assert probe_port == worker_port(settings, service), name
            assert str(probe_port) in container["command"]
            # In-flight handlers, then background jobs, then the relay's last batch: each
            # may take the graceful timeout (workers/runtime/service.py, _on_shutdown).
            assert grace > 3 * graceful, name
        else:
            assert probe_port == 8100 and grace > graceful


# --- 5. who reaches what ---------------------------------------------------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _allowed(policies: list[dict[str, Any]], target: dict[str, str], port: int, source: dict[str, str] | None) -> bool:
    """May a pod labelled `source` in the namespace (None: anything outside it, in a
    namespace with no special labels) connect to `target` on `port`?"""
    selecting = [p for p in policies if _selects(p["spec"]["podSelector"], target)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p["port"] <= port <= p.get("endPort", p["port"]) for p in ports):
                continue
            peers = rule.get("from")
            if peers is None:
                return True
            for peer in peers:
                same_namespace = "podSelector" in peer and "namespaceSelector" not in peer
                if same_namespace and source is not None and _selects(peer["podSelector"], source):
                    return True
                if source is None and _anyone_outside(peer):
                    return True
    return False


def _anyone_outside(peer: dict[str, Any]) -> bool:
    """Whether a policy peer lets in a pod of a namespace with no special labels, or an
    address outside the cluster: an IP block, or every namespace's (matching) pods."""
    if "ipBlock" in peer:
        return True
    namespaces = peer.get("namespaceSelector")
    if namespaces is None or namespaces.get("matchLabels") or namespaces.get("matchExpressions"):
        return False
    pods = peer.get("podSelector") or {}
    return not pods.get("matchLabels") and not pods.get("matchExpressions")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_edge_is_reachable_from_outside_and_only_workers_reach_postgresql(overlay: str) -> None:
    policies = list(objects(overlay, "NetworkPolicy").values())
    pods = {name: pod["metadata"]["labels"] for name, pod in pod_specs(overlay)}
    postgres = {"cnpg.io/cluster": "agora-postgres"}
    rabbitmq = {"app.kubernetes.io/name": "agora-rabbitmq"}
    redis = pods["agora-redis"]
    workers = [pods[f"agora-{name}"] for name in SERVICES]
    assert _allowed(policies, pods["agora-edge"], 8080, None)
    for target, port in [(postgres, 5432), (rabbitmq, 5672), (rabbitmq, 15672), (redis, 6379)]:
        assert not _allowed(policies, target, port, None), (target, port)
    for labels in workers:
        assert not _allowed(policies, labels, worker_port(Settings(_env_file=None), "users"), None)  # type: ignore[call-arg]
        assert _allowed(policies, postgres, 5432, labels)
        assert _allowed(policies, rabbitmq, 5672, labels)
        assert not _allowed(policies, redis, 6379, labels)
    assert _allowed(policies, postgres, 5432, pods["agora-migrate"])
    for name in ("agora-edge", "agora-broker-setup", "agora-redis"):
        assert not _allowed(policies, postgres, 5432, pods[name]), name
    assert _allowed(policies, rabbitmq, 5672, pods["agora-edge"])
    assert _allowed(policies, rabbitmq, 15672, pods["agora-broker-setup"])
    assert _allowed(policies, redis, 6379, pods["agora-edge"])
    assert not _allowed(policies, rabbitmq, 5672, redis)
