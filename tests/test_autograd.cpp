// Tests for src/autograd: finite-difference gradient checks for every op (table-driven), a
// proof that the checker rejects a wrong backward, STE, fused vs composed attention,
// cross-entropy masking, += accumulation, no-grad recording, error messages, and an
// end-to-end check through a 2-layer transformer built from these ops.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/rng.h"

using namespace razor;

namespace {

using OpFn = std::function<Var(std::vector<Var>&)>;

Tensor randn(const Shape& s, Rng& rng, float std = 1.0f) {
  Tensor t = Tensor::empty(s);
  fill_normal(t, rng, std);
  return t;
}

// loss = sum(out * W) with W fixed; its own backward (dout += dloss * W), so the checker does
// not depend on the ops under test.
Var weighted_sum(const Var& out, const Tensor& W) {
  Tensor l = Tensor::zeros(Shape{1});
  double s = 0;
  for (int64_t i = 0; i < out.numel(); ++i) s += double(out.value()[i]) * W[i];
  l[0] = float(s);
  Var loss = make_output(l, {&out});
  if (loss.requires_grad())
    tape().record([out = out, W, loss]() mutable {
      const float g = loss.grad()[0];
      float* d = out.grad().data();
      for (int64_t i = 0; i < out.numel(); ++i) d[i] += g * W[i];
    });
  return loss;
}

double weighted_sum_double(const Var& out, const Tensor& W) {
  double s = 0;
  for (int64_t i = 0; i < out.numel(); ++i) s += double(out.value()[i]) * double(W[i]);
  return s;
}

struct FdReport {
  bool ok = true;
  double worst = 0;  // max over checked elements of |fd - analytic| / tolerance
  int checked = 0;
  std::string where;
};

// Central finite differences of loss(x) = sum(fn(x) * W), accumulated in double.
//
// Tolerance |fd - an| <= 3e-4 * (1 + |an|) + 3e-4 * gscale, with h = 1e-2, gscale = the rms
// of the input's analytic gradient. Why this is the right size:
//  - truncation error of a central difference is h^2/6 * f''' ~ 1.7e-5 * f''' (f''' = O(1..10)
//    for these smooth ops with O(1) inputs), below 3e-4 * (1 + |an|);
//  - the forward runs in fp32: outputs that depend on the perturbed element carry ~1e-7
//    relative rounding each, which after dividing by 2h = 2e-2 gives ~5e-6 * sqrt(#affected)
//    * |out| (or ~5e-6 * #affected when they share one rounded statistic, such as rmsnorm's
//    inverse rms, so the table keeps such rows short, C <= 65); outputs that do not depend
//    on it are bit-identical in both evaluations and cancel exactly (loss summed in double);
//  - the actual step is measured as float(x + h) - float(x - h), so representation error of
//    the perturbed input does not enter.
// Measured: the worst case over the whole table uses < 0.1 of this tolerance
// (RAZOR_FD_VERBOSE=1 prints it per op). A wrong backward (sign flip, missing term, wrong
// scale) errs by O(|an|) = O(1), i.e. by ~1000x the tolerance; the "checker rejects a broken
// op" test holds that.
FdReport grad_check(const OpFn& fn, std::vector<Tensor> inputs, const std::vector<bool>& diff, uint64_t seed,
                    int max_per_input = 40, double h = 1e-2) {
  Rng rng(seed);
  tape().clear();
  std::vector<Var> vars;
  for (size_t i = 0; i < inputs.size(); ++i) vars.emplace_back(inputs[i], bool(diff[i]));
  Var out = fn(vars);
  Tensor W = randn(out.shape(), rng);
  Var loss = weighted_sum(out, W);
  backward(loss);
  FdReport rep;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!diff[i]) continue;
    Tensor an = vars[i].has_grad() ? vars[i].grad().clone() : Tensor::zeros(inputs[i].shape());
    double gs = 0;
    for (int64_t j = 0; j < an.numel(); ++j) gs += double(an[j]) * an[j];
    gs = std::sqrt(gs / double(std::max<int64_t>(1, an.numel())));
    const int64_t n = inputs[i].numel();
    std::vector<int64_t> idx;
    if (n <= max_per_input)
      for (int64_t j = 0; j < n; ++j) idx.push_back(j);
    else
      for (int j = 0; j < max_per_input; ++j) idx.push_back(int64_t(rng.below(uint64_t(n))));
    float* x = inputs[i].data();
    for (int64_t j : idx) {
      const float orig = x[j];
      const float xp = float(double(orig) + h), xm = float(double(orig) - h);
      double lp, lm;
      {
        NoGradGuard ng;
        x[j] = xp;
        lp = weighted_sum_double(fn(vars), W);
        x[j] = xm;
        lm = weighted_sum_double(fn(vars), W);
        x[j] = orig;
      }
      const double fd = (lp - lm) / (double(xp) - double(xm));
      const double a = an[j];
      const double tol = 3e-4 * (1.0 + std::fabs(a)) + 3e-4 * gs;
      const double r = std::fabs(fd - a) / tol;
      ++rep.checked;
      if (r > rep.worst) {
        rep.worst = r;
        char buf[160];
        std::snprintf(buf, sizeof buf, "input %zu element %lld: fd %.6g analytic %.6g", i, (long long)j, fd, a);
        rep.where = buf;
      }
      if (r > 1.0) rep.ok = false;
    }
  }
  tape().clear();
  return rep;
}

