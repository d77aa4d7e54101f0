package validate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// systemdBaseUnits are stubbed in every tree: default dependencies make
// every service require sysinit.target and basic.target and conflict with
// shutdown.target, and verify fails with "Unit sysinit.target not found"
// without them.
var systemdBaseUnits = []string{"sysinit.target", "basic.target", "shutdown.target"}

// systemdStubExec is the stub executables' content and what stub services
// run.
const (
	systemdStubExec   = "#!/bin/sh\nexit 0\n"
	systemdStubBinary = "/usr/lib/pvehci-validate/stub"
)

// SystemdOptions declare what the verified units may rely on without the
// test machine having it.
type SystemdOptions struct {
	// Executables are absolute paths of programs the units run, such as
	// /usr/bin/pvehci. Each becomes a stub in the tree; a command that
	// is neither declared here nor in the tree fails the check ("Command
	// … is not executable"), so declare only what the unit is meant to
	// run.
	Executables []string
	// Units are the names of units from other packages that the units
	// name in Requires=, BindsTo= and the like, such as corosync.service
	// or network-online.target. Each becomes an empty stub. (verify does
	// not look up units named only in Wants= or After=, but declaring them
	// is harmless and documents the dependency.)
	Units []string
}

// SystemdVerify runs systemd-analyze verify on unit files in a throwaway
// --root tree (see the package documentation) and fails on a non-zero exit
// or on any output on stderr, because verify exits 0 after warnings such as
// an unknown key or an unparsable value. Pass sibling units together so
// that they find each other. It needs no root.
func SystemdVerify(ctx context.Context, opts SystemdOptions, units ...string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const check = "systemd-analyze verify"
	tools, err := lookTools("systemd-analyze")
	if err != nil {
		return err
	}
	abs, err := absFiles(units)
	if err != nil {
		return fmt.Errorf("verifying systemd units: %w", err)
	}
	root, err := os.MkdirTemp("", "pvehci-validate-systemd-")
	if err != nil {
		return fmt.Errorf("preparing systemd-analyze verify: %w", err)
	}
	defer os.RemoveAll(root)
	names, copies, err := systemdTree(root, abs, opts)
	if err != nil {
		return fmt.Errorf("preparing systemd-analyze verify: %w", err)
	}

	// --man=no: Documentation=man: pages are looked up on the host, where
	// pvehci's are not installed.
	argv := append([]string{tools[0], "verify", "--root=" + root, "--man=no", "--generators=no"}, names...)
	c := command{argv: argv}
	out, err := run(ctx, c)
	if err != nil {
		return err
	}
	var complaints []string
	for _, l := range lines(out.stderr) {
		for i, cp := range copies {
			l = strings.ReplaceAll(l, cp, units[i])
		}
		complaints = append(complaints, l)
	}
	if out.code != 0 || len(complaints) > 0 {
		return &RejectedError{Check: check, Files: units, Command: c.String(), ExitCode: out.code, Lines: complaints}
	}
	return nil
}

// systemdTree fills root: the units under etc/systemd/system, stub units
// under usr/lib/systemd/system and stub executables. It returns the unit
// names to verify and the paths of the copies, in the order of units.
func systemdTree(root string, units []string, opts SystemdOptions) (names, copies []string, err error) {
	etc := filepath.Join(root, "etc", "systemd", "system")
	lib := filepath.Join(root, "usr", "lib", "systemd", "system")
	for _, d := range []string{etc, lib} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	for _, u := range units {
		name := filepath.Base(u)
		if slices.Contains(names, name) {
			return nil, nil, fmt.Errorf("two units named %s", name)
		}
		data, err := os.ReadFile(u)
		if err != nil {
			return nil, nil, err
		}
		cp := filepath.Join(etc, name)
		if err := os.WriteFile(cp, data, 0o644); err != nil {
			return nil, nil, err
		}
		names, copies = append(names, name), append(copies, cp)
	}
	for _, u := range append(append([]string{}, systemdBaseUnits...), opts.Units...) {
		if strings.ContainsRune(u, '/') || slices.Contains(names, u) {
			continue
		}
		stub := "[Unit]\nDescription=Stub of " + u + " for systemd-analyze verify\n"
		if strings.HasSuffix(u, ".service") {
			stub += "\n[Service]\nExecStart=" + systemdStubBinary + "\n"
		}
		if err := os.WriteFile(filepath.Join(lib, u), []byte(stub), 0o644); err != nil {
			return nil, nil, err
		}
	}
	for _, x := range append([]string{systemdStubBinary}, opts.Executables...) {
		if !filepath.IsAbs(x) {
			return nil, nil, fmt.Errorf("executable %q is not an absolute path", x)
		}
		p := filepath.Join(root, x)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(p, []byte(systemdStubExec), 0o755); err != nil {
			return nil, nil, err
		}
	}
	return names, copies, nil
}
