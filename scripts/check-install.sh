#!/usr/bin/env bash
# `make install` as an operator runs it, into a scratch PREFIX, then each installed file
# used the way its consumer uses it: the binary runs, `man -l` renders the page, bash,
# zsh and fish load the completions (and bash and fish complete a subcommand), systemd
# verifies the unit, promtool checks the alert rules. Part of `make test`; one line per
# check and a non-zero exit if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

prefix=$(mktemp -d /tmp/qmp-broker-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
failed=0

check() {
    local what=$1
    shift
    if "$@" >"$prefix/.out" 2>&1; then
        echo "install-check: ok   $what"
    else
        echo "install-check: FAIL $what"
        sed 's/^/    /' "$prefix/.out" | head -40
        failed=$((failed + 1))
    fi
}

skip() { echo "install-check: skip $1 ($2)"; }

start=$SECONDS
if ! make --no-print-directory install PREFIX="$prefix" >.build/install.log 2>&1; then
    tail -40 .build/install.log
    echo "install-check: FAIL make install PREFIX=$prefix (log: .build/install.log)"
    exit 1
fi
echo "install-check: make install PREFIX=$prefix took $((SECONDS - start)) s"

bin=$prefix/bin/qmp-broker
man1=$prefix/share/man/man1/qmp-broker.1
unit=$prefix/lib/systemd/system/qmp-broker.service
bash_completion=$prefix/share/bash-completion/completions/qmp-broker
zsh_completion=$prefix/share/zsh/site-functions/_qmp-broker
fish_completion=$prefix/share/fish/vendor_completions.d/qmp-broker.fish
rules=$prefix/share/qmp-broker/qmp-broker.rules.yml

# The release binary (not the debug one), and it runs.
binary_runs() {
    cmp "$bin" .build/release/qmp-broker && "$bin" --version && "$bin" check-config --help >/dev/null
}
check "binary is the release build and runs" binary_runs

# Rendered as man(1) shows it, with no groff warnings, and with the config keys and
# defaults that `run --help` promises.
man_renders() {
    local page
    page=$(MANWIDTH=100 man --warnings -l "$man1" 2>"$prefix/.man-warnings") || return 1
    [ ! -s "$prefix/.man-warnings" ] || { cat "$prefix/.man-warnings"; return 1; }
    for text in "qmp-broker" "check-config" "sysfs-poll-ms (default: 1000)" "policy (default: forward)" "--metrics-listen"; do
        grep -qF -- "$text" <<<"$page" || { echo "man page lacks: $text"; return 1; }
    done
}
check "man -l renders the page with the config keys" man_renders

# What a shell does with a completion file: parse it, load it, ask it for candidates.
bash_completes() {
    bash -n "$bash_completion" || return 1
    local words
    words=$(bash -c 'source "$1"; COMP_LINE="qmp-broker "; COMP_POINT=${#COMP_LINE};
                     COMP_WORDS=(qmp-broker ""); COMP_CWORD=1; _qmp-broker; printf "%s\n" "${COMPREPLY[@]}"' _ "$bash_completion")
    grep -qx check-config <<<"$words" || { echo "bash offered: $words"; return 1; }
}
check "bash loads the completion and offers the subcommands" bash_completes

zsh_loads() {
    zsh -n "$zsh_completion" && head -1 "$zsh_completion" | grep -qx '#compdef qmp-broker'
}
if command -v zsh >/dev/null; then check "zsh parses the completion (#compdef qmp-broker)" zsh_loads
else skip "zsh completion" "zsh is not installed (scripts/setup.sh installs it)"; failed=$((failed + 1)); fi

fish_completes() {
    fish --no-execute "$fish_completion" || return 1
    local words
    words=$(fish -c "source '$fish_completion'; complete -C 'qmp-broker '" | cut -f1)
    grep -qx check-config <<<"$words" || { echo "fish offered: $words"; return 1; }
}
if command -v fish >/dev/null; then check "fish loads the completion and offers the subcommands" fish_completes
else skip "fish completion" "fish is not installed (scripts/setup.sh installs it)"; failed=$((failed + 1)); fi

# The unit points at the installed binary and passes systemd's own checks.
unit_verifies() {
    grep -qx "ExecStart=$bin run --config /etc/qmp-broker/qmp-broker.toml --socket-dir /run/qmp-broker --state-dir /var/lib/qmp-broker" "$unit" || return 1
    ! grep -q /usr/local/bin "$unit" || { echo "unit still names /usr/local/bin"; return 1; }
    if command -v systemd-analyze >/dev/null; then
        local out
        out=$(systemd-analyze verify --man=no "$unit" 2>&1) || { echo "$out"; return 1; }
        [ -z "$out" ] || { echo "$out"; return 1; }
    fi
}
check "the unit runs the installed binary and systemd-analyze verifies it" unit_verifies

promtool=$(command -v promtool || echo .cache/tools/promtool)
if [ -x "$promtool" ]; then
    check "promtool check rules accepts the installed alert rules" "$promtool" check rules "$rules"
    # Every alert fires when it should and only then (contrib/qmp-broker.rules.test.yml).
    check "promtool test rules passes the alert rules' unit tests" "$promtool" test rules contrib/qmp-broker.rules.test.yml
else skip "alert rules" "promtool is missing (scripts/setup.sh fetches it)"; failed=$((failed + 1)); fi

if ((failed)); then
    echo "install-check: $failed failed"
    exit 1
fi
echo "install-check: all passed"