struct GradCase {
  std::string name;
  std::vector<Shape> shapes;
  std::vector<bool> diff;
  OpFn fn;
};

std::vector<GradCase> grad_cases() {
  std::vector<GradCase> cs;
  auto mm = [](bool ta, bool tb) { return [ta, tb](std::vector<Var>& v) { return matmul(v[0], v[1], ta, tb); }; };
  cs.push_back({"matmul", {{3, 17}, {17, 5}}, {true, true}, mm(false, false)});
  cs.push_back({"matmul ta", {{17, 3}, {17, 5}}, {true, true}, mm(true, false)});
  cs.push_back({"matmul tb", {{3, 17}, {5, 17}}, {true, true}, mm(false, true)});
  cs.push_back({"matmul ta tb", {{17, 3}, {5, 17}}, {true, true}, mm(true, true)});
  cs.push_back({"matmul M=1", {{1, 65}, {65, 3}}, {true, true}, mm(false, false)});
  cs.push_back({"matmul batched", {{2, 3, 4, 5}, {2, 3, 5, 7}}, {true, true}, mm(false, false)});
  cs.push_back({"matmul batched ta tb", {{2, 3, 5, 4}, {2, 3, 7, 5}}, {true, true}, mm(true, true)});
  cs.push_back({"matmul batched a, 2-D b", {{2, 3, 5}, {5, 7}}, {true, true}, mm(false, false)});
  cs.push_back({"matmul batched a ta, 2-D b tb", {{2, 5, 3}, {7, 5}}, {true, true}, mm(true, true)});
  cs.push_back({"linear", {{2, 3, 17}, {5, 17}}, {true, true}, [](std::vector<Var>& v) { return linear(v[0], v[1]); }});
  cs.push_back({"linear 1-D", {{17}, {3, 17}}, {true, true}, [](std::vector<Var>& v) { return linear(v[0], v[1]); }});
  cs.push_back({"add", {{3, 17}, {3, 17}}, {true, true}, [](std::vector<Var>& v) { return add(v[0], v[1]); }});
  // Activation recomputation: x and w are also used outside, so their gradients sum both paths;
  // the second case nests one checkpoint inside another.
  cs.push_back({"checkpoint", {{3, 17}, {5, 17}}, {true, true}, [](std::vector<Var>& v) {
                  Var w = v[1];
                  Var y = checkpoint(v[0], [w](const Var& x) { return silu(linear(mul(x, x), w)); });
                  return add(y, linear(v[0], w));
                }});
  cs.push_back({"checkpoint nested", {{3, 17}, {5, 17}}, {true, true}, [](std::vector<Var>& v) {
                  Var w = v[1];
                  return checkpoint(v[0], [w](const Var& x) {
                    Var h = checkpoint(x, [](const Var& t) { return silu(mul(t, t)); });
                    return linear(add(h, x), w);
                  });
                }});
  cs.push_back({"add broadcast", {{3, 4, 5}, {4, 5}}, {true, true}, [](std::vector<Var>& v) { return add(v[0], v[1]); }});
  cs.push_back({"sub broadcast", {{3, 17}, {17}}, {true, true}, [](std::vector<Var>& v) { return sub(v[0], v[1]); }});
  cs.push_back({"mul", {{1, 65}, {1, 65}}, {true, true}, [](std::vector<Var>& v) { return mul(v[0], v[1]); }});
  cs.push_back({"mul broadcast", {{3, 4, 5}, {5}}, {true, true}, [](std::vector<Var>& v) { return mul(v[0], v[1]); }});
  cs.push_back({"scale", {{3, 17}}, {true}, [](std::vector<Var>& v) { return scale(v[0], -1.7f); }});
  cs.push_back({"sum", {{3, 17}}, {true}, [](std::vector<Var>& v) { return sum(v[0]); }});
  cs.push_back({"mean", {{65}}, {true}, [](std::vector<Var>& v) { return mean(v[0]); }});
  cs.push_back({"reshape", {{3, 4, 5}}, {true},
                [](std::vector<Var>& v) { return mul(reshape(v[0], Shape{12, 5}), reshape(v[0], Shape{12, 5})); }});
  cs.push_back({"transpose 3-D", {{2, 3, 5}}, {true}, [](std::vector<Var>& v) { return transpose(v[0], 0, 2); }});
  cs.push_back({"transpose 4-D", {{2, 3, 4, 5}}, {true}, [](std::vector<Var>& v) { return transpose(v[0], 1, 2); }});
  cs.push_back({"slice", {{3, 17, 2}}, {true}, [](std::vector<Var>& v) { return slice(v[0], 1, 4, 9); }});
  cs.push_back({"concat", {{2, 3, 5}, {2, 1, 5}, {2, 4, 5}}, {true, false, true},
                [](std::vector<Var>& v) { return concat({v[0], v[1], v[2]}, 1); }});
  cs.push_back({"embedding", {{7, 5}}, {true}, [](std::vector<Var>& v) {
                  return embedding(v[0], {3, 0, 3, 6, 1, 3}, Shape{2, 3, 5});
                }});
  cs.push_back({"rmsnorm", {{3, 17}, {17}}, {true, true},
                [](std::vector<Var>& v) { return rmsnorm(v[0], v[1], 1e-6f); }});
  cs.push_back({"rmsnorm C=65", {{2, 1, 65}, {65}}, {true, true},
                [](std::vector<Var>& v) { return rmsnorm(v[0], v[1], 1e-5f); }});
  cs.push_back({"silu", {{3, 17}}, {true}, [](std::vector<Var>& v) { return silu(v[0]); }});
  cs.push_back({"swiglu", {{3, 17}, {3, 17}}, {true, true}, [](std::vector<Var>& v) { return swiglu(v[0], v[1]); }});
  cs.push_back({"softmax_lastdim", {{3, 17}}, {true}, [](std::vector<Var>& v) { return softmax_lastdim(v[0]); }});
  cs.push_back({"rope", {{2, 3, 2, 6}}, {true}, [](std::vector<Var>& v) {
                  static const RopeTable tab = RopeTable::make(16, 6, 10000.0);
                  return rope(v[0], tab, 2);
                }});
  cs.push_back({"rope D=2", {{1, 17, 1, 2}}, {true}, [](std::vector<Var>& v) {
                  static const RopeTable tab = RopeTable::make(17, 2, 100.0);
                  return rope(v[0], tab, 0);
                }});
  auto att = [](std::vector<Var>& v) { return attention(v[0], v[1], v[2]); };
  auto attc = [](std::vector<Var>& v) { return attention_composed(v[0], v[1], v[2]); };
  cs.push_back({"attention GQA", {{2, 5, 4, 3}, {2, 5, 2, 3}, {2, 5, 2, 3}}, {true, true, true}, att});
  cs.push_back({"attention T=1", {{1, 1, 2, 4}, {1, 1, 1, 4}, {1, 1, 1, 4}}, {true, true, true}, att});
  cs.push_back({"attention T=65 (two key blocks)", {{1, 65, 1, 3}, {1, 65, 1, 3}, {1, 65, 1, 3}}, {true, true, true},
                att});
  cs.push_back({"attention_composed GQA", {{2, 5, 4, 3}, {2, 5, 2, 3}, {2, 5, 2, 3}}, {true, true, true}, attc});
  cs.push_back({"cross_entropy", {{5, 7}}, {true}, [](std::vector<Var>& v) {
                  return cross_entropy(v[0], {2, -1, 6, 0, 2});
                }});
  cs.push_back({"cross_entropy V=65", {{3, 65}}, {true}, [](std::vector<Var>& v) {
                  return cross_entropy(v[0], {64, 17, 1});
                }});
  cs.push_back({"mse", {{3, 17}, {3, 17}}, {true, true}, [](std::vector<Var>& v) { return mse(v[0], v[1]); }});
  cs.push_back({"cosine_similarity", {{3, 17}, {3, 17}}, {true, true},
                [](std::vector<Var>& v) { return cosine_similarity(v[0], v[1]); }});
  cs.push_back({"cosine_similarity 1-D", {{65}}, {true}, [](std::vector<Var>& v) {
                  // b = a + a^2: correlated, so the gradient is far from zero.
                  return cosine_similarity(v[0], add(v[0], mul(v[0], v[0])));
                }});
  // Sizes above detail::kParallelMin, so the OpenMP and chunked-reduction paths run too.
  cs.push_back({"add broadcast (parallel path)", {{40, 1024}, {1024}}, {true, true},
                [](std::vector<Var>& v) { return add(v[0], v[1]); }});
  cs.push_back({"mul broadcast (parallel path)", {{40, 1024}, {1024}}, {true, true},
                [](std::vector<Var>& v) { return mul(v[0], v[1]); }});
  // Many short rows: a long row would share one fp32 inverse rms across C outputs, whose
  // coherent rounding (~1e-7 * C / 2h) would eat the tolerance without testing anything new.
  cs.push_back({"rmsnorm (parallel path)", {{520, 65}, {65}}, {true, true},
                [](std::vector<Var>& v) { return rmsnorm(v[0], v[1], 1e-6f); }});
  cs.push_back({"swiglu (parallel path)", {{40, 1024}, {40, 1024}}, {true, true},
                [](std::vector<Var>& v) { return swiglu(v[0], v[1]); }});
  cs.push_back({"embedding (parallel path)", {{50, 1024}}, {true}, [](std::vector<Var>& v) {
                  std::vector<int32_t> ids;
                  for (int i = 0; i < 40; ++i) ids.push_back((i * 7) % 50);
                  return embedding(v[0], ids, Shape{40, 1024});
                }});
  cs.push_back({"cross_entropy (parallel path)", {{8, 4099}}, {true}, [](std::vector<Var>& v) {
                  return cross_entropy(v[0], {0, 4098, -1, 17, 255, 256, 257, 4000});
                }});
  cs.push_back({"transpose (parallel path)", {{4, 40, 3, 100}}, {true},
                [](std::vector<Var>& v) { return transpose(v[0], 1, 2); }});
  return cs;
}

