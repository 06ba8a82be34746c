.PHONY: test test-fast lint fix bench
test:        ## the README's test command
	uv run --dev pytest
test-fast:   ## everything but the process-spawning e2e tests (~2 min)
	uv run --dev pytest -m "not slow"
lint:
	uv run --dev ruff check . && uv run --dev ruff format --check . && uv run --dev mypy && uv run --dev lint-imports
fix:
	uv run --dev ruff check --fix . && uv run --dev ruff format .
bench:
	uv run sophia bench
