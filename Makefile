# Thin wrapper over deploy/local/ scripts and cmake. Every target installs what is missing.
#   make run    build and start the whole suite (infrastructure, wa-cloudsim, six daemons)
#   make test   build with ASan+UBSan, start test infrastructure, run every test
#   make bench  run the benchmarks and print their figures
#   make chaos  kill daemons under load and check nothing answered is lost (docs/operations.md)
#   make fmt    format the C sources with clang-format-14
#   make clean  remove build trees (var/ with data and logs stays; `make distclean` removes it)
.PHONY: all build run test bench chaos fmt fmt-check clean distclean infra-start infra-stop infra-status

all: build

build:
	@deploy/local/build.sh run

run:
	@deploy/local/run.sh

test:
	@deploy/local/test.sh

bench:
	@deploy/local/bench.sh

chaos:
	@deploy/local/chaos.sh

fmt:
	@deploy/local/fmt.sh fix

fmt-check:
	@deploy/local/fmt.sh check

infra-start:
	@deploy/local/infra.sh start

infra-stop:
	@deploy/local/infra.sh stop

infra-status:
	@deploy/local/infra.sh status

clean:
	rm -rf build build-*

distclean: clean
	-@deploy/local/infra.sh stop >/dev/null 2>&1
	-@deploy/local/infra.sh stop --ports test >/dev/null 2>&1
	rm -rf var
