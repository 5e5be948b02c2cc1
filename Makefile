# Two commands: `make quickstart` (train + explain on the bundled digits) and `make test`.
# Both create .venv when there is none and install the project with its pinned torch first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lit-xai-installed

.PHONY: install quickstart test benchmark study clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/lit-xai fit --config configs/quickstart.yaml

# The suite in parallel (pytest-xdist, one worker per core; TEST_WORKERS=0 runs it in one process). Tests
# that spawn DDP processes carry @pytest.mark.xdist_group("ddp"): --dist loadgroup runs them one after
# another on one worker while the other workers take the rest.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

benchmark: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/explainers.py
	$(BIN)/python benchmarks/expected_gradcam.py
	$(BIN)/python benchmarks/input_space.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/callback.py
	$(BIN)/python benchmarks/callback_ddp.py
	$(BIN)/python benchmarks/lrp.py
	$(BIN)/python benchmarks/high_resolution.py
	$(BIN)/python benchmarks/floor.py
	$(BIN)/python benchmarks/hyper_expected_gradcam.py

# The seed papers' claims re-tested (benchmarks/study.py): trains the study's models, writes docs/study.md.
study: $(STAMP)
	$(BIN)/python benchmarks/study.py

clean:
	rm -rf $(VENV) lightning_logs
