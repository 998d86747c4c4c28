# Sandman's entry points. Each target is a script under scripts/ so it also runs without make.
.PHONY: test setup dev demo bench measure build fmt lint docs-picture

test: ## Everything CI runs: Rust tests on DynamoDB Local, emulator tests, sam validate, arm64 build
	@scripts/test

setup: ## Install the tools into .cache/ (DynamoDB Local, SAM CLI, cargo-lambda, pytest)
	@scripts/setup

dev: ## Run the whole stack locally (DynamoDB Local, E2B emulator, all five functions, schedules)
	@scripts/dev

demo: ## Walk through the lifecycle against a local stack of its own
	@scripts/demo

bench: ## Benchmarks
	@scripts/bench

measure: ## arm64 binary sizes and start-up times
	@scripts/measure-binaries

build: ## sam build (arm64 bootstrap binaries under .aws-sam/)
	@scripts/setup && PATH="$(CURDIR)/.cache/venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build

fmt:
	cargo fmt --all

lint:
	cargo fmt --all --check && cargo clippy --workspace --all-targets -- -D warnings

docs-picture: ## docs/architecture.png from docs/architecture.dot (Graphviz: apt-get install graphviz)
	neato -Tpng -Gdpi=110 docs/architecture.dot -o docs/architecture.png
