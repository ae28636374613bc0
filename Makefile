# The Makefile only wraps commands; logic lives in code and scripts/.
CARGO ?= cargo
LISTEN ?= 127.0.0.1:8080
STORE ?= sqlite://./data/lethe.db

.PHONY: run test ci fmt fmt-check lint bench bench-quick

## Start the service on the embedded SQLite store; on first start, print one token per role.
run:
	$(CARGO) run --release --bin lethe -- serve --store $(STORE) --listen $(LISTEN) --bootstrap-tokens

## Every test, PostgreSQL included (a throwaway cluster when DATABASE_URL is unset).
test:
	./scripts/with-postgres $(CARGO) test --workspace --all-targets --locked

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

## The benchmark (bench/): Lethe beside raw sqlx and postgres-es on SQLite and
## a throwaway PostgreSQL (fsync on); prints a table, writes bench/results/latest.json.
bench:
	./scripts/with-postgres $(CARGO) run --release --locked -p bench --bin lethe-bench

## A smoke run of the benchmark (short windows, under two minutes).
bench-quick:
	./scripts/with-postgres $(CARGO) run --release --locked -p bench --bin lethe-bench -- --quick

## What CI runs, in this order.
ci: fmt-check lint test
