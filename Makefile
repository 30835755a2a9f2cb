# paas-svc developer tasks. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install images test unit multinode lint demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,serve,lint]'
	touch $@

# Stand-in images for the tests (built from Debian packages, cached by content hash).
images:
	bash tests/images/build.sh

# The whole suite, tier by tier: tests/unit on two workers; then tests/engine (the real Docker
# engine, two workers, each test file kept on one: `--dist loadfile`, a file's tests share its
# module fixtures) and tests/multinode (engines in containers, one worker: its tests share one
# set of node engines and mostly wait for them) side by side (the multinode tier's output is
# kept in test-artifacts/multinode.log and printed once both end); then, alone and last, the
# test that restarts dockerd (marker engine_restart). Every tier runs even when an earlier one
# failed; the target fails if any did. `$(BIN)/pytest` alone runs everything in that order, on
# one worker.
test: install images
	@mkdir -p test-artifacts
	status=0; \
	$(BIN)/pytest tests/unit -n 2 || status=1; \
	( $(BIN)/pytest tests/multinode -m "not engine_restart" -p no:cacheprovider > test-artifacts/multinode.log 2>&1; \
	  echo $$? > test-artifacts/multinode.rc ) & \
	$(BIN)/pytest tests/engine -n 2 --dist loadfile -m "not engine_restart" || status=1; \
	wait; \
	echo "==================== tests/multinode (run beside tests/engine) ===================="; \
	cat test-artifacts/multinode.log; \
	[ "$$(cat test-artifacts/multinode.rc)" = 0 ] || status=1; \
	$(BIN)/pytest tests -m engine_restart || status=1; \
	exit $$status

# tests/unit only: needs no Docker engine at all. Two workers: the key-rotation race test
# alone keeps one core busy for about 20 s.
unit: install
	$(BIN)/pytest tests/unit -n 2

# tests/multinode only: engines in containers (remote targets over TLS and ssh, a 3-node Swarm).
multinode: install images
	$(BIN)/pytest tests/multinode

# The architecture's rules (import-linter contracts in pyproject.toml: layers, nothing imports
# cli/ or api/, no import cycles) and ruff (unused names, import order, private names used
# across modules). Both run, and the target fails if either does.
lint: install
	$(BIN)/lint-imports; status=$$?; \
	$(BIN)/ruff check paas_svc tests bench || status=1; \
	exit $$status

# Provision a Redis in a throwaway home, print its DSN and dotenv line, remove it.
demo: install
	bash scripts/demo.sh

bench: install images
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) .pytest_cache
