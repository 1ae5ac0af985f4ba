#include "ndr_search.h"

#include <algorithm>
#include <cstdio>

#include "worker_loop.h"

namespace sluice::pktgen {

nlohmann::json ndr_search(load_runner& runner, const profile& p, const ndr_config& cfg) {
  nlohmann::json trials = nlohmann::json::array();
  nlohmann::json best, lowest;
  auto trial = [&](double scale) {
    run_stats s = runner.run_trial(scale, cfg.trial_s);
    nlohmann::json j = summary_json(p, s, scale);
    bool pass = j["zero_loss"].get<bool>();
    // How much of the offered rate the generator actually sent: below 95 % the
    // trial measured the generator, not the balancer.
    double achieved = 1.0;
    for (const auto& it : j["items"]) {
      double offered = it["offered_rate"].get<double>();
      if (offered <= 0)
        continue;
      double sent = it["type"] == "churn" ? it["connections"]["opened_per_s"].get<double>()
                                          : it["to_backend"]["tx_pps"].get<double>() +
                                                it["to_client"]["tx_pps"].get<double>();
      if (it["type"] == "established" && it["to_backend"]["tx_pps"].get<double>() > 0 &&
          it["to_client"]["tx_pps"].get<double>() > 0)
        offered *= 2; // both directions at the item's rate
      achieved = std::min(achieved, sent / offered);
    }
    j["achieved_share"] = achieved;
    std::printf("ndr trial scale %.4f: %s (lost %lu, failed %lu, mismatches %lu, client port tx "
                "%.3f Mpps)\n",
                scale, pass ? "zero loss" : "LOSS", j["lost"].get<unsigned long>(),
                j["failed_connections"].get<unsigned long>(), j["mismatches"].get<unsigned long>(),
                j["client_port"]["tx_pps"].get<double>() / 1e6);
    trials.push_back({{"scale", scale},
                      {"zero_loss", pass},
                      {"achieved_share", achieved},
                      {"lost", j["lost"]},
                      {"client_port_tx_pps", j["client_port"]["tx_pps"]},
                      {"backend_port_tx_pps", j["backend_port"]["tx_pps"]}});
    if (pass)
      best = j;
    lowest = j;
    return pass;
  };

  double lo = 0, hi = 1;
  bool capped = false;
  if (trial(1.0)) {
    lo = 1.0;
    capped = true;
  } else {
    for (uint32_t n = 1; n < cfg.max_trials && (hi - lo) / hi > cfg.precision; ++n) {
      if (dp::stop_requested())
        break;
      double mid = (lo + hi) / 2;
      if (trial(mid))
        lo = mid;
      else
        hi = mid;
    }
  }
  nlohmann::json rates = nlohmann::json::array();
  for (const auto& it : p.items)
    rates.push_back(it.rate * lo);
  bool generator_limited = !best.is_null() && best["achieved_share"].get<double>() < 0.95;
  return {{"ndr_scale", lo},
          {"ndr_rates", rates},
          {"limited_by_profile_rate", capped},
          {"generator_limited", generator_limited},
          {"trials", trials},
          {"summary", best.is_null() ? lowest : best}};
}

} // namespace sluice::pktgen
