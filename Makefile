# raydar: `make dev` to run it locally, `make test` for everything CI checks, `make bench` for the
# performance targets of ../shared/DESIGN.md. Tool versions: tools/versions.env.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath .)
# One target dir for every checkout on this machine: a fresh clone (CI) rebuilds only what changed.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/raydar/target
export RAYDAR_LOCAL ?= $(ROOT)/.local
# Where raydar-server finds the built site (LEPTOS_OUTPUT_NAME is in .cargo/config.toml).
export LEPTOS_SITE_ROOT := $(ROOT)/target/site
CARGO_HOME ?= $(HOME)/.cargo
export PATH := $(RAYDAR_LOCAL)/bin:$(ROOT)/tools/node_modules/.bin:$(CARGO_HOME)/bin:$(PATH)
export KUBECONFIG := $(RAYDAR_LOCAL)/kubeconfig
RAYDAR_ADDR ?= 127.0.0.1:3000
SERVER := $(CARGO_TARGET_DIR)/release/raydar-server

.PHONY: help tools build controlplane dev stop test test-offline test-plane lint test-unit test-controlplane test-integration test-api-fuzz test-python test-e2e bench clean

help:
	@echo "make dev    set up what is missing, build, start the local control plane and raydar"
	@echo "make test   unit, integration (real control plane) and browser tests"
	@echo "make bench  freshness (list, cluster page, GPUs), first-load size, launch, live-log, log-archiving, abuse, fleet, several Kubernetes clusters, pipeline and history benchmarks"
	@echo "make stop   stop raydar and the local control plane (removes its state)"

tools:
	tools/install.sh all

# The server binary and the browser bundle (wasm, JS, CSS) under target/site.
build: tools
	# Lazy routes (launch, cluster page) and actions become wasm chunks loaded on use.
	tools/site.sh

# The local control plane, with raydar's CRD and the platform's vetted templates installed.
controlplane:
	deploy/local/build.sh
	deploy/local/up.sh
	deploy/local/objects.sh

dev: build controlplane
	scripts/raydar.sh start $(RAYDAR_ADDR)
	@echo
	@echo "raydar:     http://$(RAYDAR_ADDR)"
	@echo "kubectl:    source deploy/local/env.sh   (KUBECONFIG=$(KUBECONFIG))"
	@echo "try:        kubectl apply -f $(RAYDAR_LOCAL)/share/kuberay/samples/ray-cluster.sample.yaml"
	@echo "stop:       make stop"

stop:
	scripts/raydar.sh stop
	deploy/local/second-plane.sh down
	deploy/local/down.sh

# The checks that need no Kubernetes run while the control plane comes up and its install is
# checked (two cores: one compiling, one starting apiservers); then the suites that use it, in turn.
# Its build compiles the server as the suites do, and the suites (RAYDAR_BUILD, tools/site.sh).
test: export RAYDAR_BUILD = tests
test: build
	$(MAKE) -j2 --output-sync=target test-offline test-plane
	$(MAKE) test-integration test-api-fuzz test-python test-e2e

test-offline:
	$(MAKE) lint
	$(MAKE) test-unit

test-plane:
	$(MAKE) controlplane
	$(MAKE) test-controlplane

# House habits: rustfmt.toml's formatting, and no clippy warning. --release: clippy then reuses the
# build scripts and proc macros the release build compiled.
lint:
	cargo fmt --all --check
	cargo clippy --workspace --release -- -D warnings

test-unit:
	cargo test --release --workspace

# The control plane answers as the tests expect; raydar's install (deploy/kustomize) renders, is
# accepted under Pod Security "restricted", and grants raydar what can-i/*.txt says, no more.
test-controlplane:
	deploy/local/smoke.sh
	deploy/kustomize/check.py

# Same package selection and profile as test-unit, so cargo reuses that build instead of
# recompiling dependencies with other features; runs the tests that need the control plane (real
# Ray heads, kwok's pod logs, RBAC).
test-integration:
	cargo test --release --workspace --test live_capacity --test live_cluster --test live_contexts --test live_faults --test live_history --test live_lifecycle --test live_logs --test live_security --test live_tracing --test ray_readonly \
	  -- --ignored --test-threads=1

# schemathesis (tools/api-fuzz) against a real raydar on the local control plane, from raydar's own
# OpenAPI description, every check on. A high action rate, so the writes are tested rather than
# the limit (429 is documented and passes either way).
test-api-fuzz:
	RAYDAR_ACTION_RATE=100000 scripts/raydar.sh run -- tools/api-fuzz/run.sh

# The Python client and the Dagster resource (integrations/python) against a real raydar, real
# KubeRay and real Ray heads: pytest in a venv of pinned packages (dagster, httpx, pytest).
test-python:
	# Leases lapse after 20 s here, so a killed run's cluster is reclaimed within the test.
	venv=$$(tools/venv.sh python integrations/python/requirements.txt integrations/python) && \
	  RAYDAR_LEASE_TIMEOUT=20s scripts/raydar.sh run -- "$$venv/bin/pytest" -q -p no:cacheprovider integrations/python/tests

# The tests' shared raydar only shows idle clusters: the GPU test starts the one that acts.
test-e2e:
	RAYDAR_IDLE_RECLAIM=dry-run scripts/raydar.sh run -- npm --prefix end2end test

bench: build controlplane
	scripts/raydar.sh run -- node end2end/bench/freshness.mjs
	scripts/raydar.sh run -- node end2end/bench/pages.mjs
	scripts/raydar.sh run -- node end2end/bench/launch.mjs
	scripts/raydar.sh run -- node end2end/bench/logs.mjs
	RAYDAR_HISTORY_JOB_LOG_MIB=0 scripts/raydar.sh run -- node end2end/bench/archive.mjs
	scripts/raydar.sh run -- node end2end/bench/authz.mjs
	scripts/raydar.sh run -- node end2end/bench/abuse.mjs
	scripts/raydar.sh run -- node end2end/bench/fleet.mjs
	scripts/raydar.sh run -- node end2end/bench/contexts.mjs
	cargo bench -p raydar-server --bench gpus
	cargo bench -p raydar-server --bench history
	cargo bench -p raydar-platform --bench capacity
	venv=$$(tools/venv.sh python integrations/python/requirements.txt integrations/python) && \
	  scripts/raydar.sh run -- "$$venv/bin/python" integrations/python/bench/pipeline.py

clean:
	scripts/raydar.sh stop
	deploy/local/down.sh
	rm -rf target/site
