// NumPy .npz: the fixtures np.savez / np.savez_compressed wrote (tests/data/npz/) with
// exact values, the write → read round trip, and errors that name the file, the entry and
// the reason for damaged or unsupported files.
#include "core/data/npz_file.h"

#include <unistd.h>
#include <zip.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qv2x {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

template <typename T>
std::vector<T> Values(const NpyArray& a) {
  std::vector<T> v(a.data.size() / sizeof(T));
  std::memcpy(v.data(), a.data.data(), a.data.size());
  return v;
}

template <typename T>
NpyArray Array(NpyDtype dtype, std::vector<int64_t> shape, const std::vector<T>& v) {
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  return a;
}

// A ZIP of stored entries with exactly these bytes, whatever they hold.
std::string Zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  zip_source_keep(buffer);
  zip_t* za = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  EXPECT_NE(za, nullptr);
  for (const auto& [name, bytes] : entries) {
    zip_source_t* s = zip_source_buffer(za, bytes.data(), bytes.size(), 0);
    const zip_int64_t i = zip_file_add(za, name.c_str(), s, 0);
    EXPECT_GE(i, 0) << zip_strerror(za);
    zip_set_file_compression(za, i, ZIP_CM_STORE, 0);
  }
  EXPECT_EQ(zip_close(za), 0);
  zip_stat_t st;
  zip_source_stat(buffer, &st);
  std::string out(st.size, '\0');
  zip_source_open(buffer);
  EXPECT_EQ(zip_source_read(buffer, out.data(), out.size()), static_cast<zip_int64_t>(st.size));
  zip_source_close(buffer);
  zip_source_free(buffer);
  return out;
}

// A .npy whose header dict is `dict` followed by `data`.
std::string Npy(const std::string& dict, const std::string& data) {
  std::string header = dict + "\n";
  return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header +
         data;
}

class NpzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        absl::StrCat("qv2x_npz_", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                     "_", getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // ReadNpz's error for a file `name` holding `bytes`.
  std::string ErrorFor(const std::string& name, const std::string& bytes) {
    EXPECT_TRUE(WriteFileAtomic(Path(name), bytes).ok());
    auto r = ReadNpz(Path(name));
    EXPECT_FALSE(r.ok()) << name;
    if (r.ok()) return "";
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(Path(name)));
    return std::string(r.status().message());
  }
  std::string ErrorForNpy(const std::string& npy) {
    return ErrorFor("bad.npz", Zip({{"a.npy", npy}}));
  }

  fs::path dir_;
};

