// cri/validate: bad pod and container configs refused before anything is made.
#include "cri/validate.h"

#include <gtest/gtest.h>

namespace ctrd::cri {
namespace {

namespace v1 = ::runtime::v1;

v1::PodSandboxConfig good_pod() {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name("web");
  c.mutable_metadata()->set_namespace_("default");
  c.mutable_metadata()->set_uid("1234");
  c.set_log_directory("/var/log/pods/default_web_1234");
  return c;
}

v1::ContainerConfig good_container() {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name("app");
  c.mutable_image()->set_image("busybox");
  c.set_log_path("app/0.log");
  auto* m = c.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/srv/data");
  return c;
}

void expect_invalid(const errdefs::Status& s, const std::string& field) {
  EXPECT_EQ(s.code(), errdefs::Code::kInvalidArgument) << s.message();
  EXPECT_NE(s.message().find(field), std::string::npos) << s.message();
}

TEST(Validate, GoodConfigsPass) {
  EXPECT_TRUE(validate_pod_config(good_pod()).ok());
  EXPECT_TRUE(validate_container_config(good_container()).ok());
}

TEST(Validate, NamesThatWouldBePathsOrEmptyAreRefused) {
  for (const char* name : {"", "..", "a/b", "tab\there"}) {
    auto pod = good_pod();
    pod.mutable_metadata()->set_name(name);
    expect_invalid(validate_pod_config(pod), "metadata.name");
    auto c = good_container();
    c.mutable_metadata()->set_name(name);
    expect_invalid(validate_container_config(c), "metadata.name");
  }
  auto pod = good_pod();
  pod.mutable_metadata()->clear_uid();
  expect_invalid(validate_pod_config(pod), "metadata.uid");
}

TEST(Validate, LogPathsStayInsideThePodsLogDirectory) {
  for (const char* path : {"../escape.log", "a/../../b.log", "/etc/passwd"}) {
    auto c = good_container();
    c.set_log_path(path);
    expect_invalid(validate_container_config(c), "log_path");
  }
  auto pod = good_pod();
  pod.set_log_directory("relative/logs");
  expect_invalid(validate_pod_config(pod), "log_directory");
}

TEST(Validate, MountAndDevicePathsAreAbsoluteWithoutDotDot) {
  auto relative = good_container();
  relative.mutable_mounts(0)->set_host_path("srv/data");
  expect_invalid(validate_container_config(relative), "mounts.host_path");
  auto dotdot = good_container();
  dotdot.mutable_mounts(0)->set_container_path("/data/../../etc");
  expect_invalid(validate_container_config(dotdot), "mounts.container_path");
  auto device = good_container();
  device.add_devices()->set_container_path("/dev/fuse");
  device.mutable_devices(0)->set_host_path("../dev/fuse");
  expect_invalid(validate_container_config(device), "devices.host_path");
}

TEST(Validate, UnknownEnumValuesAndHugeAnnotationsAreRefused) {
  auto c = good_container();
  c.mutable_mounts(0)->set_propagation(static_cast<v1::MountPropagation>(9));
  expect_invalid(validate_container_config(c), "mounts.propagation");
  auto pod = good_pod();
  pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      static_cast<v1::NamespaceMode>(42));
  expect_invalid(validate_pod_config(pod), "namespace_options.pid");
  auto ports = good_pod();
  ports.add_port_mappings()->set_protocol(static_cast<v1::Protocol>(7));
  expect_invalid(validate_pod_config(ports), "port_mappings.protocol");
  auto huge = good_pod();
  (*huge.mutable_annotations())["big"] = std::string(kMaxMetadataBytes, 'x');
  expect_invalid(validate_pod_config(huge), "annotations");
}

}  // namespace
}  // namespace ctrd::cri
