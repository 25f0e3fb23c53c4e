// Tests for src/core (tensor, half, rng, cpu) and src/io/json, src/cli/args.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "cli/args.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/vmath.h"
#include "io/json.h"

using namespace razor;

TEST_SUITE("core") {
  TEST_CASE("vmath: exp_approx within 2e-7 relative of exp on [-87.3, 88.3], 0 below, inf above") {
    double worst = 0;
    float worst_x = 0;
    // Every 2^-12 step plus the ends; x values are exact floats.
    for (double xd = -87.3; xd <= 88.3; xd += 1.0 / 4096) {
      const float x = float(xd);
      if (x < -87.3f || x > 88.3f) continue;
      const double want = std::exp(double(x));
      const double rel = std::fabs(double(exp_approx(x)) - want) / want;
      if (rel > worst) worst = rel, worst_x = x;
    }
    MESSAGE("exp_approx: worst relative error " << worst << " at x = " << worst_x);
    CHECK(worst <= 2e-7);
    CHECK(exp_approx(0.0f) == 1.0f);
    CHECK(exp_approx(-88.0f) == 0.0f);
    CHECK(exp_approx(-std::numeric_limits<float>::infinity()) == 0.0f);
    // One overflow rule with the vector exp (core/vmath.h): +inf above the range, as std::exp.
    CHECK(std::isinf(exp_approx(1000.0f)));
    CHECK(std::isfinite(exp_approx(88.3f)));
    CHECK(std::isnan(exp_approx(std::numeric_limits<float>::quiet_NaN())));
    // exp_shifted_sum: elementwise equal to exp_approx, sum in double, any length.
    Rng r(3);
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(8), int64_t(4099)}) {
      std::vector<float> x(static_cast<size_t>(n)), out(static_cast<size_t>(n));
      for (float& v : x) v = 20.0f * r.uniform() - 10.0f;
      const double s = exp_shifted_sum(x.data(), 2.5f, out.data(), n);
      double want = 0;
      for (int64_t i = 0; i < n; ++i) {
        CHECK(out[size_t(i)] == exp_approx(x[size_t(i)] - 2.5f));
        want += std::exp(double(x[size_t(i)]) - 2.5);
      }
      CHECK(s == doctest::Approx(want).epsilon(3e-7));
    }
    // The eight-lane path has exp_approx's bits on every input, the clamps and specials included.
    std::vector<float> x;
    for (int i = 0; i < 20000; ++i) x.push_back(200.0f * r.uniform() - 100.0f);
    for (float v : {88.3f, 88.31f, -87.3f, -87.31f, 0.0f, -0.0f, 1e-30f, std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(), 88.0f, -87.0f})
      x.push_back(v);
    while (x.size() % 8) x.push_back(1.0f);
    std::vector<float> out(x.size());
    exp_shifted_sum(x.data(), 0.0f, out.data(), int64_t(x.size()));
    int mismatches = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = exp_approx(x[i]);
      if (std::isnan(want) ? !std::isnan(out[i]) : std::memcmp(&want, &out[i], sizeof want) != 0) ++mismatches;
    }
    CHECK(mismatches == 0);
  }

  TEST_CASE("vmath: row_max equals the scalar max loop at every length and position") {
    Rng r(11);
    for (int64_t n : {1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 4096, 4099}) {
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> x(static_cast<size_t>(n));
        for (float& v : x) v = 20.0f * r.uniform() - 10.0f;
        // The maximum in every position class: first, in a full block, in the tail.
        const int64_t at = trial == 0 ? 0 : trial == 1 ? n - 1 : int64_t(r.below(uint64_t(n)));
        x[size_t(at)] = 11.0f + float(trial);
        if (trial == 3) x.assign(size_t(n), -0.0f), x[size_t(at)] = 0.0f;  // signed zeros
        if (trial == 4) x.assign(size_t(n), -std::numeric_limits<float>::infinity());
        float want = x[0];
        for (int64_t i = 1; i < n; ++i) want = std::max(want, x[size_t(i)]);
        const float got = row_max(x.data(), n);
        CHECK(got == want);  // the same value (a zero maximum may differ in sign)
      }
    }
  }

  TEST_CASE("tensor basics: alignment, shapes, views") {
    Tensor t = Tensor::zeros({2, 3, 5});
    CHECK(t.numel() == 30);
    CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
    CHECK(t.size(-1) == 5);
    CHECK(t.shape_str() == "[2, 3, 5]");
    Tensor r = t.reshape({6, 5});
    r[7] = 3.0f;
    CHECK(t[7] == 3.0f);  // shares the buffer
    Tensor rows = r.rows(1, 2);
    CHECK(rows.data() == r.data() + 5);
    CHECK(rows.size(0) == 2);
    CHECK_THROWS_AS(t.reshape({7, 5}), Error);
    CHECK_THROWS_AS(r.rows(5, 2), Error);
    Tensor c = t.clone();
    c[7] = 1.0f;
    CHECK(t[7] == 3.0f);
    CHECK_THROWS_WITH_AS(check_same_shape("add", t, r), "add: shape mismatch: [2, 3, 5] vs [6, 5]", Error);
  }

  TEST_CASE("bf16 conversion rounds to nearest even") {
    CHECK(f32_to_bf16(1.0f) == 0x3f80);
    // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
    CHECK(f32_to_bf16(1.00390625f) == 0x3f80);
    // 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): rounds up.
    CHECK(f32_to_bf16(1.01171875f) == 0x3f82);
    CHECK(bf16_to_f32(0xc000) == -2.0f);
    CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::isinf(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::infinity()))));
  }

  TEST_CASE("fp16 conversion: exact values, ties, subnormals, overflow") {
    CHECK(f32_to_f16(1.0f) == 0x3c00);
    CHECK(f32_to_f16(-2.0f) == 0xc000);
    CHECK(f32_to_f16(65504.0f) == 0x7bff);
    CHECK(f32_to_f16(65520.0f) == 0x7c00);  // rounds to inf
    CHECK(f32_to_f16(1e-8f) == 0x0000);
    CHECK(f32_to_f16(5.9604644775390625e-08f) == 0x0001);  // smallest subnormal
    // 1 + 2^-11 is halfway between 1 and 1+2^-10: ties to even -> 1.
    CHECK(f32_to_f16(1.00048828125f) == 0x3c00);
    CHECK(f32_to_f16(1.00146484375f) == 0x3c02);  // 1 + 3*2^-11 -> up to even
    // Every fp16 value round-trips exactly.
    for (uint32_t h = 0; h < 0x10000; ++h) {
      uint16_t x = uint16_t(h);
      if (((x >> 10) & 0x1f) == 0x1f && (x & 0x3ff)) continue;  // NaN payloads
      REQUIRE(f32_to_f16(f16_to_f32(x)) == x);
    }
    CHECK(round_to_f16(0.1f) == f16_to_f32(0x2e66));
  }

  TEST_CASE("rng is reproducible and roughly normal") {
    Rng a(42), b(42), c(43);
    for (int i = 0; i < 10; ++i) {
      uint64_t x = a.next_u64();
      CHECK(x == b.next_u64());
      CHECK(x != c.next_u64());
    }
    Rng r(7);
    double s = 0, s2 = 0;
    const int n = 100000;
    for (int i = 0; i < n; ++i) {
      double v = r.normal();
      s += v;
      s2 += v * v;
    }
    CHECK(std::fabs(s / n) < 0.02);
    CHECK(std::fabs(s2 / n - 1.0) < 0.03);
    for (int i = 0; i < 1000; ++i) CHECK(r.below(17) < 17);
  }

  TEST_CASE("cpu features and isa forcing") {
    CHECK(isa_supported(Isa::Ref));
    Isa prev = set_isa(Isa::Ref);
    CHECK(active_isa() == Isa::Ref);
    set_isa(prev);
    CHECK(active_isa() == prev);
    CHECK_THROWS_AS(parse_isa("sse9"), Error);
  }
}

