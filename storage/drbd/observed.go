package drbd

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// Observed folds events2 events into the kernel's current DRBD state. It is
// not safe for concurrent use: the goroutine reading the events owns it and
// hands out snapshots (Resources), which share nothing with it.
//
// A change event carries only what changed, so fields are merged into the
// known object. Two things are implied by absence, following what
// drbdsetup prints: a peer-device line with statistics but without
// out-of-sync means 0 KiB out of sync, and one without done means no resync
// is running. A change to an object not seen before creates it (drbdsetup
// sends no initial state for paths). Helper calls are not state and are
// ignored. When the drbdsetup process is restarted, call Reset before
// feeding the new stream, or objects destroyed meanwhile stay behind.
type Observed struct {
	synced    bool
	resources map[string]*obsResource
}

type obsResource struct {
	ObservedResource
	devices map[int]*ObservedDevice
	conns   map[int]*obsConnection
}

type obsConnection struct {
	ObservedConnection
	peerDevices map[int]*ObservedPeerDevice
	paths       map[[2]string]*ObservedPath
}

// ObservedResource is a resource as the kernel reports it. Devices are
// sorted by volume, connections by peer node id.
type ObservedResource struct {
	Name string
	Role Role
	// Suspended is "no", or why I/O is suspended: user, no-data,
	// fencing, quorum, comma-joined.
	Suspended       string
	ForceIOFailures bool
	MayPromote      bool
	PromotionScore  int
	WriteOrdering   string
	Devices         []ObservedDevice
	Connections     []ObservedConnection
}

// IsSuspended reports whether I/O is suspended for any reason.
func (r ObservedResource) IsSuspended() bool { return r.Suspended != "" && r.Suspended != "no" }

// Quorum reports whether the resource has quorum: DRBD reports quorum per
// device, and a resource without devices has none.
func (r ObservedResource) Quorum() bool {
	for _, d := range r.Devices {
		if !d.Quorum {
			return false
		}
	}
	return len(r.Devices) > 0
}

// ObservedDevice is a local volume.
type ObservedDevice struct {
	Volume int
	Minor  int
	Disk   DiskState
	// Client is true for an intentionally diskless volume (a DRBD
	// client or tie-breaker), as opposed to one that lost its disk.
	Client     bool
	Open       bool
	Quorum     bool
	BackingDev string
	// Statistics (--statistics), KiB.
	SizeKiB, ReadKiB, WrittenKiB uint64
	UpperPending, LowerPending   uint64
}

// ObservedConnection is the connection to one peer.
type ObservedConnection struct {
	PeerNodeID int
	Name       string // conn-name: the peer's host name
	Connection ConnState
	PeerRole   Role
	// SyncState is SplitBrain or Unrelated while a StandAlone
	// connection refuses to resync, else empty.
	SyncState   string
	Congested   bool
	PeerDevices []ObservedPeerDevice // by volume
	Paths       []ObservedPath       // by local, then peer address
}

// ObservedPeerDevice is a volume as seen toward one peer.
type ObservedPeerDevice struct {
	Volume          int
	Replication     ReplState
	PeerDisk        DiskState
	PeerClient      bool
	ResyncSuspended string // "no" or user, peer, dependency, comma-joined
	// DonePercent is the progress of a running resync or verify when
	// HasDone is set.
	DonePercent  float64
	HasDone      bool
	OutOfSyncKiB uint64
	ReceivedKiB  uint64
	SentKiB      uint64
}

// ObservedPath is one network path of a connection.
type ObservedPath struct {
	Local, Peer string // as drbdsetup prints them: ipv4:10.0.0.1:7000
	Established bool
}

// NewObserved returns an empty state that waits for the initial dump.
func NewObserved() *Observed { return &Observed{resources: map[string]*obsResource{}} }

// Reset forgets everything, for a new drbdsetup process.
func (o *Observed) Reset() { *o = *NewObserved() }

// Synced reports whether the initial dump ("exists -") has been applied,
// so that the state is complete and not a prefix of it.
func (o *Observed) Synced() bool { return o.synced }

// Resources returns a snapshot of every resource, by name. Before the
// initial dump has ended it returns ErrNotReady.
func (o *Observed) Resources() ([]ObservedResource, error) {
	if !o.synced {
		return nil, ErrNotReady
	}
	out := make([]ObservedResource, 0, len(o.resources))
	for _, name := range slices.Sorted(maps.Keys(o.resources)) {
		out = append(out, o.resources[name].snapshot())
	}
	return out, nil
}

// Resource returns a snapshot of one resource as far as it is known.
func (o *Observed) Resource(name string) (ObservedResource, bool) {
	r, ok := o.resources[name]
	if !ok {
		return ObservedResource{}, false
	}
	return r.snapshot(), true
}

