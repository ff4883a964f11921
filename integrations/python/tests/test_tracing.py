"""A pipeline's span is the parent of raydar's trace of its launch: with OpenTelemetry installed,
the client sends the current span as ``traceparent``; a raydar of the test's own exports its
traces to a real Jaeger (``$RAYDAR_LOCAL/bin/jaeger``, deploy/local/jaeger.yaml), which then
holds raydar's request span as the pipeline span's child."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

import raydar
from conftest import Namespace, eventually

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def started(command: list[str], env: dict[str, str], ready: str) -> subprocess.Popen[bytes]:
    """`command` running with `env` added, once `ready` answers 200."""
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def answers() -> bool:
        try:
            return httpx.get(ready, timeout=2).is_success
        except httpx.TransportError:
            assert process.poll() is None, f"{command[0]} exited with {process.returncode}"
            return False

    eventually(f"{command[0]} answers at {ready}", answers, within=60)
    return process


@pytest.fixture
def traced_raydar(url: str) -> Iterator[tuple[str, str]]:
    """A raydar exporting traces to a Jaeger of its own: raydar's URL and Jaeger's query URL."""
    local = Path(os.environ.get("RAYDAR_LOCAL", REPO / ".local"))
    otlp, query, query_grpc, port = free_port(), free_port(), free_port(), free_port()
    jaeger = started(
        [str(local / "bin/jaeger"), "--config", str(REPO / "deploy/local/jaeger.yaml")],
        {"JAEGER_OTLP_PORT": str(otlp), "JAEGER_QUERY_PORT": str(query),
         "JAEGER_QUERY_GRPC_PORT": str(query_grpc)},
        f"http://127.0.0.1:{query}/api/services",
    )
    data = tempfile.mkdtemp(prefix="raydar-tracing-")
    server = started(
        [os.environ["RAYDAR_SERVER"], "--addr", f"127.0.0.1:{port}", "--auth", "dev",
         "--data-dir", data, "--idle-reclaim", "off"],
        {"KUBECONFIG": os.environ["RAYDAR_SERVER_KUBECONFIG"],
         "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp}",
         "OTEL_BSP_SCHEDULE_DELAY": "200"},
        f"http://127.0.0.1:{port}/readyz",
    )
    try:
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{query}"
    finally:
        for process in (server, jaeger):
            process.terminate()
            process.wait(timeout=10)


def test_a_launch_from_a_pipeline_span_is_that_spans_child(
    traced_raydar: tuple[str, str], namespace: Namespace
) -> None:
    base, jaeger = traced_raydar
    tracer = TracerProvider().get_tracer("a dagster pipeline")
    client = raydar.Client(base, token=namespace.token())
    with tracer.start_as_current_span("train step") as step:
        client.launch("cpu-small", namespace.name, "traced", {"workers": 0})
    context = step.get_span_context()
    trace_id, step_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"

    def launch_span() -> Any:
        got = httpx.get(f"{jaeger}/api/traces/{trace_id}", timeout=5)
        spans = got.json()["data"][0]["spans"] if got.is_success else []
        return next((s for s in spans if s["operationName"] == "POST /api/v1/clusters"), None)

    span = eventually("raydar's launch span in Jaeger", launch_span, within=30)
    parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
    assert parents == [step_id], span
    client.teardown(namespace.name, "traced")
