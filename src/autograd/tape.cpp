#include "autograd/tape.h"

#include "core/error.h"

namespace razor {

Var::Var(Tensor value, bool requires_grad) : p_(std::make_shared<VarData>()) {
  p_->value = std::move(value);
  p_->requires_grad = requires_grad;
}

Var Var::param(Tensor value, Tensor grad) {
  RZ_ASSERT(value.numel() == grad.numel());
  Var v(std::move(value), true);
  v.p_->grad = std::move(grad);
  return v;
}

Tensor& Var::grad() {
  RZ_ASSERT(p_ != nullptr);
  if (!p_->grad.data() || p_->grad.numel() != p_->value.numel()) p_->grad = Tensor::zeros(p_->value.shape());
  return p_->grad;
}

Tensor& Var::grad_for_write(bool* fresh) {
  RZ_ASSERT(p_ != nullptr);
  *fresh = !p_->grad.data() || p_->grad.numel() != p_->value.numel();
  if (*fresh) p_->grad = Tensor::empty(p_->value.shape());
  return p_->grad;
}

bool Var::adopt_grad(const Tensor& g) {
  RZ_ASSERT(p_ != nullptr && g.numel() == p_->value.numel());
  if (p_->grad.data() && p_->grad.numel() == p_->value.numel()) return false;
  p_->grad = g.reshape(p_->value.shape());
  return true;
}

float Var::item() const {
  RZ_ASSERT(p_ && p_->value.numel() == 1);
  return p_->value[0];
}

static thread_local Tape t_tape;
static thread_local bool t_grad_enabled = true;

Tape& tape() { return t_tape; }
bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : prev(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev; }

bool any_requires_grad(std::initializer_list<const Var*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Var* v : inputs)
    if (v && v->requires_grad()) return true;
  return false;
}

Var make_output(Tensor value, std::initializer_list<const Var*> inputs) {
  return Var(std::move(value), any_requires_grad(inputs));
}

void Tape::backward(Var& loss) {
  if (loss.numel() != 1) fail("backward: loss must have one element, got shape %s", loss.shape().str().c_str());
  if (!loss.requires_grad()) {
    fns_.clear();
    return;
  }
  loss.grad()[0] += 1.0f;
  replay();
}

void Tape::replay() {
  // Reverse order, destroying each closure (and what it saved) once it has run.
  while (!fns_.empty()) {
    std::function<void()> fn = std::move(fns_.back());
    fns_.pop_back();
    fn();
  }
}

Var checkpoint(const Var& x, std::function<Var(const Var&)> f) {
  if (!t_grad_enabled) return f(x);
  Var y;
  {
    NoGradGuard ng;
    y = f(x);
  }
  // Whether f's output needs a gradient (x does, or f reads a parameter) is known only by
  // recording f; out claims it does, and the backward finds out.
  Var out(y.value(), true);
  y = Var();
  t_tape.record([x = Var(x), out, f = std::move(f)]() mutable {
    if (!out.has_grad()) return;  // nothing downstream used y
    Tape outer;
    outer.swap(t_tape);  // f's closures go on a tape of their own
    struct Restore {
      Tape& outer;
      ~Restore() {
        t_tape.clear();
        t_tape.swap(outer);
      }
    } restore{outer};
    // A leaf sharing x's values and gradient buffer: f's backward adds into x's gradient in
    // the order it would without the checkpoint (after what later ops added), the same bits.
    Var xin = x.requires_grad() ? Var::param(x.value(), x.grad()) : Var(x.value(), false);
    Var yr = f(xin);
    RZ_ASSERT(yr.shape() == out.shape());
    if (!yr.requires_grad()) return;
    const bool adopted = yr.adopt_grad(out.grad());  // yr's gradient is out's (0 + g = g)
    RZ_ASSERT(adopted);  // yr is f's fresh output: no gradient yet
    out = Var();  // release y before f's backward allocates
    t_tape.replay();
  });
  return out;
}

}  // namespace razor