TEST_F(NpzTest, ReadsNpSavez) {
  auto npz = ReadNpz("tests/data/npz/stored.npz");
  ASSERT_TRUE(npz.ok()) << npz.status();
  ASSERT_EQ(npz->size(), 4u);
  const NpyArray& f4 = npz->at("f4");
  EXPECT_EQ(f4.dtype, NpyDtype::kFloat32);
  EXPECT_EQ(f4.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(f4.fortran_order);
  EXPECT_EQ(Values<float>(f4), (std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f}));
  const NpyArray& f8 = npz->at("f8");
  EXPECT_EQ(f8.dtype, NpyDtype::kFloat64);
  EXPECT_EQ(f8.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(Values<double>(f8), (std::vector<double>{M_PI, -1e300}));
  const NpyArray& i8 = npz->at("i8");
  EXPECT_EQ(i8.dtype, NpyDtype::kInt64);
  EXPECT_EQ(Values<int64_t>(i8),
            (std::vector<int64_t>{-(int64_t{1} << 62), 0, (int64_t{1} << 40) + 7}));
  // np.asfortranarray([[1, 2, 3], [4, 5, 6]]): the bytes run down the columns.
  const NpyArray& fortran = npz->at("fortran");
  EXPECT_EQ(fortran.dtype, NpyDtype::kInt32);
  EXPECT_TRUE(fortran.fortran_order);
  EXPECT_EQ(fortran.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Values<int32_t>(fortran), (std::vector<int32_t>{1, 4, 2, 5, 3, 6}));
}

TEST_F(NpzTest, ReadsNpSavezCompressed) {
  auto npz = ReadNpz("tests/data/npz/compressed.npz");
  ASSERT_TRUE(npz.ok()) << npz.status();
  ASSERT_EQ(npz->size(), 5u);
  const NpyArray& i4 = npz->at("i4");
  EXPECT_EQ(i4.dtype, NpyDtype::kInt32);
  EXPECT_EQ(i4.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(Values<int32_t>(i4), (std::vector<int32_t>{-1, 2, 2147483647, -2147483647 - 1}));
  const NpyArray& u1 = npz->at("u1");
  EXPECT_EQ(u1.dtype, NpyDtype::kUInt8);
  EXPECT_EQ(Values<uint8_t>(u1), (std::vector<uint8_t>{0, 7, 255}));
  const NpyArray& b1 = npz->at("b1");
  EXPECT_EQ(b1.dtype, NpyDtype::kBool);
  EXPECT_EQ(Values<uint8_t>(b1), (std::vector<uint8_t>{1, 0, 1}));
  const NpyArray& scalar = npz->at("scalar");
  EXPECT_EQ(scalar.dtype, NpyDtype::kFloat64);
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(Values<double>(scalar), (std::vector<double>{2.5}));
  const NpyArray& empty = npz->at("empty");
  EXPECT_EQ(empty.dtype, NpyDtype::kFloat32);
  EXPECT_EQ(empty.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(empty.data.empty());
}

TEST_F(NpzTest, WriteReadRoundTrip) {
  NpzArrays arrays;
  arrays["f4"] = Array<float>(NpyDtype::kFloat32, {2, 1, 2}, {1.f, -0.f, NAN, 1e-38f});
  arrays["f8"] = Array<double>(NpyDtype::kFloat64, {}, {-3.5});
  arrays["i1"] = Array<int8_t>(NpyDtype::kInt8, {3}, {-128, 0, 127});
  arrays["i2"] = Array<int16_t>(NpyDtype::kInt16, {2}, {-32768, 32767});
  arrays["i4"] = Array<int32_t>(NpyDtype::kInt32, {0}, {});
  arrays["i8"] = Array<int64_t>(NpyDtype::kInt64, {1, 1}, {int64_t{1} << 50});
  arrays["u1"] = Array<uint8_t>(NpyDtype::kUInt8, {2}, {0, 255});
  arrays["b1"] = Array<uint8_t>(NpyDtype::kBool, {2}, {1, 0});
  arrays["agents.0.coords"] = Array<int32_t>(NpyDtype::kInt32, {3, 2}, {1, 2, 3, 4, 5, 6});
  arrays["agents.0.coords"].fortran_order = true;
  ASSERT_TRUE(WriteNpz(Path("sub/out.npz"), arrays).ok());
  auto bytes = ReadFile(Path("sub/out.npz"));
  ASSERT_TRUE(bytes.ok());
  EXPECT_TRUE(LooksLikeNpz(*bytes));
  // Stored entries, as np.savez writes them: the array bytes lie in the file as they are.
  EXPECT_NE(bytes->find(arrays["i2"].data), std::string::npos);
  auto back = ReadNpz(Path("sub/out.npz"));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), arrays.size());
  for (const auto& [key, a] : arrays) {
    const NpyArray& b = back->at(key);
    EXPECT_EQ(b.dtype, a.dtype) << key;
    EXPECT_EQ(b.shape, a.shape) << key;
    EXPECT_EQ(b.fortran_order, a.fortran_order) << key;
    EXPECT_EQ(b.data, a.data) << key;  // bytes: NaN and -0 too
  }
  // No arrays: the 22-byte empty ZIP np.savez() writes.
  ASSERT_TRUE(WriteNpz(Path("none.npz"), {}).ok());
  auto none = ReadNpz(Path("none.npz"));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_F(NpzTest, WriteRefusesDataThatDoesNotMatchTheShape) {
  NpzArrays arrays;
  arrays["x"] = Array<float>(NpyDtype::kFloat32, {2, 2}, {1.f, 2.f, 3.f});
  const absl::Status st = WriteNpz(Path("x.npz"), arrays);
  EXPECT_THAT(std::string(st.message()),
              AllOf(HasSubstr("key x"), HasSubstr("shape [2, 2] of <f4 needs 16 bytes, got 12")));
  EXPECT_FALSE(fs::exists(Path("x.npz")));
}

TEST_F(NpzTest, TellsNpzFromTorchArchives) {
  auto npz = ReadFile("tests/data/npz/compressed.npz");
  ASSERT_TRUE(npz.ok());
  EXPECT_TRUE(LooksLikeNpz(*npz));
  EXPECT_FALSE(LooksLikeNpz(Zip({{"archive/data.pkl", "x"}, {"archive/data/0", "y"}})));
  EXPECT_FALSE(LooksLikeNpz("PK\x03\x04"));
  EXPECT_FALSE(LooksLikeNpz(""));
}

TEST_F(NpzTest, DamagedFilesNameTheFileAndEntry) {
  auto stored = ReadFile("tests/data/npz/stored.npz");
  ASSERT_TRUE(stored.ok());
  EXPECT_THAT(ErrorFor("truncated.npz", stored->substr(0, stored->size() / 2)),
              HasSubstr("not a complete .npz (ZIP) archive"));
  EXPECT_THAT(ErrorFor("empty.npz", ""), HasSubstr("not a complete .npz (ZIP) archive"));
  {
    // One bit of f8's pi flipped: the CRC-32 no longer matches.
    std::string bad = *stored;
    const double pi = M_PI;
    const size_t at = bad.find(std::string(reinterpret_cast<const char*>(&pi), 8));
    ASSERT_NE(at, std::string::npos);
    bad[at + 3] ^= 0x10;
    EXPECT_THAT(ErrorFor("flipped.npz", bad), AllOf(HasSubstr("entry f8.npy"), HasSubstr("CRC")));
  }
  {
    // A byte of a deflated entry: zlib or the CRC-32 notices.
    auto compressed = ReadFile("tests/data/npz/compressed.npz");
    ASSERT_TRUE(compressed.ok());
    std::string bad = *compressed;
    const size_t at = bad.find("i4.npy") + 6 + 20 + 10;  // name, zip64 extra, into the data
    bad[at] ^= 0xff;
    EXPECT_THAT(ErrorFor("deflated.npz", bad),
                AllOf(HasSubstr("entry i4.npy"), HasSubstr("damaged")));
  }
}

TEST_F(NpzTest, RefusesWhatIsNoPlainArray) {
  const std::string f4_2x3(24, '\0');
  EXPECT_THAT(
      ErrorForNpy(Npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f4_2x3)),
      AllOf(HasSubstr("entry a.npy: dtype '>f4' is big-endian"), HasSubstr("astype('<f4')")));
  EXPECT_THAT(
      ErrorForNpy(Npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "(a pickle)")),
      HasSubstr("entry a.npy: dtype '|O' holds Python objects"));
  EXPECT_THAT(ErrorForNpy(Npy("{'descr': '<c8', 'fortran_order': False, 'shape': (), }",
                              std::string(8, '\0'))),
              HasSubstr("entry a.npy: dtype '<c8' is not read (accepted: <f4 <f8"));
  EXPECT_THAT(ErrorForNpy(Npy("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (), }",
                              std::string(4, '\0'))),
              HasSubstr("entry a.npy: .npy header: 'descr' is a list: structured"));
  EXPECT_THAT(
      ErrorForNpy(
          Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4_2x3.substr(4))),
      HasSubstr("entry a.npy: shape [2, 3] of <f4 needs 24 data bytes, the array holds 20"));
  EXPECT_THAT(
      ErrorForNpy(
          Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", "")),
      HasSubstr("entry a.npy: shape [4611686018427387904, 4] of <f4 overflows"));
  EXPECT_THAT(ErrorForNpy(Npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                              std::string("\x01\x02", 2))),
              HasSubstr("entry a.npy: bool element 1 is byte 2"));
  EXPECT_THAT(ErrorForNpy(Npy("{'descr' '<f4', 'fortran_order': False, 'shape': (), }", "")),
              HasSubstr("entry a.npy: .npy header: no ':' after key 'descr'"));
  EXPECT_THAT(ErrorForNpy(Npy("{'descr': '<f4', 'shape': (), }", std::string(4, '\0'))),
              HasSubstr("entry a.npy: .npy header has no 'fortran_order'"));
  EXPECT_THAT(ErrorForNpy("\x93NUMPY"), HasSubstr("entry a.npy: truncated .npy preamble"));
  EXPECT_THAT(ErrorForNpy("PK\x03\x04 not an array"),
              HasSubstr("entry a.npy: not a .npy array (no \\x93NUMPY magic)"));
  // Version 2.0's 4-byte header length, garbled to 2 GiB.
  EXPECT_THAT(ErrorForNpy(std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f{}", 14)),
              HasSubstr("entry a.npy: .npy header of 2147483647 bytes is too long"));
  EXPECT_THAT(ErrorFor("txt.npz", Zip({{"a.npy", Npy("{'descr': '|u1', 'fortran_order': False, "
                                                     "'shape': (), }",
                                                     "x")},
                                       {"notes.txt", "hello"}})),
              HasSubstr("entry notes.txt: not a .npy array"));
}

