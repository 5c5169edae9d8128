// A small, portable, seedable random source for the simulator. Every distribution is
// implemented here (not with <random>'s distributions, whose output differs between
// standard libraries), so a seed gives the same numbers on every platform.
#ifndef QV2X_CORE_SIM_RNG_H_
#define QV2X_CORE_SIM_RNG_H_

#include <cstdint>
#include <initializer_list>

namespace qv2x::sim {

// SplitMix64 finaliser: a bijective 64-bit mix.
uint64_t Mix64(uint64_t x);

// Derives an independent stream key from a seed and a list of labels (e.g. scenario,
// frame, agent), so any frame's randomness can be produced without drawing earlier ones.
uint64_t StreamKey(uint64_t seed, std::initializer_list<int64_t> labels);

// xoshiro256** seeded through SplitMix64.
class Rng {
 public:
  explicit Rng(uint64_t key);

  uint64_t Next();
  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n) (n > 0), without modulo bias.
  int64_t Below(int64_t n);
  // Standard normal (Marsaglia's polar method; the spare value is kept).
  double Normal();
  bool Bernoulli(double p) { return Uniform() < p; }

 private:
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace qv2x::sim

#endif  // QV2X_CORE_SIM_RNG_H_
