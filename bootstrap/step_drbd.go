package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pvehci/pvehci/internal/run"
)

const (
	modulesLoadPath = "/etc/modules-load.d/pvehci.conf"
	modprobePath    = "/etc/modprobe.d/pvehci-drbd.conf"
	// drbdIncludePath makes drbdadm see the satellite's resources:
	// drbd-utils' /etc/drbd.conf includes drbd.d/*.res, and this file
	// includes the directory the satellite writes (storage/satellite).
	drbdIncludePath = "/etc/drbd.d/pvehci.res"
	drbdIncludeData = "# Written by pvehci bootstrap: the satellite's resources.\ninclude \"/var/lib/pvehci/drbd.d/*.res\";\n"
	drbdResDir      = "/var/lib/pvehci/drbd.d"
)

// modprobeConf turns off DRBD's user mode helper: pvehci reacts to DRBD's
// events itself, and a helper call that hangs blocks DRBD's state changes
// (LINBIT's LINSTOR guide recommends the same).
const modprobeConf = "# Written by pvehci bootstrap.\noptions drbd usermode_helper=disabled\n"

// useRDMA reports whether this node loads DRBD's RDMA transport: when the
// cluster file asks for it, or leaves it to pvehci and the node has an
// InfiniBand port.
func useRDMA(o Options) bool {
	switch o.Cluster.DRBD.Transport {
	case "rdma":
		return true
	case "tcp":
		return false
	default:
		return o.Node.IPoIB != nil
	}
}

func modules(o Options) []string {
	if useRDMA(o) {
		return []string{"drbd", "drbd_transport_rdma"}
	}
	return []string{"drbd"}
}

// moduleVersion reads /sys/module/NAME/version; "" when the module is not
// loaded.
func moduleVersion(h *Host, name string) (loaded bool, version string, err error) {
	ok, err := exists(h.FS, "/sys/module/"+name)
	if err != nil || !ok {
		return false, "", err
	}
	data, err := h.FS.ReadFile("/sys/module/" + name + "/version")
	if errors.Is(err, fs.ErrNotExist) {
		return true, "", nil
	}
	if err != nil {
		return true, "", fmt.Errorf("reading the version of kernel module %s: %w", name, err)
	}
	return true, strings.TrimSpace(string(data)), nil
}

func drbdStep(o Options) Step {
	mods := modules(o)
	return &actionStep{
		name: "drbd",
		plan: func(ctx context.Context, h *Host) ([]action, error) {
			var acts []action
			for _, f := range []struct {
				path string
				data []byte
			}{
				{modprobePath, []byte(modprobeConf)},
				{modulesLoadPath, []byte("# Written by pvehci bootstrap: DRBD 9 for replicated storage.\n" + strings.Join(mods, "\n") + "\n")},
				{drbdIncludePath, []byte(drbdIncludeData)},
			} {
				a, err := fileAction(h.FS, f.path, f.data, 0o644)
				if err != nil {
					return nil, err
				}
				acts = append(acts, a...)
			}
			if ok, err := exists(h.FS, drbdResDir); err != nil {
				return nil, err
			} else if !ok {
				acts = append(acts, action{Change: Change{Kind: ChangeFile, Target: drbdResDir, Summary: "create the satellite's resource directory"},
					do: func(_ context.Context, h *Host) error { return h.FS.MkdirAll(drbdResDir, 0o700) }})
			}
			for _, m := range mods {
				loaded, ver, err := moduleVersion(h, m)
				if err != nil {
					return nil, err
				}
				if m == "drbd" && loaded && !strings.HasPrefix(ver, "9.") {
					return nil, fmt.Errorf("the kernel's DRBD %s module is loaded; pvehci needs DRBD 9: unload it (drbdadm down all; rmmod drbd) and run bootstrap again", ver)
				}
				if !loaded {
					acts = append(acts, commandAction("load kernel module "+m, run.Command("modprobe", m)))
				}
			}
			return acts, nil
		},
		verify: func(ctx context.Context, h *Host) error {
			for _, m := range mods {
				loaded, ver, err := moduleVersion(h, m)
				if err != nil {
					return err
				}
				if !loaded {
					return fmt.Errorf("kernel module %s is not loaded (modprobe %s says why; dmesg too)", m, m)
				}
				if m == "drbd" && !strings.HasPrefix(ver, "9.") {
					return fmt.Errorf("kernel module drbd is version %q, not 9", ver)
				}
			}
			return nil
		},
	}
}
