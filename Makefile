# siteops: `make run` starts the whole platform; `make test` runs the suite.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SITE ?=
SOURCES := siteops tests bench

.PHONY: help install run test lint bench worker beat flower clean

help:
	@echo "make run     start the whole platform (private Redis, SQLite, workers, beat, Flower)"
	@echo "make test    run the test suite (real Redis, real workers; PostgreSQL too when reachable)"
	@echo "make lint    ruff (with A005) and mypy"
	@echo "make bench   benchmarks, each printing a ratio against its anchor"
	@echo "make worker SITE=NORTH | make beat | make flower | make install | make clean"

# The virtual environment is (re)built when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,demo]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/siteops run

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/exporter_scrape.py
	$(BIN)/python bench/scan_cycle.py
	$(BIN)/python bench/odoo_fetch.py
	$(BIN)/python bench/sim_page.py
	$(BIN)/python bench/triage_accuracy.py
	$(BIN)/python bench/edi_inbound.py
	$(BIN)/python bench/carrier_rate.py

worker: $(STAMP)
	@test -n "$(SITE)" || { echo "usage: make worker SITE=NORTH"; exit 2; }
	$(BIN)/siteops worker --site $(SITE)

beat: $(STAMP)
	$(BIN)/siteops beat

flower: $(STAMP)
	$(BIN)/siteops flower

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