TEST_SUITE("io") {
  TEST_CASE("json parse and dump") {
    Json j = Json::parse(R"({"a": 1, "b": [true, null, -2.5e1], "c": "x\u00e9\ud83d\ude00\n", "d": {}})");
    CHECK(j.at("a").as_int() == 1);
    CHECK(j.at("b").size() == 3);
    CHECK(j.at("b")[2].as_double() == -25.0);
    CHECK(j.at("c").as_string() == "x\xc3\xa9\xf0\x9f\x98\x80\n");
    CHECK(j.at("d").is_object());
    CHECK(j.dump() == R"({"a":1,"b":[true,null,-25],"c":"xé😀\n","d":{}})");
    Json k = Json::parse(j.dump(2));
    CHECK(k.dump() == j.dump());
    CHECK(Json(0.1).dump() == "0.1");
    CHECK(Json(int64_t(151643)).dump() == "151643");
  }

  TEST_CASE("json rejects malformed input with a position") {
    const char* bad[] = {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\ud800\"", "\"a\x01\"", "tru", "[1] x",
                         "\"\xff\"", "{\"a\":1,}"};
    for (const char* b : bad) CHECK_THROWS_AS(Json::parse(b, "t.json"), Error);
    CHECK_THROWS_WITH_AS(Json::parse("{\n  \"a\": x}", "cfg.json"),
                         "cfg.json: invalid JSON at line 2, column 8: unexpected character", Error);
    std::string deep(1000, '[');
    CHECK_THROWS_AS(Json::parse(deep), Error);
  }

  TEST_CASE("json typed access names the field") {
    Json j = Json::parse(R"({"hidden_size": "big", "x": 1.5})");
    CHECK_THROWS_WITH_AS(j.at("hidden_size").as_int("config.json: hidden_size"),
                         "config.json: hidden_size: expected an integer, found a string", Error);
    CHECK_THROWS_AS(j.at("x").as_int(), Error);
    CHECK(j.get_int("missing", 7) == 7);
    CHECK_THROWS_AS(j.at("missing", "config.json"), Error);
  }
}

