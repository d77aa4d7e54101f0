package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pvehci/pvehci/internal/notify"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// DefaultOnlineWindow is how long a report keeps its node online: three
// idle satellite passes and some slack.
const DefaultOnlineWindow = 3*satellite.DefaultIdleInterval + 5*time.Second

// Store holds the latest report of each node. It is safe for concurrent
// use.
type Store struct {
	// OnlineWindow overrides DefaultOnlineWindow when set.
	OnlineWindow time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	reports map[string]entry // by model.Key(node)
	changed notify.Broadcast // on every stored report
}

type entry struct {
	rep      satellite.NodeReport
	received time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Take decodes and stores a report; from is the sender's authenticated
// node name, which the report must match.
func (s *Store) Take(from string, body []byte) error {
	var rep satellite.NodeReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("decoding the report of %s: %w", from, err)
	}
	if !model.SameName(rep.Node, from) {
		return fmt.Errorf("node %s sent a report for node %s; a node reports only on itself", from, rep.Node)
	}
	s.Put(rep)
	return nil
}

// Put stores a report unless the same or a newer one of the same
// satellite run is already there (a duplicate must not refresh the time
// that keeps the node online).
func (s *Store) Put(rep satellite.NodeReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reports == nil {
		s.reports = map[string]entry{}
	}
	k := model.Key(rep.Node)
	if old, ok := s.reports[k]; ok && old.rep.Boot == rep.Boot && old.rep.Seq >= rep.Seq {
		return
	}
	s.reports[k] = entry{rep: rep, received: s.now()}
	s.changed.Notify()
}

// Changed returns a channel closed at the next Put.
func (s *Store) Changed() <-chan struct{} { return s.changed.Wait() }

// Report returns a node's latest report and when it arrived.
func (s *Store) Report(node string) (satellite.NodeReport, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.reports[model.Key(node)]
	return e.rep, e.received, ok
}

// Reports returns the latest report of every node that sent one.
func (s *Store) Reports() []satellite.NodeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]satellite.NodeReport, 0, len(s.reports))
	for _, e := range s.reports {
		out = append(out, e.rep)
	}
	return out
}

func (s *Store) online(received time.Time) bool {
	w := s.OnlineWindow
	if w <= 0 {
		w = DefaultOnlineWindow
	}
	return s.now().Sub(received) <= w
}

// ObservedNode implements api.NodeObserver: a node is online while its
// satellite reports.
func (s *Store) ObservedNode(node string) (api.ObservedNode, bool) {
	_, at, ok := s.Report(node)
	if !ok {
		return api.ObservedNode{}, true
	}
	return api.ObservedNode{Online: s.online(at)}, true
}

// ObservedPool implements api.PoolObserver.
func (s *Store) ObservedPool(node, pool string) (api.ObservedPool, bool) {
	rep, at, ok := s.Report(node)
	if !ok || !s.online(at) {
		return api.ObservedPool{}, false
	}
	p, ok := rep.Pool(pool)
	if !ok {
		return api.ObservedPool{}, false
	}
	return api.ObservedPool{FreeKiB: p.FreeKiB, TotalKiB: p.TotalKiB}, true
}

// Observed implements api.Backend's Observed.
func (s *Store) Observed(rd, node string) (api.ObservedResource, bool) {
	rep, _, ok := s.Report(node)
	if !ok {
		return api.ObservedResource{}, false
	}
	k, ok := rep.Resource(rd)
	if !ok {
		return api.ObservedResource{}, false
	}
	return toAPI(k), true
}

func toAPI(k drbd.ObservedResource) api.ObservedResource {
	out := api.ObservedResource{
		InUse:          k.Role == drbd.RolePrimary,
		PromotionScore: k.PromotionScore,
		MayPromote:     k.MayPromote,
		Connections:    map[string]api.ObservedConnection{},
	}
	for _, d := range k.Devices {
		v := api.ObservedVolume{
			VolumeNumber:  d.Volume,
			DiskState:     string(d.Disk),
			DevicePath:    fmt.Sprintf("/dev/drbd%d", d.Minor),
			UsableSizeKiB: int64(d.SizeKiB),
		}
		if !d.Client && d.BackingDev != "" && d.BackingDev != "none" {
			v.BackingDevice = d.BackingDev
		}
		out.Volumes = append(out.Volumes, v)
	}
	for _, c := range k.Connections {
		out.Connections[c.Name] = api.ObservedConnection{Connected: c.Connection == drbd.ConnConnected, Message: string(c.Connection)}
	}
	return out
}

// usable says whether node can use rd's device now: every volume's device
// exists and reads and writes good data, from a local UpToDate disk or
// through a connected UpToDate peer. Only then may the REST API answer a
// spawn, autoplace or make-available: the Proxmox plugin opens the device
// right after the answer.
func usable(rep satellite.NodeReport, rd string, volumes int) (bool, string) {
	k, ok := rep.Resource(rd)
	if !ok {
		return false, "its DRBD resource is not up yet"
	}
	if len(k.Devices) < volumes {
		return false, fmt.Sprintf("%d of %d volumes are up", len(k.Devices), volumes)
	}
	for _, d := range k.Devices {
		if d.Disk == drbd.DiskUpToDate {
			continue
		}
		good := false
		for _, c := range k.Connections {
			if c.Connection != drbd.ConnConnected {
				continue
			}
			for _, pd := range c.PeerDevices {
				if pd.Volume == d.Volume && pd.PeerDisk == drbd.DiskUpToDate {
					good = true
				}
			}
		}
		if !good {
			return false, fmt.Sprintf("volume %d is %s and no connected peer is UpToDate", d.Volume, d.Disk)
		}
	}
	return true, ""
}

// WaitDevice implements api.Backend's WaitDevice; volumes is the number
// of volumes the definition has (from want).
func (s *Store) WaitDevice(ctx context.Context, rd, node string, volumes int) error {
	why := "its satellite has not reported yet"
	for {
		changed := s.Changed()
		if rep, _, ok := s.Report(node); ok {
			if f := failure(rep, rd); f != "" {
				return fmt.Errorf("the satellite on %s failed to create %s: %s", node, rd, f)
			}
			var ok bool
			if ok, why = usable(rep, rd, volumes); ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the device of %s on %s is not usable yet: %s", rd, node, why)
		case <-changed:
		}
	}
}

// failure is the last pass's failed actions for rd, if any.
func failure(rep satellite.NodeReport, rd string) string {
	var msgs []string
	for _, f := range rep.Failed {
		if f.Resource == rd {
			msgs = append(msgs, f.Action+": "+f.Error)
		}
	}
	return strings.Join(msgs, "; ")
}

// Refresh implements api.Refresher: it waits until node reports after the
// call began, or ctx ends.
func (s *Store) Refresh(ctx context.Context, node string) {
	start := s.now()
	for {
		changed := s.Changed()
		if _, at, ok := s.Report(node); ok && at.After(start) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