// A fake op with a deliberately wrong backward: silu forward, but the backward drops the
// x * s * (1 - s) term of d silu / dx. The checker must reject it.
Var broken_silu(const Var& x) {
  Tensor y = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y[i] = x.value()[i] / (1.0f + std::exp(-x.value()[i]));
  Var out = make_output(y, {&x});
  if (out.requires_grad())
    tape().record([x = x, out]() mutable {
      for (int64_t i = 0; i < x.numel(); ++i) {
        const float s = 1.0f / (1.0f + std::exp(-x.value()[i]));
        x.grad()[i] += out.grad()[i] * s;
      }
    });
  return out;
}

// Same forward, backward with the sign flipped.
Var sign_flipped_scale(const Var& x) {
  Var out = make_output(x.value().clone(), {&x});
  if (out.requires_grad())
    tape().record([x = x, out]() mutable {
      for (int64_t i = 0; i < x.numel(); ++i) x.grad()[i] -= out.grad()[i];
    });
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.numel() == b.numel());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::fabs(a[i])));
  return m;
}

}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("finite-difference gradient check of every op") {
    uint64_t seed = 100;
    for (const GradCase& c : grad_cases()) {
      Rng rng(seed++);
      std::vector<Tensor> inputs;
      for (const Shape& s : c.shapes) inputs.push_back(randn(s, rng));
      FdReport r = grad_check(c.fn, inputs, c.diff, seed);
      INFO(c.name << ": worst " << r.worst << " of tolerance at " << r.where);
      if (std::getenv("RAZOR_FD_VERBOSE")) std::printf("%-36s worst %.3f (%d checked) %s\n", c.name.c_str(), r.worst, r.checked, r.where.c_str());
      CHECK(r.ok);
      CHECK(r.checked > 0);
    }
  }

  TEST_CASE("the gradient checker rejects wrong backwards") {
    Rng rng(7);
    std::vector<Tensor> in = {randn(Shape{3, 17}, rng)};
    FdReport good = grad_check([](std::vector<Var>& v) { return silu(v[0]); }, in, {true}, 1);
    CHECK(good.ok);
    FdReport bad = grad_check([](std::vector<Var>& v) { return broken_silu(v[0]); }, in, {true}, 1);
    CHECK_FALSE(bad.ok);
    CHECK(bad.worst > 10.0);  // fails by a wide margin, not at the edge of the tolerance
    FdReport flip = grad_check([](std::vector<Var>& v) { return sign_flipped_scale(v[0]); }, in, {true}, 1);
    CHECK_FALSE(flip.ok);
  }

  TEST_CASE("ste: forward is f, gradient passes through unchanged") {
    Rng rng(3);
    Tensor xt = randn(Shape{4, 9}, rng, 2.0f);
    Var x(xt, true);
    auto round_fn = [](const Tensor& in, Tensor& out) {
      for (int64_t i = 0; i < in.numel(); ++i) out[i] = std::nearbyint(in[i]);
    };
    Var y = ste(x, round_fn);
    for (int64_t i = 0; i < xt.numel(); ++i) CHECK(y.value()[i] == std::nearbyint(xt[i]));
    Tensor W = randn(y.shape(), rng);
    Var loss = weighted_sum(y, W);
    backward(loss);
    for (int64_t i = 0; i < xt.numel(); ++i) CHECK(x.grad()[i] == W[i]);  // exact
  }

  TEST_CASE("fused attention equals the composed version, forward and backward") {
    struct Cfg {
      int64_t B, T, H, K, D;
    };
    const Cfg cfgs[] = {{2, 7, 4, 2, 8}, {1, 1, 4, 2, 8}, {2, 5, 3, 3, 5}, {1, 70, 2, 1, 16}, {1, 3, 4, 1, 4}};
    uint64_t seed = 11;
    for (const Cfg& c : cfgs) {
      INFO("B " << c.B << " T " << c.T << " H " << c.H << " K " << c.K << " D " << c.D);
      Rng rng(seed++);
      Tensor qt = randn(Shape{c.B, c.T, c.H, c.D}, rng, 1.5f);
      Tensor kt = randn(Shape{c.B, c.T, c.K, c.D}, rng, 1.5f);
      Tensor vt = randn(Shape{c.B, c.T, c.K, c.D}, rng);
      Tensor W = randn(Shape{c.B, c.T, c.H, c.D}, rng);
      Tensor out[2], gq[2], gk[2], gv[2];
      for (int fused = 0; fused < 2; ++fused) {
        Var q(qt.clone(), true), k(kt.clone(), true), v(vt.clone(), true);
        Var o = fused ? attention(q, k, v) : attention_composed(q, k, v);
        Var loss = weighted_sum(o, W);
        backward(loss);
        out[fused] = o.value();
        gq[fused] = q.grad();
        gk[fused] = k.grad();
        gv[fused] = v.grad();
      }
      // Same math, different fp32 summation order (online vs two-pass softmax, GEMM vs
      // per-key dots): agreement to ~1e-6 relative; 2e-5 of the magnitude leaves margin.
      CHECK(max_abs_diff(out[0], out[1]) <= 2e-5 * (1 + max_abs(out[0])));
      CHECK(max_abs_diff(gq[0], gq[1]) <= 2e-5 * (1 + max_abs(gq[0])));
      CHECK(max_abs_diff(gk[0], gk[1]) <= 2e-5 * (1 + max_abs(gk[0])));
      CHECK(max_abs_diff(gv[0], gv[1]) <= 2e-5 * (1 + max_abs(gv[0])));
    }
  }

  TEST_CASE("cross_entropy: ignored targets, all ignored gives 0") {
    Rng rng(5);
    Tensor lt = randn(Shape{4, 6}, rng, 2.0f);
    const std::vector<int32_t> tg = {1, -1, 5, -1};
    Var logits(lt, true);
    Var loss = cross_entropy(logits, tg);
    double expect = 0;
    for (int r : {0, 2}) {
      double z = 0;
      for (int c = 0; c < 6; ++c) z += std::exp(double(lt[r * 6 + c]));
      expect += std::log(z) - lt[r * 6 + tg[size_t(r)]];
    }
    expect /= 2;
    CHECK(loss.item() == doctest::Approx(expect).epsilon(1e-6));
    backward(loss);
    for (int c = 0; c < 6; ++c) {
      CHECK(logits.grad()[1 * 6 + c] == 0.0f);  // ignored rows get no gradient
      CHECK(logits.grad()[3 * 6 + c] == 0.0f);
    }
    double rowsum = 0;
    for (int c = 0; c < 6; ++c) rowsum += logits.grad()[c];
    CHECK(std::fabs(rowsum) < 1e-6);  // softmax - onehot sums to 0

    Var l2(lt.clone(), true);
    Var none = cross_entropy(l2, {-1, -1, -1, -1});
    CHECK(none.item() == 0.0f);
    backward(none);
    CHECK(max_abs(l2.grad()) == 0.0);
    CHECK_THROWS_AS(cross_entropy(l2, {0, 6, 0, 0}), Error);
    CHECK_THROWS_AS(cross_entropy(l2, {0, -2, 0, 0}), Error);
  }

  TEST_CASE("backward accumulates (+=): two backward passes double the gradient") {
    Rng rng(9);
    const RopeTable tab = RopeTable::make(8, 4, 10000.0);
    struct C {
      const char* name;
      std::vector<Shape> shapes;
      OpFn fn;
    };
    const std::vector<C> cases = {
        {"matmul", {{3, 5}, {5, 4}}, [](std::vector<Var>& v) { return matmul(v[0], v[1]); }},
        {"linear", {{3, 5}, {4, 5}}, [](std::vector<Var>& v) { return linear(v[0], v[1]); }},
        {"add broadcast", {{3, 5}, {5}}, [](std::vector<Var>& v) { return add(v[0], v[1]); }},
        {"mul", {{3, 5}, {3, 5}}, [](std::vector<Var>& v) { return mul(v[0], v[1]); }},
        {"rmsnorm", {{3, 5}, {5}}, [](std::vector<Var>& v) { return rmsnorm(v[0], v[1], 1e-6f); }},
        {"swiglu", {{3, 5}, {3, 5}}, [](std::vector<Var>& v) { return swiglu(v[0], v[1]); }},
        {"embedding", {{4, 5}}, [](std::vector<Var>& v) { return embedding(v[0], {1, 1, 3}, Shape{3, 5}); }},
        {"rope", {{1, 3, 2, 4}}, [&tab](std::vector<Var>& v) { return rope(v[0], tab); }},
        {"attention", {{1, 3, 2, 4}, {1, 3, 1, 4}, {1, 3, 1, 4}},
         [](std::vector<Var>& v) { return attention(v[0], v[1], v[2]); }},
        {"cross_entropy", {{3, 5}}, [](std::vector<Var>& v) { return cross_entropy(v[0], {1, -1, 4}); }},
        {"transpose", {{2, 3, 4}}, [](std::vector<Var>& v) { return transpose(v[0], 0, 1); }},
        {"concat", {{2, 3}, {2, 3}}, [](std::vector<Var>& v) { return concat({v[0], v[1]}, 0); }},
        {"cosine_similarity", {{3, 5}, {3, 5}}, [](std::vector<Var>& v) { return cosine_similarity(v[0], v[1]); }},
    };
    for (const C& c : cases) {
      INFO(c.name);
      std::vector<Var> vars;
      for (const Shape& s : c.shapes) vars.emplace_back(randn(s, rng), true);
      Tensor W;
      std::vector<Tensor> first;
      for (int pass = 0; pass < 2; ++pass) {
        Var o = c.fn(vars);
        if (!W.defined() || W.numel() != o.numel()) W = randn(o.shape(), rng);
        Var loss = weighted_sum(o, W);
        backward(loss);
        if (pass == 0)
          for (Var& v : vars) first.push_back(v.grad().clone());
      }
      for (size_t i = 0; i < vars.size(); ++i) {
        CHECK(max_abs(first[i]) > 0);
        Tensor twice = first[i].clone();
        for (int64_t j = 0; j < twice.numel(); ++j) twice[j] *= 2;
        CHECK(max_abs_diff(vars[i].grad(), twice) <= 1e-6 * (1 + max_abs(twice)));
      }
    }
  }

  TEST_CASE("no-grad scope records nothing") {
    tape().clear();
    Rng rng(2);
    Var x(randn(Shape{2, 3, 2, 4}, rng), true);
    Var w(randn(Shape{4}, rng), true);
    Var lin(randn(Shape{4, 4}, rng), true);
    {
      NoGradGuard ng;
      Var h = rmsnorm(x, w, 1e-6f);
      h = linear(h, lin);
      h = attention(h, h, h);
      Var l = cross_entropy(reshape(h, Shape{12, 4}), std::vector<int32_t>(12, 1));
      CHECK(tape().size() == 0);
      CHECK_FALSE(l.requires_grad());
    }
    Var h = rmsnorm(x, w, 1e-6f);  // recording again after the scope
    CHECK(tape().size() == 1);
    CHECK(h.requires_grad());
    tape().clear();
    // Constant inputs record nothing either.
    Var c(randn(Shape{3, 4}, rng), false);
    Var s = silu(c);
    CHECK(tape().size() == 0);
    CHECK_FALSE(s.requires_grad());
  }

  TEST_CASE("errors name the op and the shapes") {
    Var a(Tensor::zeros(Shape{3, 4})), b(Tensor::zeros(Shape{5, 6}));
    CHECK_THROWS_WITH_AS(matmul(a, b), "matmul: inner dimensions differ: a [3, 4], b [5, 6]", Error);
    CHECK_THROWS_WITH_AS(add(a, b), "add: b [5, 6] must equal a [3, 4] or its trailing dims", Error);
    CHECK_THROWS_AS(linear(a, b), Error);
    CHECK_THROWS_AS(rmsnorm(a, Var(Tensor::zeros(Shape{3})), 1e-6f), Error);
    CHECK_THROWS_AS(embedding(a, {0, 3}, Shape{2, 4}), Error);  // id 3 outside 3 rows
    Var q(Tensor::zeros(Shape{1, 2, 3, 4})), k(Tensor::zeros(Shape{1, 2, 2, 4}));
    CHECK_THROWS_AS(attention(q, k, k), Error);  // 3 % 2 != 0
    const RopeTable tab = RopeTable::make(4, 4, 10000.0);
    CHECK_THROWS_AS(rope(Var(Tensor::zeros(Shape{1, 3, 1, 4})), tab, 2), Error);  // positions 2..4 > 4
    CHECK_THROWS_AS(RopeTable::make(4, 3, 10000.0), Error);
  }

  TEST_CASE("rope matches the rotate-half definition") {
    const RopeTable tab = RopeTable::make(8, 4, 10000.0);
    Tensor xt = Tensor::from(Shape{1, 1, 1, 4}, {1.0f, 2.0f, 3.0f, 4.0f});
    Var y = rope(Var(xt), tab, 5);
    const double a0 = 5.0, a1 = 5.0 * std::pow(10000.0, -0.5);
    CHECK(y.value()[0] == doctest::Approx(1 * std::cos(a0) - 3 * std::sin(a0)));
    CHECK(y.value()[1] == doctest::Approx(2 * std::cos(a1) - 4 * std::sin(a1)));
    CHECK(y.value()[2] == doctest::Approx(3 * std::cos(a0) + 1 * std::sin(a0)));
    CHECK(y.value()[3] == doctest::Approx(4 * std::cos(a1) + 2 * std::sin(a1)));
  }
}

