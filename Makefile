# Wyrcan: the two set-up commands of README, plus the usual build targets.
.PHONY: demo test build release clean

demo:
	scripts/demo

test:
	scripts/test

build:
	swift build

release:
	swift build -c release

clean:
	rm -rf .build out
