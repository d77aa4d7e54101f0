package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/pvehci/pvehci/internal/buildinfo"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/api"
)

// Options configure Metrics. Zero values select the defaults.
type Options struct {
	Logger *slog.Logger
	// Clock times scrapes; default real time.
	Clock clock.Clock
	// Linstor is what linstor_info reports; default api.DefaultVersion(),
	// the same the REST API's /v1/controller/version reports.
	Linstor api.ControllerVersion
	// Build is what pvehci_build_info reports; default buildinfo.Get().
	Build buildinfo.Info
	// ReadTimeout bounds reading the state for one scrape; default 10 s.
	ReadTimeout time.Duration
	// NoRuntime leaves out the Go and process collectors (tests that
	// compare whole outputs).
	NoRuntime bool
	// Extra collectors are served too (the daemon's health gauges).
	Extra []prometheus.Collector
}

// Metrics is the /metrics endpoint and the request metrics the REST API
// feeds.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

// New returns the metrics of the controller behind b. b may implement
// api.PoolObserver and api.NodeObserver, as for the REST API.
func New(b api.Backend, opts Options) *Metrics {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Linstor.Version == "" {
		opts.Linstor = api.DefaultVersion()
	}
	if opts.Build.Version == "" {
		opts.Build = buildinfo.Get()
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	log := opts.Logger.With("component", "metrics")
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pvehci_api_requests_total",
			Help: "REST API requests answered, by HTTP method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pvehci_api_request_duration_seconds",
			Help: "Time to answer a REST API request, including waits for devices and reconcilers.",
			// Up to two minutes: answers legitimately wait up to
			// DeviceWaitTimeout and CompletionTimeout (60 s each by
			// default), and those are the requests worth seeing.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"method"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pvehci_build_info",
		Help: "Always 1; the labels name the running pvehci build.",
		ConstLabels: prometheus.Labels{"version": opts.Build.Version, "commit": opts.Build.Commit,
			"goversion": opts.Build.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(m.requests, m.duration, build, newCollector(b, opts, log))
	m.reg.MustRegister(opts.Extra...)
	if !opts.NoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// A metric that fails is left out rather than failing the whole
		// scrape: a dashboard with one gap beats one with none.
		ErrorHandling: promhttp.ContinueOnError,
		// Each scrape copies the state; a handful at once is plenty for
		// any number of Prometheus servers and bounds a scrape storm.
		MaxRequestsInFlight: 4,
		Registry:            m.reg,
	})
	return m
}

// Handler serves the metrics in the Prometheus text format; give it to
// api.Options.Metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry is the registry the metrics live in, for other parts of the
// daemon to add their collectors to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one answered REST request; give it to
// api.Options.ObserveRequest.
func (m *Metrics) ObserveRequest(method string, status int, elapsed time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method).Observe(elapsed.Seconds())
}

// methodLabel keeps the label's values bounded: any client can send any
// method name, and each would be a new time series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodHead, http.MethodOptions:
		return m
	}
	return "OTHER"
}
