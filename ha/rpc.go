package ha

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/pvehci/pvehci/ha/pki"
)

// maxRPCBody bounds internal-API bodies; the largest is a state snapshot.
const maxRPCBody = 512 << 20

type rpcError struct {
	Message string `json:"error"`
}

func writeRPCError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(rpcError{Message: err.Error()})
}

func writeRPC(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// rpcHandler is the internal API between members. Every caller has passed
// mutual TLS with a certificate of the cluster CA (and peerCheck).
func (c *Cluster) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /internal/v1/apply", func(w http.ResponseWriter, r *http.Request) {
		entry, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody))
		if err != nil {
			writeRPCError(w, http.StatusBadRequest, err)
			return
		}
		res, err := c.applyEncoded(r.Context(), entry, true)
		if errors.Is(err, errForwardNotLeader) {
			writeRPCError(w, http.StatusMisdirectedRequest, err)
			return
		}
		if err != nil {
			writeRPCError(w, http.StatusServiceUnavailable, err)
			return
		}
		writeRPC(w, toWire(res))
	})
	mux.HandleFunc("GET /internal/v1/status", func(w http.ResponseWriter, r *http.Request) {
		m := c.Member()
		if m == nil {
			writeRPCError(w, http.StatusServiceUnavailable, ErrNotMember)
			return
		}
		writeRPC(w, m.Status())
	})
	mux.HandleFunc("GET /internal/v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		data, err := c.Backup(r.Context())
		if err != nil {
			writeRPCError(w, http.StatusServiceUnavailable, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	})
	mux.HandleFunc("POST /internal/v1/restore", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody))
		if err != nil {
			writeRPCError(w, http.StatusBadRequest, err)
			return
		}
		err = c.restoreHere(r.Context(), data)
		var nle *NotLeaderError
		if errors.As(err, &nle) || errors.Is(err, ErrOutcomeUnknown) {
			writeRPCError(w, http.StatusMisdirectedRequest, err)
			return
		}
		if err != nil {
			writeRPCError(w, http.StatusConflict, err)
			return
		}
		writeRPC(w, struct{}{})
	})
	mux.HandleFunc("POST /internal/v1/token", func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if err := decodeStrict(r, &req); err != nil {
			writeRPCError(w, http.StatusBadRequest, err)
			return
		}
		tok, err := c.issueTokenHere(r.Context(), req)
		if err != nil {
			writeRPCError(w, http.StatusConflict, err)
			return
		}
		writeRPC(w, TokenResponse{Token: tok})
	})
	mux.HandleFunc("POST /internal/v1/join", func(w http.ResponseWriter, r *http.Request) {
		c.serveJoin(w, r, true)
	})
	mux.HandleFunc("POST /internal/v1/report", c.serveReport)
	mux.HandleFunc(restPrefix+"/", c.serveForwardedREST)
	return mux
}

// joinHandler serves nodes that have no certificate yet. It must offer
// nothing but the join itself: the caller is authenticated only by the
// token it brings.
func (c *Cluster) joinHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /join/v1", func(w http.ResponseWriter, r *http.Request) {
		c.serveJoin(w, r, false)
	})
	return mux
}

func (c *Cluster) serveJoin(w http.ResponseWriter, r *http.Request, forwarded bool) {
	var req JoinRequest
	if err := decodeStrict(r, &req); err != nil {
		writeRPCError(w, http.StatusBadRequest, err)
		return
	}
	resp, err := c.handleJoin(r.Context(), req, forwarded)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, pki.ErrTokenRefused) || errors.Is(err, errJoinRefused) {
			status = http.StatusForbidden
		}
		writeRPCError(w, status, err)
		return
	}
	writeRPC(w, resp)
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding request: %w", err)
	}
	return nil
}
