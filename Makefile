# razor — one Makefile for the binary and the tests.
#   make              ./razor only (optimised for this machine, OpenMP): g++ and OpenMP suffice
#   make test         build and run the doctest suite (needs doctest: `make deps`)
#   make PORTABLE=1   any x86-64; SIMD paths chosen at run time (always true for kernels)
#   make SAN=1        AddressSanitizer + UndefinedBehaviorSanitizer build (build-san/)
#   make MPI=1        data-parallel training over Open MPI (build-mpi/; `make MPI=1 test-mpi`)
#   make fuzz         libFuzzer targets fuzz/fuzz_*.cpp (clang, ASan+UBSan, build-fuzz/), each run
#                     FUZZ_SECONDS (default 30) over fuzz/seeds/<target>/; FUZZ_TARGETS=fuzz_json limits it
#                     (needs clang + compiler-rt: tools/install_deps.sh --fuzz)
#   make CROSS=aarch64  cross-build for ARM (build-aarch64/); `make CROSS=aarch64 test` runs under qemu
#   make deps         install the Debian packages the tests need (doctest-dev)
#   make check-deps   every #include against the folder layering in docs/architecture.md
# Kernel files are compiled with per-file ISA flags chosen by their suffix:
#   *_avx2.cpp, *_avx512.cpp (x86 only), *_neon.cpp, *_dotprod.cpp (aarch64 only).

CXX ?= g++
BUILD := build
OPT := -O2
ARCHFLAGS := -march=native
LDFLAGS_EXTRA :=
EXE := razor

ifeq ($(CROSS),aarch64)
  CXX := aarch64-linux-gnu-g++
  BUILD := build-aarch64
  ARCHFLAGS := -march=armv8-a
  LDFLAGS_EXTRA += -static
  EXE := $(BUILD)/razor
endif
ifeq ($(PORTABLE),1)
  ARCHFLAGS := -march=x86-64 -mtune=generic
  BUILD := build-portable
  EXE := $(BUILD)/razor
endif
ifeq ($(SAN),1)
  # -O1: the level ASan's documentation recommends. -g1: line tables only; reports still
  # name file:line, and a file compiles with about a third less CPU than with -g (docs/hardening.md).
  OPT := -O1 -g1 -fno-omit-frame-pointer
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
  BUILD := build-san
  EXE := $(BUILD)/razor
endif
ifeq ($(FUZZ),1)
  # The library compiled by clang with coverage instrumentation for libFuzzer; the fuzz
  # targets themselves add -fsanitize=fuzzer (libFuzzer's main) when linking.
  CXX := clang++
  OPT := -O1 -g -fno-omit-frame-pointer
  SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  BUILD := build-fuzz
  EXE := $(BUILD)/razor
endif
ifeq ($(MPI),1)
  CXX := mpicxx
  MPIFLAGS := -DRAZOR_MPI=1
  BUILD := build-mpi
  EXE := $(BUILD)/razor
endif

# -ffp-contract=off: no silent FMA contraction in portable code, so scalar references
# and the training forward give the same bits in every build. No -ffast-math anywhere.
# -fno-math-errno: sqrt is one instruction (scalar or vector; the same correctly rounded
# result) instead of a branch to libm for errno, which kept loops such as AdamW's scalar.
CXXFLAGS := -std=c++17 $(OPT) $(ARCHFLAGS) -ffp-contract=off -fno-math-errno -fopenmp -Wall -Wextra -Wno-unused-parameter \
            -Isrc -I. -MMD -MP $(SANFLAGS) $(MPIFLAGS) $(EXTRA_CXXFLAGS)
LDFLAGS := -fopenmp $(SANFLAGS) $(LDFLAGS_EXTRA) -lpthread

ISA_AVX2 := -mavx2 -mfma -mf16c
ISA_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mgfni -mavx2 -mfma -mf16c
ISA_NEON :=
ISA_DOTPROD := -march=armv8.2-a+dotprod

