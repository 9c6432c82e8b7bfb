# Shenava: `make up` runs the service on the embedded stack, `make test` runs the tests.
# Both install what is missing first: Debian ffmpeg/espeak-ng, the venv, the assembled model.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLI := $(VENV)/bin/shenava
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install system-deps model up test test-fast lint bench clean

install: system-deps $(STAMP) $(CLI) model

# ffmpeg and espeak-ng for the service and its tests; chromium and its driver for the console's
# browser tests (Debian's, driven by selenium: nothing is downloaded by the tests themselves).
system-deps:
	@packages=""; \
	for tool in ffmpeg ffprobe espeak-ng; do command -v $$tool >/dev/null || packages="ffmpeg espeak-ng"; done; \
	for tool in chromium chromedriver; do command -v $$tool >/dev/null || packages="$$packages chromium chromium-driver"; done; \
	if [ -n "$$packages" ]; then \
		echo "installing$$packages (Debian packages)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$packages >/dev/null; \
	fi

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

# the `shenava` command line, as a console script of the project (pyproject.toml)
$(CLI): pyproject.toml $(STAMP)
	$(PY) -m pip install -q --no-deps -e .
	@touch $(CLI)

model: $(STAMP)
	@$(PY) -m functions.transcribe.model_cache

up: install
	$(PY) -m infra.supervisor

test: install
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m mypy events functions infra bench tests shenava_cli
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m bench.wer
	$(PY) -m bench.pipeline_overhead
	$(PY) -m bench.harf_stream
	$(PY) -m bench.job_index --sizes 10000
	$(PY) -m bench.diarization

clean:
	rm -rf .shenava .pytest_cache .mypy_cache .ruff_cache
