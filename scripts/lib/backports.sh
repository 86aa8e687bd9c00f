# Sourced: Debian's bookworm-backports through a side apt list, so the machine's own apt
# sources and lists stay as they are. Sets `backports_apt` (options for apt-get and
# apt-cache) after `backports_update`. Needs `log`/`die` from the caller and the cache
# root `cache_root` (outside the clone: CI's fresh clone on the same machine reuses it).
backports_dir="$cache_root/apt-backports"
backports_apt=(-o "Dir::Etc::sourcelist=$backports_dir/sources.list" -o Dir::Etc::sourceparts=-
               -o "Dir::State::Lists=$backports_dir/lists" -o "Dir::Cache=$backports_dir/cache"
               -o APT::Get::List-Cleanup=0)
# As root, apt drops to the _apt user, which cannot write into our folders.
[ "$(id -u)" -ne 0 ] || backports_apt+=(-o APT::Sandbox::User=root)

backports_update() { # refreshes the side lists when they are missing or older than a day
    mkdir -p "$backports_dir/lists/partial" "$backports_dir/cache/archives/partial"
    echo "deb http://deb.debian.org/debian bookworm-backports main" >"$backports_dir/sources.list"
    if [ -z "$(find "$backports_dir/lists" -maxdepth 1 -name '*backports*Packages*' -mtime -1 2>/dev/null)" ]; then
        log "apt-get update (bookworm-backports, side list)"
        apt-get "${backports_apt[@]}" update -qq || die "apt-get update of bookworm-backports failed"
    fi
}

backports_download() { # DIR PACKAGE=VERSION...: the .debs into DIR (kept when already there)
    local dir=$1 spec
    shift
    mkdir -p "$dir"
    for spec in "$@"; do
        local name=${spec%%=*} version=${spec#*=}
        [ -s "$dir/${name}_${version//:/%3a}_amd64.deb" ] || [ -s "$dir/${name}_${version//:/%3a}_all.deb" ] && continue
        log "downloading $name $version"
        (cd "$dir" && apt-get "${backports_apt[@]}" download -q "$spec" >/dev/null) || die "apt-get download $spec failed"
    done
}
