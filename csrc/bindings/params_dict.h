// The flat scalar parameters that python/fastloss/_backends.native_params builds, as LossParams:
// one key list for both pybind11 modules (_C and _cuda).
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "../fastloss/params.h"

inline fastloss::LossParams loss_params_from_dict(const pybind11::dict& d) {
  static const char* const keys[] = {"ignore_index", "label_smoothing", "z_loss", "softcap", "gamma", "alpha",
                                     "margin", "squared", "weston_watkins", "delta", "beta", "soft_target"};
  constexpr int n = sizeof keys / sizeof keys[0];
  double v[n];
  for (int i = 0; i < n; ++i) {
    if (!d.contains(keys[i])) throw pybind11::value_error(std::string("params is missing '") + keys[i] + "'");
    try {
      v[i] = d[keys[i]].cast<double>();
    } catch (const pybind11::cast_error&) {
      throw pybind11::value_error(std::string("params['") + keys[i] + "'] must be a number");
    }
  }
  if (pybind11::len(d) != size_t(n)) throw pybind11::value_error("params has unknown keys");
  return fastloss::LossParams{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
}
