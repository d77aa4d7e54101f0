package health

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/pvehci/pvehci/ha"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/lvm"
)

// Sources is where the checks read the node from. Each field is a narrow
// interface so that tests can feed canned output; a nil field makes the
// checks reading it unknown.
type Sources struct {
	Corosync   Corosync
	Controller Controller
	DRBD       DRBD
	LVM        LVM
	// Network reads this node's links and RDMA ports.
	Network Network
	// Cluster, when set, gives the leader's view of every node; the DRBD
	// and pool checks then judge every node, not only this one.
	Cluster Cluster
	// Now is the clock for certificate expiry; nil means time.Now.
	Now func() time.Time
}

// Corosync reads the corosync state of this node.
type Corosync interface {
	// Quorum returns the votequorum state, or an error wrapping
	// ErrCorosyncDown when corosync does not answer.
	Quorum(ctx context.Context) (Quorum, error)
	// Links returns the knet links and their per-node state.
	Links(ctx context.Context) ([]Link, error)
}

// Controller reads the local daemon's view of the controller cluster
// (GET /v1/status on the local API).
type Controller interface {
	Status(ctx context.Context) (ha.ClusterStatus, error)
}

// DRBD reads the kernel's DRBD state.
type DRBD interface {
	Resources(ctx context.Context) ([]drbd.ObservedResource, error)
}

// LVM reads the logical volumes.
type LVM interface {
	LVs(ctx context.Context) ([]lvm.LV, error)
}

// ErrCorosyncDown means that corosync does not run on this node or does not
// answer its tools.
var ErrCorosyncDown = errors.New("corosync does not answer")

// Inputs gives checks the node's state, reading each source at most once
// per Run and remembering failures for the report.
type Inputs struct {
	src      Sources
	quorum   memo[Quorum]
	links    memo[[]Link]
	status   memo[ha.ClusterStatus]
	drbd     memo[[]drbd.ObservedResource]
	lvs      memo[[]lvm.LV]
	view     memo[ClusterView]
	netLinks memo[[]NetLink]
	rdma     memo[[]RDMAPort]
	failures map[string]error
}

type memo[T any] struct {
	done bool
	v    T
	err  error
}

func newInputs(src Sources) *Inputs { return &Inputs{src: src, failures: map[string]error{}} }

func get[T any](in *Inputs, m *memo[T], name string, fn func() (T, error)) (T, error) {
	if !m.done {
		m.v, m.err = fn()
		m.done = true
		if m.err != nil {
			in.failures[name] = m.err
		}
	}
	return m.v, m.err
}

var errNoSource = errors.New("not configured")

// Now is the time the checks judge expiry against.
func (in *Inputs) Now() time.Time {
	if in.src.Now != nil {
		return in.src.Now()
	}
	return time.Now()
}

// Quorum returns corosync's quorum state.
func (in *Inputs) Quorum(ctx context.Context) (Quorum, error) {
	return get(in, &in.quorum, "corosync-quorumtool", func() (Quorum, error) {
		if in.src.Corosync == nil {
			return Quorum{}, errNoSource
		}
		return in.src.Corosync.Quorum(ctx)
	})
}

// Links returns corosync's knet links.
func (in *Inputs) Links(ctx context.Context) ([]Link, error) {
	return get(in, &in.links, "corosync-cfgtool", func() ([]Link, error) {
		if in.src.Corosync == nil {
			return nil, errNoSource
		}
		return in.src.Corosync.Links(ctx)
	})
}

// ClusterStatus returns the local daemon's cluster status.
func (in *Inputs) ClusterStatus(ctx context.Context) (ha.ClusterStatus, error) {
	return get(in, &in.status, "controller", func() (ha.ClusterStatus, error) {
		if in.src.Controller == nil {
			return ha.ClusterStatus{}, errNoSource
		}
		return in.src.Controller.Status(ctx)
	})
}

// DRBDResources returns the kernel's DRBD resources.
func (in *Inputs) DRBDResources(ctx context.Context) ([]drbd.ObservedResource, error) {
	return get(in, &in.drbd, "drbdsetup", func() ([]drbd.ObservedResource, error) {
		if in.src.DRBD == nil {
			return nil, errNoSource
		}
		return in.src.DRBD.Resources(ctx)
	})
}

// LVs returns the logical volumes.
func (in *Inputs) LVs(ctx context.Context) ([]lvm.LV, error) {
	return get(in, &in.lvs, "lvs", func() ([]lvm.LV, error) {
		if in.src.LVM == nil {
			return nil, errNoSource
		}
		return in.src.LVM.LVs(ctx)
	})
}

// NetLinks returns this node's network interfaces.
func (in *Inputs) NetLinks(ctx context.Context) ([]NetLink, error) {
	return get(in, &in.netLinks, "netlink", func() ([]NetLink, error) {
		if in.src.Network == nil {
			return nil, errNoSource
		}
		return in.src.Network.Links(ctx)
	})
}

