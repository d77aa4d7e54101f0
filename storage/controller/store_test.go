package controller

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/drbd"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/satellite"
)

// waitLimit bounds every wait of these tests; nothing is asserted about
// how long anything takes.
const waitLimit = 5 * time.Second

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tickingClock advances by a nanosecond at every reading, so every two
// readings differ.
type tickingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Nanosecond)
	return c.t
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStoreTake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		from    string
		body    []byte
		wantErr string // "" for success
	}{
		{name: "own report", from: "pve1", body: mustJSON(t, satellite.NodeReport{Node: "pve1", Boot: "b", Seq: 1})},
		{name: "own report, other case", from: "PVE1", body: mustJSON(t, satellite.NodeReport{Node: "pve1", Boot: "b", Seq: 1})},
		{name: "report on another node", from: "pve2", body: mustJSON(t, satellite.NodeReport{Node: "pve1", Boot: "b", Seq: 1}), wantErr: "node pve2 sent a report for node pve1"},
		{name: "report without node", from: "pve1", body: mustJSON(t, satellite.NodeReport{Boot: "b", Seq: 1}), wantErr: "a node reports only on itself"},
		{name: "bad JSON", from: "pve1", body: []byte(`{"node": "pve1", "seq": `), wantErr: "decoding the report of pve1"},
		{name: "wrong JSON type", from: "pve1", body: []byte(`{"node": "pve1", "seq": "one"}`), wantErr: "decoding the report of pve1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Store{}
			err := s.Take(tc.from, tc.body)
			_, _, stored1 := s.Report("pve1")
			_, _, stored2 := s.Report("pve2")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Take: %v", err)
				}
				rep, _, ok := s.Report("pve1")
				if !ok || rep.Seq != 1 || rep.Boot != "b" {
					t.Errorf("stored report %+v (%t), want pve1's Seq 1", rep, ok)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Take: %v, want an error containing %q", err, tc.wantErr)
			}
			if stored1 || stored2 || len(s.Reports()) != 0 {
				t.Errorf("a refused report was stored: %+v", s.Reports())
			}
		})
	}
}

func TestStorePut(t *testing.T) {
	t.Parallel()
	type put struct {
		boot string
		seq  uint64
	}
	tests := []struct {
		name     string
		puts     []put
		wantBoot string
		wantSeq  uint64
	}{
		{name: "newer Seq replaces", puts: []put{{"a", 1}, {"a", 2}}, wantBoot: "a", wantSeq: 2},
		{name: "older Seq of the same boot is dropped", puts: []put{{"a", 5}, {"a", 3}}, wantBoot: "a", wantSeq: 5},
		{name: "late reports are dropped", puts: []put{{"a", 2}, {"a", 7}, {"a", 4}, {"a", 6}}, wantBoot: "a", wantSeq: 7},
		{name: "new boot with a lower Seq replaces", puts: []put{{"a", 9}, {"b", 1}}, wantBoot: "b", wantSeq: 1},
		{name: "new boot then an old report of it", puts: []put{{"a", 9}, {"b", 3}, {"b", 2}}, wantBoot: "b", wantSeq: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			s := &Store{Now: clk.Now}
			var keptAt time.Time
			for _, p := range tc.puts {
				clk.Advance(time.Second)
				s.Put(satellite.NodeReport{Node: "pve1", Boot: p.boot, Seq: p.seq})
				if p.boot == tc.wantBoot && p.seq == tc.wantSeq {
					keptAt = clk.Now()
				}
			}
			rep, at, ok := s.Report("PVE1")
			if !ok {
				t.Fatal("no report stored")
			}
			if rep.Boot != tc.wantBoot || rep.Seq != tc.wantSeq {
				t.Errorf("kept boot %s Seq %d, want boot %s Seq %d", rep.Boot, rep.Seq, tc.wantBoot, tc.wantSeq)
			}
			if !at.Equal(keptAt) {
				t.Errorf("received at %v, want %v (when the kept report arrived)", at, keptAt)
			}
			if n := len(s.Reports()); n != 1 {
				t.Errorf("%d reports, want 1", n)
			}
		})
	}
}

func TestStoreChangedOnlyOnStoredPut(t *testing.T) {
	t.Parallel()
	s := &Store{}
	s.Put(satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 5})
	ch := s.Changed()
	s.Put(satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 4}) // dropped
	select {
	case <-ch:
		t.Fatal("Changed closed by a dropped report")
	default:
	}
	s.Put(satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 6})
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by a stored report")
	}
}

