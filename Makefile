# Wyrcan: the two set-up commands of README, plus the usual build targets.
.PHONY: demo demo-chain demo-uefi test build release clean

demo:
	scripts/demo

# The chained self-upgrade variant: Wyrcan boots a newer Wyrcan (from the registry), which boots the container.
demo-chain:
	scripts/demo --chain

# No iPXE: the VM's UEFI firmware HTTPS-boots the Wyrcan UKI, which gets its parameters over TLS.
demo-uefi:
	scripts/demo --uefi

test:
	scripts/test

build:
	swift build

release:
	swift build -c release

clean:
	rm -rf .build out
