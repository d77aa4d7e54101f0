package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("alpha", t0)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Certificate()
	if !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate lacks CA constraints: IsCA=%v MaxPathLenZero=%v KeyUsage=%v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("CA key is %T, signature %v; want ECDSA P-256 with SHA-256", c.PublicKey, c.SignatureAlgorithm)
	}
	if !strings.Contains(c.Subject.CommonName, "alpha") || ca.ClusterName() != "alpha" {
		t.Errorf("CA subject %q / cluster %q does not name the cluster", c.Subject, ca.ClusterName())
	}
	if !ca.NotAfter().Equal(t0.Add(CAValidity)) || !c.NotBefore.Before(t0) {
		t.Errorf("CA valid %v to %v, want from before %v for %v", c.NotBefore, ca.NotAfter(), t0, CAValidity)
	}
	if _, err := NewCA("", t0); err == nil || !strings.Contains(err.Error(), "cluster name is empty") {
		t.Errorf("NewCA with no name: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("alpha", t0)
	if err != nil {
		t.Fatal(err)
	}
	fp := ca.Fingerprint()
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(fp) {
		t.Errorf("fingerprint %q is not sha256:<64 hex>", fp)
	}
	back, err := ParseCertPEM(ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(back) != fp {
		t.Error("fingerprint changed across a PEM round trip")
	}
	other, _ := NewCA("alpha", t0)
	if other.Fingerprint() == fp {
		t.Error("two CAs share a fingerprint")
	}
	if checkFingerprint(fp) != nil || checkFingerprint(strings.ToUpper(fp)) == nil || checkFingerprint(fp[:20]) == nil {
		t.Error("checkFingerprint does not match the format Fingerprint produces")
	}
}

func TestIssueNode(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("alpha", t0)
	if err != nil {
		t.Fatal(err)
	}
	ips := []net.IP{net.ParseIP("10.0.0.2"), net.ParseIP("fd00::2"), net.ParseIP("10.0.0.2")}
	n, err := ca.IssueNode("n2", ips, []string{"n2.example.com"}, t0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := n.Certificate()
	if c.Subject.CommonName != "n2" || n.Name() != "n2" {
		t.Errorf("CN = %q, want n2", c.Subject.CommonName)
	}
	if !slices.Equal(c.DNSNames, []string{"n2", "n2.example.com"}) {
		t.Errorf("DNS SANs = %v", c.DNSNames)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(ips[0]) || !c.IPAddresses[1].Equal(ips[1]) {
		t.Errorf("IP SANs = %v, want 10.0.0.2 and fd00::2 once each", c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) || c.IsCA {
		t.Errorf("ExtKeyUsage = %v, IsCA = %v; want server and client auth, no CA", c.ExtKeyUsage, c.IsCA)
	}
	if !n.NotAfter().Equal(t0.Add(24*time.Hour)) || !n.CANotAfter().Equal(ca.NotAfter()) || n.CAFingerprint() != ca.Fingerprint() {
		t.Errorf("NotAfter = %v, CA %v %s", n.NotAfter(), n.CANotAfter(), n.CAFingerprint())
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: n.pool(), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: "n2"}); err != nil {
			t.Errorf("certificate does not verify for %v: %v", usage, err)
		}
	}
	// A node certificate never outlives its CA.
	long, err := ca.IssueNode("n3", nil, nil, t0, 2*CAValidity)
	if err != nil {
		t.Fatal(err)
	}
	if !long.NotAfter().Equal(ca.NotAfter()) {
		t.Errorf("node certificate expires %v, after its CA (%v)", long.NotAfter(), ca.NotAfter())
	}

	refusals := []struct {
		name     string
		node     string
		ips      []net.IP
		dns      []string
		now      time.Time
		validity time.Duration
		want     string
	}{
		{"bad name", "n_2", nil, nil, t0, time.Hour, `node name "n_2" contains '_'`},
		{"another node's name", "n2", nil, []string{"n1"}, t0, time.Hour, `DNS name "n1" is not allowed in the certificate of node "n2"`},
		{"wildcard IP", "n2", []net.IP{net.IPv4zero}, nil, t0, time.Hour, "wildcard"},
		{"no validity", "n2", nil, nil, t0, 0, "not positive"},
		{"CA expired", "n2", nil, nil, t0.Add(CAValidity + time.Hour), time.Hour, "can sign no more certificates"},
	}
	for _, tt := range refusals {
		_, err := ca.IssueNode(tt.node, tt.ips, tt.dns, tt.now, tt.validity)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "pki: issuing the certificate of node") {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestParseRefusesMismatch(t *testing.T) {
	t.Parallel()
	a := newTestCluster(t, "alpha", "n1", "n2")
	b := newTestCluster(t, "beta", "n1")
	aCert, aKey, _ := a.ca.MarshalPEM()
	_, bKey, _ := b.ca.MarshalPEM()
	if _, err := ParseCA(aCert, aKey); err != nil {
		t.Errorf("ParseCA of a matching pair: %v", err)
	}
	if _, err := ParseCA(aCert, bKey); err == nil || !strings.Contains(err.Error(), "does not belong to the CA certificate") {
		t.Errorf("ParseCA with another CA's key: %v", err)
	}
	n1Cert, n1Key, caPEM, _ := a.nodes["n1"].MarshalPEM()
	_, n2Key, _, _ := a.nodes["n2"].MarshalPEM()
	if _, err := ParseNodeCert(n1Cert, n2Key, caPEM); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("ParseNodeCert with another node's key: %v", err)
	}
	if _, err := ParseNodeCert(n1Cert, n1Key, b.ca.CertPEM()); err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Errorf("ParseNodeCert with another cluster's CA: %v", err)
	}
	// A node certificate is not a CA.
	if _, err := ParseCA(n1Cert, n1Key); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Errorf("ParseCA of a node certificate: %v", err)
	}
	if _, err := ParseCertPEM(n1Key); err == nil || !strings.Contains(err.Error(), `"PRIVATE KEY", not a "CERTIFICATE"`) {
		t.Errorf("ParseCertPEM of a key: %v", err)
	}
}
