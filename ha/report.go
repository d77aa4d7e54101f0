package ha

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Observed state (DRBD roles, disk and connection states, pool free space)
// is not replicated: it changes far more often than the desired state and
// is worthless once stale. Each node's satellite sends its reports to the
// current leader over the peer channel; the leader keeps them in memory.
// A new leader starts with none and receives a full report from every
// satellite as soon as they see the leadership change (design §3).

// ReportHandler takes one report on the leader; from is the sending node,
// taken from its client certificate, never from the body.
type ReportHandler func(ctx context.Context, from string, body []byte) error

type reportHandler struct{ h atomic.Pointer[ReportHandler] }

// SetReportHandler sets what the leader does with satellites' reports.
func (c *Cluster) SetReportHandler(h ReportHandler) { c.reports.h.Store(&h) }

// ErrNoReportHandler is returned while the leader's daemon has not set a
// report handler yet (it is starting); the sender retries.
var ErrNoReportHandler = errors.New("the leader does not take reports yet")

// SendReport delivers a report to the current leader (this node itself
// when it leads), waiting up to the failover time for one to be elected.
func (c *Cluster) SendReport(ctx context.Context, body []byte) error {
	m, err := c.requireMember()
	if err != nil {
		return err
	}
	if m.IsLeader() {
		return c.takeReport(ctx, c.cfg.NodeName, body)
	}
	id, addr, err := c.awaitLeader(ctx, time.Now().Add(leaderWait))
	if err != nil {
		return err
	}
	if id == c.cfg.NodeName {
		return c.takeReport(ctx, id, body)
	}
	return c.call(ctx, addr, http.MethodPost, "/internal/v1/report", body, nil)
}

func (c *Cluster) takeReport(ctx context.Context, from string, body []byte) error {
	hp := c.reports.h.Load()
	if hp == nil {
		return ErrNoReportHandler
	}
	return (*hp)(ctx, from, body)
}

func (c *Cluster) serveReport(w http.ResponseWriter, r *http.Request) {
	m := c.Member()
	if m == nil || !m.IsLeader() {
		writeRPCError(w, http.StatusMisdirectedRequest, errForwardNotLeader)
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeRPCError(w, http.StatusUnauthorized, errors.New("a report needs the sender's client certificate"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody))
	if err != nil {
		writeRPCError(w, http.StatusBadRequest, err)
		return
	}
	from := r.TLS.PeerCertificates[0].Subject.CommonName
	if err := c.takeReport(r.Context(), from, bytes.Clone(body)); err != nil {
		writeRPCError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeRPC(w, struct{}{})
}

// LeaderID is the current leader's node name as this node knows it; empty
// when none is known or this node is not a member.
func (c *Cluster) LeaderID() string {
	m := c.Member()
	if m == nil {
		return ""
	}
	id, _ := m.Leader()
	return id
}

// Changed returns a channel that is closed at the next change of the
// replicated state as applied here (an entry or a restored snapshot). Take
// a new one after each wake-up; a change between two calls is never lost,
// because the channel is only replaced when it is closed.
func (c *Cluster) Changed() <-chan struct{} { return c.changes.Wait() }
