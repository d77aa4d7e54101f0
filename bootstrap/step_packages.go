package bootstrap

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pvehci/pvehci/internal/run"
)

// LINBIT's public repository: the keyring comes as a package, and the
// repository's suite is named after the Proxmox VE major version (LINBIT's
// Proxmox guide; research seed 003 shows the same lines).
const (
	linbitKeyringURL  = "https://packages.linbit.com/public/linbit-keyring.deb"
	linbitKeyringPath = "/etc/apt/trusted.gpg.d/linbit-keyring.gpg"
	linbitKeyringDeb  = "/var/cache/pvehci/linbit-keyring.deb"
	linbitSourcesPath = "/etc/apt/sources.list.d/linbit.list"
)

func linbitSources(pveMajor int) []byte {
	return fmt.Appendf(nil, "# Written by pvehci bootstrap: LINBIT's public repository for DRBD 9 and the Proxmox plugin.\n"+
		"deb [signed-by=%s] http://packages.linbit.com/public/ proxmox-%d drbd-9\n", linbitKeyringPath, pveMajor)
}

// wantedPackages are the packages a node needs. The kernel headers are for
// DKMS: drbd-dkms builds the module for the running kernel, and
// proxmox-default-headers keeps headers coming with future kernels.
func wantedPackages(v pveVersion, ib bool) []string {
	pkgs := []string{"proxmox-default-headers", "proxmox-headers-" + v.Kernel, "drbd-dkms", "drbd-utils", "linstor-proxmox"}
	if ib {
		pkgs = append(pkgs, "rdma-core", "infiniband-diags")
	}
	return pkgs
}

// missingPackages asks dpkg which of pkgs are not installed.
func missingPackages(ctx context.Context, h *Host, pkgs []string) ([]string, error) {
	args := append([]string{"--show", "--showformat=${Package} ${db:Status-Status}\\n"}, pkgs...)
	// dpkg-query exits 1 when a package is unknown; its output still
	// lists the known ones, which is all this needs.
	res, err := h.Run.Run(ctx, run.Command("dpkg-query", args...))
	if err != nil && run.ExitCode(err) != 1 {
		return nil, fmt.Errorf("asking dpkg which packages are installed: %w", err)
	}
	installed := map[string]bool{}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == "installed" {
			installed[f[0]] = true
		}
	}
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

func packagesStep(o Options) Step {
	ib := o.Node.IPoIB != nil
	aptEnv := []string{"DEBIAN_FRONTEND=noninteractive"}
	return &actionStep{
		name: "packages",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			v, err := readPVEVersion(ctx, h)
			if err != nil {
				return nil, err
			}
			pkgs := wantedPackages(v, ib)
			missing, err := missingPackages(ctx, h, pkgs)
			if err != nil {
				return nil, err
			}
			if o.Offline {
				if len(missing) > 0 {
					return nil, fmt.Errorf("--offline, but these packages are not installed: %s; install them (apt-get install %s) or run without --offline", strings.Join(missing, ", "), strings.Join(missing, " "))
				}
				return nil, nil
			}
			var acts []action
			haveKey, err := exists(h.FS, linbitKeyringPath)
			if err != nil {
				return nil, err
			}
			if !haveKey {
				acts = append(acts,
					action{Change: Change{Kind: ChangeFile, Target: "/var/cache/pvehci", Summary: "create the download directory"},
						do: func(_ context.Context, h *Host) error { return h.FS.MkdirAll("/var/cache/pvehci", 0o755) }},
					commandAction("download LINBIT's keyring package", run.Command("curl", "--fail", "--silent", "--show-error", "--location", "--output", linbitKeyringDeb, linbitKeyringURL)),
					commandAction("install LINBIT's keyring", run.Command("dpkg", "--install", linbitKeyringDeb)))
			}
			src, err := fileAction(h.FS, linbitSourcesPath, linbitSources(v.Major), 0o644)
			if err != nil {
				return nil, err
			}
			acts = append(acts, src...)
			if len(missing) > 0 {
				update := run.Command("apt-get", "update")
				update.Env = aptEnv
				install := run.Command("apt-get", append([]string{"install", "--yes", "--no-install-recommends"}, missing...)...)
				install.Env = aptEnv
				install.Timeout = 0
				acts = append(acts,
					commandAction("read the package lists", update),
					commandAction("install "+strings.Join(missing, ", "), install))
			}
			return acts, nil
		},
		verify: func(ctx context.Context, h *Host) error {
			v, err := readPVEVersion(ctx, h)
			if err != nil {
				return err
			}
			missing, err := missingPackages(ctx, h, wantedPackages(v, ib))
			if err != nil {
				return err
			}
			if len(missing) > 0 {
				return fmt.Errorf("still not installed: %s; see /var/log/apt/term.log", strings.Join(missing, ", "))
			}
			out, err := output(ctx, h, "modinfo", "--field=version", "drbd")
			if err != nil {
				return fmt.Errorf("finding the DRBD kernel module (did the DKMS build fail? see dkms status and /var/lib/dkms/drbd): %w", err)
			}
			ver := strings.TrimSpace(string(out))
			major, _, _ := strings.Cut(ver, ".")
			if n, err := strconv.Atoi(major); err != nil || n < 9 {
				return fmt.Errorf("the DRBD kernel module is version %q; pvehci needs DRBD 9 (the kernel's own drbd 8.4 module is found before the DKMS one: run dkms status and check that drbd-dkms built for %s)", ver, v.Kernel)
			}
			return nil
		},
	}
}
