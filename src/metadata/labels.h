// labels: containerd's rule for labels on namespaces, content and leases (its
// labels package), with its wording, so clients see the same InvalidArgument.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "content/content.h"
#include "errdefs/errdefs.h"

namespace ctrd::metadata {

// Key and value together, per label.
inline constexpr size_t kMaxLabelSize = 4096;

// InvalidArgument when key and value together exceed 4096 bytes; the message
// names the first ten bytes of the key, as containerd's does.
errdefs::Status validate_label(std::string_view key, std::string_view value);

// validate_label over all labels, the error prefixed with `field` ("namespace.Labels").
errdefs::Status validate_labels(const content::Labels& labels, std::string_view field);

// Empty values mean "no such label": containerd never stores them.
void drop_empty_labels(content::Labels* labels);

// Applies one update field path about labels: "labels" replaces them all with
// `given`, "labels.<key>" sets that label from `given` (or, absent there,
// empties it, for drop_empty_labels to remove). Returns false, changing
// nothing, for any other path.
bool apply_label_path(std::string_view path, const content::Labels& given, content::Labels* stored);

// The value a filter sees at `fieldpath` = {"labels", part...}: the label whose
// key is the parts joined by '.', so `labels.a.b` and `labels."a.b"` agree.
std::optional<std::string> label_field(const std::vector<std::string>& fieldpath,
                                       const content::Labels& labels);

}  // namespace ctrd::metadata
