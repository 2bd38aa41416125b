// The CRI runtime.v1 schema (api/cri/runtime/v1/api.proto), checked through
// the generated descriptors against the wire facts kubelet and crictl rely on.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cri/runtime/v1/api.grpc.pb.h"
#include "cri/runtime/v1/api.pb.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::ServiceDescriptor;

const ServiceDescriptor* service(const std::string& name) {
  return DescriptorPool::generated_pool()->FindServiceByName(name);
}

const Descriptor* message(const std::string& name) {
  return DescriptorPool::generated_pool()->FindMessageTypeByName("runtime.v1." + name);
}

// Expects `field` of `msg` to carry `number`; returns the field for further checks.
const FieldDescriptor* expect_field(const std::string& msg, const std::string& field, int number) {
  const Descriptor* d = message(msg);
  EXPECT_NE(d, nullptr) << msg;
  if (d == nullptr) return nullptr;
  const FieldDescriptor* f = d->FindFieldByName(field);
  EXPECT_NE(f, nullptr) << msg << "." << field;
  if (f == nullptr) return nullptr;
  EXPECT_EQ(f->number(), number) << msg << "." << field;
  return f;
}

TEST(CriSchema, ServicesHaveTheirFullNames) {
  ASSERT_NE(service("runtime.v1.RuntimeService"), nullptr);
  ASSERT_NE(service("runtime.v1.ImageService"), nullptr);
  EXPECT_EQ(service("runtime.v1.RuntimeService")->file()->name(), "cri/runtime/v1/api.proto");
  EXPECT_STREQ(::runtime::v1::RuntimeService::service_full_name(), "runtime.v1.RuntimeService");
  EXPECT_STREQ(::runtime::v1::ImageService::service_full_name(), "runtime.v1.ImageService");
}

TEST(CriSchema, RuntimeServiceHasTheKubeletMethods) {
  const ServiceDescriptor* s = service("runtime.v1.RuntimeService");
  ASSERT_NE(s, nullptr);
  const std::vector<std::string> methods = {"Version",
                                            "RunPodSandbox",
                                            "StopPodSandbox",
                                            "RemovePodSandbox",
                                            "PodSandboxStatus",
                                            "ListPodSandbox",
                                            "CreateContainer",
                                            "StartContainer",
                                            "StopContainer",
                                            "RemoveContainer",
                                            "ListContainers",
                                            "ContainerStatus",
                                            "UpdateContainerResources",
                                            "ReopenContainerLog",
                                            "ExecSync",
                                            "Exec",
                                            "Attach",
                                            "PortForward",
                                            "ContainerStats",
                                            "ListContainerStats",
                                            "PodSandboxStats",
                                            "ListPodSandboxStats",
                                            "UpdateRuntimeConfig",
                                            "Status",
                                            "CheckpointContainer",
                                            "GetContainerEvents",
                                            "ListMetricDescriptors",
                                            "ListPodSandboxMetrics"};
  for (const auto& m : methods) {
    EXPECT_NE(s->FindMethodByName(m), nullptr) << m;
  }
  EXPECT_EQ(s->method_count(), static_cast<int>(methods.size()));
}

TEST(CriSchema, ImageServiceHasTheKubeletMethods) {
  const ServiceDescriptor* s = service("runtime.v1.ImageService");
  ASSERT_NE(s, nullptr);
  for (const char* m : {"ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"}) {
    EXPECT_NE(s->FindMethodByName(m), nullptr) << m;
  }
  EXPECT_EQ(s->method_count(), 5);
}

TEST(CriSchema, OnlyGetContainerEventsStreams) {
  const ServiceDescriptor* s = service("runtime.v1.RuntimeService");
  ASSERT_NE(s, nullptr);
  const auto* events = s->FindMethodByName("GetContainerEvents");
  ASSERT_NE(events, nullptr);
  EXPECT_FALSE(events->client_streaming());
  EXPECT_TRUE(events->server_streaming());
  EXPECT_EQ(events->input_type()->full_name(), "runtime.v1.GetEventsRequest");
  EXPECT_EQ(events->output_type()->full_name(), "runtime.v1.ContainerEventResponse");
  for (const auto* svc : {s, service("runtime.v1.ImageService")}) {
    for (int i = 0; i < svc->method_count(); ++i) {
      const auto* m = svc->method(i);
      if (m == events) continue;
      EXPECT_FALSE(m->client_streaming() || m->server_streaming()) << m->full_name();
      EXPECT_EQ(m->input_type()->name(), m->name() + "Request") << m->full_name();
    }
  }
}

