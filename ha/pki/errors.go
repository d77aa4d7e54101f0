package pki

import (
	"errors"
	"fmt"
	"time"
)

// ErrTokenRefused matches, with errors.Is, every refusal of a join token:
// each of the Token*Error types below.
var ErrTokenRefused = errors.New("pki: join token refused")

// newTokenHint is the remedy for most refusals.
func newTokenHint(node string) string {
	if node == "" {
		node = "NAME"
	}
	return fmt.Sprintf("create a new one on a cluster member with `pvehci cluster token %s`", node)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// TokenMalformedError: the text is not a join token, or it was truncated or
// changed while being copied.
type TokenMalformedError struct {
	// Reason says what is wrong with the text.
	Reason string
}

func (e *TokenMalformedError) Error() string {
	return fmt.Sprintf("pki: join token is malformed: %s; copy the whole token exactly as `pvehci cluster token NAME` printed it (it starts with %q), or create a new one", e.Reason, TokenPrefix)
}

// Is makes the error match [ErrTokenRefused].
func (e *TokenMalformedError) Is(target error) bool { return target == ErrTokenRefused }

// TokenUnknownError: the cluster has no record of the token's ID.
type TokenUnknownError struct {
	ID       string
	NodeName string // the name in the token
}

func (e *TokenUnknownError) Error() string {
	return fmt.Sprintf("pki: join token %s (for node %q) is not known to this cluster: it was revoked, removed after it expired, or lost when the cluster state was restored from an older backup; %s", e.ID, e.NodeName, newTokenHint(e.NodeName))
}

// Is makes the error match [ErrTokenRefused].
func (e *TokenUnknownError) Is(target error) bool { return target == ErrTokenRefused }

// TokenSecretError: the cluster knows the token's ID, but the secret does
// not match the one issued under it. The token was altered.
type TokenSecretError struct {
	ID       string
	NodeName string // the name in the record
}

func (e *TokenSecretError) Error() string {
	return fmt.Sprintf("pki: join token %s does not carry the secret that was issued with it: the token was altered; use it exactly as printed, or %s", e.ID, newTokenHint(e.NodeName))
}

// Is makes the error match [ErrTokenRefused].
func (e *TokenSecretError) Is(target error) bool { return target == ErrTokenRefused }

// TokenWrongCAError: the token pins a CA other than the one of the cluster
// that was reached. Either the joining node reached another cluster, or
// something between the two is impersonating the cluster.
type TokenWrongCAError struct {
	TokenCluster   string // cluster name in the token, if known
	TokenCA        string // CA fingerprint in the token
	ReachedCluster string // cluster name of the CA reached, if known
	ReachedCA      string // fingerprint of the CA reached; "" if it sent none
}

func (e *TokenWrongCAError) Error() string {
	tok := e.TokenCA
	if e.TokenCluster != "" {
		tok = fmt.Sprintf("cluster %q (CA %s)", e.TokenCluster, e.TokenCA)
	}
	reached := "a server that sent no CA certificate"
	switch {
	case e.ReachedCA != "" && e.ReachedCluster != "":
		reached = fmt.Sprintf("%q (CA %s)", e.ReachedCluster, e.ReachedCA)
	case e.ReachedCA != "":
		reached = "CA " + e.ReachedCA
	}
	return fmt.Sprintf("pki: join token belongs to %s, but the server reached presents %s: the token's addresses lead to another cluster, or something is intercepting the connection (man in the middle); do not proceed — check the addresses in the token and that it came from the cluster you mean to join", tok, reached)
}

// Is makes the error match [ErrTokenRefused].
func (e *TokenWrongCAError) Is(target error) bool { return target == ErrTokenRefused }

// TokenWrongNameError: the token is bound to another node name than the
// one presented (by the joining node, or in its CSR).
type TokenWrongNameError struct {
	ID        string
	Bound     string // the node the token was issued for
	Presented string // the node that presented it
}

func (e *TokenWrongNameError) Error() string {
	return fmt.Sprintf("pki: join token %s is bound to node %q but was presented by node %q; run the join on %q, or create a token for this node with `pvehci cluster token %s`", e.ID, e.Bound, e.Presented, e.Bound, e.Presented)
}

// Is makes the error match [ErrTokenRefused].
func (e *TokenWrongNameError) Is(target error) bool { return target == ErrTokenRefused }

// TokenUsedError: the token was already used; tokens are single use.
type TokenUsedError struct {
	ID       string
	NodeName string
	UsedAt   time.Time // zero if unknown
}

func (e *TokenUsedError) Error() string {
	when := ""
	if !e.UsedAt.IsZero() {
		when = " at " + stamp(e.UsedAt)
	}
	return fmt.Sprintf("pki: join token %s for node %q was already used%s; a token works once — %s", e.ID, e.NodeName, when, newTokenHint(e.NodeName))
}

// Is makes the error match [ErrTokenRefused].
func (e *TokenUsedError) Is(target error) bool { return target == ErrTokenRefused }

// TokenExpiredError: the token's lifetime is over.
type TokenExpiredError struct {
	ID       string
	NodeName string
	Expired  time.Time // when it expired
	Now      time.Time // the verifier's clock
}

func (e *TokenExpiredError) Error() string {
	return fmt.Sprintf("pki: join token %s for node %q expired at %s (%s ago by this member's clock); %s", e.ID, e.NodeName, stamp(e.Expired), e.Now.Sub(e.Expired).Round(time.Second), newTokenHint(e.NodeName))
}

// Is makes the error match [ErrTokenRefused].
func (e *TokenExpiredError) Is(target error) bool { return target == ErrTokenRefused }
