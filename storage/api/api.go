package api

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/buildinfo"
	"github.com/pvehci/pvehci/internal/clock"
)

// Backend is the controller behind the API: the replicated state and the
// satellites' observed state.
type Backend interface {
	// Read returns the state to read from (the daemon ensures it is
	// current on the leader; a non-leader forwards the whole HTTP request).
	Read(ctx context.Context) (*state.State, error)
	// Apply replicates one command; the Result carries the state
	// machine's typed error.
	Apply(ctx context.Context, cmd state.Command) (state.Result, error)
	// Observed returns what the satellites report for one resource on one
	// node (disk state, in use, device path, connection states); ok=false
	// when unknown.
	Observed(rd, node string) (ObservedResource, bool)
	// WaitDevice blocks until the resource's device exists on node (the
	// plugin opens the path right after spawn/autoplace/make-available
	// answer), or ctx ends.
	WaitDevice(ctx context.Context, rd, node string) error
}

// ObservedResource is a satellite's report on one resource.
type ObservedResource struct {
	// InUse is true while the resource is DRBD Primary (a VM has it open).
	InUse bool
	// Volumes by volume number.
	Volumes []ObservedVolume
	// Connections by peer node name.
	Connections    map[string]ObservedConnection
	PromotionScore int
	MayPromote     bool
}

// ObservedVolume is a satellite's report on one volume of a resource.
type ObservedVolume struct {
	VolumeNumber int
	// DiskState is DRBD's disk state: UpToDate, Inconsistent, Outdated,
	// Diskless, Attaching, DUnknown, ...
	DiskState string
	// DevicePath is the DRBD device, e.g. /dev/drbd1000.
	DevicePath string
	// BackingDevice is the storage volume under DRBD; empty for diskless.
	BackingDevice    string
	AllocatedSizeKiB int64
	UsableSizeKiB    int64
}

// ObservedConnection is the DRBD connection to one peer.
type ObservedConnection struct {
	Connected bool
	// Message is DRBD's connection state: Connected, Connecting,
	// StandAlone, ...
	Message string
}

// DiskUpToDate is DRBD's disk state of a good replica.
const DiskUpToDate = "UpToDate"

// PoolObserver is implemented by a Backend whose satellites report storage
// pool capacities. Without it (or without a report) no pool takes a
// diskful replica by autoplace, since nobody knows whether it fits.
type PoolObserver interface {
	ObservedPool(node, pool string) (ObservedPool, bool)
}

// ObservedPool is a satellite's report on a storage pool, in KiB.
type ObservedPool struct {
	FreeKiB  int64
	TotalKiB int64
}

// Refresher is implemented by a Backend that can wait for a node's
// satellite to report anew. Refresh returns when a report newer than the
// call has arrived or ctx ends, whichever is first.
type Refresher interface {
	Refresh(ctx context.Context, node string)
}

// refreshTimeout bounds the wait for a fresh report before an operation
// is refused because its resource is in use.
const refreshTimeout = 3 * time.Second

// refreshRounds is how many fresh reports an in-use check waits for.
const refreshRounds = 3

// NodeObserver is implemented by a Backend that knows whether each node's
// satellite is connected. Without it every node counts as online.
type NodeObserver interface {
	ObservedNode(node string) (ObservedNode, bool)
}

// ObservedNode is what the controller knows about a node's satellite.
type ObservedNode struct {
	Online bool
}

// ControllerVersion is what GET /v1/controller/version reports. The python
// client refuses to work unless RestAPIVersion starts with "1" and is at
// least 1.0.4.
type ControllerVersion struct {
	Version        string `json:"version"`
	GitHash        string `json:"git_hash"`
	BuildTime      string `json:"build_time"`
	RestAPIVersion string `json:"rest_api_version"`
}

