"""The production configuration: `check --deploy` passes, the manifests are well formed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_passes_under_production_settings(tmp_path):
    # given: the environment of a production process
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "PORTAL_"))
    }
    env.update(
        DJANGO_SECRET_KEY="a-production-like-secret-key-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="portal.example.org",
        DJANGO_SECURE_PROXY_SSL_HEADER="true",
        PORTAL_VAR_DIR=str(tmp_path),
    )

    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_kubernetes_manifests_probe_health_and_readiness_and_run_one_beat():
    # given
    documents = [
        document
        for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
    ]
    by_kind: dict[str, list[dict]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)

    # then
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    web = deployments["gpu-portal-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployments["gpu-portal-beat"]["spec"]["replicas"] == 1
    # a worker Deployment per queue, each taking its queue only
    served = {}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        if container["command"] == ["/app/bin/start-worker.sh"]:
            served[env["CELERY_QUEUES"]] = name
    assert served == {
        "decisions": "gpu-portal-worker-decisions",
        "scheduler": "gpu-portal-worker-scheduler",
        "mail": "gpu-portal-worker-mail",
        "celery": "gpu-portal-worker",
    }
    assert deployments["gpu-portal-beat"]["spec"]["strategy"]["type"] == "Recreate"
    assert {d["kind"] for d in documents} >= {
        "ConfigMap",
        "Secret",
        "Job",
        "Service",
        "HorizontalPodAutoscaler",
    }


def test_compose_file_starts_database_broker_web_workers_per_queue_and_one_beat():
    # given
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())

    # then
    services = compose["services"]
    workers = {"worker", "worker-decisions", "worker-scheduler", "worker-mail"}
    assert set(services) == {"db", "redis", "migrate", "web", "beat", *workers}
    assert {services[name]["environment"]["CELERY_QUEUES"]: name for name in workers} == {
        "celery": "worker",
        "decisions": "worker-decisions",
        "scheduler": "worker-scheduler",
        "mail": "worker-mail",
    }
    assert services["worker-decisions"]["deploy"]["replicas"] == 2
    assert services["worker-decisions"]["environment"]["CELERY_BROKER_URL"]
    assert "replicas" not in services["beat"].get("deploy", {})
