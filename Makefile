# The two commands of the README:
#   make run    install what is missing, build, start herald on 127.0.0.1:8080
#   make test   install what the tests need, build, run every test
BUILD ?= build
# CI=true (set by .ci/run): warnings in herald's own code are errors (HERALD_WERROR).
PRESET_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo $(if $(filter true 1,$(CI)),-DHERALD_WERROR=ON)
ARGS ?=
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true

FUZZ_SECONDS ?= 60

.PHONY: run test build configure deps test-deps bench fuzz deb clean

run: build
	$(BUILD)/src/herald --web-root web --namespace demo:client_publish=true $(ARGS)

# The suite in $(BUILD), then again under the sanitizers (build-asan, build-tsan):
# scripts/sanitize.sh, docs/fuzzing.md.
test: test-deps build
	cd $(BUILD) && ctest --output-on-failure --timeout 600
	scripts/sanitize.sh

build: configure
	ninja -C $(BUILD)
	scripts/build-web.sh

configure: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja $(PRESET_FLAGS)

deps:
	@scripts/setup.sh build

test-deps:
	@scripts/setup.sh test

bench: build
	bench/standard.sh

# libFuzzer targets (clang, ASan+UBSan) in build-fuzz/, FUZZ_SECONDS each: docs/fuzzing.md
fuzz:
	@scripts/setup.sh fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# The Debian package from a Release build in build-release/ (docs/operations.md):
# build-release/package/herald_<version>-1_<arch>.deb
deb:
	@scripts/setup.sh deb
	scripts/package.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz build-release build-package
