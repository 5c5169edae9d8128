#include "core/config/yaml_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qv2x {
namespace {

using ::testing::HasSubstr;

YamlReader Doc(const std::string& text) {
  auto r = YamlReader::FromString(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(YamlReaderTest, ReadsTypedScalars) {
  YamlReader r = Doc("i: 8\nd: 0.25\nneg: -3\nb: true\ns: hello\ne: b\nz: 0\n");
  EXPECT_EQ(*r.PositiveInt("i"), 8);
  EXPECT_DOUBLE_EQ(*r.PositiveDouble("d"), 0.25);
  EXPECT_EQ(*r.Int("neg"), -3);
  EXPECT_TRUE(*r.Bool("b"));
  EXPECT_EQ(*r.String("s"), "hello");
  EXPECT_EQ(*r.Enum("e", {"a", "b"}), "b");
  EXPECT_EQ(*r.NonNegativeInt("z"), 0);
  EXPECT_TRUE(r.Finish().ok());
}

TEST(YamlReaderTest, TypeErrorsNamePathAndValue) {
  YamlReader r = Doc("train_params:\n  batch_size: eight\n  lr: -1\n  n: 2.5\n  q: \"8\"\n");
  auto tp = r.Map("train_params");
  ASSERT_TRUE(tp.ok());
  EXPECT_EQ(tp->PositiveInt("batch_size").status().message(),
            "train_params.batch_size: expected a positive integer, got \"eight\"");
  EXPECT_EQ(tp->PositiveDouble("lr").status().message(),
            "train_params.lr: expected a positive number, got \"-1\"");
  EXPECT_EQ(tp->Int("n").status().message(), "train_params.n: expected an integer, got \"2.5\"");
  // A quoted number is a string in YAML, not an integer.
  EXPECT_FALSE(tp->Int("q").ok());
  EXPECT_EQ(tp->Bool("n").status().message(),
            "train_params.n: expected true or false, got \"2.5\"");
}

TEST(YamlReaderTest, RangesAndNonFiniteNumbers) {
  YamlReader r = Doc("stage: 4\np: 1.5\nnan: .nan\ninf: inf\n");
  EXPECT_EQ(r.IntInRange("stage", 1, 3).status().message(),
            "stage: expected an integer in [1, 3], got \"4\"");
  EXPECT_EQ(r.DoubleInRange("p", 0, 1).status().message(),
            "p: expected a number in [0, 1], got \"1.5\"");
  EXPECT_FALSE(r.Double("nan").ok());
  EXPECT_FALSE(r.Double("inf").ok());
}

TEST(YamlReaderTest, MissingKeyNamesFullPath) {
  YamlReader r = Doc("model:\n  args:\n    backbone:\n      layer_strides: [2]\n");
  auto bb = r.Map("model")->Map("args")->Map("backbone");
  ASSERT_TRUE(bb.ok());
  EXPECT_EQ(bb->Ints("layer_nums").status().message(),
            "model.args.backbone.layer_nums: required key is missing");
}

TEST(YamlReaderTest, SequencesCheckLengthAndElements) {
  YamlReader r = Doc("range: [1, 2, 3]\nbad: [1, x, 3]\nempty: []\nnames: [a, b]\nnot_list: 3\n");
  EXPECT_EQ(*r.Doubles("range", 3), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(r.Doubles("range", 6).status().message(),
            "range: expected a list of 6 numbers, got [1, 2, 3]");
  EXPECT_EQ(r.Ints("bad").status().message(), "bad[1]: expected an integer, got \"x\"");
  EXPECT_EQ(r.Ints("empty").status().message(),
            "empty: expected a non-empty list of integers, got []");
  EXPECT_EQ(*r.Strings("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.Doubles("not_list").status().message(),
            "not_list: expected a non-empty list of numbers, got \"3\"");
}

TEST(YamlReaderTest, EnumListsAllowedValues) {
  YamlReader r = Doc("core_method: Adamw\n");
  EXPECT_EQ(r.Enum("core_method", {"Adam", "SGD"}).status().message(),
            "core_method: expected one of {Adam, SGD}, got \"Adamw\"");
}

TEST(YamlReaderTest, MapListPathsCarryIndex) {
  YamlReader r = Doc("classes:\n  - {name: car, l: 4}\n  - {name: ped, l: oops}\n");
  auto list = r.MapList("classes");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ(*(*list)[0].String("name"), "car");
  EXPECT_DOUBLE_EQ(*(*list)[0].Double("l"), 4.0);
  EXPECT_EQ((*list)[1].Double("l").status().message(),
            "classes[1].l: expected a number, got \"oops\"");
}

TEST(YamlReaderTest, FinishReportsUnreadKeysAtAnyDepth) {
  YamlReader r = Doc("a: 1\nb:\n  c: 2\n  typo: 3\nlist:\n  - {x: 1, extra: 2}\n");
  ASSERT_TRUE(r.Int("a").ok());
  auto b = r.Map("b");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->Int("c").ok());
  auto list = r.MapList("list");
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE((*list)[0].Int("x").ok());
  absl::Status st = r.Finish();
  EXPECT_EQ(st.message(), "b.typo: unknown key; list[0].extra: unknown key");
  // The sub-reader only sees its own subtree.
  EXPECT_EQ(b->Finish().message(), "b.typo: unknown key");
}

TEST(YamlReaderTest, FinishReportsUnreadSectionByItsKey) {
  YamlReader r = Doc("a: 1\nsection:\n  x: 1\n");
  ASSERT_TRUE(r.Int("a").ok());
  EXPECT_EQ(r.Finish().message(), "section: unknown key");
}

TEST(YamlReaderTest, IgnoredKeysAreNotReported) {
  YamlReader r = Doc("a: 1\nnotes:\n  anything: [1, 2]\n");
  ASSERT_TRUE(r.Int("a").ok());
  r.Ignore("notes");
  EXPECT_TRUE(r.Finish().ok());
}

TEST(YamlReaderTest, OptionalVariantsUseDefaultOnlyWhenAbsent) {
  YamlReader r = Doc("present: 5\nbad: x\n");
  EXPECT_EQ(*r.IntOr("present", 1), 5);
  EXPECT_EQ(*r.IntOr("absent", 7), 7);
  EXPECT_EQ(*r.StringOr("absent2", "d"), "d");
  EXPECT_FALSE(r.DoubleOr("bad", 1.0).ok());
  EXPECT_TRUE(r.Finish().ok());
}

TEST(YamlReaderTest, DuplicateKeysAreReported) {
  auto r = YamlReader::FromString("a: 1\na: 2\n");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->Int("a").ok());
  EXPECT_THAT(std::string(r->Finish().message()), HasSubstr("a: duplicate key"));
}

TEST(YamlReaderTest, SyntaxErrorsAndNonMappingDocuments) {
  auto bad = YamlReader::FromString("a: [1, 2\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  auto list = YamlReader::FromString("- 1\n- 2\n");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(std::string(list.status().message()), HasSubstr("expected a mapping"));
  auto missing = YamlReader::FromFile("/nonexistent/qv2x/config.yaml");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(YamlReaderTest, MapRejectsScalar) {
  YamlReader r = Doc("model: heter\n");
  EXPECT_EQ(r.Map("model").status().message(), "model: expected a mapping, got \"heter\"");
}

TEST(ApplyOverrideTest, ReplacesNestedScalarsListsAndListElements) {
  YAML::Node root = YAML::Load(
      "train_params: {batch_size: 8, epoches: 20}\n"
      "model: {args: {backbone: {layer_nums: [3]}}}\n"
      "classes: [{name: vehicle, l: 3.9}, {name: truck, l: 8}]\n");
  ASSERT_TRUE(ApplyOverride(root, "train_params.batch_size=2").ok());
  ASSERT_TRUE(ApplyOverride(root, "model.args.backbone.layer_nums=[1, 2]").ok());
  ASSERT_TRUE(ApplyOverride(root, "classes[1].l=7.5").ok());
  EXPECT_EQ(root["train_params"]["batch_size"].as<int>(), 2);
  EXPECT_EQ(root["train_params"]["epoches"].as<int>(), 20);  // siblings untouched
  EXPECT_EQ(root["model"]["args"]["backbone"]["layer_nums"].as<std::vector<int>>(),
            (std::vector<int>{1, 2}));
  EXPECT_DOUBLE_EQ(root["classes"][1]["l"].as<double>(), 7.5);
  EXPECT_DOUBLE_EQ(root["classes"][0]["l"].as<double>(), 3.9);
  EXPECT_EQ(root["classes"][1]["name"].as<std::string>(), "truck");
}

TEST(ApplyOverrideTest, UnknownPathIsAnErrorAndDocumentIsUnchanged) {
  YAML::Node root = YAML::Load("train_params: {batch_size: 8}\n");
  absl::Status st = ApplyOverride(root, "train_params.batchsize=2");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("train_params.batchsize: no such key in the config"));
  const YAML::Node& croot = root;
  EXPECT_FALSE(croot["train_params"]["batchsize"].IsDefined());
  EXPECT_EQ(croot["train_params"].size(), 1u);

  st = ApplyOverride(root, "trian_params.batch_size=2");
  EXPECT_THAT(std::string(st.message()), HasSubstr("trian_params: no such key"));
  st = ApplyOverride(root, "train_params.batch_size.deeper=2");
  EXPECT_THAT(std::string(st.message()), HasSubstr("train_params.batch_size.deeper: no such key"));
}

TEST(ApplyOverrideTest, MalformedAssignments) {
  YAML::Node root = YAML::Load("a: {b: [1, 2]}\n");
  EXPECT_FALSE(ApplyOverride(root, "a.b").ok());       // no '='
  EXPECT_FALSE(ApplyOverride(root, "=3").ok());        // no path
  EXPECT_FALSE(ApplyOverride(root, "a.b=").ok());      // no value
  EXPECT_FALSE(ApplyOverride(root, "a.b=[1,").ok());   // value is not YAML
  EXPECT_FALSE(ApplyOverride(root, "a..b=1").ok());    // empty segment
  EXPECT_FALSE(ApplyOverride(root, "a.b[5]=1").ok());  // index out of range
  EXPECT_FALSE(ApplyOverride(root, "a.b[x]=1").ok());  // index not a number
  EXPECT_EQ(root["a"]["b"].as<std::vector<int>>(), (std::vector<int>{1, 2}));
  EXPECT_TRUE(ApplyOverride(root, "a.b[1]=9").ok());
  EXPECT_EQ(root["a"]["b"].as<std::vector<int>>(), (std::vector<int>{1, 9}));
}

}  // namespace
}  // namespace qv2x
