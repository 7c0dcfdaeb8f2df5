# What the shell check scripts share (sourced, after `cd` to the project): `check NAME COMMAND…` counts
# a pass (named with VERBOSE=1), or a failure it names; `free_port` prints a TCP port of 127.0.0.1 nobody holds now.
passed=0
failed=0
check() { # name, then a command that must succeed
  local name=$1; shift
  if "$@"; then
    passed=$((passed + 1))
    [ -z "${VERBOSE:-}" ] || echo "passed: $name"
  else
    echo "FAIL: $name" >&2
    failed=$((failed + 1))
  fi
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
