#include "os/dirs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"

namespace ctrd::os {
namespace {

namespace fs = std::filesystem;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(EnsureDirTest, CreatesWithTheExactModeWhateverTheUmask) {
  ctrd::testing::TempDir tmp;
  const mode_t old = ::umask(077);
  EXPECT_TRUE(ensure_dir(tmp.path() / "a" / "b", 0711).ok());
  ::umask(old);
  EXPECT_EQ(mode_of(tmp.path() / "a" / "b"), 0711u);
  EXPECT_EQ(mode_of(tmp.path() / "a"), 0711u) << "a missing parent is traversable, not listable";
}

TEST(EnsureDirTest, TightensALooserDirectoryAndLeavesATighterOne) {
  ctrd::testing::TempDir tmp;
  const fs::path loose = tmp.path() / "loose";
  const fs::path tight = tmp.path() / "tight";
  ASSERT_EQ(::mkdir(loose.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(loose.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(tight.c_str(), 0700), 0);
  EXPECT_TRUE(ensure_dir(loose, 0711).ok());
  EXPECT_TRUE(ensure_dir(tight, 0711).ok());
  EXPECT_EQ(mode_of(loose), 0711u);
  EXPECT_EQ(mode_of(tight), 0700u);
}

TEST(EnsureDirTest, AFileInTheWayIsAnError) {
  ctrd::testing::TempDir tmp;
  std::ofstream(tmp.path() / "f") << "x";
  auto s = ensure_dir(tmp.path() / "f", 0700);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a directory"), std::string::npos) << s.message();
}

TEST(TrustedFileTest, AcceptsARootOwnedChainAndRefusesWritableOnes) {
  ctrd::testing::TempDir tmp(ctrd::testing::trusted_temp_parent());
  const fs::path file = tmp.path() / "tool";
  std::ofstream(file) << "#!/bin/sh\n";
  ASSERT_EQ(::chmod(file.c_str(), 0755), 0);
  EXPECT_TRUE(check_trusted_file(file).ok()) << check_trusted_file(file).message();

  ASSERT_EQ(::chmod(file.c_str(), 0775), 0);
  auto group = check_trusted_file(file);
  EXPECT_EQ(group.code(), errdefs::Code::kPermissionDenied);
  EXPECT_EQ(group.message(), file.string() + " has mode 0775, writable by group or others");

  ASSERT_EQ(::chmod(file.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0777), 0);
  EXPECT_EQ(check_trusted_file(file).message(),
            tmp.path().string() + " has mode 0777, writable by group or others");

  ASSERT_EQ(::chmod(tmp.path().c_str(), 0700), 0);
  ASSERT_EQ(::chown(file.c_str(), 65534, 65534), 0);
  EXPECT_EQ(check_trusted_file(file).message(),
            file.string() + " is owned by uid 65534, neither root nor the daemon's user");
}

TEST(TrustedFileTest, ASymlinkIsJudgedByWhereItIsAndWhereItLeads) {
  ctrd::testing::TempDir trusted(ctrd::testing::trusted_temp_parent());
  ctrd::testing::TempDir open;
  const fs::path real = open.path() / "tool";
  std::ofstream(real) << "x";
  ASSERT_EQ(::chmod(real.c_str(), 0755), 0);
  fs::create_symlink(real, trusted.path() / "link");
  EXPECT_EQ(check_trusted_file(trusted.path() / "link").message(),
            "/tmp has mode 1777, writable by group or others");
  // The other way round: a good file, found through a directory anyone may write to.
  const fs::path good = trusted.path() / "good";
  std::ofstream(good) << "x";
  fs::create_symlink(good, open.path() / "link");
  EXPECT_EQ(check_trusted_file(open.path() / "link").message(),
            "/tmp has mode 1777, writable by group or others");
}

}  // namespace
}  // namespace ctrd::os
