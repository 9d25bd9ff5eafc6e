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
S3RVER_VERSION := 3.7.1

.PHONY: all build run test bench bench-check bench-identity bench-segments bench-traits bench-scoring bench-delivery bench-e2e tools clean

all: build

## build: compile everything and leave the command line runnable as bin/engine
build:
	$(DOTNET) build Engine.sln -c $(CONFIG) --nologo -v quiet
	$(DOTNET) publish engine/Engine.Cli/Engine.Cli.csproj -c $(CONFIG) --no-build --nologo -v quiet -o artifacts/engine
	@mkdir -p bin
	@printf '#!/bin/sh\n# Launcher for the engine command line published by `make build`.\nexec "$$(dirname "$$(readlink -f "$$0")")/../artifacts/engine/Engine.Cli" "$$@"\n' > bin/engine
	@chmod +x bin/engine
	@echo "built: bin/engine"

## run: the main job on the embedded default (a local folder): example workspace, generated data, every stage
run: build
	@test -f $(DEMO)/workspace.yaml || bin/engine init $(DEMO)
	bin/engine generate --people $(PEOPLE) --seed 1 --out $(DEMO)/data
	bin/engine validate --workspace $(DEMO)
	bin/engine run --workspace $(DEMO) --as-of $(AS_OF)

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
