# webtier: the two commands are `make deploy` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup controller collection changelog new-env lint secrets unit engines consumer scaffold molecule test deploy pyinfra drills noop-times render capacity loadtest ws-bench h2-bench asgi-bench queue queue-bench db-bench benchmark sandbox-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: ## venv, container engine, base images (idempotent)
	@scripts/setup.sh

controller: ## controller only, for deploying over SSH: venv and collections, no container engine
	@scripts/setup.sh --controller

collection: ## build the collection artifact build/webtier-stack-<version>.tar.gz
	@scripts/build-collection.sh build

changelog: ## release the changelog fragments under galaxy.yml's version (CHANGELOG.md)
	@antsibull-changelog release

new-env: ## a new environment: inventory skeleton and encrypted vault (ENV=name)
	@test -n "$(ENV)" || { echo "give the environment's name: make new-env ENV=staging2"; exit 2; }
	@webtier-new-env inventory/$(ENV)

lint: ## yamllint, ansible-lint (production profile), ruff
	@scripts/test.sh lint

secrets: ## secret scan of the repository (detect-secrets, reviewed .secrets.baseline, vault rule)
	@python -m webtier.checks.secretscan

unit: ## unit tests of templates, package and toolchain (under a minute)
	@scripts/test.sh unit

engines: ## both engines over every inventory, no host contacted (parity, preflight)
	@scripts/test.sh engines

consumer: ## another project installs the built collection and converges a container with it
	@scripts/test.sh consumer

scaffold: ## webtier-new-env --local end to end: converge, a release under load on one app host, pyinfra, teardown
	@scripts/test.sh scaffold

molecule: ## molecule test of every role scenario, Debian 13 and 12
	@scripts/test.sh molecule

test: ## everything CI runs: setup, lint, unit, engines, molecule (prints stage times)
	@scripts/test.sh all

deploy: setup ## converge the local sandbox and show it serving
	@scripts/deploy.sh

pyinfra: ## converge the sandbox (or WEBTIER_INVENTORY=inventory/<env>) with the pyinfra engine
	@webtier-pyinfra $(or $(WEBTIER_INVENTORY),inventory/sandbox) -y

drills: ## failure drills under load on the deployed sandbox or ENV (DRILL=all|rolling|reloads|...)
	@python -m webtier.ops.drills $(or $(DRILL),all) --inventory inventory/$(or $(ENV),sandbox)

noop-times: ## no-op re-run time of pyinfra and of Ansible on the deployed sandbox, one run
	@scripts/noop-times.sh

render: ## every config file of every host of ENV into OUT (no host touched), nginx's through gixy-ng
	@python -m webtier.files.configs inventory/$(or $(ENV),sandbox) --out $(or $(OUT),reports/render/$(or $(ENV),sandbox))
	@python -m webtier.checks.nginxscan $(or $(OUT),reports/render/$(or $(ENV),sandbox))

capacity: ## the capacity model of an environment (ENV=sandbox; ARGS=--arrival 50: a queue's growth)
	@python -m webtier.model.capacity inventory/$(or $(ENV),sandbox) $(ARGS)

loadtest: ## wrk sweep against the deployed sandbox's load balancer, with a report
	@ansible-playbook playbooks/loadtest.yml

ws-bench: ## hold 1,000 WebSockets through the sandbox's load balancer for 30 s (ARGS=... to change)
	@python -m webtier.ops.wsbench $(ARGS)

h2-bench: ## HTTP/2 over TLS through the sandbox's load balancer: h2load, 10,000 streams
	@h2load -n 10000 -c 100 -m 100 https://127.0.0.1:8443/ | grep -E "^(finished|requests|status codes|Application protocol|TLS Protocol)|^ *(time for request|req/s) "

queue: ## the work queue's depth and its workers' state (ENV=sandbox)
	@ansible-playbook -i inventory/$(or $(ENV),sandbox) playbooks/queue.yml

asgi-bench: ## ASGI's fast path against its slow path, A/B through lb1:8090 (ARGS=--rounds 3)
	@python -m webtier.ops.asgibench $(ARGS)

queue-bench: ## / at 256 connections alone, beside CPU-bound work inline, and beside it queued
	@python -m webtier.ops.queuebench $(ARGS)

db-bench: ## the Django demo's database-backed endpoint at 2,048 connections; server connections against the pool
	@scripts/db-bench.sh

benchmark: setup ## distro-defaults against tuned, deployed and load-tested in one run
	@scripts/benchmark.sh

sandbox-down: ## destroy the sandbox containers, the load generator and the network
	@ansible-playbook playbooks/sandbox.yml -e sandbox_state=absent

clean: sandbox-down ## remove the sandbox and the virtualenv
	rm -rf $(VENV) .cache
