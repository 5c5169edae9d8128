// BEV pictures: size, where points, boxes, predictions and agents land, and bad input.
#include "core/render/bev_png.h"

#include <png.h>

#include <filesystem>

#include "core/render/canvas.h"
#include "core/render/font5x7.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  render::Rgb At(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};

Image Decode(const std::string& png) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  Image out;
  if (!png_image_begin_read_from_memory(&img, png.data(), png.size())) return out;
  img.format = PNG_FORMAT_RGB;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) return Image{};
  return out;
}

bool Same(render::Rgb a, render::Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

// Ego at the world origin facing +x; a second agent 20 m ahead facing back (-x).
SceneFrame TwoAgents() {
  SceneFrame f;
  f.scenario = "unit";
  f.timestamp = "000001";
  f.ego_id = 0;
  AgentFrame ego;
  ego.agent_id = 0;
  ego.lidar_pose = {0, 0, 1.9, 0, 0, 0};
  for (int i = 0; i < 200; ++i) ego.points.push_back({5.0f, 10.0f, -1.9f, 0.2f});  // ground
  ego.points.push_back({-10.0f, 15.0f, 0.0f, 0.5f});                               // raised
  AgentFrame cav;
  cav.agent_id = 1;
  cav.lidar_pose = {20, 0, 1.9, 0, 180, 0};
  for (int i = 0; i < 200; ++i) cav.points.push_back({0.0f, 0.0f, -1.9f, 0.2f});
  cav.points.push_back({10.0f, 5.0f, 0.0f, 0.5f});  // world (10, -5) = ego (10, -5)
  f.agents = {ego, cav};
  GtObject truck;
  truck.id = 1000;
  truck.cls = ObjectClass::kTruck;
  truck.box = {30, 10, 1.5, 8, 3, 3, 0};
  truck.visible_to = {0};
  truck.points_by_agent = {50};
  f.objects = {truck};
  return f;
}

TEST(BevPngTest, PictureHasTheConfiguredSizeAndContent) {
  BevRenderOptions o;  // +-60 x +-32 m at 10 px/m
  const std::string path = ::testing::TempDir() + "/qv2x_bev/frame.png";
  ASSERT_TRUE(RenderBevPng(TwoAgents(), o, {}, path).ok());
  absl::StatusOr<std::string> bytes = RenderBevPngBytes(TwoAgents(), o, {});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(1, 3), "PNG");
  EXPECT_EQ(std::filesystem::file_size(path), bytes->size());
  const Image img = Decode(*bytes);
  ASSERT_EQ(img.width, 1200);
  ASSERT_EQ(img.height, 640);
  auto px = [&](double x, double y) {
    return img.At(static_cast<int>((x + 60) * 10), static_cast<int>((32 - y) * 10));
  };
  // Raised points in their agent's colour, at their ego-frame position (the second agent's
  // point went through its pose: 180 degrees about z and 20 m along x).
  const render::Rgb ego_colour = px(-10, 15), cav_colour = px(10, -5);
  EXPECT_GT(ego_colour.b, 200);  // ego: sky blue
  EXPECT_GT(cav_colour.r, 200);  // second agent: orange
  EXPECT_LT(cav_colour.b, 100);
  // Ground points of the same agent are drawn dimmer.
  const render::Rgb ground = px(5, 10);
  EXPECT_LT(ground.b, ego_colour.b);
  EXPECT_GT(ground.b, 40);
  // The truck's outline in the truck colour (yellow) along its left edge at y = 11.5.
  const render::Rgb edge = img.At((30 + 60) * 10, static_cast<int>((32 - 11.5) * 10));
  EXPECT_GT(edge.r, 200);
  EXPECT_GT(edge.g, 200);
  EXPECT_LT(edge.b, 100);
  // Inside the box, away from edges and heading line, stays background.
  EXPECT_TRUE(Same(px(27, 9), px(-43, -17)));
}

TEST(BevPngTest, PredictionsAreDrawnInWhite) {
  BevRenderOptions o;
  RenderBox p;
  p.cls = ObjectClass::kVehicle;
  p.box = {-30, -20, 0, 4, 2, 1.5, 0};
  p.score = 0.87;
  const Image img = Decode(*RenderBevPngBytes(TwoAgents(), o, {p}));
  // Bottom edge of the prediction at y = -21, x from -32 to -28.
  const render::Rgb edge = img.At((-30 + 60) * 10, (32 + 21) * 10);
  EXPECT_TRUE(Same(edge, {255, 255, 255}));
  const Image without = Decode(*RenderBevPngBytes(TwoAgents(), o, {}));
  EXPECT_FALSE(Same(without.At((-30 + 60) * 10, (32 + 21) * 10), {255, 255, 255}));
}

TEST(BevPngTest, BadInputIsAnError) {
  BevRenderOptions o;
  EXPECT_EQ(RenderBevPngBytes(SceneFrame{}, o, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.pixels_per_m = 0;
  EXPECT_EQ(RenderBevPngBytes(TwoAgents(), o, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.pixels_per_m = 1000;
  EXPECT_EQ(RenderBevPngBytes(TwoAgents(), o, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CanvasTest, TextUsesTheGlyphs) {
  render::Canvas c(20, 10, {0, 0, 0});
  EXPECT_EQ(c.Text(0, 0, "1", {255, 0, 0}), render::kGlyphAdvance);
  // The glyph '1' has ink in the middle column of every row but the first's corners.
  for (int row = 0; row < render::kGlyphHeight; ++row) EXPECT_EQ(c.At(2, row).r, 255) << row;
  EXPECT_EQ(c.At(0, 0).r, 0);
  EXPECT_EQ(render::Glyph('a'), render::Glyph('A'));
  EXPECT_EQ(render::Glyph('~'), nullptr);
  EXPECT_EQ(render::Canvas::TextWidth("ab", 2), 22);
}

}  // namespace
}  // namespace qv2x
