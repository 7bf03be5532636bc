# Python habits: ruff (lint, then the formatter's check) and mypy, pinned in
# pyproject.toml's dev extra and configured there. `make lint` runs them beside
# buf (mk/clients.mk); `make test` runs them before the suite.
# FORMAT_CHECK=no skips `ruff format --check` and the line-length rule (E501),
# which the formatter satisfies for code: for a tree not yet formatted
# (`.venv/bin/ruff format .` once, as one mechanical commit, then set yes).
FORMAT_CHECK ?= yes
RUFF := $(VENV)/bin/ruff
MYPY := $(VENV)/bin/mypy

.PHONY: lint-python
lint: lint-python
lint-python: $(STAMPS)/venv ## ruff check, ruff format --check and mypy (FORMAT_CHECK=no skips formatting)
ifeq ($(FORMAT_CHECK),yes)
	$(RUFF) check .
	$(RUFF) format --check .
else
	$(RUFF) check --extend-ignore E501 .
endif
	$(MYPY)

TEST_DEPS += lint-python
