package satellite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pvehci/pvehci/internal/hostfs"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// DefaultTimeout bounds each command, LINSTOR's 45 s external command wait
// (research/linstor-server.md §3): a hung LVM or drbdadm call must fail the
// action, not the satellite (§8 #7).
const DefaultTimeout = 45 * time.Second

// Reconciler runs passes for one node. Its fields are its dependencies; the
// zero value of the optional ones is usable.
type Reconciler struct {
	// Node is the node name in the cluster state.
	Node   string
	Runner run.Runner
	// FS is the host's file system (hostfs.Root("/") on a node).
	FS hostfs.FS
	// ResDir, when set, lists the directory ResDir (for example
	// os.DirFS(root + satellite.ResDir)) so that .res files no resource
	// owns are reported as orphans; nil skips that report.
	ResDir fs.ReadDirFS
	// Log receives one line per action; nil discards.
	Log *slog.Logger
	// Timeout bounds each command; 0 means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock of the snapshot deadlines in Pass; time.Now when
	// nil.
	Now func() time.Time

	// verified is the verify request this satellite started per
	// resource (see verify.go); one pass at a time uses it.
	verified map[string]string
	// resynced is the verify-resync request this satellite carried out
	// per resource (see verify.go).
	resynced map[string]string
	// resized is the resize request this satellite ran per
	// "resource/volume" (see resize.go).
	resized map[string]ResizeRun
	// mu keeps a pass and an orphan cleanup (cleanup.go) from running
	// at the same time.
	mu sync.Mutex
}

// Observed is what a node holds.
type Observed struct {
	// LVs are the node's logical volumes by "VG/LV".
	LVs map[string]lvm.LV
	// ExtentKiB is each volume group's extent size.
	ExtentKiB map[string]int64
	// Res holds the .res file of each desired resource that has one.
	Res map[string][]byte
	// ResFiles are the resource names of every *.res in ResDir (only when
	// Reconciler.ResDir is set).
	ResFiles []string
	// DRBD is the kernel's state by resource name.
	DRBD map[string]drbd.ObservedResource
	// HasMD says, for each probed "VG/LV" (a desired diskful volume that
	// exists but is not attached), whether it holds valid DRBD metadata.
	HasMD map[string]bool
	// ProbeErr holds probes that could not tell.
	ProbeErr map[string]error
	// LastKnownSize holds, for each probed "VG/LV" without metadata at
	// its end, the smaller size in bytes that DRBD last knew it at
	// (LastKnownPath): its metadata may still be at the end of that size
	// (checkresize.go).
	LastKnownSize map[string]uint64
	// Verified is the online-verify request this satellite started per
	// resource (RunVerify), from its memory.
	Verified map[string]string
	// Resynced is the verify-resync request this satellite carried out
	// per resource (ResyncVerified), from its memory.
	Resynced map[string]string
	// Resized is the `drbdadm resize` this satellite ran per
	// "resource/volume" (ResizeDRBD), from its memory.
	Resized map[string]ResizeRun
}