TEST_F(NpzTest, RefusesDuplicateKeysAndHugeClaims) {
  const std::string npy = Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", "x");
  // Entry names are outside the CRC: renaming b.npy to a.npy leaves a valid archive.
  std::string twice = Zip({{"a.npy", npy}, {"b.npy", npy}});
  for (size_t at = twice.find("b.npy"); at != std::string::npos; at = twice.find("b.npy")) {
    twice[at] = 'a';
  }
  EXPECT_THAT(ErrorFor("twice.npz", twice),
              AllOf(HasSubstr("entry a.npy"), HasSubstr("the key a appears twice")));
  // Two entries whose central directory records claim 3.75 GiB each.
  std::string huge = Zip({{"a.npy", npy}, {"b.npy", npy}});
  for (size_t at = huge.find("PK\x01\x02"); at != std::string::npos;
       at = huge.find("PK\x01\x02", at + 4)) {
    huge.replace(at + 24, 4, "\x00\x00\x00\xf0", 4);  // uncompressed size
  }
  EXPECT_THAT(ErrorFor("huge.npz", huge),
              AllOf(HasSubstr("entry b.npy"), HasSubstr("claim over 4 GiB uncompressed")));
  // One that claims more than its compressed bytes can expand to, within the cap.
  auto compressed = ReadFile("tests/data/npz/compressed.npz");
  ASSERT_TRUE(compressed.ok());
  std::string bomb = *compressed;
  const size_t at = bomb.find(std::string("PK\x01\x02", 4));  // i4.npy's central record
  ASSERT_NE(at, std::string::npos);
  bomb.replace(at + 24, 4, "\x00\x00\x00\x10", 4);
  EXPECT_THAT(ErrorFor("bomb.npz", bomb),
              AllOf(HasSubstr("entry i4.npy: claims 268435456 bytes from 82 stored")));
}

}  // namespace
}  // namespace qv2x
