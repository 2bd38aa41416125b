// cni: runs a CNI network configuration list on a network namespace, as
// libcni does for the kubelet's runtimes — each plugin of the list executed
// from the plugin directories with the CNI_* environment and its network
// configuration on stdin; ADD in list order, each plugin given the previous
// one's result; DEL in reverse order with the ADD's result; capability
// arguments (port mappings, DNS) passed as runtimeConfig to the plugins
// that declare them. The pod's addresses are read from the final result.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::cni {

struct Attachment {
  std::string container_id;  // CNI_CONTAINERID
  std::string netns;         // CNI_NETNS: a path
  std::string ifname = "eth0";
  // CNI_ARGS, "K=V" pairs joined by ';' in this order (K8S_POD_NAMESPACE, ...).
  std::vector<std::pair<std::string, std::string>> args;
  // runtimeConfig entries by capability name (e.g. "portMappings", "dns"),
  // each a JSON document; a plugin gets those its "capabilities" enable.
  std::map<std::string, std::string> capability_args;
};

struct IpConfig {
  std::string address;  // CIDR, e.g. "10.88.0.5/16"
  std::string gateway;
  int interface = -1;  // index into the result's interfaces, -1 when absent
};

struct Result {
  std::string json;  // the last plugin's result, as it printed it
  std::vector<IpConfig> ips;
  std::vector<std::string> interfaces;  // names, in result order
  // The addresses (without prefix length) of `ifname` — or of every
  // interface when the result does not say which.
  std::vector<std::string> addresses_of(const std::string& ifname) const;
};

struct Options {
  std::vector<std::string> bin_dirs;                            // where plugins are looked for, in order
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  // per plugin run
};

// `conflist` is a network configuration list (JSON with name, cniVersion and
// plugins). A plugin's error is returned with its code and message
// (Unknown "plugin <type> failed (code N): msg; details").
errdefs::StatusOr<Result> add(const std::string& conflist, const Attachment& attachment,
                              const Options& options);
// `previous` is what add returned (its json), or empty when unknown.
errdefs::Status del(const std::string& conflist, const Attachment& attachment, const std::string& previous,
                    const Options& options);

}  // namespace ctrd::cni
