#!/usr/bin/python3 -S
"""The `+systemd` host's e2e_run (scripts/build-host-systemd.sh): runs chrooted in the
root /init built from the read-only shares, before systemd becomes PID 1.

It makes /etc and /usr writable (overlayfs, the upper layers on the root's tmpfs) so
that `dpkg -i` can install the package; the build machine's dpkg database (shared
read-only at /var/lib/dpkg) moves to /.dpkg-build-machine, from which scenario.py
copies the entries of the package's dependencies. It keeps the boot minimal: no fstab,
none of the build machine's enabled units, no generators, the slow or hanging units
masked. The host boots to e2e.target, whose one service runs scenario.py and powers
off when it ends. /.e2e-systemd tells /init-systemd to switch root to
/lib/systemd/systemd instead of powering off. Python stdlib only.
"""
import os
import shutil
import subprocess

UNITS = "/etc/systemd/system"
MASKED = """
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
    systemd-udev-trigger.service systemd-udev-settle.service systemd-timesyncd.service
    systemd-pstore.service systemd-firstboot.service systemd-binfmt.service
    proc-sys-fs-binfmt_misc.automount systemd-modules-load.service kmod-static-nodes.service
    modprobe@.service ldconfig.service systemd-sysusers.service systemd-hwdb-update.service
    systemd-journal-catalog-update.service systemd-update-done.service
    systemd-machine-id-commit.service systemd-journal-flush.service systemd-remount-fs.service
    systemd-sysctl.service systemd-tmpfiles-setup-dev.service systemd-random-seed.service
    systemd-update-utmp.service systemd-tmpfiles-clean.timer systemd-repart.service
    getty@.service serial-getty@.service console-getty.service
    systemd-networkd-wait-online.service networking.service systemd-ask-password-console.path
    sys-kernel-config.mount sys-kernel-debug.mount sys-fs-fuse-connections.mount
    dev-hugepages.mount e2scrub_reap.service
""".split()


def write(path, text):
    with open(path, "w") as file:
        file.write(text)


def main():
    for folder in ("/etc", "/usr"):
        layer = "/.overlay" + folder.replace("/", "-")
        os.makedirs(f"{layer}/upper")
        os.makedirs(f"{layer}/work")
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={folder},upperdir={layer}/upper,workdir={layer}/work", folder], check=True)
    os.makedirs("/.dpkg-build-machine")
    subprocess.run(["mount", "--move", "/var/lib/dpkg", "/.dpkg-build-machine"], check=True)
    for folder in ("/var/lib/dpkg", "/var/log", "/var/cache", "/var/lib/systemd"):
        os.makedirs(folder, exist_ok=True)

    write("/etc/fstab", "# the e2e host mounts nothing from fstab\n")
    write("/etc/crypttab", "")
    write("/etc/hostname", "e2e-host\n")
    # What the build machine enabled (libvirt, postgresql, timers, getty) stays off.
    for name in os.listdir(UNITS):
        if name.endswith((".wants", ".requires")):
            shutil.rmtree(os.path.join(UNITS, name))
    for unit in MASKED:
        os.symlink("/dev/null", os.path.join(UNITS, unit))
    generators = "/etc/systemd/system-generators"
    os.makedirs(generators, exist_ok=True)
    for name in os.listdir("/usr/lib/systemd/system-generators"):
        os.symlink("/dev/null", os.path.join(generators, name))

    environment = {name: os.environ.get(name, "") for name in ("E2E_REPO", "E2E_CONFIG", "E2E_INNER_QEMU")}
    repo = environment["E2E_REPO"]
    write(f"{UNITS}/e2e.target", """[Unit]
Description=Host e2e test
Requires=basic.target e2e-scenario.service
After=basic.target
AllowIsolate=yes
""")
    write(f"{UNITS}/e2e-scenario.service", f"""[Unit]
Description=Host e2e scenario ({environment['E2E_CONFIG']})
After=basic.target
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate

[Service]
Type=exec
WorkingDirectory={repo}
Environment={' '.join(f'{name}={value}' for name, value in environment.items())}
Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin HOME=/root
ExecStart=/usr/bin/python3 {repo}/Tests/HostE2E/scenario.py
ExecStopPost=/bin/sh -c 'echo "$EXIT_STATUS" >/results/exit-status'
StandardOutput=journal+console
StandardError=journal+console
""")
    os.symlink("e2e.target", f"{UNITS}/default.target")
    write("/.e2e-systemd", "")


if __name__ == "__main__":
    main()
