# systemd-analyze checks the service unit in tests/deploy (Linux). It comes
# with Debian's `systemd` package; installing it starts nothing.
.PHONY: systemd-analyze
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
systemd-analyze: $(STAMPS)/systemd-analyze
$(STAMPS)/systemd-analyze:
	@mkdir -p $(STAMPS)
	@if [ "$$(uname -s)" = Linux ] && ! command -v systemd-analyze >/dev/null; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends systemd; \
	fi
	touch $@

TEST_DEPS += systemd-analyze
