package pki

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testCA = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testRequest() TokenRequest {
	return TokenRequest{
		NodeName:      "n2",
		ClusterName:   "alpha",
		CAFingerprint: testCA,
		Addrs:         []string{"10.0.0.1:3372", "[fd00::1]:3372"},
	}
}

func issueTest(t *testing.T) (string, TokenRecord) {
	t.Helper()
	tok, rec, err := Issue(testRequest(), t0)
	if err != nil {
		t.Fatal(err)
	}
	return tok, rec
}

func lookupOf(recs ...TokenRecord) TokenLookup {
	return func(id string) (TokenRecord, bool) {
		for _, r := range recs {
			if r.ID == id {
				return r, true
			}
		}
		return TokenRecord{}, false
	}
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tok, rec := issueTest(t)
	t.Logf("token (%d characters): %s", len(tok), tok)
	if !strings.HasPrefix(tok, TokenPrefix) {
		t.Fatalf("token %q lacks the prefix %q", tok, TokenPrefix)
	}
	if strings.ContainsAny(tok[len(TokenPrefix):], "+/=: \n") {
		t.Errorf("token body is not unpadded URL-safe base64: %q", tok)
	}
	jt, err := Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	req := testRequest()
	if jt.ID != rec.ID || jt.NodeName != "n2" || jt.ClusterName != "alpha" || jt.CAFingerprint != testCA ||
		strings.Join(jt.Addrs, ",") != strings.Join(req.Addrs, ",") || !jt.Expires.Equal(t0.Add(DefaultTokenTTL)) {
		t.Errorf("decoded %v, does not match the request %+v", jt, req)
	}
	if rec.NodeName != "n2" || !rec.Expires.Equal(t0.Add(DefaultTokenTTL)) || !rec.Created.Equal(t0) || rec.Used {
		t.Errorf("record %+v does not match the request", rec)
	}
	if len(rec.ID) != 16 {
		t.Errorf("token ID %q is not 16 hex digits", rec.ID)
	}
	if jt.Expired(t0.Add(59*time.Minute)) || !jt.Expired(t0.Add(time.Hour)) {
		t.Error("JoinToken.Expired is wrong around the expiry")
	}

	got, err := Verify(tok, lookupOf(rec), "n2", testCA, t0.Add(59*time.Minute))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got != rec {
		t.Errorf("Verify returned %+v, want %+v", got, rec)
	}
	// White space and line breaks from copying are ignored.
	wrapped := " " + tok[:40] + "\n" + tok[40:100] + "\r\n\t" + tok[100:] + "\n"
	if _, err := Verify(wrapped, lookupOf(rec), "N2", testCA, t0); err != nil {
		t.Errorf("Verify of a wrapped token, name in other case: %v", err)
	}

	// Two tokens never share an ID or a secret.
	tok2, rec2 := issueTest(t)
	if tok2 == tok || rec2.ID == rec.ID || rec2.SecretHash == rec.SecretHash {
		t.Error("two tokens share an ID or secret")
	}
}

func TestTokenTTL(t *testing.T) {
	t.Parallel()
	req := testRequest()
	req.TTL = 3 * time.Hour
	_, rec, err := Issue(req, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Expires.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("Expires = %v, want %v", rec.Expires, t0.Add(3*time.Hour))
	}
}

func TestIssueRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*TokenRequest)
		want string
	}{
		{"bad node name", func(r *TokenRequest) { r.NodeName = "n2.example.com" }, `use the part before the first dot, "n2"`},
		{"bad cluster name", func(r *TokenRequest) { r.ClusterName = "my cluster" }, "cluster name"},
		{"bad fingerprint", func(r *TokenRequest) { r.CAFingerprint = "abc" }, "sha256:<64 lower-case hex digits>"},
		{"no address", func(r *TokenRequest) { r.Addrs = nil }, "no member address"},
		{"address without port", func(r *TokenRequest) { r.Addrs = []string{"10.0.0.1"} }, "not host:port"},
		{"bad port", func(r *TokenRequest) { r.Addrs = []string{"10.0.0.1:0"} }, "1 to 65535"},
		{"wildcard address", func(r *TokenRequest) { r.Addrs = []string{"0.0.0.0:3372"} }, "wildcard"},
		{"negative lifetime", func(r *TokenRequest) { r.TTL = -time.Second }, "negative"},
		{"lifetime too long", func(r *TokenRequest) { r.TTL = 48 * time.Hour }, "maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := testRequest()
			tt.mod(&req)
			tok, _, err := Issue(req, t0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Issue: err = %v, want one containing %q", err, tt.want)
			}
			if tok != "" {
				t.Errorf("Issue returned a token with an error")
			}
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	t.Parallel()
	tok, rec := issueTest(t)
	otherTok, otherRec := issueTest(t)
	used := rec
	used.MarkUsed(t0.Add(time.Minute))
	forged := otherRec // a record under tok's ID with another secret
	forged.ID = rec.ID
	body := tok[len(TokenPrefix):]
	// Replace one character in the middle with another valid one.
	mid := len(body) / 2
	repl := byte('A')
	if body[mid] == 'A' {
		repl = 'B'
	}
	garbled := TokenPrefix + body[:mid] + string(repl) + body[mid+1:]

	const otherCA = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	tests := []struct {
		name    string
		token   string
		lookup  TokenLookup
		joining string
		ca      string
		now     time.Time
		match   func(error) bool
		msg     []string
	}{
		{
			name: "expired", token: tok, lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0.Add(3 * time.Hour),
			match: as[*TokenExpiredError](), msg: []string{"expired at 2026-03-01T13:00:00Z", "2h0m0s ago", "pvehci cluster token n2"},
		},
		{
			name: "expired at the instant", token: tok, lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0.Add(time.Hour),
			match: as[*TokenExpiredError](), msg: []string{"expired"},
		},
		{
			name: "already used", token: tok, lookup: lookupOf(used), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenUsedError](), msg: []string{"already used at 2026-03-01T12:01:00Z", "once", "pvehci cluster token n2"},
		},
		{
			name: "wrong name", token: tok, lookup: lookupOf(rec), joining: "n3", ca: testCA, now: t0,
			match: as[*TokenWrongNameError](), msg: []string{`bound to node "n2"`, `presented by node "n3"`, "pvehci cluster token n3"},
		},
		{
			name: "wrong CA", token: tok, lookup: lookupOf(rec), joining: "n2", ca: otherCA, now: t0,
			match: as[*TokenWrongCAError](), msg: []string{`cluster "alpha"`, testCA, otherCA, "man in the middle"},
		},
		{
			name: "unknown", token: tok, lookup: lookupOf(otherRec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenUnknownError](), msg: []string{rec.ID, "not known to this cluster", "pvehci cluster token n2"},
		},
		{
			name: "other secret under the same ID", token: tok, lookup: lookupOf(forged), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenSecretError](), msg: []string{rec.ID, "altered"},
		},
		{
			name: "truncated", token: tok[:len(tok)-7], lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{"malformed", "cut off"},
		},
		{
			name: "prefix only", token: TokenPrefix, lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{"nothing follows the prefix"},
		},
		{
			name: "cut inside the prefix", token: "pvehci-jo", lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{"cut off"},
		},
		{
			name: "garbled", token: garbled, lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{"checksum does not match", "changed in copying"},
		},
		{
			name: "foreign character", token: TokenPrefix + body[:10] + "!" + body[11:], lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{"character '!' at position 26"},
		},
		{
			name: "other version", token: "pvehci-join-v2:" + body, lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{`"pvehci-join-v2:" token`, "same pvehci version"},
		},
		{
			name: "not a token", token: "hello", lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{"not a pvehci join token"},
		},
		{
			name: "empty", token: " \n", lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenMalformedError](), msg: []string{"empty"},
		},
		{
			name: "another token's secret", token: otherTok, lookup: lookupOf(rec), joining: "n2", ca: testCA, now: t0,
			match: as[*TokenUnknownError](), msg: []string{otherRec.ID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.token, tt.lookup, tt.joining, tt.ca, tt.now)
			t.Log(err)
			wantErr(t, "Verify", err, tt.match, tt.msg...)
			wantErr(t, "Verify", err, is(ErrTokenRefused))
			if err != nil && strings.Contains(err.Error(), body[20:40]) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

// Every truncation and every one-character substitution of a token is
// recognised as malformed; none is taken for a valid token or a different
// refusal, and none panics.
func TestTokenDamage(t *testing.T) {
	t.Parallel()
	tok, rec := issueTest(t)
	check := func(what, s string) {
		t.Helper()
		_, err := Verify(s, lookupOf(rec), "n2", testCA, t0)
		if !as[*TokenMalformedError]()(err) {
			t.Errorf("%s: err = %v, want a *TokenMalformedError", what, err)
		}
	}
	for n := 0; n < len(tok); n++ {
		check(fmt.Sprintf("truncated to %d characters", n), tok[:n])
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := len(TokenPrefix); i < len(tok); i++ {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, tok[i])+1)%64], alphabet[(strings.IndexByte(alphabet, tok[i])+33)%64]} {
			check("substituted", tok[:i]+string(c)+tok[i+1:])
		}
	}
}

func TestRecordHoldsNoSecret(t *testing.T) {
	t.Parallel()
	tok, rec := issueTest(t)
	p, err := decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{
		string(p.Secret),
		hex.EncodeToString(p.Secret),
		base64.StdEncoding.EncodeToString(p.Secret),
		base64.RawURLEncoding.EncodeToString(p.Secret),
		base64.RawStdEncoding.EncodeToString(p.Secret)[:20],
	} {
		if strings.Contains(string(j), enc) {
			t.Fatalf("the record %s contains the secret", j)
		}
	}
	if rec.SecretHash != secretHash(rec.ID, p.Secret) || !strings.HasPrefix(rec.SecretHash, "sha256:") {
		t.Errorf("SecretHash = %q is not the hash of the secret", rec.SecretHash)
	}
	// The record round-trips through the replicated state's JSON.
	var back TokenRecord
	if err := json.Unmarshal(j, &back); err != nil || back != rec {
		t.Errorf("record JSON round trip: %+v, %v; want %+v", back, err, rec)
	}
	if !strings.Contains(string(j), `"secret_hash"`) || strings.Contains(string(j), "used_at") {
		t.Errorf("record JSON %s: want secret_hash and no used_at before use", j)
	}
}
