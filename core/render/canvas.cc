#include "core/render/canvas.h"

#include <png.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/render/font5x7.h"

namespace qv2x::render {

Rgb Dim(Rgb c, double f) {
  auto s = [f](uint8_t v) { return static_cast<uint8_t>(std::lround(v * f)); };
  return {s(c.r), s(c.g), s(c.b)};
}

Canvas::Canvas(int width, int height, Rgb background)
    : width_(width), height_(height), pixels_(static_cast<size_t>(width) * height * 3) {
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb Canvas::At(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return {};
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
}

void Canvas::Set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  pixels_[i] = c.r;
  pixels_[i + 1] = c.g;
  pixels_[i + 2] = c.b;
}

void Canvas::Blend(int x, int y, Rgb c, double alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  auto mix = [alpha](uint8_t under, uint8_t over) {
    return static_cast<uint8_t>(std::lround(under + (over - under) * alpha));
  };
  pixels_[i] = mix(pixels_[i], c.r);
  pixels_[i + 1] = mix(pixels_[i + 1], c.g);
  pixels_[i + 2] = mix(pixels_[i + 2], c.b);
}

void Canvas::Line(double x0, double y0, double x1, double y1, Rgb c, int thickness) {
  // Parametric walk with one step per pixel of the longer axis.
  const double dx = x1 - x0, dy = y1 - y0;
  const int steps = std::max(1, static_cast<int>(std::ceil(std::max(std::abs(dx), std::abs(dy)))));
  // Skip lines that lie entirely outside (cheap reject for far-away geometry).
  if (std::max(x0, x1) < -thickness || std::min(x0, x1) > width_ + thickness ||
      std::max(y0, y1) < -thickness || std::min(y0, y1) > height_ + thickness) {
    return;
  }
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  for (int s = 0; s <= steps; ++s) {
    const double t = static_cast<double>(s) / steps;
    const int px = static_cast<int>(std::lround(x0 + t * dx));
    const int py = static_cast<int>(std::lround(y0 + t * dy));
    for (int ox = lo; ox <= hi; ++ox) {
      for (int oy = lo; oy <= hi; ++oy) Set(px + ox, py + oy, c);
    }
  }
}

void Canvas::DashedLine(double x0, double y0, double x1, double y1, Rgb c, double on, double off,
                        int thickness) {
  const double len = std::hypot(x1 - x0, y1 - y0);
  if (len <= 0) return;
  const double ux = (x1 - x0) / len, uy = (y1 - y0) / len;
  for (double s = 0; s < len; s += on + off) {
    const double e = std::min(len, s + on);
    Line(x0 + ux * s, y0 + uy * s, x0 + ux * e, y0 + uy * e, c, thickness);
  }
}

void Canvas::FillRect(int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = std::max(0, y0); y <= std::min(height_ - 1, y1); ++y) {
    for (int x = std::max(0, x0); x <= std::min(width_ - 1, x1); ++x) Set(x, y, c);
  }
}

void Canvas::Disc(double cx, double cy, double radius, Rgb c) {
  const int r = static_cast<int>(std::ceil(radius));
  for (int y = -r; y <= r; ++y) {
    for (int x = -r; x <= r; ++x) {
      if (x * x + y * y <= radius * radius) {
        Set(static_cast<int>(std::lround(cx)) + x, static_cast<int>(std::lround(cy)) + y, c);
      }
    }
  }
}

int Canvas::TextWidth(const std::string& text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

int Canvas::Text(int x, int y, const std::string& text, Rgb c, int scale) {
  int pen = x;
  for (char ch : text) {
    const char* const* g = Glyph(ch);
    for (int row = 0; row < kGlyphHeight; ++row) {
      for (int col = 0; col < kGlyphWidth; ++col) {
        // Unknown characters: an outlined box, so nothing silently disappears.
        const bool ink = g != nullptr ? g[row][col] == '#'
                                      : (row == 0 || row == kGlyphHeight - 1 || col == 0 ||
                                         col == kGlyphWidth - 1);
        if (ink)
          FillRect(pen + col * scale, y + row * scale, pen + (col + 1) * scale - 1,
                   y + (row + 1) * scale - 1, c);
      }
    }
    pen += kGlyphAdvance * scale;
  }
  return pen - x;
}

absl::StatusOr<std::string> Canvas::EncodePng() const {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width_);
  image.height = static_cast<png_uint_32>(height_);
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, pixels_.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    return absl::InternalError(absl::StrCat("PNG encoding failed: ", why));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, pixels_.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    return absl::InternalError(absl::StrCat("PNG encoding failed: ", why));
  }
  out.resize(size);
  return out;
}

}  // namespace qv2x::render