TEST(CriSchema, SandboxAndContainerConfigFieldNumbers) {
  expect_field("PodSandboxConfig", "metadata", 1);
  expect_field("PodSandboxConfig", "log_directory", 3);
  expect_field("PodSandboxConfig", "port_mappings", 5);
  expect_field("PodSandboxConfig", "linux", 8);
  expect_field("PodSandboxConfig", "windows", 9);
  expect_field("PodSandboxMetadata", "namespace", 3);
  expect_field("RunPodSandboxRequest", "runtime_handler", 2);
  expect_field("ContainerConfig", "metadata", 1);
  expect_field("ContainerConfig", "image", 2);
  expect_field("ContainerConfig", "log_path", 11);
  expect_field("ContainerConfig", "linux", 15);
  expect_field("CreateContainerRequest", "sandbox_config", 3);
  expect_field("LinuxPodSandboxConfig", "overhead", 4);
  expect_field("LinuxContainerResources", "memory_swap_limit_in_bytes", 10);
  const auto* unified = expect_field("LinuxContainerResources", "unified", 9);
  ASSERT_NE(unified, nullptr);
  EXPECT_TRUE(unified->is_map());
}

TEST(CriSchema, LinuxContainerSecurityContextFieldNumbers) {
  const std::vector<std::pair<std::string, int>> fields = {
      {"capabilities", 1},      {"privileged", 2},
      {"namespace_options", 3}, {"selinux_options", 4},
      {"run_as_user", 5},       {"run_as_username", 6},
      {"readonly_rootfs", 7},   {"supplemental_groups", 8},
      {"apparmor_profile", 9},  {"seccomp_profile_path", 10},
      {"no_new_privs", 11},     {"run_as_group", 12},
      {"masked_paths", 13},     {"readonly_paths", 14},
      {"seccomp", 15},          {"apparmor", 16}};
  for (const auto& [name, number] : fields) expect_field("LinuxContainerSecurityContext", name, number);
  EXPECT_EQ(message("LinuxContainerSecurityContext")->field_count(), static_cast<int>(fields.size()));
  const auto* groups = expect_field("LinuxContainerSecurityContext", "supplemental_groups", 8);
  ASSERT_NE(groups, nullptr);
  EXPECT_TRUE(groups->is_repeated());
  EXPECT_EQ(groups->type(), FieldDescriptor::TYPE_INT64);
}

TEST(CriSchema, ImageSpecAndEnums) {
  expect_field("ImageSpec", "image", 1);
  const auto* annotations = expect_field("ImageSpec", "annotations", 2);
  ASSERT_NE(annotations, nullptr);
  EXPECT_TRUE(annotations->is_map());
  expect_field("PullImageRequest", "auth", 2);
  expect_field("AuthConfig", "registry_token", 6);

  EXPECT_EQ(::runtime::v1::TARGET, 3);
  EXPECT_EQ(::runtime::v1::SANDBOX_NOTREADY, 1);
  EXPECT_EQ(::runtime::v1::CONTAINER_UNKNOWN, 3);
  EXPECT_EQ(::runtime::v1::CONTAINER_DELETED_EVENT, 3);
  EXPECT_EQ(::runtime::v1::MountPropagation_Name(::runtime::v1::PROPAGATION_BIDIRECTIONAL),
            "PROPAGATION_BIDIRECTIONAL");
  EXPECT_EQ(::runtime::v1::SecurityProfile::Localhost, 2);
}

TEST(CriSchema, EncodesAsOnTheWire) {
  ::runtime::v1::ImageSpec spec;
  spec.set_image("busybox");
  EXPECT_EQ(spec.SerializeAsString(), std::string("\x0a\x07"
                                                  "busybox",
                                                  9));

  // `namespace` is a C++ keyword: the generated accessor takes an underscore.
  ::runtime::v1::PodSandboxMetadata meta;
  meta.set_namespace_("ns");
  EXPECT_EQ(meta.SerializeAsString(), std::string("\x1a\x02ns", 4));
}

}  // namespace