namespace {

// A 2-layer Llama/Qwen-style decoder built from the ops, for the end-to-end gradient check.
struct TinyModel {
  int64_t V = 13, C = 16, H = 4, K = 2, D = 4, F = 24, L = 2;
  std::vector<Tensor> params;  // embed, per layer 9 tensors, final norm, head
  std::vector<std::string> names;
  RopeTable rope_tab = RopeTable::make(16, 4, 10000.0);

  void add_param(const std::string& n, const Shape& s, Rng& rng, float std, float mean_ = 0.0f) {
    Tensor t = randn(s, rng, std);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] += mean_;
    params.push_back(t);
    names.push_back(n);
  }
  explicit TinyModel(Rng& rng) {
    add_param("embed", {V, C}, rng, 1.0f);
    for (int64_t l = 0; l < L; ++l) {
      const std::string p = "layer" + std::to_string(l) + ".";
      add_param(p + "ln1", {C}, rng, 0.1f, 1.0f);
      add_param(p + "q", {H * D, C}, rng, 0.3f);
      add_param(p + "k", {K * D, C}, rng, 0.3f);
      add_param(p + "v", {K * D, C}, rng, 0.3f);
      add_param(p + "o", {C, H * D}, rng, 0.3f);
      add_param(p + "ln2", {C}, rng, 0.1f, 1.0f);
      add_param(p + "gate", {F, C}, rng, 0.3f);
      add_param(p + "up", {F, C}, rng, 0.3f);
      add_param(p + "down", {C, F}, rng, 0.3f);
    }
    add_param("norm", {C}, rng, 0.1f, 1.0f);
    add_param("head", {V, C}, rng, 0.3f);
  }