func TestStoreObservedNode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		window time.Duration
		report bool
		after  time.Duration // since the report arrived
		want   bool
	}{
		{name: "never reported", window: 30 * time.Second, want: false},
		{name: "just reported", window: 30 * time.Second, report: true, want: true},
		{name: "within the window", window: 30 * time.Second, report: true, after: 29 * time.Second, want: true},
		{name: "at the window's end", window: 30 * time.Second, report: true, after: 30 * time.Second, want: true},
		{name: "past the window", window: 30 * time.Second, report: true, after: 30*time.Second + time.Nanosecond, want: false},
		{name: "default window, within", report: true, after: DefaultOnlineWindow, want: true},
		{name: "default window, past", report: true, after: DefaultOnlineWindow + time.Millisecond, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			s := &Store{Now: clk.Now, OnlineWindow: tc.window}
			if tc.report {
				s.Put(satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 1})
			}
			clk.Advance(tc.after)
			got, ok := s.ObservedNode("pve1")
			if !ok {
				t.Fatal("ObservedNode: not ok; the store knows every node's status")
			}
			if got.Online != tc.want {
				t.Errorf("Online = %t, want %t", got.Online, tc.want)
			}
		})
	}
}

func TestStoreObservedPool(t *testing.T) {
	t.Parallel()
	rep := satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 1, Pools: []satellite.PoolReport{
		{Name: model.DefaultStoragePool, TotalKiB: 1000, FreeKiB: 400},
		{Name: "fast", TotalKiB: 50, FreeKiB: 50},
	}}
	tests := []struct {
		name   string
		node   string
		pool   string
		after  time.Duration
		want   api.ObservedPool
		wantOK bool
	}{
		{name: "default pool", node: "pve1", pool: model.DefaultStoragePool, want: api.ObservedPool{FreeKiB: 400, TotalKiB: 1000}, wantOK: true},
		{name: "other pool, other case", node: "PVE1", pool: "FAST", want: api.ObservedPool{FreeKiB: 50, TotalKiB: 50}, wantOK: true},
		{name: "unknown pool", node: "pve1", pool: "slow"},
		{name: "node without report", node: "pve2", pool: model.DefaultStoragePool},
		{name: "offline node", node: "pve1", pool: model.DefaultStoragePool, after: time.Minute + time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			s := &Store{Now: clk.Now, OnlineWindow: time.Minute}
			s.Put(rep)
			clk.Advance(tc.after)
			got, ok := s.ObservedPool(tc.node, tc.pool)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("ObservedPool(%s, %s) = %+v, %t; want %+v, %t", tc.node, tc.pool, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestStoreObserved(t *testing.T) {
	t.Parallel()
	const rd = "vm-100-disk-1"
	tests := []struct {
		name   string
		res    []drbd.ObservedResource
		want   api.ObservedResource
		wantOK bool
	}{
		{name: "resource not reported", res: []drbd.ObservedResource{{Name: "vm-101-disk-1", Role: drbd.RoleSecondary}}},
		{
			name: "primary diskful with peers",
			res: []drbd.ObservedResource{{
				Name: rd, Role: drbd.RolePrimary, PromotionScore: 10101, MayPromote: false,
				Devices: []drbd.ObservedDevice{
					{Volume: 0, Minor: 1000, Disk: drbd.DiskUpToDate, BackingDev: "/dev/pve/vm-100-disk-1_00000", SizeKiB: 1048576},
					{Volume: 1, Minor: 1001, Disk: drbd.DiskInconsistent, BackingDev: "/dev/pve/vm-100-disk-1_00001", SizeKiB: 2048},
				},
				Connections: []drbd.ObservedConnection{
					{PeerNodeID: 1, Name: "pve2", Connection: drbd.ConnConnected},
					{PeerNodeID: 2, Name: "pve3", Connection: drbd.ConnConnecting},
					{PeerNodeID: 3, Name: "pve4", Connection: drbd.ConnStandAlone},
				},
			}},
			want: api.ObservedResource{
				InUse: true, PromotionScore: 10101,
				Volumes: []api.ObservedVolume{
					{VolumeNumber: 0, DiskState: "UpToDate", DevicePath: "/dev/drbd1000", BackingDevice: "/dev/pve/vm-100-disk-1_00000", UsableSizeKiB: 1048576},
					{VolumeNumber: 1, DiskState: "Inconsistent", DevicePath: "/dev/drbd1001", BackingDevice: "/dev/pve/vm-100-disk-1_00001", UsableSizeKiB: 2048},
				},
				Connections: map[string]api.ObservedConnection{
					"pve2": {Connected: true, Message: "Connected"},
					"pve3": {Connected: false, Message: "Connecting"},
					"pve4": {Connected: false, Message: "StandAlone"},
				},
			},
			wantOK: true,
		},
		{
			name: "secondary diskless client",
			res: []drbd.ObservedResource{{
				Name: rd, Role: drbd.RoleSecondary, PromotionScore: 1, MayPromote: true,
				Devices:     []drbd.ObservedDevice{{Volume: 0, Minor: 7, Disk: drbd.DiskDiskless, Client: true, BackingDev: "none"}},
				Connections: []drbd.ObservedConnection{{PeerNodeID: 0, Name: "pve1", Connection: drbd.ConnConnected}},
			}},
			want: api.ObservedResource{
				InUse: false, PromotionScore: 1, MayPromote: true,
				Volumes:     []api.ObservedVolume{{VolumeNumber: 0, DiskState: "Diskless", DevicePath: "/dev/drbd7"}},
				Connections: map[string]api.ObservedConnection{"pve1": {Connected: true, Message: "Connected"}},
			},
			wantOK: true,
		},
		{
			name: "unknown role, no connections",
			res:  []drbd.ObservedResource{{Name: rd, Role: drbd.RoleUnknown}},
			want: api.ObservedResource{Connections: map[string]api.ObservedConnection{}}, wantOK: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Store{}
			s.Put(satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 1, Resources: tc.res})
			got, ok := s.Observed(rd, "pve1")
			if ok != tc.wantOK {
				t.Fatalf("Observed ok = %t, want %t", ok, tc.wantOK)
			}
			if ok && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Observed =\n%+v\nwant\n%+v", got, tc.want)
			}
			if _, ok := s.Observed(rd, "pve2"); ok {
				t.Error("Observed on a node without a report is ok")
			}
		})
	}
}

