package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// PEM block types this package reads and writes.
const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY" // PKCS #8
	pemCSR  = "CERTIFICATE REQUEST"
)

// fingerprintPrefix starts every fingerprint; the hex digest follows.
const fingerprintPrefix = "sha256:"

// Fingerprint returns the SHA-256 digest of cert's DER encoding as
// "sha256:" followed by 64 lower-case hex digits. It is what join tokens pin
// and what `pvehci cluster status` shows, and it is stable across PEM
// re-encodings.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return fingerprintPrefix + hex.EncodeToString(sum[:])
}

// checkFingerprint reports whether s has the form Fingerprint returns.
func checkFingerprint(s string) error {
	h, ok := strings.CutPrefix(s, fingerprintPrefix)
	if !ok || len(h) != 2*sha256.Size || strings.ToLower(h) != h {
		return fmt.Errorf("CA fingerprint %q is not of the form sha256:<64 lower-case hex digits>", s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("CA fingerprint %q is not of the form sha256:<64 lower-case hex digits>", s)
	}
	return nil
}

// EncodeCertPEM returns cert as a PEM "CERTIFICATE" block.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: cert.Raw})
}

// ParseCertPEM parses the first PEM block of data, which must be a
// "CERTIFICATE".
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return cert, nil
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	switch {
	case b == nil:
		return nil, errors.New("no PEM block found where a certificate was expected")
	case b.Type != pemCert:
		return nil, fmt.Errorf("PEM block is a %q, not a %q", b.Type, pemCert)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	return cert, nil
}

// encodeKeyPEM returns key as a PKCS #8 "PRIVATE KEY" PEM block.
func encodeKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der}), nil
}

// parseKeyPEM parses a PKCS #8 ECDSA P-256 key. Its errors never quote the
// input.
func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	switch {
	case b == nil:
		return nil, errors.New("no PEM block found where a private key was expected")
	case b.Type != pemKey:
		return nil, fmt.Errorf("PEM block is a %q, not a PKCS #8 %q", b.Type, pemKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, errors.New("the private key is not valid PKCS #8 (its content is not shown)")
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the private key is a %s, not ECDSA P-256", keyKind(k))
	}
	return ek, nil
}

// parseCSRPEM parses and checks the signature of a PEM CSR.
func parseCSRPEM(data []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(data)
	switch {
	case b == nil:
		return nil, errors.New("no PEM block found where a certificate signing request was expected")
	case b.Type != pemCSR:
		return nil, fmt.Errorf("PEM block is a %q, not a %q", b.Type, pemCSR)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate signing request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate signing request is not signed by its own key: %w", err)
	}
	return csr, nil
}

// p256Public returns pub if it is an ECDSA P-256 public key.
func p256Public(pub any) (*ecdsa.PublicKey, error) {
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the key is a %s; pvehci node keys are ECDSA P-256 (create them with pvehci, not by hand)", keyKind(pub))
	}
	return ek, nil
}

func keyKind(k any) string {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name + " key"
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name + " key"
	default:
		return fmt.Sprintf("%T", k)
	}
}
