// A small RGB raster with the drawing primitives the BEV renderer needs (pixels, lines,
// dashed lines, discs, rectangles, 5x7 bitmap text) and PNG encoding through libpng.
#ifndef QV2X_CORE_RENDER_CANVAS_H_
#define QV2X_CORE_RENDER_CANVAS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qv2x::render {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};
// Colour scaled towards black (factor in [0, 1]).
Rgb Dim(Rgb c, double factor);

class Canvas {
 public:
  Canvas(int width, int height, Rgb background);

  int width() const { return width_; }
  int height() const { return height_; }
  Rgb At(int x, int y) const;
  const std::vector<uint8_t>& rgb() const { return pixels_; }

  // All drawing clips to the canvas.
  void Set(int x, int y, Rgb c);
  // Mixes `c` over the pixel with weight alpha in [0, 1].
  void Blend(int x, int y, Rgb c, double alpha);
  void Line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  // Dashes `on` pixels long with `off` pixel gaps.
  void DashedLine(double x0, double y0, double x1, double y1, Rgb c, double on, double off,
                  int thickness = 1);
  void FillRect(int x0, int y0, int x1, int y1, Rgb c);
  void Disc(double cx, double cy, double radius, Rgb c);
  // Text in a 5x7 font scaled by `scale`, top-left at (x, y). Lower case is drawn as upper
  // case; characters without a glyph are drawn as a box. Returns the width in pixels.
  int Text(int x, int y, const std::string& text, Rgb c, int scale = 1);
  static int TextWidth(const std::string& text, int scale = 1);

  absl::StatusOr<std::string> EncodePng() const;

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;  // row-major RGB
};

}  // namespace qv2x::render

#endif  // QV2X_CORE_RENDER_CANVAS_H_
