# Front door: `make check` installs what is missing, builds with warnings as errors, runs ctest.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps build demo demo-regions demo-store demo-packer images check check-asan fuzz format format-check clean bench-store

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The README's first command: the main job end to end.
demo: build images
	scripts/demo.sh

demo-regions: build images
	scripts/demo-regions.sh

demo-store: build images
	scripts/demo-store.sh

# Packer's amazon-ebs builder against kiln: build, copy and share an image, print its ids.
demo-packer: build images
	scripts/demo-packer.sh

# Base images the tests boot. debian-12 needs Debian's mirror; without it, its tests skip.
images: build
	@mkdir -p $(BUILD)/images
	@images/busybox/build.sh $(BUILD)/images/busybox.tar >/dev/null
	@images/debian-12/build.sh $(BUILD)/images/debian-12.tar >/dev/null 2>$(BUILD)/images/debian-12.log || \
		echo "images: debian-12 did not build (see $(BUILD)/images/debian-12.log); its tests will skip"

check: build images
	cd $(BUILD) && ctest --output-on-failure

# Every test once more against a build under AddressSanitizer and UndefinedBehaviorSanitizer:
# the unit tests, and the integration suite with the daemon, the CLI and the shim sanitized
# (leak reports off: the CLI exits without freeing what the kernel frees anyway).
check-asan: images
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@ln -sfn $(abspath $(BUILD))/images $(ASAN_BUILD)/images
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure

# libFuzzer targets, run briefly.
FUZZ_SECONDS ?= 20
# Every parser of outside input: one libFuzzer target each (tests/fuzz), seeded from tests/fuzz/seeds.
FUZZ_TARGETS = manifest pack query sigv4 sshkey xmlread topology exec_frame s3 userdata

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DKILN_FUZZ=ON -DKILN_WERROR=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	for f in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$f && \
		{ [ ! -d tests/fuzz/seeds/$$f ] || cp -n tests/fuzz/seeds/$$f/* build-fuzz/corpus-$$f/; } && \
		build-fuzz/tests/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$f || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

bench-store: build
	bench/store/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