  Var loss(std::vector<Var>& p, const std::vector<int32_t>& ids, const std::vector<int32_t>& targets, int64_t B,
           int64_t T) const {
    Var x = embedding(p[0], ids, Shape{B, T, C});
    size_t i = 1;
    for (int64_t l = 0; l < L; ++l, i += 9) {
      Var h = rmsnorm(x, p[i], 1e-6f);
      Var q = rope(reshape(linear(h, p[i + 1]), Shape{B, T, H, D}), rope_tab);
      Var k = rope(reshape(linear(h, p[i + 2]), Shape{B, T, K, D}), rope_tab);
      Var v = reshape(linear(h, p[i + 3]), Shape{B, T, K, D});
      Var a = reshape(attention(q, k, v), Shape{B, T, H * D});
      x = add(x, linear(a, p[i + 4]));
      Var h2 = rmsnorm(x, p[i + 5], 1e-6f);
      x = add(x, linear(swiglu(linear(h2, p[i + 6]), linear(h2, p[i + 7])), p[i + 8]));
    }
    x = rmsnorm(x, p[i], 1e-6f);
    Var logits = reshape(linear(x, p[i + 1]), Shape{B * T, V});
    return cross_entropy(logits, targets);
  }
};

}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("end-to-end gradient check through a 2-layer transformer") {
    Rng rng(2024);
    TinyModel m(rng);
    const int64_t B = 2, T = 6;
    std::vector<int32_t> ids, targets;
    for (int64_t i = 0; i < B * T; ++i) ids.push_back(int32_t(rng.below(uint64_t(m.V))));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) targets.push_back(t + 1 < T ? ids[size_t(b * T + t + 1)] : -1);
    targets[3] = -1;  // a masked position inside a sequence

    tape().clear();
    std::vector<Var> vars;
    for (Tensor& t : m.params) vars.emplace_back(t, true);
    Var loss = m.loss(vars, ids, targets, B, T);
    CHECK(std::isfinite(loss.item()));
    backward(loss);
    CHECK(tape().size() == 0);
    auto eval = [&]() {
      NoGradGuard ng;
      return double(m.loss(vars, ids, targets, B, T).item());
    };
    const double h = 1e-2;
    for (size_t pi = 0; pi < m.params.size(); ++pi) {
      INFO("parameter " << m.names[pi]);
      Tensor& P = m.params[pi];
      const Tensor g = vars[pi].grad();
      // (1) Directional derivative along a random direction u over the whole tensor: checks
      // every element's gradient at once. The loss is fp32 (~3e-7 absolute rounding), so the
      // difference quotient carries ~3e-5 noise; 1e-4 + 1e-2 relative leaves margin while a
      // wrong or missing gradient path changes the value by O(1) relative. The same bound
      // holds for the single-element check (2).
      // u has unit L2 norm so the step h * u stays as small as a single-element step
      // (a N(0,1) direction over 384 elements moves the weights ~20x further and the
      // O(h^2 |u|^3) truncation error shows).
      Tensor u = randn(P.shape(), rng);
      {
        double nu = 0;
        for (int64_t j = 0; j < u.numel(); ++j) nu += double(u[j]) * u[j];
        for (int64_t j = 0; j < u.numel(); ++j) u[j] = float(u[j] / std::sqrt(nu));
      }
      Tensor orig = P.clone();
      double gu = 0;
      for (int64_t j = 0; j < P.numel(); ++j) gu += double(g[j]) * u[j];
      for (int64_t j = 0; j < P.numel(); ++j) P[j] = orig[j] + float(h) * u[j];
      const double lp = eval();
      for (int64_t j = 0; j < P.numel(); ++j) P[j] = orig[j] - float(h) * u[j];
      const double lm = eval();
      P.copy_from(orig);
      const double fd = (lp - lm) / (2 * h);
      INFO("directional: fd " << fd << " analytic " << gu);
      CHECK(std::fabs(fd - gu) <= 1e-4 + 1e-2 * std::fabs(gu));
      // (2) The single element with the largest gradient.
      int64_t jmax = 0;
      for (int64_t j = 1; j < P.numel(); ++j)
        if (std::fabs(g[j]) > std::fabs(g[jmax])) jmax = j;
      const float x0 = P[jmax];
      P[jmax] = float(x0 + h);
      const double ep = eval();
      P[jmax] = float(x0 - h);
      const double em = eval();
      P[jmax] = x0;
      const double fde = (ep - em) / (double(float(x0 + h)) - double(float(x0 - h)));
      INFO("element " << jmax << ": fd " << fde << " analytic " << g[jmax]);
      CHECK(std::fabs(fde - g[jmax]) <= 1e-4 + 1e-2 * std::fabs(g[jmax]));
      if (std::getenv("RAZOR_FD_VERBOSE"))
        std::printf("%-14s dir fd %.6g an %.6g | elem fd %.6g an %.6g\n", m.names[pi].c_str(), fd, gu, fde,
                    double(g[jmax]));
    }
  }
}