TEST_SUITE("cli") {
  TEST_CASE("args: values, flags, errors") {
    ArgParser p("razor test", "a test");
    p.option("-n,--steps", "10", "steps");
    p.option("--rho", "1/8", "rho");
    p.option("--name", "", "name");
    p.flag("--a8", "A8");
    const char* argv[] = {"razor test", "-n", "25", "--a8", "--name=x y"};
    REQUIRE(p.parse(5, const_cast<char**>(argv)));
    CHECK(p.i64("steps") == 25);
    CHECK(p.on("a8"));
    CHECK(p.str("name") == "x y");
    CHECK(p.f64("rho") == doctest::Approx(0.125));
    CHECK(p.given("steps"));
    CHECK(!p.given("rho"));
    CHECK_THROWS_AS(p.i64_in("steps", 0, 20), Error);

    ArgParser q("razor test", "");
    q.option("--steps", "10", "steps");
    const char* bad1[] = {"razor test", "--stepz", "3"};
    CHECK_THROWS_WITH_AS(q.parse(3, const_cast<char**>(bad1)),
                         "razor test: unknown option '--stepz' (see razor test --help)", Error);
    ArgParser r("razor test", "");
    r.option("--steps", "10", "steps");
    const char* bad2[] = {"razor test", "--steps", "ten"};
    REQUIRE(r.parse(3, const_cast<char**>(bad2)));
    CHECK_THROWS_AS(r.i64("steps"), Error);
    ArgParser s("razor test", "");
    s.option("--steps", "10", "steps");
    const char* bad3[] = {"razor test", "--steps"};
    CHECK_THROWS_AS(s.parse(2, const_cast<char**>(bad3)), Error);
  }
}
