# The codex version matrix: each version of CODEX_VERSIONS (Makefile) in a
# folder of its own, .tools/codex-<version>/ (npm, like the pinned `codex`),
# and the real-codex e2e suite run against each in turn. `make test` keeps
# running the pinned one (.tools/codex), which this target does not need.
.PHONY: codex-matrix test-codex
CODEX_MATRIX_STAMPS := $(addprefix $(STAMPS)/codex-matrix-,$(CODEX_VERSIONS))
codex-matrix: $(CODEX_MATRIX_STAMPS) ## install every tested codex version under .tools/codex-<version>
$(STAMPS)/codex-matrix-%:
	@mkdir -p $(STAMPS) .tools/codex-$*
	[ -f .tools/codex-$*/package.json ] || echo '{"private":true}' > .tools/codex-$*/package.json
	npm install --prefix .tools/codex-$* --no-audit --no-fund --loglevel=error @openai/codex@$*
	.tools/codex-$*/node_modules/.bin/codex --version
	touch $@

# Every version runs even when one fails; the summary names the failures.
test-codex: venv codex-matrix ## the real-codex e2e suite on every version in CODEX_VERSIONS
	@failed=""; for v in $(CODEX_VERSIONS); do \
		echo "== codex $$v: tests/e2e (realcodex)"; \
		CODEX_IMAGE_SERVER_PROJECT_CODEX=$(CURDIR)/.tools/codex-$$v/node_modules/.bin/codex \
			$(PY) -m pytest tests/e2e -m realcodex -q -p no:cacheprovider $(PYTEST_ARGS) || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-codex FAILED on:$$failed"; exit 1; fi; \
	echo "test-codex passed on: $(CODEX_VERSIONS)"
