# The two commands: `make demo` runs Tollgate's demo, `make test` runs every test.
# Both install what is missing first (scripts/setup.sh) and can be run again.
.PHONY: setup build demo dev test bench bench-parked clean

setup:
	@scripts/setup.sh

# One build serves the demo and the tests: the binaries are built with the tests' feature set
# (a plain `cargo build --bins` resolves features without the dev-dependencies and would
# recompile about 50 crates), so `make demo` after `make test`, or the reverse, compiles nothing.
build: setup
	cargo build --workspace --bins --tests

demo: build
	scripts/demo.sh

dev: build
	target/debug/tollgate dev

test: build
	# The integration tests mostly wait on timers and servers: run four at a time.
	cargo test --workspace --no-fail-fast -- --test-threads 4

# Benchmarks print their figures (release build; not part of `make test`): 1,000 requests
# drained by one worker, alternating with Temporal's Python SDK running the same workflow shape
# (and the plain port) and the Rust ceiling, all with empty activities; steady-load latency,
# history growth and a perf profile (written to BENCHMARKS.md); then pricing and policy on a
# large plan. The chaos drill is `target/release/tollgate-bench chaos` (README).
bench:
	@scripts/setup.sh --bench
	cargo build --release --bin tollgate-worker --bin tollgate-bench
	target/release/tollgate-bench --worker target/release/tollgate-worker --out BENCHMARKS.md
	cargo bench -p tollgate-policy --bench pack

# 10,000 requests parked on their expiry timers: the worker's memory, every request answering
# after a SIGTERM and a SIGKILL restart, and how late each expires (about 30 minutes; its own
# section of BENCHMARKS.md).
bench-parked:
	@scripts/setup.sh
	cargo build --release --bin tollgate-worker --bin tollgate-bench
	target/release/tollgate-bench parked --worker target/release/tollgate-worker --out BENCHMARKS.md

clean:
	rm -rf target .tollgate
