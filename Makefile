# The two commands a newcomer runs: `make run` and `make test`. Both install what they need themselves.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIG ?= Release
PEOPLE ?= 20000
PROFILES ?= 1000000
ROWS ?= 10000000
DEMO ?= demo
# The generated history ends here (engine generate's default): the demo night runs as of that day, so the windows
# of traits and of the churn model's labels fall on data.
AS_OF ?= 2026-11-01
# make run simulates this many days past AS_OF, one of which each further night appends.
FUTURE_DAYS ?= 30
# The demo's webhook receiver listens on 127.0.0.1 at this port (written into the workspace by the first night), and
# the webhook destination and receiver share this secret through the MESSAGING_WEBHOOK_SECRET variable.
WEBHOOK_PORT ?= 8787
DEMO_WEBHOOK_SECRET ?= make-run-demo-secret
S3RVER_VERSION := 3.7.1

.PHONY: all build run test bench bench-check bench-identity bench-segments bench-traits bench-scoring bench-delivery bench-e2e tools clean

all: build

## build: compile everything and leave the command line runnable as bin/engine
build:
	$(DOTNET) build Engine.sln -c $(CONFIG) --nologo -v quiet
	$(DOTNET) publish engine/Engine.Cli/Engine.Cli.csproj -c $(CONFIG) --no-build --nologo -v quiet -o artifacts/engine
	$(DOTNET) publish connectors/Engine.WebhookReceiver/Engine.WebhookReceiver.csproj -c $(CONFIG) --no-build --nologo -v quiet -o artifacts/webhook-receiver
	@mkdir -p bin
	@printf '#!/bin/sh\n# Launcher for the engine command line published by `make build`.\nexec "$$(dirname "$$(readlink -f "$$0")")/../artifacts/engine/Engine.Cli" "$$@"\n' > bin/engine
	@chmod +x bin/engine
	@echo "built: bin/engine"

## run: one night of the demo on the embedded default (a local folder): an example workspace in $(DEMO)/, 200,000
## generated people, every stage, delivery to two file exports and a webhook (a local receiver runs for the night),
## then a summary and the run report's path. Each further `make run` is the next night: a day of new events for the
## same people, identity on the new files only, and only the segments' changes delivered. Start again: make clean.
run: PEOPLE = 200000
run: build
	@DEMO=$(DEMO) PEOPLE=$(PEOPLE) AS_OF=$(AS_OF) FUTURE_DAYS=$(FUTURE_DAYS) WEBHOOK_PORT=$(WEBHOOK_PORT) \
		MESSAGING_WEBHOOK_SECRET=$(DEMO_WEBHOOK_SECRET) ENGINE=bin/engine RECEIVER=artifacts/webhook-receiver/Engine.WebhookReceiver \
		bash scripts/demo-night.sh

## tools: test dependencies that are not NuGet packages (the s3rver S3 protocol server, from npm)
tools:
	@test -x .tools/s3rver/node_modules/.bin/s3rver || npm install --silent --no-audit --no-fund --prefix .tools/s3rver s3rver@$(S3RVER_VERSION)

## test: every test; ends with one line `N passed, N failed`
test: tools
	@bash scripts/test.sh

## bench: BenchmarkDotNet benchmarks (generation rate, Parquet read throughput vs DuckDB, local and S3)
bench: tools
	$(DOTNET) run -c $(CONFIG) --project benchmarks/Engine.Benchmarks -- $(ARGS)

## bench-check: run each benchmark case once and verify its result (cheap enough for CI)
bench-check: tools
	$(DOTNET) run -c $(CONFIG) --project benchmarks/Engine.Benchmarks -- --check

## bench-identity: the identity stage on PEOPLE generated people beside DuckDB's label propagation (make bench-identity PEOPLE=10000000)
bench-identity:
	$(DOTNET) run -c $(CONFIG) --project benchmarks/Engine.Benchmarks -- --identity-scale --people $(PEOPLE) --keep

## bench-segments: 100 segment conditions and their deltas on PROFILES profiles beside DuckDB (make bench-segments PROFILES=10000000)
bench-segments:
	$(DOTNET) run -c $(CONFIG) --project benchmarks/Engine.Benchmarks -- --segments-scale --profiles $(PROFILES)

## bench-traits: the profiles stage (example workspace's attributes and traits) on PEOPLE generated people beside DuckDB's GROUP BY (make bench-traits PEOPLE=1000000)
bench-traits:
	$(DOTNET) run -c $(CONFIG) --project benchmarks/Engine.Benchmarks -- --traits-scale --people $(PEOPLE) --keep

## bench-scoring: batch scoring of ROWS profiles (LightGbm, 200 trees, 30 features): compiled evaluator beside ML.NET's Transform and PredictionEngine (make bench-scoring ROWS=10000000)
bench-scoring:
	$(DOTNET) run -c $(CONFIG) --project benchmarks/Engine.Benchmarks -- --scoring-scale --rows $(ROWS)

## bench-delivery: delivery workers against their rate limits: one webhook destination at 200 requests/s, ten at once (20..200/s), and the worker's ceiling without the network (make bench-delivery PEOPLE=20000)
bench-delivery:
	$(DOTNET) run -c $(CONFIG) --project benchmarks/Engine.Benchmarks -- --delivery-throughput --people $(PEOPLE) --seconds 10

## bench-e2e: the whole nightly run (engine run, two nights) on PEOPLE generated people (default 1000000) beside the same work in DuckDB SQL, per stage, end to end and peak memory (make bench-e2e PEOPLE=10000000; DATA=folder reuses generated data elsewhere)
bench-e2e: PEOPLE = 1000000
bench-e2e: build
	$(DOTNET) run -c $(CONFIG) --no-build --project benchmarks/Engine.Benchmarks -- --e2e-scale --people $(PEOPLE) --engine artifacts/engine/Engine.Cli --keep $(if $(DATA),--data $(DATA),)

clean:
	rm -rf artifacts bin $(DEMO)
	$(DOTNET) clean Engine.sln -v quiet --nologo
