# qv2x top-level entry points. `make test` installs what is missing, configures, builds
# and runs the default test suite.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure

.PHONY: all deps configure build test test-unit bench demo format clean

all: build

deps:
	@if ! ./scripts/install-deps.sh --check >/dev/null 2>&1; then ./scripts/install-deps.sh; fi

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

configure: $(BUILD_DIR)/build.ninja

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest $(CTEST_FLAGS) -j $(JOBS) -LE 'gpu|slow'

test-unit: build
	cd $(BUILD_DIR) && ctest $(CTEST_FLAGS) -j $(JOBS) -L unit

bench: build
	@for b in $(BUILD_DIR)/bench/*_bench; do echo "== $$b"; $$b --benchmark_min_time=0.2; done

# The 4-agent intersection on loopback (Ctrl-C stops it); metrics addresses are printed.
demo: build
	$(BUILD_DIR)/bin/qv2x scene up --config configs/scenes/intersection.yaml

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
