# systemd-analyze checks the service unit in tests/deploy (Linux). It comes
# with Debian's `systemd` package; installing it starts nothing.
.PHONY: systemd-analyze
systemd-analyze: $(STAMPS)/systemd-analyze
$(STAMPS)/systemd-analyze:
	@mkdir -p $(STAMPS)
	@if [ "$$(uname -s)" = Linux ] && ! command -v systemd-analyze >/dev/null; then \
		$(APT_INSTALL) systemd; \
	fi
	touch $@

TEST_DEPS += systemd-analyze
