# qv2x top-level entry points. `make test` installs what is missing, configures, builds
# and runs the default test suite.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure

.PHONY: all deps configure build test test-unit bench demo format clean sanitize-deps \
	test-sanitize test-tsan fuzz-long

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

# Every benchmark binary and the PyTorch side-by-side; bench/results/latest.json and one
# table (scripts/bench-report.py). BENCH_FLAGS=--no-pytorch skips the PyTorch side.
bench: build
	cmake --build $(BUILD_DIR) -j $(JOBS) --target benches
	/usr/bin/python3 scripts/bench-report.py --build $(BUILD_DIR) $(BENCH_FLAGS)

# The whole story on 127.0.0.1 (scripts/demo/demo.py): Prometheus + the 4-agent scene +
# trainer + quantizer; stages 1-3 through the trainer RPC, PTQ, a live roll-out of the new
# model, FP32 -> INT8 -> FP32 swaps; summary and pictures in out/demo/. FULL=1 trains from
# scratch; KEEP=1 leaves the cluster and Prometheus running.
demo: build
	BUILD_DIR=$(BUILD_DIR) python3 scripts/demo/demo.py

# Sanitizer and fuzzing builds (docs/RELIABILITY.md, cmake/Qv2xSanitize.cmake), each in its
# own clang tree. test-sanitize: the whole default suite under ASan + UBSan plus a bounded
# libFuzzer run of every fuzz/ target (ctest label fuzz, FUZZ_SECONDS each). test-tsan:
# the frame assembler, the fusion service and the agent control path (the cluster
# integration tests) under ThreadSanitizer. fuzz-long: FUZZ_RUNS executions per target.
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
FUZZ_SECONDS ?= 30
FUZZ_RUNS ?= 1000000
TSAN_TESTS ?= ^(fusion_frame_assembler_test|cluster_rpc_test)$$
TSAN_TARGETS ?= fusion_frame_assembler_test cluster_rpc_test
# Not run under ASan: load_short's check that resident memory stays flat, which ASan's
# quarantine of freed memory (256 MiB a process) defeats by design; and, to keep CI inside
# its time, the tests that run no qv2x input handling of their own (the Kubernetes manifest
# validator, the PyTorch reference comparison, the INT8 kernels' second range setting).
ASAN_EXCLUDE ?= ^(load_short|deploy_k8s_.*|model_forward_reference|quant_int8_reduced_range_test)$$
SAN_CMAKE = cmake -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
	-DQV2X_BUILD_BENCH=OFF "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG"
# Sanitizer builds yield the CPU to ordinary builds on a shared machine.
SAN_NICE ?= nice -n 10

sanitize-deps: deps
	@command -v clang++ >/dev/null && ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
	  >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq clang libclang-rt-dev llvm; }

$(ASAN_DIR)/build.ninja:
	$(SAN_CMAKE) -S . -B $(ASAN_DIR) -DQV2X_FUZZ=ON -DQV2X_FUZZ_SECONDS=$(FUZZ_SECONDS) $(CMAKE_FLAGS)

$(TSAN_DIR)/build.ninja:
	$(SAN_CMAKE) -S . -B $(TSAN_DIR) -DQV2X_SANITIZE=thread $(CMAKE_FLAGS)

test-sanitize: sanitize-deps $(ASAN_DIR)/build.ninja
	$(SAN_NICE) cmake --build $(ASAN_DIR) -j $(JOBS)
	QV2X_SANITIZER=address,undefined . sanitizers/options.sh && cd $(ASAN_DIR) && \
	  ctest $(CTEST_FLAGS) -j $(JOBS) -LE 'gpu|slow' -E '$(ASAN_EXCLUDE)'

test-tsan: sanitize-deps $(TSAN_DIR)/build.ninja
	$(SAN_NICE) cmake --build $(TSAN_DIR) -j $(JOBS) --target $(TSAN_TARGETS)
	QV2X_SANITIZER=thread . sanitizers/options.sh && cd $(TSAN_DIR) && \
	  ctest $(CTEST_FLAGS) -j $(JOBS) -R '$(TSAN_TESTS)'

fuzz-long: sanitize-deps $(ASAN_DIR)/build.ninja
	$(SAN_NICE) cmake --build $(ASAN_DIR) -j $(JOBS) --target qv2x_fuzz_all
	cd $(ASAN_DIR) && ctest $(CTEST_FLAGS) -R '^fuzz_seeds$$'
	./fuzz/fuzz-long.sh $(ASAN_DIR) $(FUZZ_RUNS)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR)
