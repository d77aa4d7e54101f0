package pki

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

// keyForms returns textual forms a private key could leak in.
func keyForms(t *testing.T, key *ecdsa.PrivateKey) []string {
	t.Helper()
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	forms := []string{
		"PRIVATE KEY",
		hex.EncodeToString(raw),
		fmt.Sprint(raw),
		fmt.Sprintf("%x", block.Bytes)[:32],
	}
	// Every line of the PEM body.
	for _, l := range strings.Split(string(keyPEM), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			forms = append(forms, l)
		}
	}
	// The scalar as a decimal number, which is how %v prints a big.Int.
	forms = append(forms, new(big.Int).SetBytes(raw).String())
	return forms
}

func TestNoKeyMaterialInOutput(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, "alpha", "n1")
	nk, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := c.ca.IssueToken("n2", []string{"10.0.0.1:3372"}, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	jt, err := Decode(tok)
	if err != nil {
		t.Fatal(err)
	}
	p, err := decode(tok)
	if err != nil {
		t.Fatal(err)
	}

	secrets := append(keyForms(t, c.ca.key.v), keyForms(t, c.nodes["n1"].key.v)...)
	secrets = append(secrets, keyForms(t, nk.key.v)...)
	secrets = append(secrets,
		hex.EncodeToString(p.Secret),
		base64.StdEncoding.EncodeToString(p.Secret),
		base64.RawURLEncoding.EncodeToString(p.Secret),
		fmt.Sprint(p.Secret),
		fmt.Sprint(*jt.secret.v),
		tok[len(TokenPrefix)+20:len(TokenPrefix)+60],
	)

	// Exported fields get the types' Format; unexported fields and copies
	// are printed by reflection, which must not reach a secret either.
	type inner struct {
		node  NodeCert
		token JoinToken
	}
	type holder struct {
		CA    *CA
		Node  *NodeCert
		Key   *NodeKey
		Token *JoinToken
		ca    *CA
		node  NodeCert
		key   NodeKey
		token JoinToken
		in    inner
		pin   *inner
	}
	in := inner{*c.nodes["n1"], *jt}
	h := holder{c.ca, c.nodes["n1"], nk, jt, c.ca, *c.nodes["n1"], *nk, *jt, in, &in}
	values := []any{c.ca, c.nodes["n1"], nk, jt, *c.ca, *c.nodes["n1"], *nk, *jt, h, &h, []any{c.ca, nk}, map[string]any{"k": nk}}
	var out strings.Builder
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%p"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		out.WriteString(fmt.Sprintln(v))
		if j, err := json.Marshal(v); err == nil {
			out.Write(j)
		}
	}
	got := out.String()
	for _, s := range secrets {
		if strings.Contains(got, s) {
			t.Errorf("formatted output contains key or secret material %q", s)
		}
	}
	for _, want := range []string{`pki.CA(cluster "alpha"`, `pki.NodeCert(node "n1"`, "pki.NodeKey(ECDSA P-256, private)", `pki.JoinToken(` + jt.ID} {
		if !strings.Contains(got, want) {
			t.Errorf("formatted output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}
