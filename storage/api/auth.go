package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/internal/clock"
)

// authPolicy is what the listeners require of a request before the
// handler sees it. The zero value requires nothing, as LINSTOR without
// HTTPS client auth or tokens.
type authPolicy struct {
	// requireCert: a verified client certificate on HTTPS. Plain HTTP
	// then serves only /health, or the certificate requirement would be
	// bypassed by using port 3370 instead of 3371.
	requireCert bool
	// token is the SHA-256 of the bearer token; comparing fixed-length
	// hashes keeps the comparison constant-time in the token's length too.
	token    [sha256.Size]byte
	hasToken bool
}

func newAuthPolicy(requireCert bool, bearerToken string) authPolicy {
	p := authPolicy{requireCert: requireCert}
	if bearerToken != "" {
		p.token, p.hasToken = sha256.Sum256([]byte(bearerToken)), true
	}
	return p
}

func (p authPolicy) open() bool { return !p.requireCert && !p.hasToken }

// authHandler enforces an authPolicy in front of next.
type authHandler struct {
	next   http.Handler
	policy authPolicy
	clk    clock.Clock
	log    *slog.Logger
}

func (a *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// LINSTOR leaves /health open (AuthenticationFilter's allow-list):
	// the Proxmox plugin probes every controller with it, and a probe
	// must tell "down" from "not allowed" without credentials.
	if a.policy.open() || r.URL.Path == "/health" {
		a.next.ServeHTTP(w, r)
		return
	}
	if a.policy.requireCert {
		switch {
		case r.TLS == nil:
			a.refuse(w, r, linstor.FailSignInMissingCredentials, "",
				"this controller requires HTTPS with a client certificate; plain HTTP serves only /health",
				"connect to https://<controller>:3371 with a client certificate signed by the controller's client CA "+
					"(Proxmox storage.cfg: apicrt, apikey, apica; golinstor/linstor client: LS_USER_CERTIFICATE, LS_USER_KEY, LS_ROOT_CA)")
			return
		case len(r.TLS.VerifiedChains) == 0:
			a.refuse(w, r, linstor.FailSignInMissingCredentials, "",
				"no client certificate was presented",
				"configure a client certificate signed by the controller's client CA "+
					"(Proxmox storage.cfg: apicrt, apikey, apica; golinstor/linstor client: LS_USER_CERTIFICATE, LS_USER_KEY, LS_ROOT_CA)")
			return
		}
	}
	if a.policy.hasToken {
		given, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			a.refuse(w, r, linstor.FailSignInMissingCredentials, `Bearer realm="pvehci"`,
				"this controller requires a bearer token",
				"send the header \"Authorization: Bearer <token>\" (golinstor: BearerToken or LS_BEARER_TOKEN_FILE; "+
					"Proxmox plugin: the token in /var/lib/linstor.d/auth.json)")
			return
		}
		sum := sha256.Sum256([]byte(given))
		if subtle.ConstantTimeCompare(sum[:], a.policy.token[:]) != 1 {
			// Never echo the token: it may be a real secret mistyped by one
			// character, and the answer may end up in a log.
			a.refuse(w, r, linstor.FailSignIn, `Bearer realm="pvehci", error="invalid_token"`,
				"the bearer token is not valid",
				"use the token configured on the controller (pvehci's API token file); it may have been replaced")
			return
		}
	}
	a.next.ServeHTTP(w, r)
}

// bearer extracts the token of an "Authorization: Bearer <token>" header;
// the scheme is case-insensitive (RFC 9110 §11.1).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

func (a *authHandler) refuse(w http.ResponseWriter, r *http.Request, code uint64, challenge, msg, fix string) {
	a.log.Info("request refused: not authenticated", "method", r.Method, "path", r.URL.Path,
		"remote", r.RemoteAddr, "reason", msg)
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	writeFailure(w, a.clk, &apiError{status: http.StatusUnauthorized, rc: rc(code, "%s", msg), fix: fix})
}
