// A 5x7 bitmap font (digits, upper-case letters and a few signs) for labels on pictures.
#ifndef QV2X_CORE_RENDER_FONT5X7_H_
#define QV2X_CORE_RENDER_FONT5X7_H_

namespace qv2x::render {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 7;
inline constexpr int kGlyphAdvance = 6;

// The glyph's 7 rows, each 5 characters where '#' is ink; nullptr when `c` has no glyph.
// Lower-case letters map to their upper-case glyphs.
const char* const* Glyph(char c);

}  // namespace qv2x::render

#endif  // QV2X_CORE_RENDER_FONT5X7_H_