// Options configure a Handler. Zero values select the defaults.
type Options struct {
	Logger *slog.Logger
	// Clock gives create timestamps and drives polling; default real time.
	Clock clock.Clock
	// Rand supplies DRBD secrets and UUIDs; default crypto/rand.
	Rand io.Reader
	// MaxBodyBytes bounds a request body; default 1 MiB.
	MaxBodyBytes int64
	// BodyReadTimeout bounds reading a request body; default 30 s.
	BodyReadTimeout time.Duration
	// DeviceWaitTimeout bounds WaitDevice per answer; default 60 s.
	DeviceWaitTimeout time.Duration
	// CompletionTimeout bounds waiting for reconcilers (deletes,
	// snapshots, resize, toggle-disk, rollback); default 60 s.
	CompletionTimeout time.Duration
	// PollInterval is how often completion is checked; default 100 ms.
	PollInterval time.Duration
	// Version is reported by /v1/controller/version; default
	// DefaultVersion().
	Version ControllerVersion
	// Metrics, when set, is served at GET /metrics (storage/metrics), on
	// the REST ports as LINSTOR serves it, behind the same authentication.
	Metrics http.Handler
	// ObserveRequest, when set, is called after every request with its
	// method, answered status and duration (request metrics).
	ObserveRequest func(method string, status int, elapsed time.Duration)
}

// DefaultVersion is what /v1/controller/version and linstor_info report
// unless Options.Version says otherwise: LINSTOR REST API 1.27.0 (LINSTOR
// 1.33), which pvehci implements the relevant parts of, with pvehci's own
// build as git_hash.
func DefaultVersion() ControllerVersion {
	bi := buildinfo.Get()
	return ControllerVersion{Version: "1.33.3", GitHash: "pvehci-" + bi.Version + "-" + bi.Commit,
		BuildTime: bi.BuildTime, RestAPIVersion: "1.27.0"}
}

// Handler serves LINSTOR REST API v1. It is an http.Handler.
type Handler struct {
	b    Backend
	pool PoolObserver // nil when the backend reports no capacities
	node NodeObserver // nil when the backend reports no connections
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	// mu serialises the plan-and-apply part of changing requests, so
	// that two requests do not place replicas from the same snapshot of
	// the state. Waiting for devices and reconcilers happens outside it.
	mu sync.Mutex
	// randMu guards opts.Rand, which need not be safe for concurrent use.
	randMu sync.Mutex
}

// New returns a handler in front of b.
func New(b Backend, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = 30 * time.Second
	}
	if opts.DeviceWaitTimeout <= 0 {
		opts.DeviceWaitTimeout = 60 * time.Second
	}
	if opts.CompletionTimeout <= 0 {
		opts.CompletionTimeout = 60 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.Version.RestAPIVersion == "" {
		opts.Version = DefaultVersion()
	}
	h := &Handler{b: b, opts: opts, log: opts.Logger.With("component", "linstor-api")}
	h.pool, _ = b.(PoolObserver)
	h.node, _ = b.(NodeObserver)
	h.mux = http.NewServeMux()
	h.routes()
	return h
}