#include "autograd/ops_util.h"

TEST_SUITE("autograd") {
  TEST_CASE("vectorised exp matches std::exp to ~1 ulp and handles the edges") {
    // Dense sweep of the normal range; any error above 2 ulp means a wrong constant.
    std::vector<float> xs;
    for (float x = -87.3f; x < 88.3f; x += 0.00731f) xs.push_back(x);
    std::vector<float> ys = xs;
    exp_inplace(ys.data(), int64_t(ys.size()));
    double worst = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double e = std::exp(double(xs[i]));
      const double ulp = double(std::nextafter(float(e), INFINITY)) - double(float(e));
      worst = std::max(worst, std::fabs(double(ys[i]) - e) / ulp);
    }
    CHECK(worst < 2.0);
    std::vector<float> edge = {-INFINITY, INFINITY, NAN, 0.0f, -1000.0f, 1000.0f, -87.4f};  // 7: the scalar tail
    exp_inplace(edge.data(), int64_t(edge.size()));
    CHECK(edge[0] == 0.0f);
    CHECK(std::isinf(edge[1]));
    CHECK(std::isnan(edge[2]));
    CHECK(edge[3] == 1.0f);
    CHECK(edge[4] == 0.0f);
    CHECK(std::isinf(edge[5]));
    CHECK(edge[6] == 0.0f);
  }
}

