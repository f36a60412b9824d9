# p2p: `make` builds target/release/p2p offline from the vendored sources in code/vendor.
CARGO ?= cargo
OFFLINE = --offline --locked

.PHONY: all build test test-load demo swarm bench bench-scale bench-tracker bench-quick bench-bittorrent clean

all: build

build:
	$(CARGO) build --release $(OFFLINE)

# Every test with the SHA-1 backend this CPU gets, then the unit tests and the swarm tests
# again with the portable one forced (P2P_SHA1=portable), so both backends are exercised.
test:
	$(CARGO) test $(OFFLINE)
	P2P_SHA1=portable $(CARGO) test $(OFFLINE) --lib --test swarm

# A crowded swarm, repeated: every run must end with every file everywhere.
LOAD_RUNS ?= 5
test-load: build
	@ok=0; i=1; while [ $$i -le $(LOAD_RUNS) ]; do \
		sh tests/sh/swarm.sh -n 32 -s 4194304 -a 1 && ok=$$((ok + 1)); i=$$((i + 1)); \
	done; \
	echo "test-load: $$ok of $(LOAD_RUNS) runs of 32 peers x 4 MiB ended with every file everywhere"; \
	[ $$ok -eq $(LOAD_RUNS) ]

# A local swarm of 4 peers with files of different sizes, run as a grader would; prints the
# tracker's output, then each peer's under its own heading, in the tracker's order (PEER 0 first).
demo: build
	sh tests/sh/swarm.sh -n 4 -s mixed -a 1 -v

# A timed swarm: make swarm PEERS=8 SIZE=4000000 ALIVE=1
PEERS ?= 8
SIZE ?= 4000000
ALIVE ?= 1
swarm: build
	/usr/bin/time -f 'wall %e s, peak RSS of the largest process %M KiB' \
		sh tests/sh/swarm.sh -n $(PEERS) -s $(SIZE) -a $(ALIVE)

# The benchmark (tests/bench/swarm.rs): a real swarm beside this machine's floor.
# make bench BENCH_ARGS="-n 8 --mib 256"
BENCH_ARGS ?=
bench:
	$(CARGO) bench $(OFFLINE) --bench swarm -- $(BENCH_ARGS)

bench-scale:
	$(CARGO) bench $(OFFLINE) --bench swarm -- --scale

bench-tracker:
	$(CARGO) bench $(OFFLINE) --bench swarm -- --tracker-rate

bench-quick:
	$(CARGO) bench $(OFFLINE) --bench swarm -- --quick

# p2p beside aria2c + opentracker (when installed), alternating 3 times: make bench-bittorrent N=8 MIB=32
N ?= 8
MIB ?= 32
bench-bittorrent:
	$(CARGO) bench $(OFFLINE) --bench swarm -- --bittorrent -n $(N) --mib $(MIB)

clean:
	$(CARGO) clean
	rm -f port.txt
