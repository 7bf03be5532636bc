# Typed clients (Python, TypeScript, Go), buf lint/breaking, grpcurl.
# Every tool is pinned here or in clients/typescript/package-lock.json and
# installed into the project (.tools/bin, clients/typescript/node_modules).
# `make proto`            regenerate Python, Go and TypeScript stubs
# `make lint`             buf lint (STANDARD) + buf breaking (WIRE_JSON) vs the baseline,
#                         then ruff and mypy (mk/python-lint.mk)
# `make check-generated`  fail when checked-in Go/TS stubs differ from the protos
# `make grpcurl`          install grpcurl into .tools/bin
# `make proto-baseline`   record the released API as protos/baseline/v$(VERSION).binpb
#                         (when tagging a release; `make lint` checks against the newest)

PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4
BUF_VERSION := 1.75.0

TOOLS_BIN := .tools/bin
TS_DIR := clients/typescript
BUF_PREFIX := .tools/buf
BUF := $(BUF_PREFIX)/node_modules/.bin/buf
# The last released API: one baseline per release, named by its version.
BUF_BASELINE = $(lastword $(shell ls protos/baseline/v*.binpb | sort -V))
VERSION := $(shell cat VERSION)
GO_GEN := clients/go/codeximagev1
TS_GEN := $(TS_DIR)/src/gen
GO_INSTALL = GOBIN=$(abspath $(TOOLS_BIN)) GOFLAGS=-mod=mod go install

.PHONY: proto lint check-generated grpcurl buf go-plugins ts-deps client-install proto-baseline

# buf from npm: the package carries the native binary, so no Go build of buf.
# Its own prefix, like codex: the registry has only some of buf's optional
# per-platform packages, which `npm ci` in clients/typescript would refuse.
buf: $(STAMPS)/buf-$(BUF_VERSION)
$(STAMPS)/buf-$(BUF_VERSION):
	@mkdir -p $(STAMPS) $(BUF_PREFIX)
	[ -f $(BUF_PREFIX)/package.json ] || echo '{"private":true}' > $(BUF_PREFIX)/package.json
	npm install --prefix $(BUF_PREFIX) --no-audit --no-fund --loglevel=error --save-exact @bufbuild/buf@$(BUF_VERSION)
	$(BUF) --version
	touch $@

# Version in the stamp name: changing a pin reinstalls the tool.
go-plugins: $(STAMPS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION) $(STAMPS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
$(STAMPS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	@mkdir -p $(STAMPS) $(TOOLS_BIN)
	$(GO_INSTALL) google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	touch $@
$(STAMPS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	@mkdir -p $(STAMPS) $(TOOLS_BIN)
	$(GO_INSTALL) google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	touch $@

grpcurl: $(STAMPS)/grpcurl-$(GRPCURL_VERSION) ## install grpcurl into .tools/bin (needs Go)
$(STAMPS)/grpcurl-$(GRPCURL_VERSION):
	@mkdir -p $(STAMPS) $(TOOLS_BIN)
	$(GO_INSTALL) github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	touch $@

# protoc-gen-es, tsc and the Connect-ES runtime, all from the lockfile.
ts-deps: $(STAMPS)/ts-deps
$(STAMPS)/ts-deps: $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	@mkdir -p $(STAMPS)
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The client package (stubs, library, codex-image CLI) is its own editable
# install; a venv made before it was split out gets it here.
client-install: $(STAMPS)/venv
	@$(PY) -c 'import codeximage.v1.image_service_pb2, codex_image_client' 2>/dev/null \
		&& [ -x $(VENV)/bin/codex-image ] || $(PIP) install --quiet --no-deps -e ./$(PY_CLIENT)

# Every language's stubs are checked in, so `pip install`, `go get` and a
# plain `npm ci` work without protoc.
proto: gen-python buf go-plugins ts-deps ## regenerate the Python, Go and TypeScript stubs from protos/
	$(BUF) generate
	$(BUF) generate --template $(TS_DIR)/buf.gen.yaml

lint: buf ## buf lint and buf breaking against the last released API; ruff and mypy (mk/python-lint.mk)
	$(BUF) lint
	$(BUF) breaking --against $(BUF_BASELINE)

proto-baseline: buf
	$(BUF) build --exclude-source-info -o protos/baseline/v$(VERSION).binpb

# Regenerates into a temporary tree and compares with what is checked in.
check-generated: buf go-plugins ts-deps $(STAMPS)/venv ## fail when the checked-in stubs differ from the protos
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BUF) generate -o "$$tmp" && \
	$(BUF) generate --template $(TS_DIR)/buf.gen.yaml -o "$$tmp" && \
	mkdir -p "$$tmp/py" && $(MAKE) --no-print-directory -s gen-python OUT="$$tmp/py" && \
	diff -r "$$tmp/$(GO_GEN)" $(GO_GEN) && diff -r "$$tmp/$(TS_GEN)" $(TS_GEN) && \
	diff -r -x __init__.py -x __pycache__ "$$tmp/py/codeximage" $(GEN_PY)/codeximage -x py.typed \
		|| { echo "generated code is stale: run 'make proto' and commit the result" >&2; exit 1; }
	@echo "generated Python, Go and TypeScript stubs match the protos"

TEST_DEPS += client-install ts-deps buf go-plugins grpcurl
