package satellite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
)

// Intervals of the satellite loop. A pass runs at once on every change of
// the replicated state; without changes it runs every IdleInterval to
// notice what changed in the kernel (a peer gone, a resync finished), and
// every BusyInterval while the node is not converged (actions ran, a
// resync is in progress), so the controller sees progress promptly.
const (
	DefaultIdleInterval = 10 * time.Second
	DefaultBusyInterval = time.Second
	// leaderPoll is how often the loop checks for a new leader, to which
	// it re-sends its full report at once.
	leaderPoll = 250 * time.Millisecond
	// afterAction is the pause after a pass that ran actions.
	afterAction = 100 * time.Millisecond
	// DefaultWatchInterval is how often the loop reads `drbdsetup events2
	// --now` between passes while the live events2 stream does not run
	// (events.go); a change of a role, disk or connection state starts a
	// pass (and so a report) at once. The controller needs this to see a
	// VM's stop before Proxmox deactivates its volume.
	DefaultWatchInterval = 500 * time.Millisecond
)

// Loop runs the reconciler for as long as the daemon runs and reports
// each pass to the active controller.
type Loop struct {
	Reconciler *Reconciler
	// State is the replicated state as this node has applied it.
	State func() *state.State
	// Changed returns a channel closed at the next change of State.
	Changed func() <-chan struct{}
	// Leader is the current leader's name ("" when unknown).
	Leader func() string
	// Send delivers a report to the leader.
	Send func(ctx context.Context, rep NodeReport) error
	// Network, when set, reads the node's links and RDMA ports for each
	// report (NodeReport.Network).
	Network NetworkReader
	// IdleInterval, BusyInterval and WatchInterval override the defaults
	// when set.
	IdleInterval, BusyInterval, WatchInterval time.Duration
	// NoStream makes the loop poll `events2 --now` every WatchInterval
	// even when its Runner can follow the live stream (events.go).
	NoStream bool
	Log      *slog.Logger
}

// Run reconciles until ctx ends.
func (l *Loop) Run(ctx context.Context) error {
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	idle, busy := l.IdleInterval, l.BusyInterval
	if idle <= 0 {
		idle = DefaultIdleInterval
	}
	if busy <= 0 {
		busy = DefaultBusyInterval
	}
	var bootID [8]byte
	rand.Read(bootID[:])
	boot := hex.EncodeToString(bootID[:])
	var seq uint64
	var last NodeReport
	lastErr := ""
	send := func(rep NodeReport) {
		if err := l.Send(ctx, rep); err != nil {
			if msg := err.Error(); msg != lastErr {
				log.Warn("satellite report not delivered; retrying at the next pass", "err", err)
				lastErr = msg
			}
			return
		}
		if lastErr != "" {
			log.Info("satellite report delivered again")
			lastErr = ""
		}
	}
	watchEvery := l.WatchInterval
	if watchEvery <= 0 {
		watchEvery = DefaultWatchInterval
	}
	watch := time.NewTicker(watchEvery)
	defer watch.Stop()
	kw := newKernelWatch()
	if s, ok := l.Reconciler.Runner.(run.Streamer); ok && !l.NoStream {
		go l.follow(ctx, s, kw, log)
	}
	leader := l.Leader()
	streak := 0 // busy passes in a row that ran no action
	poll := time.NewTicker(leaderPoll)
	defer poll.Stop()
	for {
		changed := l.Changed()
		rep, converged, acted := l.pass(ctx, log)
		seq++
		rep.Boot, rep.Seq, rep.Time = boot, seq, time.Now().UTC()
		last = rep
		send(last)

		// A node waiting on something outside it (a peer that is down
		// keeps a connection Connecting) backs off to the idle pace.
		wait := idle
		switch {
		case converged:
			streak = 0
		case acted:
			// What a pass did usually enables the next step at once (an
			// adjust brings connections up, which the initial sync
			// waits for), so look again soon.
			streak = 0
			wait = afterAction
		default:
			wait = min(busy<<min(streak, 4), idle)
			streak++
		}
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case <-changed:
				break waiting
			case <-timer.C:
				break waiting
			case <-kw.moved:
				if d, ok := kw.current(); ok && d != kernelDigest(last.Resources) {
					break waiting
				}
			case <-watch.C:
				if !kw.running() && l.kernelMoved(ctx, last) {
					break waiting
				}
			case <-poll.C:
				if now := l.Leader(); now != leader {
					leader = now
					if now != "" {
						log.Info("new leader; sending it the full report", "leader", now)
						send(last)
					}
				}
			}
		}
		timer.Stop()
	}
}