func (r *obsResource) snapshot() ObservedResource {
	out := r.ObservedResource
	out.Devices = nil
	for _, v := range slices.Sorted(maps.Keys(r.devices)) {
		out.Devices = append(out.Devices, *r.devices[v])
	}
	out.Connections = nil
	for _, id := range slices.Sorted(maps.Keys(r.conns)) {
		c := r.conns[id]
		oc := c.ObservedConnection
		oc.PeerDevices, oc.Paths = nil, nil
		for _, v := range slices.Sorted(maps.Keys(c.peerDevices)) {
			oc.PeerDevices = append(oc.PeerDevices, *c.peerDevices[v])
		}
		for _, k := range slices.SortedFunc(maps.Keys(c.paths), func(a, b [2]string) int {
			return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
		}) {
			oc.Paths = append(oc.Paths, *c.paths[k])
		}
		out.Connections = append(out.Connections, oc)
	}
	return out
}

// Apply folds one event into the state. A malformed value (a volume that
// is not a number, a flag that is neither yes nor no) is an error and
// changes nothing; unknown keys are ignored, so a newer drbdsetup's extra
// fields do no harm.
func (o *Observed) Apply(e Event) error {
	if e.InitialDumpDone() {
		o.synced = true
		return nil
	}
	name := e.Name()
	switch e.Action {
	case ActionCall, ActionResponse:
		return nil
	case ActionRename:
		to, _ := e.Get("new_name")
		if r, ok := o.resources[name]; ok && to != "" {
			delete(o.resources, name)
			r.Name = to
			o.resources[to] = r
		}
		return nil
	}
	if err := o.apply(e, name); err != nil {
		return fmt.Errorf("applying events2 %s %s of %s: %w", e.Action, e.Object, name, err)
	}
	return nil
}

// objectID is what identifies the object of an event below its resource.
type objectID struct {
	volume, peer int
	path         [2]string // local, peer address
}

func identify(e Event) (objectID, error) {
	var id objectID
	var err error
	if e.Object == ObjectDevice || e.Object == ObjectPeerDevice {
		if id.volume, err = intField(e, "volume"); err != nil {
			return id, err
		}
	}
	if e.Object == ObjectConnection || e.Object == ObjectPeerDevice || e.Object == ObjectPath {
		if id.peer, err = intField(e, "peer-node-id"); err != nil {
			return id, err
		}
	}
	if e.Object == ObjectPath {
		id.path[0], _ = e.Get("local")
		id.path[1], _ = e.Get("peer")
		if id.path[0] == "" || id.path[1] == "" {
			return id, fmt.Errorf("a path needs local and peer addresses")
		}
	}
	return id, nil
}

// apply computes the new version of the object from a copy and stores it
// only when every field parsed, creating missing parents on the way.
func (o *Observed) apply(e Event, name string) error {
	id, err := identify(e)
	if err != nil {
		return err
	}
	r := o.resources[name]
	var c *obsConnection
	if r != nil {
		c = r.conns[id.peer]
	}
	if e.Action == ActionDestroy {
		switch {
		case e.Object == ObjectResource:
			delete(o.resources, name)
		case r == nil:
		case e.Object == ObjectDevice:
			delete(r.devices, id.volume)
		case e.Object == ObjectConnection:
			delete(r.conns, id.peer)
		case c == nil:
		case e.Object == ObjectPeerDevice:
			delete(c.peerDevices, id.volume)
		case e.Object == ObjectPath:
			delete(c.paths, id.path)
		}
		return nil
	}

	switch e.Object {
	case ObjectResource:
		next := ObservedResource{Name: name}
		if r != nil {
			next = r.ObservedResource
		}
		if err := applyResource(&next, e.Fields); err != nil {
			return err
		}
		o.resource(name).ObservedResource = next
	case ObjectDevice:
		next := ObservedDevice{Volume: id.volume}
		if r != nil && r.devices[id.volume] != nil {
			next = *r.devices[id.volume]
		}
		if err := applyDevice(&next, e.Fields); err != nil {
			return err
		}
		o.resource(name).devices[id.volume] = &next
	case ObjectConnection:
		next := ObservedConnection{PeerNodeID: id.peer}
		if c != nil {
			next = c.ObservedConnection
		}
		if err := applyConnection(&next, e.Fields); err != nil {
			return err
		}
		o.connection(e, id.peer).ObservedConnection = next
	case ObjectPeerDevice:
		next := ObservedPeerDevice{Volume: id.volume}
		if c != nil && c.peerDevices[id.volume] != nil {
			next = *c.peerDevices[id.volume]
		}
		if err := applyPeerDevice(&next, e.Fields); err != nil {
			return err
		}
		o.connection(e, id.peer).peerDevices[id.volume] = &next
	case ObjectPath:
		next := ObservedPath{Local: id.path[0], Peer: id.path[1]}
		if c != nil && c.paths[id.path] != nil {
			next = *c.paths[id.path]
		}
		if v, ok := e.Get("established"); ok {
			b, err := parseYesNo("established", v)
			if err != nil {
				return err
			}
			next.Established = b
		}
		o.connection(e, id.peer).paths[id.path] = &next
	}
	return nil
}

