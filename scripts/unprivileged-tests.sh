#!/usr/bin/env bash
# Runs a representative part of the suite as an unprivileged user (default
# `netns-ci`, created if missing when run as root): every #[netns_test] there
# re-runs itself in a user namespace. Covers labs of every built-in, ping, HTTP,
# reachability, captures, spawned programs, names, shaping, the macro forms
# (async, rstest, serial, should_panic, Result), with --test-threads=1 and filters,
# rules loaded with nft and iptables, the regression matrix and port-forward
# checks, topology files, pools and dual stack.
set -euo pipefail
cd "$(dirname "$0")/.."
user="${1:-netns-ci}"
if ! id "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
fi

# Build as the invoking user; list the test executables.
mapfile -t bins < <(cargo test -p tests --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["target"]["name"], m["executable"])')

run() {  # run NAME ARGS...: the test binary NAME as the unprivileged user
  local name=$1; shift
  local exe=""
  for entry in "${bins[@]}"; do
    [ "${entry%% *}" = "$name" ] && exe="${entry#* }"
  done
  [ -n "$exe" ] || { echo "no test binary $name" >&2; exit 1; }
  echo "== $name (as $user) $*"
  local out status=0
  out=$(cd / && runuser -u "$user" -- "$exe" "$@" 2>&1) || status=$?
  echo "$out"
  [ "$status" -eq 0 ] || exit "$status"
  # A renamed test would make a filter match nothing, and pass.
  grep -Eq 'test result: ok\. [1-9][0-9]* passed' <<<"$out" \
    || { echo "no test ran for: $name $*" >&2; exit 1; }
}

# Tests that call Lab::build directly (not through #[netns_test]) need root, and
# Debian's tcpdump cannot drop to its own user inside a user namespace: those are
# skipped here by name, and run as root by the main pass.
run builtins --skip parallel_labs_of_the_same_topology_do_not_collide \
             --skip pair_ping_across_the_veth_while_capturing_on_the_far_end
run macro_forms
run macro_forms --test-threads=1
run macro_forms --exact runs_in_the_named_node
run host_ns --skip background_processes_die_with_the_lab
run names
run links
run firewall
run port_forward
run multi_router
run pools
run dual_stack --skip ipv6_addresses_skip_duplicate_address_detection \
               --skip ipv6_is_usable_at_once_after_setup \
               --skip pair_ipv6_ping_captured_with_an_icmp6_filter
