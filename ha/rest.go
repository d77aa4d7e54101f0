package ha

import (
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// restPrefix is where the leader serves the REST API to other members, over
// the mutual-TLS peer channel.
const restPrefix = "/internal/v1/rest"

// restHandler holds the REST API handler once the daemon has built it.
type restHandler struct{ h atomic.Pointer[http.Handler] }

// SetRESTHandler gives the cluster the REST API handler to serve requests
// that other members forward to this node while it leads.
func (c *Cluster) SetRESTHandler(h http.Handler) { c.rest.h.Store(&h) }

func (c *Cluster) serveForwardedREST(w http.ResponseWriter, r *http.Request) {
	hp := c.rest.h.Load()
	m := c.Member()
	if hp == nil || m == nil || !m.IsLeader() {
		// The sender retries once it knows the new leader.
		writeRPCError(w, http.StatusMisdirectedRequest, errForwardNotLeader)
		return
	}
	http.StripPrefix(restPrefix, *hp).ServeHTTP(w, r)
}

// ErrNoLeader is returned when a request must reach the leader and none is
// known; the QuorumLostError beside it says how many members answer.
var ErrNoLeader = errors.New("no leader")

// RouteREST decides where a REST request is served: here (this node leads)
// or by proxy on the leader. The proxy carries the request over the
// mutual-TLS peer channel, so the leader applies it as if the client had
// called it directly.
func (c *Cluster) RouteREST(r *http.Request) (local bool, proxy http.Handler, err error) {
	m, err := c.requireMember()
	if err != nil {
		return false, nil, err
	}
	if m.IsLeader() {
		return true, nil, nil
	}
	id, addr, err := c.awaitLeader(r.Context(), time.Now().Add(leaderWait))
	if err != nil {
		return false, nil, err
	}
	if id == c.cfg.NodeName {
		return true, nil, nil
	}
	c.mu.Lock()
	client := c.rpc
	c.mu.Unlock()
	target := &url.URL{Scheme: "https", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = restPrefix + pr.In.URL.Path
			pr.Out.URL.RawPath = ""
			pr.SetXForwarded()
		},
		Transport: client.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			c.log.Warn("forwarding a REST request to the leader failed", "leader", id, "path", r.URL.Path, "err", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return false, rp, nil
}
