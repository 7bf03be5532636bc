# The web console: TypeScript in web/ compiled by tsc into
# server/codex_image_shim/console_assets/ (checked in, so the server needs no
# Node at run time), and the headless Chromium its tests drive.
# `make console`        rebuild the console's assets
# `make check-console`  fail when the checked-in assets differ from web/src
# `make chromium`       Debian's chromium + chromium-driver (for tests/console)

WEB_DIR := web
CONSOLE_ASSETS := server/codex_image_shim/console_assets

.PHONY: console check-console chromium web-deps test-console

web-deps: $(STAMPS)/web-deps
$(STAMPS)/web-deps: $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	@mkdir -p $(STAMPS)
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

console: web-deps ## rebuild the web console's checked-in assets from web/src
	cd $(WEB_DIR) && node build.mjs $(abspath $(CONSOLE_ASSETS))

check-console: web-deps
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd $(WEB_DIR) && node build.mjs "$$tmp") && diff -r "$$tmp" $(CONSOLE_ASSETS) \
		|| { echo "console assets are stale: run 'make console' and commit the result" >&2; exit 1; }
	@echo "console assets match web/src"

# Debian's browser and driver: no browser download, works with the apt mirror only.
chromium: $(STAMPS)/chromium
$(STAMPS)/chromium:
	@mkdir -p $(STAMPS)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		$(APT_INSTALL) chromium chromium-driver fonts-dejavu-core
	chromium --version && chromedriver --version
	touch $@

test-console: setup chromium ## tests/console in headless Chromium
	$(PY) -m pytest tests/console -q $(PYTEST_ARGS)

TEST_DEPS += chromium web-deps

# Page weight and time to interactive of the console in headless Chromium.
.PHONY: bench-console
bench-console: setup chromium
	$(PY) bench/console_bench.py $(BENCH_ARGS)
