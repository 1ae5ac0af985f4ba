// Result<T>: the std::expected-shaped return type of every non-hot-path function
// (init, table building, shared-memory attach). GCC 12 ships <expected> only for
// C++23, so this is the small subset we use: a value or a human-readable error.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace sluice {

struct error {
  std::string message;
};

inline error make_error(std::string msg) {
  return error{std::move(msg)};
}

template <typename T> class [[nodiscard]] result {
public:
  result(T value) : v_(std::move(value)) {}
  result(error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const std::string& error_message() const { return std::get<1>(v_).message; }
  const error& err() const { return std::get<1>(v_); }

private:
  std::variant<T, error> v_;
};

// result<void>: success or an error message.
template <> class [[nodiscard]] result<void> {
public:
  result() = default;
  result(error e) : err_(std::move(e.message)), failed_(true) {}
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& error_message() const { return err_; }
  error err() const { return error{err_}; }

private:
  std::string err_;
  bool failed_ = false;
};

using status = result<void>;

} // namespace sluice
