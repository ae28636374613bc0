# The Makefile only wraps commands; logic lives in code and scripts/.
CARGO ?= cargo
LISTEN ?= 127.0.0.1:8080
STORE ?= sqlite://./data/lethe.db

.PHONY: run test ci fmt fmt-check lint bench bench-quick

## Start the service on the embedded SQLite store.
run:
	$(CARGO) run --release --bin lethe -- serve --store $(STORE) --listen $(LISTEN)

## Every test, PostgreSQL included (a throwaway cluster when DATABASE_URL is unset).
test:
	./scripts/with-postgres $(CARGO) test --workspace --all-targets --locked

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

## What CI runs, in this order.
ci: fmt-check lint test