// Building blocks of reports for WaitDevice.
func upToDate(vnr int) drbd.ObservedDevice {
	return drbd.ObservedDevice{Volume: vnr, Minor: 1000 + vnr, Disk: drbd.DiskUpToDate}
}

func diskless(vnr int) drbd.ObservedDevice {
	return drbd.ObservedDevice{Volume: vnr, Minor: 1000 + vnr, Disk: drbd.DiskDiskless, Client: true}
}

func peer(conn drbd.ConnState, disks ...drbd.DiskState) drbd.ObservedConnection {
	c := drbd.ObservedConnection{PeerNodeID: 1, Name: "pve2", Connection: conn}
	for vnr, d := range disks {
		c.PeerDevices = append(c.PeerDevices, drbd.ObservedPeerDevice{Volume: vnr, PeerDisk: d})
	}
	return c
}

func report(seq uint64, res ...drbd.ObservedResource) satellite.NodeReport {
	return satellite.NodeReport{Node: "pve1", Boot: "a", Seq: seq, Resources: res}
}

func TestStoreWaitDevice(t *testing.T) {
	t.Parallel()
	const rd = "vm-100-disk-1"
	rsc := func(devs []drbd.ObservedDevice, conns ...drbd.ObservedConnection) drbd.ObservedResource {
		return drbd.ObservedResource{Name: rd, Role: drbd.RoleSecondary, Devices: devs, Connections: conns}
	}
	tests := []struct {
		name    string
		volumes int
		before  *satellite.NodeReport // stored before the wait begins
		later   satellite.NodeReport  // stored while it waits
		// wantErr is "" when the later report makes the device usable;
		// else the wait ends with an error containing it (at ctx end
		// unless failed).
		wantErr string
		failed  bool // the error comes at once, not at ctx end
	}{
		{name: "local UpToDate", volumes: 1, later: report(2, rsc([]drbd.ObservedDevice{upToDate(0)}))},
		{name: "local UpToDate after Inconsistent", volumes: 1,
			before: ptr(report(1, rsc([]drbd.ObservedDevice{{Volume: 0, Disk: drbd.DiskInconsistent}}))),
			later:  report(2, rsc([]drbd.ObservedDevice{upToDate(0)}))},
		{name: "two volumes UpToDate", volumes: 2, later: report(2, rsc([]drbd.ObservedDevice{upToDate(0), upToDate(1)}))},
		{name: "diskless with a connected UpToDate peer", volumes: 1,
			before: ptr(report(1, rsc([]drbd.ObservedDevice{diskless(0)}, peer(drbd.ConnConnecting, drbd.DiskUpToDate)))),
			later:  report(2, rsc([]drbd.ObservedDevice{diskless(0)}, peer(drbd.ConnConnected, drbd.DiskUpToDate)))},
		{name: "diskless, peer UpToDate but not connected", volumes: 1,
			later:   report(2, rsc([]drbd.ObservedDevice{diskless(0)}, peer(drbd.ConnConnecting, drbd.DiskUpToDate))),
			wantErr: "not usable yet: volume 0 is Diskless and no connected peer is UpToDate"},
		{name: "diskless, connected peer Outdated", volumes: 1,
			later:   report(2, rsc([]drbd.ObservedDevice{diskless(0)}, peer(drbd.ConnConnected, drbd.DiskOutdated))),
			wantErr: "not usable yet: volume 0 is Diskless and no connected peer is UpToDate"},
		{name: "diskless, peer UpToDate on another volume only", volumes: 2,
			later:   report(2, rsc([]drbd.ObservedDevice{diskless(0), diskless(1)}, peer(drbd.ConnConnected, drbd.DiskUpToDate, drbd.DiskInconsistent))),
			wantErr: "not usable yet: volume 1 is Diskless and no connected peer is UpToDate"},
		{name: "local Inconsistent, no peer", volumes: 1,
			later:   report(2, rsc([]drbd.ObservedDevice{{Volume: 0, Disk: drbd.DiskInconsistent}})),
			wantErr: "not usable yet: volume 0 is Inconsistent and no connected peer is UpToDate"},
		{name: "too few volumes", volumes: 2,
			later:   report(2, rsc([]drbd.ObservedDevice{upToDate(0)})),
			wantErr: "not usable yet: 1 of 2 volumes are up"},
		{name: "resource not up", volumes: 1,
			later:   report(2, drbd.ObservedResource{Name: "vm-101-disk-1", Devices: []drbd.ObservedDevice{upToDate(0)}}),
			wantErr: "not usable yet: its DRBD resource is not up yet"},
		{name: "another node's report", volumes: 1,
			later:   satellite.NodeReport{Node: "pve2", Boot: "a", Seq: 1, Resources: []drbd.ObservedResource{rsc([]drbd.ObservedDevice{upToDate(0)})}},
			wantErr: "not usable yet: its satellite has not reported yet"},
		{name: "failed action", volumes: 1,
			later: satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 2, Failed: []satellite.FailedAction{
				{Resource: "vm-101-disk-1", Action: "other action", Error: "other error"},
				{Resource: rd, Action: "create LV pve/vm-100-disk-1_00000", Error: "insufficient free space"},
			}},
			wantErr: "the satellite on pve1 failed to create vm-100-disk-1: create LV pve/vm-100-disk-1_00000: insufficient free space", failed: true},
		{name: "failed action of another resource", volumes: 1,
			later: satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 2, Resources: []drbd.ObservedResource{rsc([]drbd.ObservedDevice{upToDate(0)})},
				Failed: []satellite.FailedAction{{Resource: "vm-101-disk-1", Action: "other action", Error: "other error"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Store{}
			if tc.before != nil {
				s.Put(*tc.before)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.WaitDevice(ctx, rd, "pve1", tc.volumes) }()
			// Still waiting on what is there before the later report.
			select {
			case err := <-done:
				t.Fatalf("WaitDevice returned %v before a usable report", err)
			case <-time.After(20 * time.Millisecond):
			}
			s.Put(tc.later)
			if tc.wantErr != "" && !tc.failed {
				// Nothing usable comes; the wait must hold until ctx ends.
				select {
				case err := <-done:
					t.Fatalf("WaitDevice returned %v on an unusable device before ctx ended", err)
				case <-time.After(20 * time.Millisecond):
				}
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(waitLimit):
				t.Fatal("WaitDevice did not return")
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("WaitDevice: %v, want success", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("WaitDevice: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestStoreRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// put stores a report of this node while Refresh waits; "" puts
		// nothing and cancels ctx instead.
		put string
	}{
		{name: "report of the node", put: "pve1"},
		{name: "report of the node, other case", put: "PVE1"},
		{name: "ctx ends"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := &tickingClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
			s := &Store{Now: clk.Now}
			s.Put(satellite.NodeReport{Node: "pve1", Boot: "a", Seq: 1}) // older than the call
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() {
				s.Refresh(ctx, "pve1")
				close(done)
			}()
			select {
			case <-done:
				t.Fatal("Refresh returned on a report older than the call")
			case <-time.After(20 * time.Millisecond):
			}
			// Another node's report does not end the wait.
			s.Put(satellite.NodeReport{Node: "pve2", Boot: "a", Seq: 1})
			select {
			case <-done:
				t.Fatal("Refresh returned on another node's report")
			case <-time.After(20 * time.Millisecond):
			}
			if tc.put == "" {
				cancel()
			}
			limit := time.After(waitLimit)
			for seq := uint64(2); ; seq++ {
				if tc.put != "" {
					// Again and again, in case Refresh has not begun.
					s.Put(satellite.NodeReport{Node: tc.put, Boot: "a", Seq: seq})
				}
				select {
				case <-done:
					return
				case <-limit:
					t.Fatal("Refresh did not return")
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	}
}
