# The two commands: `make demo` runs Tollgate's demo, `make test` runs every test.
# Both install what is missing first (scripts/setup.sh) and can be run again.
.PHONY: setup build demo dev test bench clean

setup:
	@scripts/setup.sh

build: setup
	cargo build --bins

demo: build
	scripts/demo.sh

dev: build
	target/debug/tollgate dev

test: setup
	# Bins and tests in one build: the same feature set as `cargo test`, so nothing compiles twice.
	cargo build --workspace --bins --tests
	# The integration tests mostly wait on timers and servers: run four at a time.
	cargo test --workspace --no-fail-fast -- --test-threads 4

# Benchmarks print their figures (release build; not part of `make test`).
bench: setup
	cargo bench -p tollgate-activities --bench policy

clean:
	rm -rf target .tollgate