// RDMAPorts returns this node's InfiniBand and RoCE ports.
func (in *Inputs) RDMAPorts(ctx context.Context) ([]RDMAPort, error) {
	return get(in, &in.rdma, "rdma", func() ([]RDMAPort, error) {
		if in.src.Network == nil {
			return nil, errNoSource
		}
		return in.src.Network.RDMAPorts(ctx)
	})
}

// ClusterView returns the leader's view of the cluster.
func (in *Inputs) ClusterView(ctx context.Context) (ClusterView, error) {
	return get(in, &in.view, "cluster view", func() (ClusterView, error) {
		if in.src.Cluster == nil {
			return ClusterView{}, errNoSource
		}
		return in.src.Cluster.View(ctx)
	})
}

// haveView reports whether the cluster view is configured and readable.
func (in *Inputs) haveView(ctx context.Context) (ClusterView, bool) {
	if in.src.Cluster == nil {
		return ClusterView{}, false
	}
	v, err := in.ClusterView(ctx)
	return v, err == nil
}

func (in *Inputs) unavailable() []SourceError {
	var out []SourceError
	for name, err := range in.failures {
		// A stopped corosync is a finding (COROSYNC_NOT_RUNNING), not a
		// gap in what pvehci could see.
		if errors.Is(err, ErrCorosyncDown) {
			continue
		}
		out = append(out, SourceError{Source: name, Error: err.Error()})
	}
	slices.SortFunc(out, func(a, b SourceError) int { return cmp.Compare(a.Source, b.Source) })
	return out
}

// CommandTimeout bounds each command the command sources run: a hung tool
// must make its checks unknown, not hang the admin's terminal.
const CommandTimeout = 10 * time.Second

// Commands reads corosync, DRBD and LVM by running their tools through a
// Runner; it implements Corosync, DRBD and LVM.
type Commands struct {
	Runner run.Runner
}

var (
	_ Corosync = Commands{}
	_ DRBD     = Commands{}
	_ LVM      = Commands{}
)

func (c Commands) run(ctx context.Context, argv ...string) (run.Result, error) {
	cmd := run.Command(argv[0], argv[1:]...)
	cmd.Timeout = CommandTimeout
	return c.Runner.Run(ctx, cmd)
}

// Quorum runs corosync-quorumtool -s, which exits 0 when quorate, 2 when
// not and 1 when it cannot reach corosync.
func (c Commands) Quorum(ctx context.Context) (Quorum, error) {
	res, err := c.run(ctx, "corosync-quorumtool", "-s")
	var re *run.Error
	switch {
	case err == nil, errors.As(err, &re) && re.ExitCode == 2:
		return ParseQuorum(res.Stdout)
	case errors.As(err, &re) && re.ExitCode == 1:
		return Quorum{}, fmt.Errorf("%w: %s", ErrCorosyncDown, firstLine(res.Stderr, res.Stdout))
	}
	return Quorum{}, err
}

// Links runs corosync-cfgtool -s. Its exit code says nothing about the
// links (it is 0 with a faulty one), so only the output counts.
func (c Commands) Links(ctx context.Context) ([]Link, error) {
	res, err := c.run(ctx, "corosync-cfgtool", "-s")
	if err != nil {
		// "Could not initialize corosync configuration API error 2"
		if bytes.Contains(res.Stdout, []byte("Could not initialize")) || bytes.Contains(res.Stderr, []byte("Could not initialize")) {
			return nil, fmt.Errorf("%w: %s", ErrCorosyncDown, firstLine(res.Stderr, res.Stdout))
		}
		return nil, err
	}
	return ParseLinks(res.Stdout)
}

// Resources runs drbdsetup events2 --now --statistics and folds the dump.
func (c Commands) Resources(ctx context.Context) ([]drbd.ObservedResource, error) {
	res, err := c.run(ctx, "drbdsetup", "events2", "--now", "--statistics")
	if err != nil {
		return nil, err
	}
	return ParseEvents2(res.Stdout)
}

// LVs runs lvs with the JSON report lvm.ParseLVs reads.
func (c Commands) LVs(ctx context.Context) ([]lvm.LV, error) {
	res, err := c.run(ctx, lvm.LVSArgs()...)
	if err != nil {
		return nil, err
	}
	return lvm.ParseLVs(res.Stdout)
}

// ParseEvents2 folds the output of `drbdsetup events2 --now` into
// resources.
func ParseEvents2(out []byte) ([]drbd.ObservedResource, error) {
	o := drbd.NewObserved()
	r := drbd.NewEventReader(bytes.NewReader(out))
	for {
		e, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if err := o.Apply(e); err != nil {
			return nil, err
		}
	}
	return o.Resources()
}

func firstLine(bufs ...[]byte) string {
	for _, b := range bufs {
		line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
		if len(line) > 0 {
			return string(line)
		}
	}
	return "no output"
}
