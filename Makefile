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

# The whole story on 127.0.0.1 (scripts/demo/demo.py): Prometheus + the 4-agent scene +
# trainer + quantizer; stages 1-3 through the trainer RPC, PTQ, a live roll-out of the new
# model, FP32 -> INT8 -> FP32 swaps; summary and pictures in out/demo/. FULL=1 trains from
# scratch; KEEP=1 leaves the cluster and Prometheus running.
demo: build
	BUILD_DIR=$(BUILD_DIR) python3 scripts/demo/demo.py

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
