// The /dev/fuse transport's sizing and mount options, without mounting anything.
#include <linux/fuse.h>

#include <gtest/gtest.h>

#include "fs/transport/devfuse/devfuse_transport.h"
#include "fs/transport/devfuse/fuse_mount.h"

namespace dpustor::fs::devfuse {
namespace {

TEST(DevFuse, RequestBufferHoldsAFullWriteAndTheKernelMinimum) {
  // A 1 MiB write plus its fuse_in_header and fuse_write_in must fit in one read().
  EXPECT_GE(RequestBufferSize(256), (256u << 12) + sizeof(fuse_in_header) + sizeof(fuse_write_in));
  EXPECT_EQ(RequestBufferSize(256), (256u << 12) + 4096);
  EXPECT_EQ(RequestBufferSize(1), static_cast<size_t>(FUSE_MIN_READ_BUFFER));
}

TEST(DevFuse, KernelMountOptions) {
  FuseMountOptions o;
  o.max_read = 65536;
  EXPECT_EQ(KernelMountOptions(o, 7, 1000, 100),
            "fd=7,rootmode=40000,user_id=1000,group_id=100,allow_other,default_permissions,"
            "max_read=65536");
  o.allow_other = false;
  o.default_permissions = false;
  EXPECT_EQ(KernelMountOptions(o, 3, 0, 0),
            "fd=3,rootmode=40000,user_id=0,group_id=0,max_read=65536");
}

TEST(DevFuse, MountOfMissingDirectoryFailsCleanly) {
  FuseMountOptions o;
  o.mount_dir = "/nonexistent/dpustor-devfuse-test";
  auto m = FuseMount::Mount(o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("/nonexistent/dpustor-devfuse-test"), std::string::npos);
}

}  // namespace
}  // namespace dpustor::fs::devfuse
