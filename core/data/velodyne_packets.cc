#include "core/data/velodyne_packets.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace qv2x {
namespace {

constexpr size_t kBlocks = 12;
constexpr size_t kBlockBytes = 100;
constexpr int kLasers = 16;

uint16_t U16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

float Vlp16LaserElevationDeg(int laser) {
  // Odd-numbered lasers point up, even-numbered ones down, interleaved 2° apart.
  return laser % 2 == 0 ? -15.0f + static_cast<float>(laser) : static_cast<float>(laser);
}

absl::StatusOr<PointCloud> DecodeVlp16Packets(const std::vector<absl::string_view>& packets,
                                              const std::string& origin, float max_range_m) {
  double sin_el[kLasers], cos_el[kLasers];
  for (int l = 0; l < kLasers; ++l) {
    const double e = Vlp16LaserElevationDeg(l) * kPi / 180.0;
    sin_el[l] = std::sin(e);
    cos_el[l] = std::cos(e);
  }
  PointCloud cloud;
  cloud.reserve(packets.size() * kBlocks * 2 * kLasers);
  for (size_t pi = 0; pi < packets.size(); ++pi) {
    const absl::string_view pkt = packets[pi];
    if (pkt.size() != kVlp16PacketBytes) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": packet ", pi, " has ", pkt.size(),
                                                     " bytes, a VLP-16 data packet ",
                                                     kVlp16PacketBytes));
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(pkt.data());
    uint16_t azimuth[kBlocks];
    for (size_t b = 0; b < kBlocks; ++b) {
      const unsigned char* blk = bytes + b * kBlockBytes;
      if (blk[0] != 0xFF || blk[1] != 0xEE) {
        return absl::InvalidArgumentError(absl::StrCat(origin, ": packet ", pi, " block ", b,
                                                       " does not start with the flag 0xFFEE"));
      }
      azimuth[b] = U16(blk + 2);
      if (azimuth[b] >= 36000) {
        return absl::InvalidArgumentError(absl::StrCat(origin, ": packet ", pi, " block ", b,
                                                       ": azimuth ", azimuth[b],
                                                       " is not below 36000 (0.01°)"));
      }
    }
    for (size_t b = 0; b < kBlocks; ++b) {
      // The step to the next block (the one before it for the last block), through 0°.
      const int other = b + 1 < kBlocks ? azimuth[b + 1] : azimuth[b - 1];
      int step = b + 1 < kBlocks ? other - azimuth[b] : azimuth[b] - other;
      if (step < 0) step += 36000;
      if (step > 1000) step = 0;  // dual-return pairs repeat an azimuth; gaps are not steps
      const unsigned char* blk = bytes + b * kBlockBytes;
      for (int seq = 0; seq < 2; ++seq) {
        const double az = (azimuth[b] + seq * step / 2.0) * kPi / 18000.0;
        const double sa = std::sin(az), ca = std::cos(az);
        for (int l = 0; l < kLasers; ++l) {
          const unsigned char* ret = blk + 4 + (seq * kLasers + l) * 3;
          const uint16_t raw = U16(ret);
          if (raw == 0) continue;
          const double r = raw * 0.002;
          if (r > max_range_m) continue;
          const double horizontal = r * cos_el[l];
          // Velodyne: x = h·sin(az) (right), y = h·cos(az) (forward), z = r·sin(el).
          cloud.push_back({static_cast<float>(horizontal * ca),
                           static_cast<float>(-horizontal * sa), static_cast<float>(r * sin_el[l]),
                           ret[2] / 255.0f});
        }
      }
    }
  }
  return cloud;
}

}  // namespace qv2x
