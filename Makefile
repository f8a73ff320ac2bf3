# flashstock — the habitual targets. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
BIN       ?= bin
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
# The build's version (internal/version): a release tag or the commit, and the commit id.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X github.com/flashstock/flashstock/internal/version.version=$(VERSION) \
             -X github.com/flashstock/flashstock/internal/version.revision=$(REVISION)

.PHONY: help build run unit test race lint vet staticcheck fmt-check fuzz bench cover tidy-check ci clean chaos

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build every command into bin/, stamped with the git version
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

run: build ## a 3-node cluster on loopback (stockd dev, three processes), Ctrl-C stops it
	$(BIN)/stockd dev $(DEV_FLAGS)

unit: ## the unit tier: no raft cluster, no process, no browser (go test -short), in seconds
	$(GO) test -short -count=1 $(PKGS)

test: ## the README's test command: every package, race detector on
	$(GO) test -race -count=1 $(PKGS)

race: test ## alias of test (it already runs with -race)

vet: ## go vet
	$(GO) vet $(PKGS)

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK) ## staticcheck, installed from the module proxy
	$(STATICCHECK) $(PKGS)

fmt-check: ## fail if any file is not gofmt-ed
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

lint: fmt-check vet staticcheck ## gofmt, go vet and staticcheck

fuzz: ## run each fuzz target for FUZZTIME
	$(GO) test ./fsm -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./fsm -run '^$$' -fuzz '^FuzzApply$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api -run '^$$' -fuzz '^FuzzDecodeBatchDeductRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api -run '^$$' -fuzz '^FuzzDecodeBatchDeductResponse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./placement -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(FUZZTIME)

bench: ## benchmarks (fsync on); compare runs with benchstat
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 3 ./fsm/ ./node/ ./client/

cover: ## coverage report in cover.html
	$(GO) test -coverprofile=cover.out $(PKGS)
	$(GO) tool cover -html=cover.out -o cover.html
	$(GO) tool cover -func=cover.out | tail -1

tidy-check: ## fail if go.mod/go.sum are not tidy
	$(GO) mod tidy -diff

ci: lint tidy-check test ## what .ci/run runs

clean:
	rm -rf $(BIN) cover.out cover.html

chaos: ## the chaos suite's long form: every scenario 3 times, longer; CHAOS_RESULTS=dir keeps failures
	$(GO) test -count=1 -timeout 90m -v ./cluster-test/ -chaos.long $(CHAOS_FLAGS)