func (r *Reconciler) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Reconciler) cmd(argv ...string) run.Cmd {
	c := run.Command(argv[0], argv[1:]...)
	c.Timeout = r.Timeout
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Observe reads the node's state with read-only commands: lvs, vgs,
// drbdsetup events2 --now --statistics, and drbdmeta get-gi for each
// desired volume whose LV exists but that DRBD has not attached.
func (r *Reconciler) Observe(ctx context.Context, want DesiredState) (Observed, error) {
	o := Observed{
		LVs: map[string]lvm.LV{}, ExtentKiB: map[string]int64{}, Res: map[string][]byte{},
		DRBD: map[string]drbd.ObservedResource{}, HasMD: map[string]bool{}, ProbeErr: map[string]error{},
	}
	res, err := r.Runner.Run(ctx, r.cmd(lvm.VGSArgs()...))
	if err != nil {
		return o, fmt.Errorf("observe volume groups: %w", err)
	}
	vgs, err := lvm.ParseVGs(res.Stdout)
	if err != nil {
		return o, fmt.Errorf("observe volume groups: %w", err)
	}
	for _, vg := range vgs {
		o.ExtentKiB[vg.Name] = int64(vg.ExtentSize / 1024)
	}
	if res, err = r.Runner.Run(ctx, r.cmd(lvm.LVSArgs()...)); err != nil {
		return o, fmt.Errorf("observe logical volumes: %w", err)
	}
	lvs, err := lvm.ParseLVs(res.Stdout)
	if err != nil {
		return o, fmt.Errorf("observe logical volumes: %w", err)
	}
	for _, lv := range lvs {
		o.LVs[lv.VG+"/"+lv.Name] = lv
	}
	if res, err = r.Runner.Run(ctx, r.cmd("drbdsetup", "events2", "--now", "--statistics")); err != nil {
		return o, fmt.Errorf("observe DRBD (is the drbd 9 kernel module loaded?): %w", err)
	}
	kernel, err := parseEvents(res.Stdout)
	if err != nil {
		return o, fmt.Errorf("observe DRBD: %w", err)
	}
	for _, k := range kernel {
		o.DRBD[k.Name] = k
	}
	o.Verified = maps.Clone(r.verified)
	o.Resynced = maps.Clone(r.resynced)
	o.Resized = cloneResized(r.resized)
	for _, d := range want.Resources {
		data, err := r.FS.ReadFile(ResPath(d.Name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return o, fmt.Errorf("observe .res of %s: %w", d.Name, err)
		default:
			o.Res[d.Name] = data
		}
	}
	if r.ResDir != nil {
		entries, err := r.ResDir.ReadDir(".")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return o, fmt.Errorf("list %s: %w", ResDir, err)
		}
		for _, e := range entries {
			if n := e.Name(); e.Type().IsRegular() && !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".res") {
				o.ResFiles = append(o.ResFiles, strings.TrimSuffix(n, ".res"))
			}
		}
	}
	for _, d := range want.Resources {
		if d.Err != nil || d.Delete || d.Down {
			continue
		}
		for _, v := range d.Volumes {
			lv, ok := o.LVs[v.Key()]
			if v.Diskless || !ok || !slices.Contains(lv.Tags, lvm.Tag) || attached(o.DRBD[d.Name], v.Number) {
				continue
			}
			has, err := r.probeMD(ctx, v)
			if err != nil {
				o.ProbeErr[v.Key()] = err
				continue
			}
			o.HasMD[v.Key()] = has
			if !has {
				if err := r.observeLastKnown(&o, v, lv); err != nil {
					o.ProbeErr[v.Key()] = err
				}
			}
		}
	}
	return o, nil
}

// probeMD tells whether a volume's LV holds DRBD metadata, as LINSTOR's
// DrbdLayer does before create-md: `drbdmeta … get-gi` exits 0 with valid
// metadata and 1 or 255 without (research/linstor-server.md §3, step 6).
// Anything else is an error, and no metadata is created on a guess.
func (r *Reconciler) probeMD(ctx context.Context, v DesiredVolume) (bool, error) {
	_, err := r.Runner.Run(ctx, r.cmd("drbdmeta", "--force", fmt.Sprint(v.Minor), "v09", v.Device(), "internal", "get-gi", "--node-id", "0"))
	switch code := run.ExitCode(err); code {
	case 0:
		return true, nil
	case 1, 255:
		return false, nil
	}
	return false, fmt.Errorf("probe DRBD metadata on %s: %w", v.Device(), err)
}

// attached reports whether DRBD has a backing disk for volume vnr.
func attached(k drbd.ObservedResource, vnr int) bool {
	for _, d := range k.Devices {
		if d.Volume == vnr {
			return d.Disk != drbd.DiskDiskless && d.Disk != drbd.DiskDetaching
		}
	}
	return false
}

func parseEvents(out []byte) ([]drbd.ObservedResource, error) {
	o := drbd.NewObserved()
	for i, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := drbd.ParseEvent(string(line))
		if err != nil {
			return nil, fmt.Errorf("events2 line %d: %w", i+1, err)
		}
		if err := o.Apply(e); err != nil {
			return nil, fmt.Errorf("events2 line %d: %w", i+1, err)
		}
	}
	return o.Resources()
}
