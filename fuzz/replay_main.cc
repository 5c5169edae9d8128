// Corpus replay: runs a fuzz target over every file of the directories (or files) named on
// the command line, once each, in sorted order. This is how the ordinary (gcc, libFuzzer-
// less) build keeps every seed and every crash ever found as a regression test; with
// QV2X_SANITIZE it runs under the sanitizers too. A missing directory is skipped (a target
// may have no regressions yet); no input at all is an error. A single allocation above
// kMaxAllocation aborts, as the sanitizer builds' max_allocation_size_mb does, so that
// a file that makes a reader allocate gigabytes fails here too (overcommit would let it).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace fs = std::filesystem;

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define QV2X_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define QV2X_SANITIZED 1
#endif

#ifndef QV2X_SANITIZED
// Replaces the global operator new for the whole process (LibTorch's and protobuf's calls
// included); the sanitizers have their own.
constexpr size_t kMaxAllocation = size_t{1} << 30;

void* CheckedNew(size_t n) {
  if (n > kMaxAllocation) {
    std::fprintf(stderr, "replay: allocation of %zu bytes (over %zu): aborting\n", n,
                 kMaxAllocation);
    std::abort();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

void* operator new(size_t n) { return CheckedNew(n); }
void* operator new[](size_t n) { return CheckedNew(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else if (fs::is_directory(arg, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(arg)) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
    } else {
      std::fprintf(stderr, "replay: %s does not exist, skipped\n", argv[i]);
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs (usage: %s DIR_OR_FILE...)\n", argv[0]);
    return 2;
  }
  std::sort(inputs.begin(), inputs.end());
  size_t bytes = 0;
  for (const fs::path& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "replay: cannot read %s\n", p.c_str());
      return 2;
    }
    // Named before it runs, so that the input of a crash is the last line printed.
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", p.c_str(), data.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    bytes += data.size();
  }
  std::printf("replayed %zu inputs, %zu bytes\n", inputs.size(), bytes);
  return 0;
}