// NewServer returns an http.Server for h with the timeouts a controller
// facing many clients needs: slow or stalled clients cannot hold
// connections open forever. WriteTimeout is left to the handler, whose
// answers legitimately wait for devices and reconcilers.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /health", h.health)
	if h.opts.Metrics != nil {
		m.Handle("GET /metrics", h.opts.Metrics)
	}

	// Controller.
	m.HandleFunc("GET /v1/controller/version", h.controllerVersion)
	m.HandleFunc("GET /v1/controller/properties", h.controllerProps)
	m.HandleFunc("POST /v1/controller/properties", h.modifyControllerProps)
	m.HandleFunc("DELETE /v1/controller/properties/{key...}", h.deleteControllerProp)

	// Nodes, net interfaces, storage pools.
	m.HandleFunc("GET /v1/nodes", h.listNodes)
	m.HandleFunc("POST /v1/nodes", h.createNode)
	m.HandleFunc("GET /v1/nodes/{node}", h.getNode)
	m.HandleFunc("PUT /v1/nodes/{node}", h.modifyNode)
	m.HandleFunc("DELETE /v1/nodes/{node}", h.deleteNode)
	m.HandleFunc("GET /v1/nodes/{node}/net-interfaces", h.listNetIfs)
	m.HandleFunc("POST /v1/nodes/{node}/net-interfaces", h.createNetIf)
	m.HandleFunc("GET /v1/nodes/{node}/net-interfaces/{netif}", h.getNetIf)
	m.HandleFunc("PUT /v1/nodes/{node}/net-interfaces/{netif}", h.modifyNetIf)
	m.HandleFunc("DELETE /v1/nodes/{node}/net-interfaces/{netif}", h.deleteNetIf)
	m.HandleFunc("GET /v1/nodes/{node}/storage-pools", h.listNodePools)
	m.HandleFunc("POST /v1/nodes/{node}/storage-pools", h.createPool)
	m.HandleFunc("GET /v1/nodes/{node}/storage-pools/{pool}", h.getPool)
	m.HandleFunc("PUT /v1/nodes/{node}/storage-pools/{pool}", h.modifyPool)
	m.HandleFunc("DELETE /v1/nodes/{node}/storage-pools/{pool}", h.deletePool)
	m.HandleFunc("GET /v1/view/storage-pools", h.viewPools)
	m.HandleFunc("GET /v1/storage-pool-definitions", h.listPoolDefs)
	m.HandleFunc("POST /v1/storage-pool-definitions", h.createPoolDef)
	m.HandleFunc("GET /v1/storage-pool-definitions/{pool}", h.getPoolDef)
	m.HandleFunc("PUT /v1/storage-pool-definitions/{pool}", h.modifyPoolDef)
	m.HandleFunc("DELETE /v1/storage-pool-definitions/{pool}", h.deletePoolDef)

	// Resource groups.
	m.HandleFunc("GET /v1/resource-groups", h.listGroups)
	m.HandleFunc("POST /v1/resource-groups", h.createGroup)
	m.HandleFunc("GET /v1/resource-groups/{rg}", h.getGroup)
	m.HandleFunc("PUT /v1/resource-groups/{rg}", h.modifyGroup)
	m.HandleFunc("DELETE /v1/resource-groups/{rg}", h.deleteGroup)
	m.HandleFunc("GET /v1/resource-groups/{rg}/volume-groups", h.listVolumeGroups)
	m.HandleFunc("POST /v1/resource-groups/{rg}/volume-groups", h.createVolumeGroup)
	m.HandleFunc("GET /v1/resource-groups/{rg}/volume-groups/{vnr}", h.getVolumeGroup)
	m.HandleFunc("PUT /v1/resource-groups/{rg}/volume-groups/{vnr}", h.modifyVolumeGroup)
	m.HandleFunc("DELETE /v1/resource-groups/{rg}/volume-groups/{vnr}", h.deleteVolumeGroup)
	m.HandleFunc("POST /v1/resource-groups/{rg}/spawn", h.spawn)
	m.HandleFunc("POST /v1/resource-groups/{rg}/query-size-info", h.querySizeInfo)
	m.HandleFunc("POST /v1/queries/resource-groups/query-all-size-info", h.queryAllSizeInfo)

	// Resource definitions and volume definitions.
	m.HandleFunc("GET /v1/resource-definitions", h.listDefinitions)
	m.HandleFunc("POST /v1/resource-definitions", h.createDefinition)
	m.HandleFunc("GET /v1/resource-definitions/{rd}", h.getDefinition)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}", h.modifyDefinition)
	m.HandleFunc("DELETE /v1/resource-definitions/{rd}", h.deleteDefinition)
	m.HandleFunc("GET /v1/resource-definitions/{rd}/volume-definitions", h.listVolumeDefinitions)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/volume-definitions", h.createVolumeDefinition)
	m.HandleFunc("GET /v1/resource-definitions/{rd}/volume-definitions/{vnr}", h.getVolumeDefinition)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}/volume-definitions/{vnr}", h.modifyVolumeDefinition)
	m.HandleFunc("DELETE /v1/resource-definitions/{rd}/volume-definitions/{vnr}", h.deleteVolumeDefinition)

	// Resources.
	m.HandleFunc("GET /v1/view/resources", h.viewResources)
	m.HandleFunc("GET /v1/resource-definitions/{rd}/resources", h.listResources)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/resources", h.createResources)
	m.HandleFunc("GET /v1/resource-definitions/{rd}/resources/{node}", h.getResource)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/resources/{node}", h.createResource)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}/resources/{node}", h.modifyResource)
	m.HandleFunc("DELETE /v1/resource-definitions/{rd}/resources/{node}", h.deleteResource)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/resources/{node}/make-available", h.makeAvailable)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}/resources/{node}/toggle-disk", h.toggleDisk)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}/resources/{node}/toggle-disk/diskful", h.toggleDiskful)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}/resources/{node}/toggle-disk/diskful/{pool}", h.toggleDiskful)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}/resources/{node}/toggle-disk/diskless", h.toggleDiskless)
	m.HandleFunc("PUT /v1/resource-definitions/{rd}/resources/{node}/toggle-disk/diskless/{pool}", h.toggleDiskless)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/autoplace", h.autoplace)

	// Snapshots.
	m.HandleFunc("GET /v1/view/snapshots", h.viewSnapshots)
	m.HandleFunc("GET /v1/resource-definitions/{rd}/snapshots", h.listSnapshots)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/snapshots", h.createSnapshot)
	m.HandleFunc("GET /v1/resource-definitions/{rd}/snapshots/{snap}", h.getSnapshot)
	m.HandleFunc("DELETE /v1/resource-definitions/{rd}/snapshots/{snap}", h.deleteSnapshot)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/snapshot-rollback/{snap}", h.rollbackSnapshot)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/snapshot-restore-volume-definition/{snap}", h.restoreVolumeDefinitions)
	m.HandleFunc("POST /v1/resource-definitions/{rd}/snapshot-restore-resource/{snap}", h.restoreResources)
}