// resource returns the named resource, creating it.
func (o *Observed) resource(name string) *obsResource {
	r := o.resources[name]
	if r == nil {
		r = &obsResource{ObservedResource: ObservedResource{Name: name}, devices: map[int]*ObservedDevice{}, conns: map[int]*obsConnection{}}
		o.resources[name] = r
	}
	return r
}

// connection returns the connection of event e's resource to peer,
// creating both; a connection first seen through one of its parts takes
// its name from the event.
func (o *Observed) connection(e Event, peer int) *obsConnection {
	r := o.resource(e.Name())
	c := r.conns[peer]
	if c == nil {
		c = &obsConnection{ObservedConnection: ObservedConnection{PeerNodeID: peer},
			peerDevices: map[int]*ObservedPeerDevice{}, paths: map[[2]string]*ObservedPath{}}
		c.Name, _ = e.Get("conn-name")
		r.conns[peer] = c
	}
	return c
}

func applyResource(r *ObservedResource, fields []Field) error {
	for _, f := range fields {
		var err error
		switch f.Key {
		case "role":
			r.Role = Role(f.Value)
		case "suspended":
			r.Suspended = f.Value
		case "force-io-failures":
			r.ForceIOFailures, err = parseYesNo(f.Key, f.Value)
		case "may_promote":
			r.MayPromote, err = parseYesNo(f.Key, f.Value)
		case "promotion_score":
			r.PromotionScore, err = parseInt(f.Key, f.Value)
		case "write-ordering":
			r.WriteOrdering = f.Value
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func applyDevice(d *ObservedDevice, fields []Field) error {
	for _, f := range fields {
		var err error
		switch f.Key {
		case "minor":
			d.Minor, err = parseInt(f.Key, f.Value)
		case "disk":
			d.Disk = DiskState(f.Value)
		case "client":
			d.Client, err = parseYesNo(f.Key, f.Value)
		case "open":
			d.Open, err = parseYesNo(f.Key, f.Value)
		case "quorum":
			d.Quorum, err = parseYesNo(f.Key, f.Value)
		case "backing_dev":
			d.BackingDev = f.Value
		case "size":
			d.SizeKiB, err = parseUint(f.Key, f.Value)
		case "read":
			d.ReadKiB, err = parseUint(f.Key, f.Value)
		case "written":
			d.WrittenKiB, err = parseUint(f.Key, f.Value)
		case "upper-pending":
			d.UpperPending, err = parseUint(f.Key, f.Value)
		case "lower-pending":
			d.LowerPending, err = parseUint(f.Key, f.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func applyConnection(c *ObservedConnection, fields []Field) error {
	for _, f := range fields {
		var err error
		switch f.Key {
		case "conn-name":
			c.Name = f.Value
		case "connection":
			c.Connection = ConnState(f.Value)
			// drbdsetup prints sync-state only with StandAlone.
			c.SyncState = ""
		case "sync-state":
			c.SyncState = f.Value
		case "role":
			c.PeerRole = Role(f.Value)
		case "congested":
			c.Congested, err = parseYesNo(f.Key, f.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func applyPeerDevice(pd *ObservedPeerDevice, fields []Field) error {
	statistics, done, outOfSync := false, false, false
	for _, f := range fields {
		var err error
		switch f.Key {
		case "replication":
			pd.Replication = ReplState(f.Value)
		case "peer-disk":
			pd.PeerDisk = DiskState(f.Value)
		case "peer-client":
			pd.PeerClient, err = parseYesNo(f.Key, f.Value)
		case "resync-suspended":
			pd.ResyncSuspended = f.Value
		case "done":
			pd.DonePercent, err = strconv.ParseFloat(f.Value, 64)
			if err != nil || pd.DonePercent < 0 || pd.DonePercent > 100 {
				err = fmt.Errorf("done:%s is not a percentage", f.Value)
			}
			done = true
		case "out-of-sync":
			pd.OutOfSyncKiB, err = parseUint(f.Key, f.Value)
			outOfSync = true
		case "received":
			pd.ReceivedKiB, err = parseUint(f.Key, f.Value)
			statistics = true
		case "sent":
			pd.SentKiB, err = parseUint(f.Key, f.Value)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case done:
		pd.HasDone = true
	case statistics || !pd.Replication.HasProgress():
		pd.HasDone, pd.DonePercent = false, 0
	}
	if statistics && !outOfSync {
		pd.OutOfSyncKiB = 0
	}
	return nil
}

func intField(e Event, key string) (int, error) {
	v, ok := e.Get(key)
	if !ok {
		return 0, fmt.Errorf("no %s", key)
	}
	return parseInt(key, v)
}

func parseInt(key, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s:%s is not a number", key, v)
	}
	return n, nil
}

func parseUint(key, v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s:%s is not a number", key, v)
	}
	return n, nil
}

// parseYesNo reads drbdsetup's booleans; "unknown" (open and client before
// the kernel says) counts as no.
func parseYesNo(key, v string) (bool, error) {
	switch v {
	case "yes":
		return true, nil
	case "no", "unknown":
		return false, nil
	}
	return false, fmt.Errorf("%s:%s is neither yes nor no", key, v)
}
