# Recipes for people and CI. `just` itself comes from PyPI: pip install rust-just
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
bin := venv + "/bin"

# List the recipes
default:
    @just --list

# Create .venv and install ops with its development tools (idempotent)
setup:
    test -x {{bin}}/python || python3 -m venv {{venv}}
    {{bin}}/python -m pip install -q --disable-pip-version-check -e '.[dev]'

# Make sure a Docker engine answers (as root, installs Debian's docker.io and starts dockerd if none does)
docker:
    bash .ci/ensure-docker

# Make sure Debian's Chromium and npm are installed for the e2e tier (installs as root)
chromium:
    bash .ci/ensure-chromium

# Bring a stack up (default: the workshop)
up profile="workshop": setup docker
    {{bin}}/ops up {{profile}}

# Take a stack down, keeping its data volumes
down profile="workshop": setup
    {{bin}}/ops down {{profile}}

# Find what is wrong with a stack and say how to fix it
doctor profile="workshop": setup
    {{bin}}/ops doctor {{profile}}

# Lint (ruff, format check, mypy), then run the whole test suite (unit, integration, e2e); extra arguments go to pytest
test *args: setup lint docker chromium
    {{bin}}/pytest {{args}}

# Only the fast tier: no Docker, no network
test-unit *args: setup
    {{bin}}/pytest -m unit {{args}}

# Lint, format check, and type check as Linux, Windows and macOS see the code (mypy reads pyproject.toml)
lint: setup
    {{bin}}/ruff check ops tests stacks
    {{bin}}/ruff format --check ops tests stacks
    {{bin}}/mypy
    {{bin}}/mypy --platform win32 --cache-dir .mypy_cache/win32
    {{bin}}/mypy --platform darwin --cache-dir .mypy_cache/darwin

# Benchmarks: print figures (never asserted in tests)
bench profile="offline": setup docker
    {{bin}}/ops bench-gateway
    {{bin}}/ops bench-up {{profile}}
    {{bin}}/ops bench-stub --overhead
    {{bin}}/ops bench-stub --overhead --delay-ms 20 --concurrency 8,16,32

# Benchmark ops doctor on a healthy stack and with the network a black hole (brings the stack up and down)
bench-doctor profile="workshop": setup docker
    {{bin}}/ops bench-doctor {{profile}}

# Benchmark the WebGPU demo in Chromium: page load to first prediction, wasm vs WebGPU
bench-webgpu: setup chromium
    {{bin}}/ops bench-webgpu

# Benchmark a participant's wait in Open WebUI (Chromium), its background generations on vs off (brings the stack up and down)
bench-openwebui profile="offline" *args: setup docker chromium
    {{bin}}/ops bench-openwebui {{profile}} {{args}}

# Benchmark the Chainlit RAG app's ingest and top-5 retrieval on a generated corpus, against rank-bm25
bench-rag *args: setup
    {{bin}}/ops bench-rag {{args}}

# Re-create a bundled model (default: the committed tiny fp32 one); see ops/models/bundled/README.md
tiny-model *args: setup
    {{bin}}/python -m ops.models.tinymodel.make {{args}}