// ServeHTTP implements http.Handler. Requests the router has no route for
// get a LINSTOR-shaped answer too: 405 with an Allow header for a known
// path with the wrong method, 501 for anything else under /v1 (a LINSTOR
// path pvehci does not implement, see docs/api-compat.md), 404 elsewhere.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.opts.Clock.Now()
	rec := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			// A panic is a bug; answer like any internal error rather
			// than dropping the connection, and log it loudly.
			h.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			if !rec.wrote {
				writeFailure(rec, h.opts.Clock, &apiError{status: http.StatusInternalServerError,
					rc:  rc(failUnknown, "internal error while serving %s %s", r.Method, r.URL.Path),
					fix: "this is a bug in pvehci; please report it with the daemon log"})
			}
		}
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		elapsed := h.opts.Clock.Since(start)
		h.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", elapsed)
		if h.opts.ObserveRequest != nil {
			status := rec.status
			if status == 0 {
				status = http.StatusOK // net/http's answer when nothing was written
			}
			h.opts.ObserveRequest(r.Method, status, elapsed)
		}
	}()
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.unrouted(rec, r)
		return
	}
	h.mux.ServeHTTP(rec, r)
}

func (h *Handler) unrouted(w http.ResponseWriter, r *http.Request) {
	probe := &captureWriter{header: http.Header{}}
	handler, _ := h.mux.Handler(r)
	handler.ServeHTTP(probe, r)
	switch {
	case probe.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeFailure(w, h.opts.Clock, &apiError{status: http.StatusMethodNotAllowed,
			rc:  rc(unknownAPICall, "%s is not allowed on %s", r.Method, r.URL.Path),
			fix: "use one of: " + probe.header.Get("Allow")})
	case probe.status >= 300 && probe.status < 400:
		// The router cleans paths (e.g. "//") with a redirect; pass it on.
		for k, v := range probe.header {
			w.Header()[k] = v
		}
		w.WriteHeader(probe.status)
	case len(r.URL.Path) >= 4 && r.URL.Path[:4] == "/v1/":
		writeFailure(w, h.opts.Clock, &apiError{status: http.StatusNotImplemented,
			rc:  rc(unknownAPICall, "pvehci does not implement %s %s", r.Method, r.URL.Path),
			fix: "see docs/api-compat.md in the pvehci sources for the LINSTOR calls pvehci serves"})
	default:
		writeFailure(w, h.opts.Clock, &apiError{status: http.StatusNotFound,
			rc: rc(unknownAPICall, "no such path %s", r.URL.Path), fix: "LINSTOR's REST API lives under /v1/"})
	}
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter records what the router's fallback handlers would answer.
type captureWriter struct {
	header http.Header
	status int
}

func (w *captureWriter) Header() http.Header { return w.header }
func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	// LINSTOR answers 200 with an empty body when its database works;
	// here, when the replicated state can be read (the plugin takes any
	// other status as "controller down, try the next").
	if _, err := h.b.Read(r.Context()); err != nil {
		h.log.Warn("health check failed", "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "controller state unavailable: "+err.Error()+"\n")
		return
	}
	w.WriteHeader(http.StatusOK)
}

// sentinel is a constant error value.
type sentinel string

func (s sentinel) Error() string { return string(s) }

// errTimeout marks a wait that ran out of time.
const errTimeout = sentinel("timed out")
