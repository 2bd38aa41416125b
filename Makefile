# ctrd — the two commands of the README, plus a few helpers.
#   make run    install what is missing, build, start ctrd in the foreground (built-in defaults)
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
CTRD_ARGS ?=

.PHONY: all setup configure build run test unit integration asan release bench install format tidy clean

all: build

setup:
	@bash scripts/setup

configure: setup
	@if [ ! -f $(BUILD)/build.ninja ]; then cmake --preset default -B $(BUILD) >/dev/null; fi

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	exec $(BUILD)/src/cmd/ctrd/ctrd $(CTRD_ARGS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 600

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L unit -j $(JOBS)

integration: build
	ctest --test-dir $(BUILD) --output-on-failure -L integration

# The sanitizer build of every test (ASan + UBSan).
asan: setup
	@if [ ! -f build-asan/build.ninja ]; then cmake --preset asan >/dev/null; fi
	cmake --build build-asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) --timeout 900

# The Release build type (-O3) packagers use, with warnings as errors, and its unit tests.
release: setup
	@if [ ! -f build-release/build.ninja ]; then cmake --preset release >/dev/null; fi
	cmake --build build-release -j $(JOBS)
	ctest --preset release -j $(JOBS) --timeout 600

bench: build
	bash bench/run.sh

# DESTDIR and PREFIX are honoured: make install DESTDIR=/tmp/x PREFIX=/usr
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

tidy: build
	git ls-files 'src/*.cpp' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) build-asan
