#!/usr/bin/env bash
# Shell helpers for wharf's scripts (hack/, bench/). Source it first thing:
#   . "$(dirname "$0")/../hack/lib.sh"        (from bench/)   or   . "$(dirname "$0")/lib.sh"
# It sets WHARF_ROOT (the repository), puts Go and .cache/bin on PATH, and gives:
#   say/warn/die        messages on stderr (die exits 2: a usage or setup error)
#   need CMD [PKG]      CMD must be on PATH (install-deps.sh installs PKG)
#   need_root
#   at_exit CMD         run CMD (eval'd) when the script exits, last registered first
#   result NAME K=V...  the last line of a run: "RESULT NAME K=V..."; a script that set
#                       RESULT_NAME and exits without calling it prints "RESULT NAME error=exit-N"
#   cache_dir NAME      .cache/NAME, created, absolute
#   ratio A B           A/B with 3 decimals (nan when either is missing or B is 0)
#   median              the median of the numbers on stdin, one per line
#   goarch              this machine's architecture in Go's (and OCI's) spelling
#   subreaper "$@"      re-run the calling script under catatonit (PID 1 here reaps no orphans)
#   stop_pid PID [S]    TERM, then KILL after S seconds (default 10)
#   umount_below DIR    lazily unmount every mount point under DIR, deepest first
set -euo pipefail
WHARF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WHARF_ROOT
case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) PATH=$PATH:/usr/local/go/bin;; esac
case ":$PATH:" in *":$WHARF_ROOT/.cache/bin:"*) ;; *) PATH=$PATH:$WHARF_ROOT/.cache/bin;; esac
export PATH
WHARF=${WHARF:-$WHARF_ROOT/bin/wharf}

say()  { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 2; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing $1${2:+ (apt-get install $2, or make deps)}"; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

_exits=() RESULT_NAME=${RESULT_NAME:-} _result_done=
at_exit() { _exits+=("$1"); }
_on_exit() {
  local rc=$? i
  set +e
  for ((i = ${#_exits[@]} - 1; i >= 0; i--)); do eval "${_exits[i]}"; done
  if [ -n "$RESULT_NAME" ] && [ -z "$_result_done" ]; then
    [ "$rc" = 0 ] && rc=1
    echo "RESULT $RESULT_NAME error=exit-$rc"
  fi
  exit "$rc"
}
trap _on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
result() { _result_done=1; echo "RESULT $*"; }

cache_dir() { mkdir -p "$WHARF_ROOT/.cache/$1" && (cd "$WHARF_ROOT/.cache/$1" && pwd); }

ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || a == "nan" || b == "nan" || b + 0 == 0) print "nan"; else printf "%.3f\n", a / b }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

goarch() {
  case "$(uname -m)" in
    x86_64) echo amd64;; aarch64) echo arm64;; armv7l|armv6l) echo arm;; i?86) echo 386;; *) uname -m;;
  esac
}

subreaper() {
  [ -n "${WHARF_SUBREAPED:-}" ] && return 0
  need catatonit catatonit
  export WHARF_SUBREAPED=1
  exec catatonit -- "$(readlink -f "$0")" "$@"
}

stop_pid() {
  local pid=$1 secs=${2:-10} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 20; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

umount_below() {
  local d
  d=$(readlink -f "$1" 2>/dev/null) || return 0
  awk -v d="$d/" '{ p = $5; gsub(/\\040/, " ", p); if (index(p, d) == 1) print p }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# no_blank PATH: hyperfine -N splits commands at blanks, so a timed path may hold none.
no_blank() { case $1 in *[[:space:]]*) die "a path with a blank cannot be timed: $1";; esac; }

# image_ref REF: REF is LAYOUT[:TAG] or the name of a hack/images.sh image (busybox,
# bookworm:v4, ...; built when missing). Sets IMAGE_LAYOUT (absolute) and IMAGE_TAG (given,
# else the layout's only tag, else latest).
image_ref() {
  local ref=$1 tags
  IMAGE_LAYOUT=$ref IMAGE_TAG=
  if [ ! -f "$ref/index.json" ]; then
    IMAGE_LAYOUT=${ref%:*} IMAGE_TAG=${ref#"${ref%:*}"}
    IMAGE_TAG=${IMAGE_TAG#:}
    if [ ! -f "$IMAGE_LAYOUT/index.json" ]; then
      case $IMAGE_LAYOUT in
        busybox|bookworm|nodemods|multiarch)
          "$WHARF_ROOT/hack/images.sh" "$IMAGE_LAYOUT" >&2 || die "hack/images.sh $IMAGE_LAYOUT failed"
          IMAGE_LAYOUT=$WHARF_ROOT/.cache/images/$IMAGE_LAYOUT ;;
        *) die "not an OCI image layout nor an image of hack/images.sh: $ref" ;;
      esac
    fi
  fi
  IMAGE_LAYOUT=$(cd "$IMAGE_LAYOUT" && pwd)
  if [ -z "$IMAGE_TAG" ]; then
    tags=$(jq -r '[.manifests[].annotations["org.opencontainers.image.ref.name"] // empty] | unique | .[]' "$IMAGE_LAYOUT/index.json")
    if [ "$(grep -c . <<<"$tags")" = 1 ]; then IMAGE_TAG=$tags; else IMAGE_TAG=latest; fi
  fi
}

# time_pair JSON PREPARE RUNS CMD_A CMD_B: runs PREPARE then each command once, untimed (it
# must work; its output goes to JSON.check.log), then times both in one `hyperfine -N` run with
# PREPARE before every run, and prints "MEDIAN_A MEDIAN_B" in seconds (hyperfine's JSON in JSON).
time_pair() {
  local json=$1 prep=$2 runs=$3 a=$4 b=$5 c
  for c in "$a" "$b"; do
    $prep
    # shellcheck disable=SC2086 # split as hyperfine -N splits it
    $c > "$json.check.log" 2>&1 || { tail -5 "$json.check.log" >&2; die "failed: $c"; }
  done
  hyperfine -N --style basic --runs "$runs" --export-json "$json" --prepare "$prep" -n a "$a" -n b "$b" >&2
  jq -r '[(.results[] | select(.command == "a") | .median), (.results[] | select(.command == "b") | .median)] | join(" ")' "$json"
}
