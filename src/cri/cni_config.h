// cri/cni_config: the pod network's CNI configuration as the CRI plugin
// loads it from `[cni] conf_dir` — the files libcni reads (*.conf,
// *.conflist, *.json) in name order, the first `max_conf_num` valid ones — and
// the `[cni] conf_template` that UpdateRuntimeConfig renders with the node's
// pod CIDRs (the template language's subset such templates use: fields,
// `range` with index and value variables, and `if`).
#pragma once

#include <string>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::cri {

struct NetworkConfig {
  std::string file;      // where it was read
  std::string name;      // the network's name
  std::string conflist;  // as a configuration list (a single .conf wrapped into one)
};

// FailedPrecondition "cni plugin not initialized" when the directory holds no
// valid configuration; files that do not parse are skipped with a warning.
errdefs::StatusOr<std::vector<NetworkConfig>> load_network_configs(const std::string& conf_dir,
                                                                   int max_conf_num);

struct CniTemplateData {
  std::vector<std::string> pod_cidr_ranges;  // the first is .PodCIDR
  std::vector<std::string> routes;           // a default route per address family of the ranges
};

// The routes a template gets for `pod_cidrs`: 0.0.0.0/0 and/or ::/0.
CniTemplateData template_data_for(const std::vector<std::string>& pod_cidrs);

// InvalidArgument naming what the template does that this renderer does not
// know.
errdefs::StatusOr<std::string> render_cni_template(const std::string& text, const CniTemplateData& data);

}  // namespace ctrd::cri