ALL_SRC := $(wildcard src/*/*.cpp) $(wildcard kernels/*.cpp)
ifeq ($(CROSS),aarch64)
  SRC := $(filter-out %_avx2.cpp %_avx512.cpp,$(ALL_SRC))
else
  SRC := $(filter-out %_neon.cpp %_dotprod.cpp,$(ALL_SRC))
endif
# *_mpi.cpp (core/dist_mpi.cpp) links Open MPI: only in `make MPI=1`.
ifneq ($(MPI),1)
  SRC := $(filter-out %_mpi.cpp,$(SRC))
endif
MAIN_SRC := src/cli/main.cpp
LIB_SRC := $(filter-out $(MAIN_SRC),$(SRC))
TEST_SRC := $(wildcard tests/*.cpp)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))
LIB_OBJ := $(call obj,$(LIB_SRC))
MAIN_OBJ := $(call obj,$(MAIN_SRC))
TEST_OBJ := $(call obj,$(TEST_SRC))
TEST_BIN := $(BUILD)/razor_tests

.PHONY: all tests test test-mpi deps clean bench-gemm aarch64-test fuzz fuzz-build check-doctest check-deps
all: $(EXE)
tests: $(TEST_BIN)

$(EXE): $(MAIN_OBJ) $(BUILD)/librazor.a
	$(CXX) -o $@ $(MAIN_OBJ) $(BUILD)/librazor.a $(LDFLAGS)

# doctest is the one thing the tests need beyond g++ and OpenMP; without it, one line that
# says what to do instead of a compiler error per test file.
DOCTEST_H := $(firstword $(wildcard /usr/include/doctest/doctest.h /usr/local/include/doctest/doctest.h))
check-doctest:
ifeq ($(DOCTEST_H),)
	@echo "make: the tests need doctest (Debian doctest-dev), which is not installed: run \`make deps\`, then \`make test\`" >&2; exit 1
endif

$(TEST_OBJ): | check-doctest

$(TEST_BIN): $(TEST_OBJ) $(BUILD)/librazor.a
	$(CXX) -o $@ $(TEST_OBJ) $(BUILD)/librazor.a $(LDFLAGS)

$(BUILD)/librazor.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%_avx2.o: %_avx2.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(ISA_AVX2) -c $< -o $@
$(BUILD)/obj/%_avx512.o: %_avx512.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(ISA_AVX512) -c $< -o $@
$(BUILD)/obj/%_neon.o: %_neon.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(ISA_NEON) -c $< -o $@
$(BUILD)/obj/%_dotprod.o: %_dotprod.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(ISA_DOTPROD) -c $< -o $@
$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# The test suite. TEST_ARGS are passed to doctest (e.g. TEST_ARGS='-tc="gemm*"').
# `make test` builds with one job per core unless -j was given (the build is most of its time).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PARALLEL = $(if $(filter -j% j%,$(MAKEFLAGS)),,-j$(JOBS))
ifeq ($(CROSS),aarch64)
test:
	@$(MAKE) --no-print-directory $(PARALLEL) $(TEST_BIN)
	QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 -cpu max $(TEST_BIN) $(TEST_ARGS)
else
test:
	@$(MAKE) --no-print-directory $(PARALLEL) $(EXE) $(TEST_BIN)
	./$(TEST_BIN) $(TEST_ARGS)
endif

# Data-parallel checks under mpirun (needs `make MPI=1`, i.e. Debian's libopenmpi-dev openmpi-bin):
# 2 ranks against 1 process on one machine. CI: `make MPI=1 -j2 test-mpi`.
test-mpi: $(EXE) $(TEST_BIN)
ifeq ($(MPI),1)
	RAZOR_BIN=./$(EXE) bash tests/test_mpi.sh
else
	@echo "test-mpi: build with MPI=1 (make MPI=1 test-mpi)"; exit 1
endif

deps:
	bash tools/install_deps.sh

# Includes against the folder layering written in docs/architecture.md (no cycles; CI runs it).
check-deps:
	bash tools/check_deps.sh

# Fuzzing: one file per target, fuzz/fuzz_<name>.cpp (adding a target is adding that file and
# its seeds fuzz/seeds/fuzz_<name>/). New inputs found go to build-fuzz/corpus/<target>/.
FUZZ_SECONDS ?= 30
FUZZ_ALL := $(patsubst fuzz/%.cpp,%,$(wildcard fuzz/fuzz_*.cpp))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BIN := $(patsubst %,build-fuzz/%,$(FUZZ_TARGETS))
ifeq ($(FUZZ),1)
fuzz-build: $(FUZZ_BIN)
build-fuzz/fuzz_%: fuzz/fuzz_%.cpp fuzz/fuzz_common.h $(BUILD)/librazor.a
	$(CXX) $(CXXFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/librazor.a $(LDFLAGS) -fsanitize=fuzzer
endif
fuzz:
	$(MAKE) FUZZ=1 fuzz-build FUZZ_TARGETS="$(FUZZ_TARGETS)"
	bash tools/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf build build-portable build-san build-aarch64 build-mpi build-fuzz razor

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