#include "core/threads.h"

TEST_SUITE("autograd") {
  TEST_CASE("losses and gradients are bitwise identical for 1 and 3 threads") {
    // The broadcast / weight reductions use fixed chunks and the attention dK/dV partials are
    // summed in head order, so the thread count must not change a single bit.
    const int prev = num_threads();
    Rng rng(77);
    const Tensor x = randn(Shape{520, 65}, rng), w = randn(Shape{65}, rng);
    const Tensor q = randn(Shape{2, 9, 4, 8}, rng), k = randn(Shape{2, 9, 2, 8}, rng), v = randn(Shape{2, 9, 2, 8}, rng);
    std::vector<Tensor> grads[2];
    for (int run = 0; run < 2; ++run) {
      set_num_threads(run == 0 ? 1 : 3);
      Var xv(x.clone(), true), wv(w.clone(), true), qv(q.clone(), true), kv(k.clone(), true), vv(v.clone(), true);
      Var l1 = sum(rmsnorm(add(xv, wv), wv, 1e-6f));
      Var l2 = sum(mul(attention(qv, kv, vv), Var(q)));
      Var l = add(l1, l2);
      backward(l);
      Tensor lval = Tensor::full(Shape{1}, l.item());
      NoGradGuard ng;
      Var ce = cross_entropy(reshape(xv, Shape{520, 65}), std::vector<int32_t>(520, 3));
      Tensor ceval = Tensor::full(Shape{1}, ce.item());
      grads[run] = {xv.grad(), wv.grad(), qv.grad(), kv.grad(), vv.grad(), lval, ceval};
    }
    set_num_threads(prev);
    for (size_t i = 0; i < grads[0].size(); ++i) {
      INFO("gradient " << i);
      CHECK(max_abs_diff(grads[0][i], grads[1][i]) == 0.0);
    }
  }
}
