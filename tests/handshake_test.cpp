#include "resilink/server/handshake.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

using resilink::IdLineReader;
using resilink::core::Error;

namespace {

IdLineReader::Result feed(IdLineReader& reader, const std::string& chunk) {
  return reader.feed(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
}

TEST(IdLineReader, AcceptsIdAndPointsAtTheLeftover) {
  IdLineReader reader;
  auto r = feed(reader, "dev1\n\n01hi\n");
  ASSERT_EQ(r.status, IdLineReader::Status::accepted);
  EXPECT_EQ(reader.id(), "dev1");
  EXPECT_EQ(r.consumed, 5u);  // the leftover "\n01hi\n" belongs to the link
  EXPECT_EQ(reader.error(), Error::ok);
  EXPECT_EQ(reader.reason(), "");
}

TEST(IdLineReader, WaitsForTheNewlineAcrossChunks) {
  IdLineReader reader;
  auto r = feed(reader, "de");
  EXPECT_EQ(r.status, IdLineReader::Status::need_more);
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_EQ(reader.id(), "");
  r = feed(reader, "v1");
  EXPECT_EQ(r.status, IdLineReader::Status::need_more);
  r = feed(reader, "\n");
  ASSERT_EQ(r.status, IdLineReader::Status::accepted);
  EXPECT_EQ(r.consumed, 1u);
  EXPECT_EQ(reader.id(), "dev1");
}

TEST(IdLineReader, AcceptsAnIdOfExactlyTheMaximum) {
  IdLineReader reader;
  std::string id(RESILINK_MAX_ID, '~');
  auto r = feed(reader, id + "\n");
  ASSERT_EQ(r.status, IdLineReader::Status::accepted);
  EXPECT_EQ(reader.id(), id);
}

TEST(IdLineReader, RejectsATooLongIdBeforeItsNewline) {
  IdLineReader reader;
  auto r = feed(reader, std::string(RESILINK_MAX_ID, 'a'));
  EXPECT_EQ(r.status, IdLineReader::Status::need_more);
  r = feed(reader, "b");  // one byte too many, no '\n' needed to know
  EXPECT_EQ(r.status, IdLineReader::Status::rejected);
  EXPECT_EQ(reader.error(), Error::client_id_too_long);
  EXPECT_EQ(reader.reason(), "client id line exceeds 32 bytes");
}

TEST(IdLineReader, RejectsEmptyAndNonPrintableIdsNamingTheError) {
  IdLineReader empty;
  EXPECT_EQ(feed(empty, "\n").status, IdLineReader::Status::rejected);
  EXPECT_EQ(empty.error(), Error::empty_client_id);
  EXPECT_NE(empty.reason().find("(empty_client_id)"), std::string::npos) << empty.reason();

  const std::string bad_ids[] = {"dev 1\n", "dev\x01\n", "dev1\r\n", "d\x7f\n",
                                 std::string("a\0b\n", 4)};
  for (const std::string& bad : bad_ids) {
    IdLineReader reader;
    EXPECT_EQ(feed(reader, bad).status, IdLineReader::Status::rejected) << bad;
    EXPECT_EQ(reader.error(), Error::bad_client_id) << bad;
    EXPECT_NE(reader.reason().find("(bad_client_id)"), std::string::npos) << reader.reason();
    EXPECT_EQ(reader.id(), "");
  }
}

TEST(IdLineReader, TheVerdictStands) {
  IdLineReader reader;
  ASSERT_EQ(feed(reader, "a\n").status, IdLineReader::Status::accepted);
  auto r = feed(reader, "b\n");
  EXPECT_EQ(r.status, IdLineReader::Status::accepted);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(reader.id(), "a");

  IdLineReader bad;
  ASSERT_EQ(feed(bad, " \n").status, IdLineReader::Status::rejected);
  r = feed(bad, "ok\n");
  EXPECT_EQ(r.status, IdLineReader::Status::rejected);
  EXPECT_EQ(r.consumed, 0u);
}

}  // namespace
