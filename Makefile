# Thin wrapper for those who expect `make`; the scripts do the work.
.PHONY: all build test run bench clean

all: build

build:
	@bash -c 'source scripts/lib.sh && install_missing_packages && configure_build build-release --buildtype=release' && ninja -C build-release

test:
	scripts/test.sh

run:
	scripts/run.sh

bench: build
	build-release/benchmarks/store_benchmark --benchmark_min_time=0.5

clean:
	rm -rf build build-release build-asan build-tsan build-fuzz erlang/_build
