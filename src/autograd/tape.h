// Tape-based reverse-mode autograd.
//
// A Var is a shared handle to a value tensor and (lazily allocated) gradient tensor.
// Every differentiable op computes its forward eagerly and, when gradients are enabled and
// an input requires them, records a backward closure on the thread's tape. backward(loss)
// seeds d(loss) = 1 and replays the closures in reverse order of recording (no graph sort);
// each closure is destroyed right after it runs, which releases the tensors it saved.
// Backward closures ADD into input gradients (+=), never overwrite.
// Parameters get their gradient tensor from a flat gradient buffer (Var::param).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace razor {

struct VarData {
  Tensor value;
  Tensor grad;  // undefined until first needed
  bool requires_grad = false;
};

class Var {
 public:
  Var() = default;
  // A leaf. requires_grad=false makes a constant.
  explicit Var(Tensor value, bool requires_grad = false);
  // A parameter whose gradient accumulates into `grad` (same shape; e.g. a flat-buffer view).
  static Var param(Tensor value, Tensor grad);

  bool defined() const { return p_ != nullptr; }
  const Tensor& value() const { return p_->value; }
  Tensor& value() { return p_->value; }
  const Shape& shape() const { return p_->value.shape(); }
  int64_t size(int i) const { return p_->value.size(i); }
  int64_t numel() const { return p_->value.numel(); }
  bool requires_grad() const { return p_ && p_->requires_grad; }
  bool has_grad() const { return p_ && p_->grad.defined() && p_->grad.numel() == p_->value.numel() && p_->grad.data(); }
  // The gradient, allocated as zeros on first use.
  Tensor& grad();
  // The gradient for a backward that can write instead of add: when it is not allocated yet,
  // it is allocated uninitialised and *fresh is set (the caller then writes every element).
  Tensor& grad_for_write(bool* fresh);
  // For a backward that would add g into a gradient not allocated yet (dx = 0 + g): takes g's
  // buffer as that gradient instead (shared, no copy) and returns true; false when x already
  // has a gradient to add into. g must not be written afterwards by anyone but x's users.
  bool adopt_grad(const Tensor& g);
  // Scalar value (numel must be 1).
  float item() const;

 private:
  std::shared_ptr<VarData> p_;
};

class Tape {
 public:
  void record(std::function<void()> backward_fn) { fns_.push_back(std::move(backward_fn)); }
  // loss must have one element. Replays and clears the tape.
  void backward(Var& loss);
  void clear() { fns_.clear(); }
  size_t size() const { return fns_.size(); }
  // Replays the closures recorded so far, like backward, with gradients already seeded.
  void replay();
  void swap(Tape& other) { fns_.swap(other.fns_); }

 private:
  std::vector<std::function<void()>> fns_;
};

// The calling thread's tape.
Tape& tape();
bool grad_enabled();
// Disables recording in its scope (inference, the teacher).
struct NoGradGuard {
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
  bool prev;
};

// For op implementations: true when grad is enabled and any input requires grad.
bool any_requires_grad(std::initializer_list<const Var*> inputs);
// Output Var for an op: requires_grad = any_requires_grad(inputs).
Var make_output(Tensor value, std::initializer_list<const Var*> inputs);

// Runs backward on the thread's tape.
inline void backward(Var& loss) { tape().backward(loss); }

// Activation recomputation: y = f(x), recording one closure instead of f's. The forward runs
// without recording (what f's ops would save is released as it goes); the backward runs f
// again from the saved x on a fresh tape, seeds its output with y's gradient, replays it, and
// adds the input's gradient into x's. Parameters f reads get their gradients as without it.
// f must be a pure function of x and state that does not change before the backward (both
// runs make the same bits), and must own what it captures: it runs again after the caller's
// frame is gone. Without gradients (or when nothing requires them) this is just f(x).
Var checkpoint(const Var& x, std::function<Var(const Var&)> f);

}  // namespace razor