// pass runs one reconcile pass and builds its report. acted is set when
// it ran actions; converged is false when it acted, failed, or saw DRBD
// still moving (a resync, a connection not yet up), so the next pass comes
// soon.
func (l *Loop) pass(ctx context.Context, log *slog.Logger) (out NodeReport, converged, acted bool) {
	r := l.Reconciler
	st := l.State()
	want, derr := Desired(st, r.Node)
	if derr != nil {
		want = DesiredState{Node: r.Node}
	}
	got, err := r.Observe(ctx, want)
	if err != nil {
		log.Debug("satellite cannot observe the node", "err", err)
		return NodeReport{Node: r.Node, ObserveError: err.Error()}, false, false
	}
	var rep Report
	if derr == nil {
		rep.Plan = Plan(want, got)
		if acted = len(rep.Plan.Actions) > 0; acted {
			rep.Outcomes = r.Apply(ctx, rep.Plan.Actions)
			if again, err := r.Observe(ctx, want); err == nil {
				got = again
			}
		}
	}
	out = BuildReport(r.Node, st, want, got, rep)
	if derr != nil {
		out.Problems = append(out.Problems, derr.Error())
	}
	if l.Network != nil {
		out.Network = readNetwork(ctx, l.Network)
	}
	return out, !acted && len(out.Failed) == 0 && settled(got), acted
}

// settled reports whether DRBD is at rest: every connection up or
// deliberately down, no resync or verify running.
func settled(got Observed) bool {
	for _, res := range got.DRBD {
		for _, c := range res.Connections {
			if c.Connection == "Connecting" {
				return false
			}
			for _, pd := range c.PeerDevices {
				if pd.Replication != "Established" && pd.Replication != "Off" {
					return false
				}
			}
		}
	}
	return true
}

// kernelMoved reports whether DRBD's roles, disk or connection states
// differ from what the last report says.
func (l *Loop) kernelMoved(ctx context.Context, last NodeReport) bool {
	r := l.Reconciler
	res, err := r.Runner.Run(ctx, r.cmd("drbdsetup", "events2", "--now"))
	if err != nil {
		return false // the next pass reports the failure
	}
	now, err := parseEvents(res.Stdout)
	if err != nil {
		return false
	}
	return kernelDigest(now) != kernelDigest(last.Resources)
}

// kernelDigest is the part of DRBD's state that a report must follow at
// once, without the statistics that change with every write.
func kernelDigest(rs []drbd.ObservedResource) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s %s|", r.Name, r.Role, r.Suspended)
		for _, d := range r.Devices {
			fmt.Fprintf(&b, "%d %s %t %t|", d.Volume, d.Disk, d.Open, d.Quorum)
		}
		for _, c := range r.Connections {
			fmt.Fprintf(&b, "%d %s %s|", c.PeerNodeID, c.Connection, c.PeerRole)
			for _, pd := range c.PeerDevices {
				fmt.Fprintf(&b, "%d %s %s|", pd.Volume, pd.Replication, pd.PeerDisk)
			}
		}
	}
	return b.String()
}

// NetworkReader reads a node's links and RDMA ports (netlink and sysfs on
// a node; internal/hostnet).
type NetworkReader interface {
	Links(ctx context.Context) ([]model.NetLink, error)
	RDMAPorts(ctx context.Context) ([]model.RDMAPort, error)
}

func readNetwork(ctx context.Context, r NetworkReader) *model.NodeNetwork {
	var out model.NodeNetwork
	var errs []string
	links, err := r.Links(ctx)
	if err != nil {
		errs = append(errs, "netlink: "+err.Error())
	}
	ports, err := r.RDMAPorts(ctx)
	if err != nil {
		errs = append(errs, "rdma: "+err.Error())
	}
	out.Links, out.RDMAPorts, out.Error = links, ports, strings.Join(errs, "; ")
	return &out
}
