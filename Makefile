# Wyrcan: the two set-up commands of README, plus the usual build targets.
.PHONY: demo demo-chain test build release clean

demo:
	scripts/demo

# The chained self-upgrade variant: Wyrcan boots a newer Wyrcan (from the registry), which boots the container.
demo-chain:
	scripts/demo --chain

test:
	scripts/test

build:
	swift build

release:
	swift build -c release

clean:
	rm -rf .build out
