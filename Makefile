# Every target runs the set-up first, so each works on a fresh Debian 12 machine with Swift 6.3.
SWIFT ?= swift
DEMO ?= Tests/CheckpointsTests/Fixtures/torch/demo_resnet_legacy.pth

.PHONY: setup build release test demo clean mappings

setup:
	@bash Tools/setup.sh

build: setup
	$(SWIFT) build

# The release binary links the Swift runtime and Foundation statically: it runs without a Swift toolchain and
# starts in about half the time (no symbol resolution across Foundation's shared libraries at every launch).
release: setup
	$(SWIFT) build -c release --static-swift-stdlib

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --parallel

demo: release
	@rm -rf .build/demo && mkdir -p .build/demo
	cp $(DEMO) .build/demo/
	.build/release/weights convert .build/demo/$(notdir $(DEMO))
	.build/release/weights inspect .build/demo/$(basename $(notdir $(DEMO))).safetensors
	@echo
	@echo "== verify: a legacy-format ResNet checkpoint on the Swift model against PyTorch's stored outputs"
	.build/release/weights verify --model resnet18_tiny --weights Tests/VerificationTests/Fixtures/resnet18_tiny.legacy.pth \
	    --reference Tests/ModelsTests/Fixtures/resnet18_tiny.reference.safetensors

clean:
	rm -rf .build

# Re-embed Mappings/*.yaml into the binary after editing a table.
mappings:
	python3 Tools/embed_mappings.py
