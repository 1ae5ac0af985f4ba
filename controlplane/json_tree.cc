#include "json_tree.h"

namespace sluice::cp {

YAML::Node to_tree(const nlohmann::json& j) {
  switch (j.type()) {
  case nlohmann::json::value_t::object: {
    YAML::Node n(YAML::NodeType::Map);
    for (auto it = j.begin(); it != j.end(); ++it)
      n[it.key()] = to_tree(it.value());
    return n;
  }
  case nlohmann::json::value_t::array: {
    YAML::Node n(YAML::NodeType::Sequence);
    for (const auto& e : j)
      n.push_back(to_tree(e));
    return n;
  }
  case nlohmann::json::value_t::string:
    return YAML::Node(j.get<std::string>());
  case nlohmann::json::value_t::null:
  case nlohmann::json::value_t::discarded:
    return YAML::Node(YAML::NodeType::Null);
  default:
    return YAML::Node(j.dump()); // numbers and booleans as their literal text
  }
}

} // namespace sluice::cp
